"""The pool: concurrent calls, one call per sandbox at a time, nothing carried from one call to the next, a
crashed or killed sandbox replaced without harm to other calls, start/close."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from knotflow.sandbox import CodeFailed, CodeRequest, CodeSandbox, SandboxOptions
from tests.sandbox.conftest import failure, js, python

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def single() -> AsyncIterator[CodeSandbox]:
    """One sandbox per language, so consecutive calls surely share it."""
    async with CodeSandbox(SandboxOptions(python_workers=1, js_workers=1, timeout=10)) as pool:
        yield pool


async def test_concurrent_calls(sandbox: CodeSandbox) -> None:
    py = "import asyncio\nasync def main(args):\n    await asyncio.sleep(0.05)\n    return {'n': args.params['n'] * 2}"
    ts = "async function main({ params }) { await new Promise(r => setTimeout(r, 50)); return { n: params.n * 3 } }"
    calls = [python(sandbox, py, {"n": n}) for n in range(12)] + [js(sandbox, ts, {"n": n}) for n in range(12)]
    results = await asyncio.gather(*calls)
    assert results == [{"n": n * 2} for n in range(12)] + [{"n": n * 3} for n in range(12)]


async def test_a_timeout_does_not_disturb_concurrent_calls(sandbox: CodeSandbox) -> None:
    stuck = asyncio.gather(
        failure(sandbox, "python", "def main(args):\n    while True:\n        pass", timeout=2),
        failure(sandbox, "typescript", "function main() { while (true) {} }", timeout=2),
    )
    quick = [python(sandbox, "def main(args):\n    return {'i': args.params['i']}", {"i": i}) for i in range(5)]
    quick += [js(sandbox, "function main({ params }) { return { i: params.i } }", {"i": i}) for i in range(5)]
    results = await asyncio.gather(*quick)
    assert results == [{"i": i} for i in range(5)] * 2
    assert [error.kind for error in await stuck] == ["timeout", "timeout"]


async def test_python_state_does_not_leak_between_calls(single: CodeSandbox) -> None:
    first = """
import builtins, json, os, sys
import numpy
LEAK = "global"
def main(args):
    builtins.leaked = True
    json.dumps = lambda *a, **k: "tampered"
    numpy.leaked = True
    sys.path.insert(0, "/tmp")
    os.environ["LEAKED"] = "1"
    with open("/tmp/leftover.py", "w") as handle:
        handle.write("x = 1")
    os.mkdir("/tmp/locked")
    os.chmod("/tmp/locked", 0)
    return {"template": os.getppid()}
"""
    second = """
import builtins, json, os, sys
import numpy
def main(args):
    return {
        "template": os.getppid(), "builtins": hasattr(builtins, "leaked"), "json": json.dumps({"a": 1}),
        "numpy": hasattr(numpy, "leaked"), "path": "/tmp" in sys.path, "env": "LEAKED" in os.environ,
        "global": "LEAK" in globals(), "scratch": os.listdir("/tmp"),
    }
"""
    before = await python(single, first)
    after = await python(single, second)
    assert after == {
        "template": before["template"],  # the same (reused) template served both calls...
        "builtins": False, "json": '{"a": 1}', "numpy": False, "path": False, "env": False,  # ...from a fresh fork
        "global": False, "scratch": [],  # and the scratch directory was emptied
    }  # fmt: skip


async def test_no_trace_of_an_earlier_call_in_memory(single: CodeSandbox) -> None:
    """Each Python call runs in a fork of the template. The template must hold no copy of an earlier call's code,
    parameters or output: the next fork scans all of its own memory and finds none."""
    secret, control, planted = (secrets.token_hex(16) for _ in range(3))
    first = "def main(args):\n    s = args.params['s']\n    print(s)\n    return {'echo': s * 3, 'code': 'ZZ' + s}"
    assert (await python(single, first, {"s": secret}))["echo"] == secret * 3
    scan = """
import ctypes
def main(args):
    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: its own /proc/self/mem becomes readable to it
    needles = {name: value[::-1].encode() for name, value in args.params.items()}
    kept = needles["planted"].decode() + ""  # one more copy of this one: the scan must see it
    counts = dict.fromkeys(needles, 0)
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as memory:
        for line in maps:
            span, permissions = line.split()[:2]
            start, end = (int(bound, 16) for bound in span.split("-"))
            if not permissions.startswith("r") or end - start > 1 << 30:
                continue
            for offset in range(start, end, 4 << 20):
                try:
                    memory.seek(offset)
                    data = memory.read(min(4 << 20, end - offset))
                except (OSError, ValueError, OverflowError):
                    break
                for name, needle in needles.items():
                    counts[name] += data.count(needle)
    return {"counts": counts, "kept": len(kept)}
"""
    params = {"secret": secret[::-1], "control": control[::-1], "planted": planted[::-1]}
    counts = (await python(single, scan, params))["counts"]
    assert counts["planted"] > counts["control"]  # the scan finds what is there...
    assert counts["secret"] == counts["control"]  # ...and of the earlier call, nothing beyond the needle itself


async def test_calls_draw_different_random_numbers(single: CodeSandbox) -> None:
    # Every call is a fork of one template: the random generators must not be copies of one state.
    code = """
