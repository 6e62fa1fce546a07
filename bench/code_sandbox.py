"""Code sandbox (knotflow.sandbox): latency of a trivial Python and a trivial JavaScript call, warm vs cold, and
calls/s with N concurrent callers, side by side in one run.

- warm:   a pool with one warm sandbox per language, sequential calls: its template serves one after another, a
          fresh fork each (Python with numpy imported; JavaScript with QuickJS and the TypeScript transpiler loaded).
- cold:   no warm pool (workers = 0): every call starts its own sandbox.
- calls/s: `--concurrency` callers share a pool of `--workers` sandboxes per language, for `--seconds` each.

Rounds alternate the cases so that drift on this noisy machine affects them alike; the figures are over all rounds.

Run by hand:  .venv/bin/python bench/code_sandbox.py [--rounds 3] [--samples 40] [--concurrency 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable

from knotflow.sandbox import CodeRequest, CodeSandbox, SandboxOptions

PYTHON_CODE = "async def main(args: Args) -> Output:\n    return {'n': args.params['n'] + 1}"
JS_CODE = "async function main({ params }: Args): Promise<Output> { return { n: params.n + 1 } }"
PYTHON = CodeRequest("python", PYTHON_CODE, {"n": 1})
JS = CodeRequest("typescript", JS_CODE, {"n": 1})


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await call()
    return (time.perf_counter() - start) * 1000


async def latencies(pool: CodeSandbox, request: CodeRequest, samples: int) -> list[float]:
    return [await timed(lambda: pool.run(request)) for _ in range(samples)]


async def throughput(pool: CodeSandbox, request: CodeRequest, concurrency: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await pool.run(request)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=40, help="warm calls per case and round")
    parser.add_argument("--cold-samples", type=int, default=10, help="cold calls per language and round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="warm sandboxes per language for calls/s")
    parser.add_argument("--seconds", type=float, default=4.0, help="per throughput case and round")
    args = parser.parse_args()

    one = CodeSandbox(SandboxOptions(python_workers=1, js_workers=1))
    cold = CodeSandbox(SandboxOptions(python_workers=0, js_workers=0))
    many = CodeSandbox(SandboxOptions(python_workers=args.workers, js_workers=args.workers))
    start = time.perf_counter()
    await asyncio.gather(one.start(), cold.start(), many.start())
    print(f"3 pools started in {time.perf_counter() - start:.2f} s")
    warm_py: list[float] = []
    warm_js: list[float] = []
    cold_py: list[float] = []
    cold_js: list[float] = []
    rate_py: list[float] = []
    rate_js: list[float] = []
    try:
        for _ in range(3):  # warm-up, not counted
            await one.run(PYTHON)
            await one.run(JS)
        for round_number in range(args.rounds):
            warm_py += await latencies(one, PYTHON, args.samples)
            warm_js += await latencies(one, JS, args.samples)
            cold_py += await latencies(cold, PYTHON, args.cold_samples)
            cold_js += await latencies(cold, JS, args.cold_samples)
            rate_py.append(await throughput(many, PYTHON, args.concurrency, args.seconds))
            rate_js.append(await throughput(many, JS, args.concurrency, args.seconds))
            print(f"round {round_number + 1}/{args.rounds} done")
    finally:
        await asyncio.gather(one.close(), cold.close(), many.close())

    print()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{args.rounds} rounds, euid {os.geteuid()}, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print()
    print("| call | Python p50 | Python p99 | JavaScript p50 | JavaScript p99 |")
    print("|---|---|---|---|---|")
    print(f"| warm (ms) | {percentile(warm_py, .5):.1f} | {percentile(warm_py, .99):.1f} | "
          f"{percentile(warm_js, .5):.1f} | {percentile(warm_js, .99):.1f} |")  # fmt: skip
    print(f"| cold (ms) | {percentile(cold_py, .5):.1f} | {percentile(cold_py, .99):.1f} | "
          f"{percentile(cold_js, .5):.1f} | {percentile(cold_js, .99):.1f} |")  # fmt: skip
    print()
    print(f"| {args.concurrency} concurrent callers, {args.workers} sandboxes per language | Python | JavaScript |")
    print("|---|---|---|")
    print(f"| calls/s, median of rounds (min–max) | {statistics.median(rate_py):.0f} "
          f"({min(rate_py):.0f}–{max(rate_py):.0f}) | {statistics.median(rate_js):.0f} "
          f"({min(rate_js):.0f}–{max(rate_js):.0f}) |")  # fmt: skip
    print()
    print(f"warm/cold p50: Python {percentile(cold_py, .5) / percentile(warm_py, .5):.0f}×, "
          f"JavaScript {percentile(cold_js, .5) / percentile(warm_js, .5):.0f}×")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
