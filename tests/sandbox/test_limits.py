"""Limits: wall and CPU time, memory, processes and threads, output size. Each is hit for real, and the pool
still serves the next call."""

from __future__ import annotations

import pytest

from knotflow.sandbox import CodeSandbox
from tests.sandbox.conftest import TEST_OPTIONS, failure, js, python

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALIVE_PY = "def main(args):\n    return {'alive': True}"
ALIVE_JS = "function main() { return { alive: true } }"


async def still_serving(sandbox: CodeSandbox) -> None:
    assert await python(sandbox, ALIVE_PY) == {"alive": True}
    assert await js(sandbox, ALIVE_JS) == {"alive": True}


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "def main(args):\n    while True:\n        pass"),
        ("python", "import time\nasync def main(args):\n    time.sleep(60)\n    return {}"),
        ("python", "import asyncio\nasync def main(args):\n    await asyncio.sleep(60)\n    return {}"),
        ("typescript", "function main() { while (true) {} }"),
        ("typescript", "async function main() { await new Promise(() => {}); }"),
    ],
)
async def test_timeout_stops_the_code(sandbox: CodeSandbox, language: str, code: str) -> None:
    error = await failure(sandbox, language, code, timeout=1)
    assert (error.kind, error.message) == ("timeout", "Execution timed out after 1 seconds")
    await still_serving(sandbox)


async def test_default_timeout_is_cozes() -> None:
    from knotflow.sandbox import SandboxOptions

    assert SandboxOptions().timeout == 60.0 and SandboxOptions().memory_mb == 100
    assert TEST_OPTIONS.timeout == 10.0


@pytest.mark.parametrize(
    "code",
    [
        "def main(args):\n    block = bytearray(1 << 30)\n    return {}",
        "def main(args):\n    hog = []\n    while True:\n        hog.append('x' * 1000)",
        "import numpy as np\ndef main(args):\n    return {'n': int(np.ones((20000, 20000)).sum())}",
    ],
)
async def test_python_memory_hog_is_stopped(sandbox: CodeSandbox, code: str) -> None:
    error = await failure(sandbox, "python", code)
    assert error.kind == "memory" and "MemoryError" in error.message
    await still_serving(sandbox)


async def test_python_may_use_memory_within_the_limit(sandbox: CodeSandbox) -> None:
    code = "def main(args):\n    block = bytearray(60 << 20)\n    return {'size': len(block)}"
    assert await python(sandbox, code) == {"size": 60 << 20}


@pytest.mark.parametrize(
    "code",
    [
        # The V8 heap: capped at memory_mb, as Coze's --max-old-space-size (8 MB arrays: V8 gives up quickly).
        "function main() { const hog: number[][] = []; while (true) hog.push(new Array(1 << 20).fill(1.5)); }",
        # Buffers outside the heap.
        "function main() { const a = []; for (let i = 0; i < 100; i++) a.push(new Uint8Array(256 << 20).fill(1)); "
        "return { n: a.length } }",
    ],
)
async def test_js_memory_hog_is_stopped(sandbox: CodeSandbox, code: str) -> None:
    error = await failure(sandbox, "typescript", code, timeout=60)  # garbage collection is slow on a busy machine
    assert error.kind == "memory", error
    await still_serving(sandbox)


async def test_python_cannot_fork_spawn_or_start_threads(sandbox: CodeSandbox) -> None:
    code = """
import os, subprocess, threading, multiprocessing
def main(args):
    out = {}
    def attempt(name, action):
        try:
            action()
            out[name] = "done"
        except Exception as error:
            out[name] = type(error).__name__
    attempt("fork", os.fork)
    attempt("thread", lambda: threading.Thread(target=lambda: None).start())
    attempt("subprocess", lambda: subprocess.run(["/usr/bin/true"]))
    attempt("exec", lambda: os.execv("/usr/bin/true", ["true"]))
    attempt("process", lambda: multiprocessing.Process(target=print).start())
    return out
"""
    out = await python(sandbox, code)
    assert out == {"fork": "PermissionError", "thread": "RuntimeError", "subprocess": "PermissionError",
                   "exec": "PermissionError", "process": "PermissionError"}  # fmt: skip


