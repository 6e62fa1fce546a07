"""One real sandbox pool per test module (starting one costs a fraction of a second, not per test).

Nothing here is faked: the tests run user code in real bubblewrap sandboxes with real Python and QuickJS. When
bubblewrap, libseccomp or QuickJS is missing, `start()` raises and every test errors; nothing is skipped.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from knotflow.sandbox import CodeFailed, CodeRequest, CodeSandbox, SandboxOptions

# A real knotflow setting, put in the server's (this process's) environment before each pool starts and taken out
# after: the sandboxes must not see it.
SECRET_ENV = "KNOTFLOW_FILE_URL_SECRET"
SECRET_VALUE = "s3cr3t-7f1c0de-never-in-a-sandbox"

# Small limits keep the hostile tests fast; the pool has two warm sandboxes per language.
TEST_OPTIONS = SandboxOptions(python_workers=2, js_workers=2, timeout=10.0, memory_mb=100, max_output_bytes=64 << 10)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[CodeSandbox]:
    saved = os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = SECRET_VALUE
    pool = CodeSandbox(TEST_OPTIONS)
    try:
        await pool.start()
        yield pool
    finally:
        await pool.close()
        if saved is None:
            del os.environ[SECRET_ENV]
        else:
            os.environ[SECRET_ENV] = saved


async def python(pool: CodeSandbox, code: str, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return (await pool.run(CodeRequest("python", code, params or {}, **kw))).output


async def js(pool: CodeSandbox, code: str, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return (await pool.run(CodeRequest("typescript", code, params or {}, **kw))).output


async def failure(
    pool: CodeSandbox, language: str, code: str, params: dict[str, Any] | None = None, **kw: Any
) -> CodeFailed:
    try:
        result = await pool.run(CodeRequest(language, code, params or {}, **kw))
    except CodeFailed as error:
        return error
    raise AssertionError(f"expected CodeFailed, got {result!r}")
