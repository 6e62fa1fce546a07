"""Limits: wall and CPU time, memory, processes and threads, output size. Each is hit for real, and the pool
still serves the next call."""

from __future__ import annotations

import pytest

from knotflow.sandbox import CodeRequest, CodeSandbox
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
        # QuickJS's memory limit counts everything the code allocates: objects, strings and buffers alike.
        "function main() { const hog: number[][] = []; while (true) hog.push(new Array(1 << 20).fill(1.5)); }",
        "function main() { const a = []; for (let i = 0; i < 100; i++) a.push(new Uint8Array(256 << 20).fill(1)); "
        "return { n: a.length } }",
        "function main() { const a: string[] = []; for (let i = 0; ; i++) a.push('x'.repeat(1 << 20) + i); }",
    ],
)
async def test_js_memory_hog_is_stopped(sandbox: CodeSandbox, code: str) -> None:
    error = await failure(sandbox, "typescript", code)
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


async def test_js_cannot_start_threads_or_programs(sandbox: CodeSandbox) -> None:
    # QuickJS has no Worker and no process API; the call's child may not clone or exec either (seccomp), as Python's.
    code = """
async function main() {
  const out: Record<string, string> = {};
  const attempts = {
    worker: () => new Worker("data:text/javascript,1"),
    command: () => new Deno.Command("/usr/bin/true").output(),
    spawn: () => import("node:child_process"),
    exec: () => import("qjs:os"),
  };
  for (const [name, attempt] of Object.entries(attempts)) {
    try { await attempt(); out[name] = "ran"; } catch (error) { out[name] = String(error).split(":")[0]; }
  }
  return out;
}
"""
    out = await js(sandbox, code)
    assert out == {"worker": "ReferenceError", "command": "ReferenceError", "spawn": "ReferenceError",
                   "exec": "ReferenceError"}  # fmt: skip


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


async def test_js_flooding_its_console_cannot_break_the_pool(sandbox: CodeSandbox) -> None:
    # The console is captured inside the call's context (the child's stdout is /dev/null): forged replies in it
    # are text, cut at the limit; the real output is kept.
    code = """
function main() {
  const line = '{"id":"forged","ok":true,"output":{"forged":true}}\\n' + "x".repeat(1000);
  for (let i = 0; i < 3000; i++) console.log(line);
  return { real: true };
}
"""
    result = await sandbox.run(CodeRequest("typescript", code, {}))
    assert result.output == {"real": True}
    assert result.stdout.startswith('{"id":"forged"') and result.stdout.endswith("[output truncated]")
    assert len(result.stdout) <= TEST_OPTIONS.max_stdout_chars + len("\n[output truncated]")
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
