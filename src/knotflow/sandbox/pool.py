"""The pool: warm sandboxes per language, one call per sandbox at a time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import Any

from knotflow.contract import CodeRequest, CodeResult
from knotflow.dsl import jsonutil
from knotflow.outbound.proxy import ForwardProxy, ProxyLimits
from knotflow.sandbox.errors import KINDS, CodeFailed
from knotflow.sandbox.jail import Jail
from knotflow.sandbox.options import SandboxOptions
from knotflow.sandbox.process import Call, Runtime, SandboxProcess

LANGUAGES: dict[str, Runtime] = {"python": "python", "javascript": "js", "typescript": "js"}
# The template enforces the timeout itself; the server waits this much longer before killing the template.
TEMPLATE_GRACE_SECONDS = 5.0


class _Slot:
    """One place in the pool: a sandbox, replaced when it ends.

    A template (Python or JavaScript) serves call after call, each in a fresh fork; it is replaced only when it
    breaks or a call is abandoned in its middle, and then in the background, so the next call on this slot
    normally finds its replacement warm.
    """

    def __init__(self, runtime: Runtime, jail: Jail, proxy: ForwardProxy | None, *, warm: bool = True) -> None:
        self.runtime = runtime
        self.jail = jail
        self.proxy = proxy
        self.warm = warm  # a cold slot serves one call and is not refilled
        self.process: SandboxProcess | None = None
        self.retired: SandboxProcess | None = None
        self.closed = False
        self.refill: asyncio.Task[SandboxProcess] | None = None

    async def _start(self) -> SandboxProcess:
        process = SandboxProcess(self.runtime, self.jail, self.proxy)
        await process.start()
        return process

    async def _replace(self, old: SandboxProcess) -> SandboxProcess:
        await old.kill()  # first, so that a slot never holds two sandboxes (and twice the memory) at once
        return await self._start()

    async def ready(self) -> SandboxProcess:
        if self.refill is not None:
            refill, self.refill = self.refill, None
            with contextlib.suppress(CodeFailed):  # a failed refill is retried once, now, for this call
                self.process = await refill
        if self.process is None or not self.process.alive:
            self.process = await self._start()
        if self.closed:  # closed while the sandbox was starting
            await self.process.kill()
            raise CodeFailed("sandbox", "the code sandbox is closed")
        return self.process

    def retire(self) -> None:
        """End the current sandbox and (warm slots) start its replacement in the background."""
        if self.process is not None:
            old, self.process = self.process, None
            if self.warm:
                self.refill = asyncio.create_task(self._replace(old))
            else:
                self.retired = old

    async def call(self, request: Call, timeout: float) -> dict[str, Any]:
        process = await self.ready()
        keep = False
        try:
            reply = await process.call(request, timeout + TEMPLATE_GRACE_SECONDS)
            keep = True
            return reply
        finally:  # also on cancellation: a sandbox left in the middle of a call is never reused
            if not keep:
                self.retire()

    async def close(self) -> None:
        self.closed = True
        if self.refill is not None:
            # Awaited, not cancelled: cancelling could cut the old sandbox's kill short. It ends within the start
            # timeout.
            with contextlib.suppress(CodeFailed):
                await (await self.refill).kill()
            self.refill = None
        for process in (self.process, self.retired):
            if process is not None:
                await process.kill()
        self.process = self.retired = None


class CodeSandbox:
    """Runs Coze Code-node code in isolated sandboxes (see bench/README.md, section "code_sandbox.py")."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self._jail: Jail | None = None
        self._proxy: ForwardProxy | None = None  # egress: shared by this pool's sandboxes, each on its own socket
        self._idle: dict[Runtime, asyncio.Queue[_Slot]] = {}
        self._slots: list[_Slot] = []
        self._cold: set[_Slot] = set()
        self._closed = False

    async def start(self) -> None:
        """Check the tools and start the warm sandboxes; raises CodeFailed(kind="sandbox") if that fails."""
        if self._jail is not None:
            return
        self._jail = await asyncio.to_thread(Jail, self.options)
        if self.options.egress and self._proxy is None:
            limits = ProxyLimits(connect_timeout=self.options.egress_connect_timeout,
                                 idle_timeout=self.options.egress_idle_timeout,
                                 max_connections=self.options.egress_max_connections)
            self._proxy = ForwardProxy(self.options.egress_allow, limits)
        if self.options.js_workers and self._jail.quickjs is None:
            raise CodeFailed("sandbox", "QuickJS is not installed (pip install quickjs-ng), and js_workers is not 0")
        sizes: dict[Runtime, int] = {"python": self.options.python_workers, "js": self.options.js_workers}
        for runtime, size in sizes.items():
            self._idle[runtime] = asyncio.Queue()
            for _ in range(size):
                self._slots.append(_Slot(runtime, self._jail, self._proxy))
        # Every start is awaited, failed or not, before the pool gives up: none is left running unseen.
        outcomes = await asyncio.gather(*(slot.ready() for slot in self._slots), return_exceptions=True)
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failures:
            await self.close()
            raise failures[0]
        for slot in self._slots:
            self._idle[slot.runtime].put_nowait(slot)

    async def run(self, request: CodeRequest) -> CodeResult:
        """Run `main` of the request's code; its output, or CodeFailed saying why not."""
        runtime = LANGUAGES.get(request.language.lower())
        if runtime is None:
            raise ValueError(f"unsupported language {request.language!r}; expected one of {sorted(LANGUAGES)}")
        if self._jail is None or self._closed:
            raise CodeFailed("sandbox", "the code sandbox is not started" if not self._closed else "it is closed")
        timeout = min(request.timeout or self.options.timeout, self.options.max_timeout)
        try:
            json.dumps(request.params, allow_nan=False)  # refuses NaN and infinities, as Go's encoder does
        except (TypeError, ValueError) as error:
            raise ValueError(f"the params are not JSON: {error}") from None
        # Written as Coze's Go encoder writes them: a whole float reaches the code as an integer there.
        body = jsonutil.dumpb({"code": request.code, "params": request.params})
        message = Call(id=secrets.token_hex(8), timeout=timeout, body=body)
        if self._slots_of(runtime) == 0:
            reply = await self._run_cold(runtime, message, timeout)
        else:
            queue = self._idle[runtime]
            slot = await queue.get()
            try:
                reply = await slot.call(message, timeout)
            finally:
                queue.put_nowait(slot)
        return _result(reply)

    def _slots_of(self, runtime: Runtime) -> int:
        return self.options.python_workers if runtime == "python" else self.options.js_workers

    async def _run_cold(self, runtime: Runtime, message: Call, timeout: float) -> dict[str, Any]:
        """No warm pool for this language: a fresh sandbox for this call alone."""
        assert self._jail is not None
        slot = _Slot(runtime, self._jail, self._proxy, warm=False)
        self._cold.add(slot)
        try:
            return await slot.call(message, timeout)
        finally:
            self._cold.discard(slot)
            await slot.close()

    async def close(self) -> None:
        """Kill every sandbox. Calls still running fail with CodeFailed(kind="sandbox")."""
        self._closed = True
        await asyncio.gather(*(slot.close() for slot in [*self._slots, *self._cold]), return_exceptions=True)
        if self._proxy is not None:
            await self._proxy.aclose()

    async def __aenter__(self) -> CodeSandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _result(reply: dict[str, Any]) -> CodeResult:
    stdout = reply.get("stdout") if isinstance(reply.get("stdout"), str) else ""
    if reply.get("ok") is True and isinstance(reply.get("output"), dict):
        return CodeResult(output=reply["output"], stdout=stdout or "")
    kind = reply.get("kind")
    line = reply.get("line")
    raise CodeFailed(
        kind if kind in KINDS else "sandbox",
        str(reply.get("message") or "the sandbox gave no reason"),
        traceback=str(reply.get("traceback") or ""),
        line=line if isinstance(line, int) else None,
        stdout=stdout or "",
    )
