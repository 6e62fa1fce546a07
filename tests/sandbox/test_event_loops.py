"""The pool under uvloop, the event loop uvicorn runs the server on: its child processes' pipes are socket pairs,
which the kernel's splice() refuses on both sides (a Python call's request must still pass, whatever its size)."""

from __future__ import annotations

import uvloop

from knotflow.sandbox import CodeFailed, CodeRequest, CodeSandbox, SandboxOptions

DOUBLE = "def main(args):\n    return {'n': args.params['n'] * 2, 'echo': args.params['pad']}"


def test_calls_of_every_size_pass_on_uvloop() -> None:
    async def calls() -> list[object]:
        seen: list[object] = []
        async with CodeSandbox(SandboxOptions(python_workers=1, js_workers=1)) as pool:
            for size in (0, 1, 65_535, 65_536, 300_000):
                result = await pool.run(CodeRequest("python", DOUBLE, {"n": size, "pad": "x" * size}))
                seen.append((result.output["n"], len(result.output["echo"])))
            seen.append((await pool.run(CodeRequest("typescript", "function main() { return { ok: true } }", {}))
                         ).output)
            try:
                await pool.run(CodeRequest("python", "def main(args):\n    return fn()", {}))
            except CodeFailed as error:
                seen.append(error.message)
        return seen

    assert uvloop.run(calls()) == [(0, 0), (2, 1), (131_070, 65_535), (131_072, 65_536), (600_000, 300_000),
                                   {"ok": True}, "NameError: name 'fn' is not defined"]