import os, random, uuid
import numpy as np
def main(args):
    return {"py": random.random(), "np": float(np.random.rand()), "rng": float(np.random.default_rng().random()),
            "uuid": str(uuid.uuid4()), "urandom": os.urandom(8).hex()}
"""
    draws = [await python(single, code) for _ in range(3)]
    for key in draws[0]:
        assert len({draw[key] for draw in draws}) == 3, key


async def test_js_state_does_not_leak_between_calls(single: CodeSandbox) -> None:
    first = """
(globalThis as any).leaked = true;
function main() {
  (Object.prototype as any).polluted = true;
  JSON.stringify = () => "tampered";
  Array.prototype.push = () => 0;
  return { set: true };
}
"""
    second = """
function main() {
  const probe: any = {};
  return { global: "leaked" in globalThis, proto: probe.polluted === true, json: JSON.stringify({ a: 1 }),
           push: [].push(1) };
}
"""
    assert await js(single, first) == {"set": True}
    assert await js(single, second) == {"global": False, "proto": False, "json": '{"a":1}', "push": 1}


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        # The code kills its own template (its parent): this call fails, the pool starts another template.
        ("import os, signal\ndef main(args):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return {}", "sandbox",
         "ended"),
        ("import ctypes\ndef main(args):\n    ctypes.string_at(0)\n    return {}", "exception", "SIGSEGV"),
        ("import os\ndef main(args):\n    os._exit(0)", "exception", "without returning"),
        ("import os, signal\ndef main(args):\n    os.kill(-1, signal.SIGKILL)\n    return {}", "sandbox", "ended"),
    ],
)
async def test_python_crash_affects_only_its_call(single: CodeSandbox, code: str, kind: str, words: str) -> None:
    error = await failure(single, "python", code)
    assert error.kind == kind and words in error.message, error
    assert await python(single, "def main(args):\n    return {'ok': 1}") == {"ok": 1}


async def test_js_crash_affects_only_its_call(single: CodeSandbox) -> None:
    # What QuickJS cannot catch ends the call, never the template: a stack overflow past every frame, an
    # uncaught error in a timer, the memory limit.
    error = await failure(single, "typescript", "function main() { function f(n) { return 1 + f(n) } return f(0) }")
    assert error.kind == "exception" and error.message == "RangeError: Maximum call stack size exceeded"
    late = "async function main() { setTimeout(() => { throw new Error('late') }, 1); await new Promise(() => {}) }"
    error = await failure(single, "typescript", late)
    assert (error.kind, error.message) == ("exception", "Error: late")
    hog = "function main() { const a = []; while (true) a.push('x'.repeat(1 << 20)) }"
    error = await failure(single, "typescript", hog)
    assert error.kind == "memory"
    assert await js(single, "function main() { return { ok: 1 } }") == {"ok": 1}


async def test_a_cancelled_call_leaves_a_working_pool(single: CodeSandbox) -> None:
    for language, code in [("python", "def main(args):\n    while True:\n        pass"),
                           ("typescript", "function main() { while (true) {} }")]:  # fmt: skip
        task = asyncio.create_task(single.run(CodeRequest(language, code, {})))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await python(single, "def main(args):\n    return {'ok': 1}") == {"ok": 1}
    assert await js(single, "function main() { return { ok: 1 } }") == {"ok": 1}


async def test_cold_pool_and_lifecycle() -> None:
    pool = CodeSandbox(SandboxOptions(python_workers=0, js_workers=0))
    with pytest.raises(CodeFailed, match="not started"):
        await pool.run(CodeRequest("python", "def main(args):\n    return {}", {}))
    await pool.start()
    # No warm sandboxes: every call starts its own, and still works.
    assert await python(pool, "def main(args):\n    return {'cold': True}") == {"cold": True}
    assert await js(pool, "function main() { return { cold: true } }") == {"cold": True}
    running = asyncio.create_task(python(pool, "def main(args):\n    while True:\n        pass"))
    await asyncio.sleep(0.5)
    await pool.close()
    with pytest.raises(CodeFailed) as closed:
        await running
    assert closed.value.kind == "sandbox"
    with pytest.raises(CodeFailed, match="closed"):
        await pool.run(CodeRequest("python", "def main(args):\n    return {}", {}))


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (SandboxOptions(bwrap="/nonexistent/bwrap"), "bubblewrap is not installed"),
        (SandboxOptions(python_workers=0, js_workers=1, python="/nonexistent/python"), "does not run"),
        (SandboxOptions(python_packages=("no_such_package_here",)), "not installed"),
    ],
)
async def test_a_missing_tool_fails_start_loudly(options: SandboxOptions, words: str) -> None:
    pool = CodeSandbox(options)
    with pytest.raises(CodeFailed, match=words) as failed:
        await pool.start()
    assert failed.value.kind == "sandbox"
    await pool.close()