async def test_python_fork_bomb_is_contained(sandbox: CodeSandbox) -> None:
    code = "import os\ndef main(args):\n    while True:\n        os.fork()"
    error = await failure(sandbox, "python", code, timeout=3)
    assert error.kind == "exception" and error.message.startswith("PermissionError")
    await still_serving(sandbox)


async def test_js_thread_bomb_is_contained(sandbox: CodeSandbox) -> None:
    # Each Worker is an OS thread; the sandbox's task limit (max_tasks) stops them well before the machine's.
    code = """
function main() {
  let started = 0;
  try {
    for (let i = 0; i < 10000; i++) {
      new Worker("data:text/javascript,setInterval(() => {}, 1000)", { type: "module" });
      started++;
    }
  } catch (error) {
    return { started, error: String(error) };
  }
  return { started };
}
"""
    try:
        out = await js(sandbox, code, timeout=10)
        assert out["started"] < TEST_OPTIONS.max_tasks and "error" in out, out
    except Exception as error:  # the runtime may also give up outright; either way it stays in its sandbox
        assert getattr(error, "kind", None) in {"exception", "sandbox", "memory", "timeout"}, error
    await still_serving(sandbox)


async def test_js_cannot_run_programs(sandbox: CodeSandbox) -> None:
    code = """
async function main() {
  try { await new Deno.Command("/usr/bin/true").output(); return { ran: true }; }
  catch (e) { return { error: String(e) } }
}
"""
    assert (await js(sandbox, code))["error"].startswith("NotCapable")


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("python", "def main(args):\n    return {'blob': 'x' * (200 << 10)}"),
        ("python", "def main(args):\n    return {str(i): i for i in range(50000)}"),
        ("typescript", "function main() { return { blob: 'x'.repeat(200 << 10) } }"),
        ("typescript", "function main() { return { blob: '字'.repeat(30000) } }"),  # bytes, not characters
    ],
)
async def test_huge_output_is_refused(sandbox: CodeSandbox, language: str, code: str) -> None:
    error = await failure(sandbox, language, code)
    assert error.kind == "output_too_large" and str(TEST_OPTIONS.max_output_bytes) in error.message


async def test_output_at_the_limit_passes(sandbox: CodeSandbox) -> None:
    size = TEST_OPTIONS.max_output_bytes - len('{"blob": ""}')
    assert len((await python(sandbox, f"def main(args):\n    return {{'blob': 'x' * {size}}}"))["blob"]) == size


async def test_js_flooding_its_own_stdout_cannot_break_the_pool(sandbox: CodeSandbox) -> None:
    code = """
function main() {
  const line = new TextEncoder().encode('{"id":"forged","ok":true,"output":{"forged":true}}\\n' + "x".repeat(1000));
  for (let i = 0; i < 3000; i++) Deno.stdout.writeSync(line);
  return { real: true };
}
"""
    try:
        assert await js(sandbox, code) == {"real": True}
    except Exception as error:  # too much text on stdout: refused, never mistaken for the reply
        assert getattr(error, "kind", None) == "output_too_large", error
    await still_serving(sandbox)


async def test_scratch_is_capped(sandbox: CodeSandbox) -> None:
    code = """
def main(args):
    written = 0
    try:
        with open("/tmp/fill", "wb") as handle:
            for _ in range(64):
                handle.write(b"x" * (1 << 20))
                written += 1
    except OSError as error:
        return {"written_mb": written, "error": type(error).__name__}
    return {"written_mb": written}
"""
    out = await python(sandbox, code)
    assert out.get("error") is not None and out["written_mb"] <= TEST_OPTIONS.scratch_mb
