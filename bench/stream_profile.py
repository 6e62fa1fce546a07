"""In-process synthetic driver for `stream_run`: the knotflow ASGI app called directly, without sockets or HTTP.

A fresh temporary data directory is migrated and seeded with the demo "hello" workflow (as `knotflow serve`
does), the app's lifespan is entered, and C concurrent workers send `POST /v1/workflow/stream_run` ASGI calls
until N requests or T seconds. The bare endpoint (`bench/bare_sse.py`) is driven the same way, side by side,
so the ratio shows what the app costs beyond the ASGI call itself. Reported per request: wall time, CPU of the
event-loop thread and CPU of the whole process (the rest is SQLite's worker threads and the kernel).

With `--profile cprofile` the knotflow phase runs under cProfile (event-loop thread only) and the top entries
by own time and by cumulative time are printed; `--profile-output FILE` keeps the stats for `pstats`/snakeviz.

Run by hand:  .venv/bin/python bench/stream_profile.py [--requests 3000] [--concurrency 16] [--profile cprofile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


@dataclass
class Phase:
    name: str
    requests: int = 0
    wall: float = 0.0
    loop_cpu: float = 0.0
    process_cpu: float = 0.0
    ttfe: list[float] = field(default_factory=list)

    def line(self) -> str:
        n = max(self.requests, 1)
        return (
            f"{self.name:8} {self.requests:6} req  {self.requests / self.wall:8.0f} req/s  "
            f"wall {self.wall / n * 1e6:7.0f} µs/req  loop-thread CPU {self.loop_cpu / n * 1e6:7.0f} µs/req  "
            f"process CPU {self.process_cpu / n * 1e6:7.0f} µs/req  "
            f"TTFE p50 {statistics.median(self.ttfe) * 1e3:7.3f} ms"
        )


def _scope(body: bytes, token: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/workflow/stream_run",
        "raw_path": b"/v1/workflow/stream_run",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def call(app: ASGIApp, scope: dict[str, Any], body: bytes) -> tuple[float, bytes]:
    """One request; returns (seconds to the first complete SSE event, the whole body)."""
    finished = asyncio.Event()
    sent_body = False
    chunks: list[bytes] = []
    started = time.perf_counter()
    first = 0.0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal first, status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not first and b"\n\n" in b"".join(chunks):
                first = time.perf_counter() - started
            if not message.get("more_body", False):
                finished.set()

    await app(dict(scope), receive, send)
    finished.set()
    data = b"".join(chunks)
    if status != 200 or not data.startswith(b"id: 0\nevent: Message\n") or b"event: Done" not in data:
        raise RuntimeError(f"unexpected response ({status}): {data[:300]!r}")
    return first, data


async def drive(name: str, app: ASGIApp, scope: dict[str, Any], body: bytes, requests: int, concurrency: int,
                time_limit: float) -> Phase:
    phase = Phase(name)
    deadline = time.monotonic() + time_limit
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.monotonic() < deadline:
            remaining -= 1
            ttfe, _ = await call(app, scope, body)
            phase.ttfe.append(ttfe)
            phase.requests += 1

    loop_cpu, process_cpu, wall = time.thread_time(), time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.wall = time.perf_counter() - wall
    phase.loop_cpu = time.thread_time() - loop_cpu
    phase.process_cpu = time.process_time() - process_cpu
    return phase


async def seed(database_url: str) -> tuple[str, str]:
    from knotflow.service.catalog import seed_demo
    from knotflow.store.migrate import upgrade
    from knotflow.store.repository import Store

    upgrade(database_url)
    store = await Store.open(database_url)
    try:
        seeded = await seed_demo(store)
    finally:
        await store.close()
    if not seeded:
        raise RuntimeError("the demo was not seeded (the data directory was not empty)")
    return seeded[0].id, seeded[1]


async def main_async(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(BENCH))
    import bare_sse
    import orjson

    from knotflow.api.app import create_app
    from knotflow.config import get_settings

    settings = get_settings()
    workflow_id, token = await seed(settings.resolved_database_url())
    body = orjson.dumps({"workflow_id": workflow_id, "parameters": {"name": "George"}})
    scope = _scope(body, token)
    app = create_app(settings, migrate=False)
    async with app.router.lifespan_context(app):
        for which in (app, bare_sse.app):  # warm up both
            await drive("warm-up", which, scope, body, max(50, args.requests // 10), args.concurrency, 30)
        phases: list[Phase] = []
        for round_ in range(args.rounds):
            profiler = None
            if args.profile == "cprofile" and round_ == args.rounds - 1:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            phases.append(await drive("knotflow", app, scope, body, args.requests, args.concurrency,
                                      args.time_limit))
            if profiler is not None:
                profiler.disable()
                _print_profile(profiler, args)
                phases[-1].name = "knotflow*"  # under the profiler: not comparable
            phases.append(await drive("bare", bare_sse.app, scope, body, args.requests, args.concurrency,
                                      args.time_limit))
    print()
    for phase in phases:
        print(phase.line())
    plain = [p for p in phases if p.name == "knotflow"]
    bare = [p for p in phases if p.name == "bare"]
    if plain:
        rate = statistics.median(p.requests / p.wall for p in plain)
        bare_rate = statistics.median(p.requests / p.wall for p in bare)
        print(f"\nin-process req/s: knotflow {rate:.0f}, bare {bare_rate:.0f}, ratio {rate / bare_rate:.4f} "
              f"(median of {len(plain)} rounds without the profiler)")


def _print_profile(profiler: Any, args: argparse.Namespace) -> None:
    import pstats

    if args.profile_output:
        profiler.dump_stats(args.profile_output)
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime")
    print(f"\ncProfile of the knotflow phase (event-loop thread), top {args.top} by own time:")
    stats.print_stats(args.top)
    stats.sort_stats("cumulative")
    print(f"top {args.top} by cumulative time:")
    stats.print_stats(args.top)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="requests per phase (at most)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per phase (at most)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (knotflow, bare)")
    parser.add_argument("--profile", choices=["none", "cprofile"], default="none",
                        help="cProfile the knotflow phase of the last round")
    parser.add_argument("--profile-output", help="write the cProfile stats to this file")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    if not (0 < args.requests <= 100_000 and 0 < args.concurrency <= 512 and 0 < args.rounds <= 20
            and 0 < args.time_limit <= 600):
        parser.error("keep --requests ≤ 100000, --concurrency ≤ 512, --rounds ≤ 20, --time-limit ≤ 600")
    print(f"knotflow stream_run in process — {time.strftime('%Y-%m-%d %H:%M')}, "
          f"python {platform.python_version()}, {os.cpu_count()} cores, {args.concurrency} concurrent, "
          f"{args.requests} requests per phase")
    with tempfile.TemporaryDirectory(prefix="knotflow-profile-") as data_dir:
        os.environ["KNOTFLOW_DATA_DIR"] = data_dir
        os.environ.setdefault("KNOTFLOW_LOG_LEVEL", "warning")
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main_async(args))


if __name__ == "__main__":
    main()
