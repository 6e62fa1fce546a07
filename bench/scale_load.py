"""knotflow beyond one process: `stream_run` runs/s of the demo "hello" with 1 and 2 server processes on PostgreSQL +
Redis, beside one process on SQLite without Redis and beside the bare endpoint (`bare_sse.py`) with the same
number of processes — all in one run, alternating, so drift shows; then the time from a cancel request to the
run's `Fail`, in one process without Redis and across two processes with it.

Servers (each on 127.0.0.1, uvloop + httptools):
  sqlite×1     knotflow serve, SQLite, no Redis
  pg+redis×1   knotflow serve, PostgreSQL (--database-url, wiped) + Redis
  pg+redis×2   knotflow serve --workers 2, the same PostgreSQL + Redis
  bare×1/×2    bench/bare_sse.py with 1 / 2 uvicorn worker processes
Load: wrk (as stream_load.py), C keep-alive connections for D seconds per turn.

Cancel: a workflow whose LLM streams slowly from a fake model server (tests/fakes); a client streams it, and
after its first event another connection (on a new connection, so with 2 processes it often lands on the other
process) posts `/v1/workflow/cancel`; measured: until the cancel's answer (the run is recorded Fail then) and
until the stream's `Error` event.

Redis: --redis-url, else a throw-away redis-server on a free port. Every loop is bounded; only 127.0.0.1 is
contacted.

Run by hand:  .venv/bin/python bench/scale_load.py --database-url postgresql+asyncpg://knotflow@127.0.0.1:55432/bench
              [--connections 16] [--duration 8] [--rounds 2] [--cancels 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import stream_load as sl  # noqa: E402  (this bench reuses stream_load's servers, wrk driver and probes)

VENV_BIN = Path(sys.executable).parent


def start_bare(workdir: Path, workers: int) -> sl.Server:
    port = sl.free_port()
    log = workdir / f"bare{workers}.log"
    command = [sys.executable, str(BENCH / "bare_sse.py"), "--port", str(port), "--workers", str(workers)]
    server = sl.Server(f"bare×{workers}", port, subprocess.Popen(command, stdout=log.open("wb"),
                                                                  stderr=subprocess.STDOUT, cwd=ROOT), log)
    sl.wait_listening(server, 30)
    return server


def start_knotflow(name: str, workdir: Path, env: dict[str, str], workers: int, models: Path | None = None,
                   canvas: dict[str, object] | None = None) -> sl.Server:
    """A knotflow server with its own token and workflow (the demo, or `canvas`)."""
    port = sl.free_port()
    env = {**env, "PYTHONUNBUFFERED": "1"}
    if models is not None:
        env["KNOTFLOW_MODELS_FILE"] = str(models)
    canvas_file = workdir / f"{name}.json"
    canvas_file.write_text(json.dumps(canvas or sl._hello_canvas()))
    token = sl._cli(env, "token", "create", "--name", "bench")
    workflow_id = sl._cli(env, "workflow", "import", str(canvas_file), "--publish")
    log = workdir / f"{name}.log"
    command = [str(VENV_BIN / "knotflow"), "serve", "--port", str(port), "--workers", str(workers)]
    server = sl.Server(name, port, subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                                    cwd=ROOT, env=env), log)
    sl.wait_listening(server, 60)
    deadline = time.monotonic() + 30
    while log.read_text(errors="replace").count("Application startup complete") < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: not every process started:\n{server.log_tail()}")
        time.sleep(0.1)
    server.token, server.workflow_id = token, workflow_id
    return server


@contextlib.contextmanager
def redis_server(url: str | None, workdir: Path) -> Iterator[str]:
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("no --redis-url and no redis-server (apt-get install redis-server)")
    port = sl.free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir",
                                str(workdir)], stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


async def load_turn(args: argparse.Namespace, server: sl.Server, workdir: Path) -> tuple[float, float]:
    """runs/s and latency p50 (ms) of one wrk turn."""
    body = json.dumps({"workflow_id": server.workflow_id, "parameters": {"name": "bench"}})
    await sl.probe(server.port, sl.build_request(server.port, body.encode(), server.token), 3, 30)
    script = sl._write_script(workdir, server, body)
    await sl.run_load(args, server, body, args.warmup, script)
    result = await sl.run_load(args, server, body, args.duration, script)
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    if errors:
        print(f"  {server.name}: {errors} errors", flush=True)
    return result["requests"] / (result["duration_us"] / 1e6), result["p50_us"] / 1000


def cancel_times(server: sl.Server, count: int) -> tuple[list[float], list[float]]:
    """(cancel request → its answer, cancel request → the stream's Error) in ms, `count` times."""
    answered, errored = [], []
    headers = {"Authorization": f"Bearer {server.token}"}
    base = f"http://{sl.HOST}:{server.port}"
    body = {"workflow_id": server.workflow_id, "parameters": {"input": "x"}}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as streaming:
        for _ in range(count):
            with streaming.stream("POST", "/v1/workflow/stream_run", json=body) as stream:
                execute_id = stream.headers["X-Knotflow-Execute-Id"]
                chunks = stream.iter_text()
                text = next(chunks)
                start = time.perf_counter()
                answer = httpx.post(f"{base}/v1/workflow/cancel", headers=headers, timeout=30,
                                    json={"workflow_id": server.workflow_id, "execute_id": execute_id}).json()
                answered.append((time.perf_counter() - start) * 1000)
                if answer["code"] != 0 or answer["data"]["execute_status"] != "Fail":
                    raise RuntimeError(f"cancel failed: {answer}")
                for chunk in chunks:
                    text += chunk
                    if "event: Error" in text:
                        errored.append((time.perf_counter() - start) * 1000)
                        break
    return answered, errored


def _slow_llm_canvas() -> dict[str, object]:
    from tests.api.test_crash_recovery import llm_canvas

    return llm_canvas()


def _wipe(database_url: str) -> None:
    from knotflow.store.migrate import downgrade, upgrade

    downgrade(database_url, "base")
    upgrade(database_url)


async def main_async(args: argparse.Namespace, workdir: Path, redis_url: str) -> None:
    from tests.fakes.model_server import FakeModelServer, Reply, write_models_file
    from tests.nodes.test_llm import MODEL_TYPE

    _wipe(args.database_url)
    sqlite_env = {**os.environ, "KNOTFLOW_DATA_DIR": str(workdir / "sqlite")}
    scale_env = {**os.environ, "KNOTFLOW_DATA_DIR": str(workdir / "pg"), "KNOTFLOW_DATABASE_URL": args.database_url,
                 "KNOTFLOW_REDIS_URL": redis_url, "KNOTFLOW_FILE_URL_SECRET": "bench"}
    for env in (sqlite_env, scale_env):
        Path(env["KNOTFLOW_DATA_DIR"]).mkdir()
    servers = [start_knotflow("sqlite×1", workdir, sqlite_env, 1), start_bare(workdir, 1),
               start_knotflow("pg+redis×1", workdir, scale_env, 1), start_knotflow("pg+redis×2", workdir, scale_env, 2),
               start_bare(workdir, 2)]
    rates: dict[str, list[float]] = {s.name: [] for s in servers}
    latencies: dict[str, list[float]] = {s.name: [] for s in servers}
    try:
        for round_ in range(1, args.rounds + 1):
            for server in servers:
                rate, latency = await load_turn(args, server, workdir)
                rates[server.name].append(rate)
                latencies[server.name].append(latency)
                print(f"  round {round_} {server.name:11} {rate:8.0f} runs/s  latency p50 {latency:6.2f} ms",
                      flush=True)
    finally:
        for server in servers:
            server.stop()
    print(f"\n{'server':11} {'runs/s (median)':>16} {'of bare, same processes':>24} {'latency p50':>12}")
    for name in rates:
        bare = f"bare×{name[-1]}"
        ratio = statistics.median(rates[name]) / statistics.median(rates[bare]) if not name.startswith("bare") else 1
        print(f"{name:11} {statistics.median(rates[name]):16.0f} {ratio:24.3f} "
              f"{statistics.median(latencies[name]):10.2f} ms")

    model = FakeModelServer(default=Reply(content=["tok "] * 400, usage=(1, 400), delay=0.01)).start()
    try:
        models = workdir / "models.yaml"
        write_models_file(workdir, {MODEL_TYPE: model})
        slow = [start_knotflow("cancel sqlite×1", workdir, sqlite_env, 1, models, _slow_llm_canvas()),
                start_knotflow("cancel pg+redis×2", workdir, scale_env, 2, models, _slow_llm_canvas())]
        try:
            print(f"\n{'cancel':18} {'→ answer p50':>13} {'p95':>8} {'→ stream Error p50':>19} {'p95':>8}")
            for server in slow:
                answered, errored = cancel_times(server, args.cancels)
                print(f"{server.name:18} {sl._pct(answered, 50):10.1f} ms {sl._pct(answered, 95):5.1f} ms "
                      f"{sl._pct(errored, 50):16.1f} ms {sl._pct(errored, 95):5.1f} ms")
        finally:
            for server in slow:
                server.stop()
    finally:
        model.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("KNOTFLOW_TEST_POSTGRES_URL"),
                        help="a scratch PostgreSQL database (wiped); default $KNOTFLOW_TEST_POSTGRES_URL")
    parser.add_argument("--redis-url", default=None, help="default: a throw-away redis-server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cancels", type=int, default=20)
    args = parser.parse_args()
    args.client_cpus = None
    if not args.database_url:
        parser.error("--database-url (or KNOTFLOW_TEST_POSTGRES_URL) is required")
    if shutil.which("wrk") is None:
        parser.error("this bench drives the load with wrk: apt-get install wrk")
    sl._install_uvloop()
    with tempfile.TemporaryDirectory(prefix="knotflow-scale-bench-") as tmp, redis_server(args.redis_url,
                                                                                           Path(tmp)) as redis_url:
        print(f"knotflow scale bench — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, wrk "
              f"{args.connections} connections, {args.warmup:g}s warm-up + {args.duration:g}s per turn, "
              f"{args.rounds} rounds", flush=True)
        asyncio.run(main_async(args, Path(tmp), redis_url))


if __name__ == "__main__":
    main()
