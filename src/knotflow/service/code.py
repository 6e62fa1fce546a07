"""The Code node's runner (`RunServices.code`): one sandbox pool per language (`knotflow.sandbox`), each started on
the first call in its language, so that a server that runs no code starts no sandbox, and a machine without
bubblewrap (or QuickJS) still serves every other node.

A pool that cannot start fails the calls of its language with CodeFailed(kind="sandbox") naming what is missing
(the Code node reports it as Coze's 305000002); the start is tried again `RETRY_AFTER` seconds later, so that
installing the missing tool does not need a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace

from knotflow.config import Settings
from knotflow.contract import CodeFailed, CodeRequest, CodeResult
from knotflow.sandbox import CodeSandbox, SandboxOptions

log = logging.getLogger(__name__)

RETRY_AFTER = 30.0  # seconds before a pool that failed to start is tried again
MB = 1 << 20


def sandbox_options(settings: Settings) -> SandboxOptions:
    """The KNOTFLOW_CODE_* settings as the sandbox's options (sizes in whole MB, rounded down)."""
    return SandboxOptions(
        python_workers=settings.code_python_workers,
        js_workers=settings.code_js_workers,
        timeout=settings.code_timeout,
        max_timeout=settings.code_max_timeout,
        memory_mb=settings.code_max_memory_bytes // MB,
        max_output_bytes=settings.code_max_output_bytes,
        scratch_mb=settings.code_max_scratch_bytes // MB,
        egress=settings.code_egress,
        egress_allow=settings.url_fetch_allow,
    )


class _LazyPool:
    """One language's sandbox pool, started by its first call; a cancelled caller never cuts the start short."""

    def __init__(self, name: str, options: SandboxOptions) -> None:
        self.name = name
        self.options = options
        self._sandbox: CodeSandbox | None = None
        self._starting: asyncio.Task[CodeSandbox] | None = None
        self._failed: tuple[float, str] | None = None  # (when, why) the last start failed
        self._closed = False

    async def sandbox(self) -> CodeSandbox:
        if self._sandbox is not None:
            return self._sandbox
        if self._closed:
            raise CodeFailed("sandbox", "the server is shutting down")
        if self._failed is not None and time.monotonic() - self._failed[0] < RETRY_AFTER:
            raise CodeFailed("sandbox", self._failed[1])
        if self._starting is None:
            self._starting = asyncio.create_task(self._start())
            # Its failure is reported to the callers that wait; when they were all cancelled, to no one.
            self._starting.add_done_callback(lambda task: task.cancelled() or task.exception())
        return await asyncio.shield(self._starting)

    async def _start(self) -> CodeSandbox:
        sandbox = CodeSandbox(self.options)
        started = time.monotonic()
        try:
            await sandbox.start()
        except CodeFailed as failed:
            reason = f"{self.name} code cannot run on this server: {failed.message}"
            log.error("code sandbox not started", extra={"language": self.name, "error": failed.message})
            self._failed = (time.monotonic(), reason)
            raise CodeFailed("sandbox", reason) from None
        finally:
            self._starting = None
        log.info("code sandbox started", extra={"language": self.name,
                                                "duration_ms": round((time.monotonic() - started) * 1000)})
        self._failed = None
        self._sandbox = sandbox
        return sandbox

    async def close(self) -> None:
        self._closed = True
        if self._starting is not None:
            with contextlib.suppress(CodeFailed):
                await self._starting  # it ends within the sandbox's start timeout
        if self._sandbox is not None:
            await self._sandbox.close()
            self._sandbox = None


class CodeService:
    """Satisfies `knotflow.contract.CodeRunner`."""

    def __init__(self, settings: Settings) -> None:
        options = sandbox_options(settings)
        # Each pool keeps warm sandboxes of its own language only (0 workers of the other: it never gets a call).
        self._python = _LazyPool("Python", _only(options, python=True))
        self._javascript = _LazyPool("JavaScript", _only(options, python=False))

    async def run(self, request: CodeRequest) -> CodeResult:
        pool = self._python if request.language.lower() == "python" else self._javascript
        sandbox = await pool.sandbox()
        return await sandbox.run(request)

    async def close(self) -> None:
        await asyncio.gather(self._python.close(), self._javascript.close())


def _only(options: SandboxOptions, *, python: bool) -> SandboxOptions:
    # Egress is for Python code only: the JavaScript pool runs no proxy.
    return replace(options, js_workers=0) if python else replace(options, python_workers=0, egress=False)
