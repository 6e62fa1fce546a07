"""The Code node's runner as the composition root builds it (`service/code.py`): KNOTFLOW_CODE_* settings, one pool
per language started by its first call, a clear error when the machine cannot run code, and a new try later."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from knotflow.config import Settings
from knotflow.contract import CodeFailed, CodeRequest
from knotflow.service import code as code_service
from knotflow.service.code import CodeService, sandbox_options
from knotflow.service.container import Container

PYTHON = CodeRequest("python", "def main(args):\n    return {'n': args.params['n'] + 1}", {"n": 1})
JS = CodeRequest("javascript", "function main({ params }) { return { n: params.n + 1 } }", {"n": 1})
NO_BWRAP = "Python code cannot run on this server: bubblewrap is not installed (Debian: apt-get install bubblewrap)"


def test_settings_become_the_sandbox_options() -> None:
    options = sandbox_options(Settings(code_python_workers=3, code_js_workers=0, code_timeout=5, code_max_timeout=50,
                                       code_max_memory_bytes=(200 << 20) + 12345, code_max_output_bytes=4096,
                                       code_max_scratch_bytes=8 << 20))
    assert (options.python_workers, options.js_workers, options.timeout, options.max_timeout) == (3, 0, 5, 50)
    assert (options.memory_mb, options.max_output_bytes, options.scratch_mb) == (200, 4096, 8)
    assert (options.egress, options.offered_packages) == (False, ("numpy",))
    options = sandbox_options(Settings(code_egress=True, url_fetch_allow="10.0.0.0/8,intranet"))
    assert (options.egress, options.egress_allow, options.offered_packages) == (True, "10.0.0.0/8,intranet",
                                                                                ("numpy", "httpx"))
    with pytest.raises(ValueError, match="KNOTFLOW_CODE_TIMEOUT must not be above KNOTFLOW_CODE_MAX_TIMEOUT"):
        Settings(code_timeout=700)
    with pytest.raises(ValueError):
        Settings(code_max_memory_bytes=1 << 20)


async def test_a_pool_starts_with_the_first_call_in_its_language() -> None:
    service = CodeService(Settings(code_python_workers=1, code_js_workers=1))
    try:
        assert service._python._sandbox is None and service._javascript._sandbox is None
        assert (await service.run(PYTHON)).output == {"n": 2}
        assert service._python._sandbox is not None and service._javascript._sandbox is None
        assert (await service.run(JS)).output == {"n": 2}
        assert service._javascript._sandbox is not None
    finally:
        await service.close()
    with pytest.raises(CodeFailed, match="shutting down"):
        await service.run(PYTHON)


async def test_a_container_starts_no_sandbox(tmp_path: Path) -> None:
    async with Container(Settings(data_dir=tmp_path), migrate=True) as app:
        assert app.code._python._sandbox is None and app.code._javascript._sandbox is None


async def test_without_bubblewrap_calls_fail_clearly_and_the_start_is_tried_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    service = CodeService(Settings(code_python_workers=1, code_js_workers=0))
    path = os.environ["PATH"]
    try:
        monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
        for _ in range(2):
            with pytest.raises(CodeFailed) as failed:
                await service.run(PYTHON)
            assert (failed.value.kind, failed.value.message) == ("sandbox", NO_BWRAP)
        monkeypatch.setenv("PATH", path)
        with pytest.raises(CodeFailed, match="bubblewrap is not installed"):  # not before RETRY_AFTER
            await service.run(PYTHON)
        monkeypatch.setattr(code_service, "RETRY_AFTER", 0.0)
        assert (await service.run(PYTHON)).output == {"n": 2}
    finally:
        await service.close()


async def test_a_caller_cancelled_while_the_pool_starts_does_not_stop_the_start() -> None:
    service = CodeService(Settings(code_python_workers=1, code_js_workers=0))
    try:
        first = asyncio.create_task(service.run(PYTHON))
        await asyncio.sleep(0.05)
        assert service._python._starting is not None  # the pool is starting (it takes a fraction of a second)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert (await service.run(PYTHON)).output == {"n": 2}
    finally:
        await service.close()
