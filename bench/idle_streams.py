"""Open idle streams held on one process: N concurrent `stream_run` streams all waiting on a slow LLM node.

Design target (../shared/design.md): 10 000 open idle streams held on one process, memory per stream reported.

Three processes on 127.0.0.1:
  fake model  this script with `--serve-model PORT`: an OpenAI-compatible `POST /v1/chat/completions`. A request
              whose prompt is "hold" gets the response head, a role chunk and one token ("held "), then nothing
              until `POST /release`; then the rest of the answer ("done"), usage and [DONE]. Any other prompt is
              answered at once. `GET /stats` says how many requests are open (held) now, at peak and in total.
  knotflow    `.venv/bin/knotflow serve` on a fresh temporary data dir (`KNOTFLOW_PING_INTERVAL` set low), with a
              models.yaml of E endpoints (model entries `bench-0` … on the same fake: one connection pool of
              `POOL_LIMIT` each) and one published Start → LLM → End(answer, streaming) workflow per endpoint
  client      this script: N streams on raw asyncio connections (uvloop), spread round-robin over the workflows,
              opened with at most `--open-concurrency` of them between connect and response head at once (the
              listen backlog is 2048); every SSE event line is stamped with `monotonic()` as it is read

For each N (a fresh fake and a fresh knotflow each, so every level starts from the same heap):
  1. warm-up: `--warmup` quick runs; then the baseline: knotflow's RSS / PSS (/proc/PID/status, smaps_rollup),
     its open fds and threads, and `/health` latency with no stream open
  2. open N "hold" streams; wait until every stream has its response head and as many streams have their first
     Message ("held ") as the fake has requests open (a stream beyond the endpoints' pools waits for a pooled
     connection: held, but with no provider request yet)
  3. hold `--hold` seconds (default 3 PING intervals), probing `/health` every 0.25 s; memory is read at the start
     and the end of the hold; per MB and KB per stream = (held − baseline)
  4. PINGs: every stream's largest silence between its head and the end of the hold (the head, each event, the
     end of the hold) must be ≤ 2 × the PING interval
  5. release: every stream must end with Done (and carry "held " and "done" when its provider request was open)
  6. memory again once all streams have ended (what is not given back)

Every loop is bounded in count and time, and only 127.0.0.1 is ever contacted.

Run by hand:  .venv/bin/python bench/idle_streams.py [--streams 1000,5000,10000] [--endpoints 1] [--ping 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream_load import (  # sibling bench scripts (bench/ is not a package)
    HOST,
    ROOT,
    VENV_BIN,
    Server,
    _install_uvloop,
    free_port,
    start_knotflow,
    wait_listening,
)
from token_latency import MODEL_TYPE, _chunk, pct

TARGET_STREAMS = 10_000
HOLD_PROMPT = "hold"
HELD_TOKEN = "held "
LAST_TOKEN = "done"
HEALTH_PROBE_S = 0.25


# --- the fake model (runs in its own process) --------------------------------------------------------------
class FakeModel:
    """Holds every "hold" request open after its first token until released."""

    def __init__(self) -> None:
        self.released = asyncio.Event()
        self.open = 0
        self.peak = 0
        self.total = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/stats":
            await self._json(send, {"open": self.open, "peak": self.peak, "total": self.total})
            return
        if scope["path"] == "/hold":  # the next round
            self.released.clear()
            await self._json(send, {"open": self.open})
            return
        if scope["path"] == "/release":
            self.released.set()
            await self._json(send, {"released": self.open})
            return
        held = json.loads(body)["messages"][-1]["content"] == HOLD_PROMPT
        self.total += 1
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        first = _chunk({"role": "assistant", "content": ""}) + _chunk({"content": HELD_TOKEN})
        await send({"type": "http.response.body", "body": first, "more_body": True})
        if held and not self.released.is_set():
            self.open += 1
            self.peak = max(self.peak, self.open)
            try:
                await self.released.wait()
            finally:
                self.open -= 1
        usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
        tail = (_chunk({"content": LAST_TOKEN}) + _chunk({}, "stop") + b"data: "
                + json.dumps({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
                              "model": "bench", "choices": [], "usage": usage}).encode()
                + b"\n\ndata: [DONE]\n\n")
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    @staticmethod
    async def _json(send: Any, value: dict[str, Any]) -> None:
        data = json.dumps(value).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})


def serve_model(port: int) -> None:
    import uvicorn

    uvicorn.run(FakeModel(), host=HOST, port=port, loop="uvloop", http="httptools", lifespan="on",
                log_level="warning", access_log=False, timeout_keep_alive=900, backlog=4096)


# --- HTTP helpers (raw asyncio) -------------------------------------------------------------------------------
def http_request(method: str, port: int, path: str, body: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> bytes:
    data = json.dumps(body).encode() if body is not None else b""
    head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Content-Type: application/json",
            f"Content-Length: {len(data)}", "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


async def fetch(port: int, method: str, path: str, body: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30) -> bytes:
    """The whole response (head and body) of one request on its own connection."""
    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(http_request(method, port, path, body, headers))
            return await reader.read(-1)
        finally:
            writer.close()
    return await asyncio.wait_for(exchange(), timeout)


def json_body(response: bytes) -> Any:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


async def health_latency(port: int) -> float:
    started = time.monotonic()
    response = await fetch(port, "GET", "/health", timeout=60)
    if not response.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"/health: {response[:200]!r}")
    return (time.monotonic() - started) * 1000


# --- one held stream ------------------------------------------------------------------------------------------
@dataclass
class Stream:
    index: int
    connected: float = 0.0
    head: float = 0.0  # when the response head was read
    status: str = ""
    events: list[tuple[str, float]] = field(default_factory=list)  # (event name, when read)
    text: bytearray = field(default_factory=bytearray)  # the data lines of Message events
    error: str = ""
    ended: float = 0.0

    def first(self, name: str) -> float | None:
        return next((t for n, t in self.events if n == name), None)

    def last_event(self) -> str:
        return self.events[-1][0] if self.events else ""

    def largest_silence(self, until: float) -> float:
        """The longest time without any event between the head and `until`."""
        times = [self.head, *(t for _, t in self.events if t <= until), until]
        return max(b - a for a, b in itertools.pairwise(times))


async def hold_stream(stream: Stream, port: int, request: bytes, opening: asyncio.Semaphore,
                      deadline: float) -> None:
    """Open, POST, read the head (holding a slot of `opening` until then), then record every event until EOF."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with opening:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 60)
            stream.connected = time.monotonic()
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
            stream.head = time.monotonic()
            stream.status = head.split(b"\r\n", 1)[0].decode("latin-1")
            if b" 200 " not in head.split(b"\r\n", 1)[0] or b"text/event-stream" not in head.lower():
                stream.error = f"not an event stream: {head[:200]!r} {await reader.read(300)!r}"
                return
        pending = b""
        event = ""
        while True:
            data = await asyncio.wait_for(reader.read(65536), max(1.0, deadline - time.monotonic()))
            now = time.monotonic()
            if not data:
                break
            lines = (pending + data).split(b"\n")
            pending = lines.pop()
            for line in lines:
                # Chunked framing lines (hex sizes, blank) never start with these field names.
                if line.startswith(b"event: "):
                    event = line[7:].decode()
                    stream.events.append((event, now))
                elif line.startswith(b"data: ") and event == "Message":
                    stream.text += line[6:]
                elif line.startswith(b"data: ") and event == "Error":
                    stream.error = line[6:].decode(errors="replace")[:300]
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        stream.error = stream.error or f"{type(exc).__name__}: {exc}"
    finally:
        stream.ended = time.monotonic()
        if writer is not None:
            writer.close()


# --- the knotflow process -------------------------------------------------------------------------------------
@dataclass
class Footprint:
    rss_kb: int
    pss_kb: int | None
    fds: int
    threads: int

    @staticmethod
    def of(pid: int) -> Footprint:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        pss = None
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
        except OSError:
            pass
        return Footprint(int(status["VmRSS"].split()[0]), pss, len(os.listdir(f"/proc/{pid}/fd")),
                         int(status["Threads"]))


def open_files_limit(pid: int) -> str:
    limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
    return next((" ".join(line.split()) for line in limits if line.startswith("Max open files")), "")


def canvas_for(model_type: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests import canvases as c
    from tests.nodes.test_llm import LLM_ID, llm_node

    return c.canvas(
        [c.start(("input", "string")), llm_node(prompt="{{input}}", model_type=model_type),
         c.end_answer("{{output}}", streaming=True, output=c.ref(LLM_ID, "output"))],
        [c.edge("100001", LLM_ID), c.edge(LLM_ID, "900001")],
    )


def start_servers(workdir: Path, args: argparse.Namespace) -> tuple[Server, Server, list[str]]:
    """The fake model, then knotflow with one published workflow per endpoint (their ids returned)."""
    port = free_port()
    log = workdir / "model.log"
    proc = subprocess.Popen([sys.executable, __file__, "--serve-model", str(port)], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, cwd=ROOT)
    model = Server("fake model", port, proc, log)
    wait_listening(model, 30)
    models_file = workdir / "models.yaml"
    models_file.write_text("models:\n" + "".join(
        f"  - model_type: {MODEL_TYPE + i}\n    base_url: http://{HOST}:{port}/v1\n    model: bench-{i}\n"
        f"    timeout: {args.model_timeout:g}\n" for i in range(args.endpoints)))
    os.environ["KNOTFLOW_MODELS_FILE"] = str(models_file)  # read by the CLI and the server
    os.environ["KNOTFLOW_PING_INTERVAL"] = f"{args.ping:g}"
    os.environ["KNOTFLOW_LOG_LEVEL"] = "warning"
    workflow_files = []
    for i in range(args.endpoints):
        workflow_files.append(workdir / f"answer-{i}.json")
        workflow_files[-1].write_text(json.dumps(canvas_for(MODEL_TYPE + i)))
    try:
        knotflow = start_knotflow(workdir, None, workflow_files[0], args.knotflow_command)
    except BaseException:
        model.stop()
        raise
    assert knotflow.workflow_id is not None
    workflow_ids = [knotflow.workflow_id]
    from stream_load import _cli, _knotflow_env

    env = _knotflow_env(workdir / "knotflow-data")
    workflow_ids += [_cli(env, "workflow", "import", str(f), "--publish") for f in workflow_files[1:]]
    return model, knotflow, workflow_ids


# --- one level ------------------------------------------------------------------------------------------------
@dataclass
class Level:
    streams: int
    round: int
    baseline: Footprint
    held: Footprint
    held_end: Footprint
    drained: Footprint
    health_idle_ms: list[float]
    health_held_ms: list[float]
    slowest_probe_at_s: float  # when the slowest /health probe started, from the start of the hold
    hold_cpu: float  # knotflow's CPU seconds per second during the hold (all threads)
    open_s: float
    provider_open: int
    with_token: int
    silence_ok: int
    largest_silence_s: float
    pinged: int
    done: int
    correct: int
    drain_s: float
    errors: dict[str, int]


async def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.25)


async def run_level(n: int, workdir: Path, args: argparse.Namespace) -> list[Level]:
    """`--rounds` holds of N streams on one fresh knotflow, each measured against the first round's baseline."""
    model, knotflow, workflow_ids = start_servers(workdir, args)
    try:
        await warm_up(knotflow, workflow_ids, args.warmup)
        baseline = Footprint.of(knotflow.proc.pid)
        levels = []
        for index in range(1, args.rounds + 1):
            if index > 1:
                await fetch(model.port, "POST", "/hold")
            levels.append(await measure_level(n, index, baseline, model, knotflow, workflow_ids, args))
        return levels
    finally:
        knotflow.stop()
        model.stop()


async def warm_up(knotflow: Server, workflow_ids: list[str], runs: int) -> None:
    auth = {"Authorization": f"Bearer {knotflow.token}"}
    for i in range(runs):
        body = {"workflow_id": workflow_ids[i % len(workflow_ids)], "parameters": {"input": "quick"}}
        reply = await fetch(knotflow.port, "POST", "/v1/workflow/stream_run", body, auth)
        if b"event: Done" not in reply:
            raise RuntimeError(f"warm-up run failed: {reply[-500:]!r}")
    await asyncio.sleep(2)


async def measure_level(n: int, index: int, baseline: Footprint, model: Server, knotflow: Server,
                        workflow_ids: list[str], args: argparse.Namespace) -> Level:
    pid = knotflow.proc.pid
    auth = {"Authorization": f"Bearer {knotflow.token}"}
    health_idle = [await health_latency(knotflow.port) for _ in range(20)]

    expected_open = min(n, args.endpoints * args.pool_limit)
    deadline = time.monotonic() + args.open_timeout + args.hold + args.drain_timeout + 60
    opening = asyncio.Semaphore(args.open_concurrency)
    streams = [Stream(i) for i in range(n)]
    requests = [http_request("POST", knotflow.port, "/v1/workflow/stream_run",
                             {"workflow_id": workflow_ids[i % len(workflow_ids)],
                              "parameters": {"input": HOLD_PROMPT}}, auth) for i in range(len(workflow_ids))]
    started = time.monotonic()
    tasks = [asyncio.create_task(hold_stream(s, knotflow.port, requests[s.index % len(requests)], opening,
                                             deadline)) for s in streams]

    async def stats() -> dict[str, int]:
        return dict(json_body(await fetch(model.port, "GET", "/stats")))

    async def all_established() -> bool:
        heads = sum(1 for s in streams if s.head or s.error)
        tokens = sum(1 for s in streams if s.first("Message") is not None)
        failed = [s for s in streams if s.error]
        if failed:
            raise RuntimeError(f"{len(failed)} streams failed while opening; the first: {failed[0].error}")
        print(f"  {time.monotonic() - started:6.1f} s: {heads} heads, {tokens} first Messages, "
              f"provider open {(await stats())['open']}", flush=True)
        return heads == n and tokens >= expected_open

    try:
        await wait_for(all_established, args.open_timeout, f"{n} streams established")
    except (TimeoutError, RuntimeError) as exc:
        alive = knotflow.proc.poll() is None
        print(f"  NOT ESTABLISHED: {exc}; knotflow alive: {alive}; {Footprint.of(pid) if alive else ''} "
              f"{open_files_limit(pid) if alive else ''}; provider {await stats()}\n{knotflow.log_tail(15)}")
        raise
    open_s = time.monotonic() - started
    provider_open = (await stats())["open"]
    with_token = sum(1 for s in streams if s.first("Message") is not None)
    held = Footprint.of(pid)
    hold_started = time.monotonic()
    cpu_before = knotflow.cpu_seconds()
    health_held: list[float] = []
    probe_times: list[float] = []
    while time.monotonic() - hold_started < args.hold:
        probe_times.append(time.monotonic() - hold_started)
        health_held.append(await health_latency(knotflow.port))
        await asyncio.sleep(HEALTH_PROBE_S)
    held_end = Footprint.of(pid)
    hold_end = time.monotonic()
    hold_cpu = (knotflow.cpu_seconds() - cpu_before) / (hold_end - hold_started)
    slowest_at = probe_times[health_held.index(max(health_held))]
    print(f"  slowest /health probe {max(health_held):.1f} ms at monotonic {hold_started + slowest_at:.1f}")
    silences = [s.largest_silence(hold_end) for s in streams]
    pinged = sum(1 for s in streams if any(name == "PING" and t <= hold_end for name, t in s.events))

    release_at = time.monotonic()
    await fetch(model.port, "POST", "/release")
    await asyncio.wait(tasks, timeout=args.drain_timeout)
    drain_s = time.monotonic() - release_at
    for task in tasks:
        task.cancel()
    await asyncio.sleep(2)
    drained = Footprint.of(pid)

    errors: dict[str, int] = {}
    done = correct = 0
    for s in streams:
        if s.last_event() == "Done":
            done += 1
            text = bytes(s.text)
            correct += HELD_TOKEN.strip().encode() in text and LAST_TOKEN.encode() in text
        else:
            key = (s.error or f"ended after {s.last_event() or 'no event'}")[:160]
            errors[key] = errors.get(key, 0) + 1
    return Level(n, index, baseline, held, held_end, drained, health_idle, health_held, slowest_at, hold_cpu, open_s,
                 provider_open, with_token, sum(1 for v in silences if v <= 2 * args.ping), max(silences), pinged,
                 done, correct, drain_s, errors)


# --- report ---------------------------------------------------------------------------------------------------
def mb(kb: float) -> str:
    return f"{kb / 1024:,.1f}"


def report(levels: list[Level], args: argparse.Namespace) -> None:
    print(f"\n{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"PING interval {args.ping:g} s, hold {args.hold:g} s, {args.endpoints} endpoint(s) × pool "
          f"{args.pool_limit}, ulimit -n {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")
    print(f"{'N/round':>8} {'open s':>7} {'provider open':>13} {'base RSS MB':>11} {'held RSS MB':>11} {'+MB':>7} "
          f"{'KB/stream':>9} {'PSS KB/str':>10} {'end-hold +MB':>12} {'drained +MB':>11} {'fds':>6}")
    for lv in levels:
        grown = max(lv.held.rss_kb, lv.held_end.rss_kb) - lv.baseline.rss_kb
        pss = (f"{(max(lv.held.pss_kb, lv.held_end.pss_kb or 0) - lv.baseline.pss_kb) / lv.streams:10.1f}"
               if lv.held.pss_kb and lv.baseline.pss_kb else f"{'-':>10}")
        print(f"{f'{lv.streams}/{lv.round}':>8} {lv.open_s:7.1f} {lv.provider_open:>13} {mb(lv.baseline.rss_kb):>11} "
              f"{mb(max(lv.held.rss_kb, lv.held_end.rss_kb)):>11} {mb(grown):>7} {grown / lv.streams:9.1f} {pss} "
              f"{mb(lv.held_end.rss_kb - lv.baseline.rss_kb):>12} {mb(lv.drained.rss_kb - lv.baseline.rss_kb):>11} "
              f"{lv.held.fds:>6}")
    print(f"\n{'N/round':>8} {'/health idle p50':>16} {'held p50':>9} {'held p99':>9} {'held max ms':>11} "
          f"{'first Message':>13} {'PINGed':>7} {'silence ≤ 2×':>12} {'largest s':>9} {'Done':>6} "
          f"{'correct':>7} {'drain s':>7} {'max at s':>8} {'hold CPU':>8}")
    for lv in levels:
        print(f"{f'{lv.streams}/{lv.round}':>8} {statistics.median(lv.health_idle_ms):16.2f} "
              f"{pct(lv.health_held_ms, 50):9.2f} {pct(lv.health_held_ms, 99):9.2f} {max(lv.health_held_ms):11.2f} "
              f"{lv.with_token:>13} {lv.pinged:>7} {lv.silence_ok:>12} {lv.largest_silence_s:9.2f} {lv.done:>6} "
              f"{lv.correct:>7} {lv.drain_s:7.1f} {lv.slowest_probe_at_s:8.1f} {lv.hold_cpu:8.0%}")
        for error, count in lv.errors.items():
            print(f"        {count} × {error}")
    for lv in levels:
        ok = lv.done == lv.correct == lv.silence_ok == lv.streams
        print(f"N={lv.streams} round {lv.round}: {'all held, PINGed on time and completed' if ok else 'FAILED'}; "
              f"{lv.provider_open} provider requests open while held")
    top = max((lv for lv in levels if lv.done == lv.correct == lv.silence_ok == lv.streams),
              key=lambda lv: lv.streams, default=None)
    if top is not None and top.streams >= TARGET_STREAMS:
        verdict = "met"
    elif max(lv.streams for lv in levels) < TARGET_STREAMS:
        verdict = "not measured (no level of that size)"
    else:
        verdict = "MISSED"
    print(f"target: {TARGET_STREAMS} open idle streams on one process: {verdict} "
          f"(largest level held and completed: {top.streams if top else 0})")


async def main_async(args: argparse.Namespace, workdir: Path) -> None:
    levels = []
    for n in args.streams:
        print(f"N = {n}", flush=True)
        level_dir = workdir / f"n{n}"
        level_dir.mkdir()
        try:
            levels.extend(await run_level(n, level_dir, args))
        except (TimeoutError, RuntimeError) as exc:
            print(f"  level {n} failed: {exc}")
            if args.keep_going:
                continue
            break
    if levels:
        report(levels, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=lambda v: [int(x) for x in v.split(",")], default=[1000, 5000, 10000],
                        help="comma-separated levels N")
    parser.add_argument("--endpoints", type=int, default=1, help="model entries (one connection pool each)")
    parser.add_argument("--pool-limit", type=int, default=None,
                        help="connections per endpoint (default: knotflow.models.client.POOL_LIMIT)")
    parser.add_argument("--ping", type=float, default=5.0, help="KNOTFLOW_PING_INTERVAL, seconds")
    parser.add_argument("--hold", type=float, default=None, help="seconds held after all are open (3 × --ping)")
    parser.add_argument("--open-concurrency", type=int, default=256, help="streams between connect and head")
    parser.add_argument("--open-timeout", type=float, default=300.0)
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--model-timeout", type=float, default=900.0, help="models.yaml timeout (per read)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1, help="holds of N streams on the same knotflow process")
    parser.add_argument("--keep-going", action="store_true", help="go on to the next level after a failure")
    parser.add_argument("--knotflow-command", default=str(VENV_BIN / "knotflow"))
    parser.add_argument("--serve-model", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_model:
        serve_model(args.serve_model)
        return
    if args.pool_limit is None:
        from knotflow.models.client import POOL_LIMIT

        args.pool_limit = POOL_LIMIT
    args.hold = 3 * args.ping if args.hold is None else args.hold
    _install_uvloop()
    with tempfile.TemporaryDirectory(prefix="knotflow-idle-streams-") as tmp:
        asyncio.run(main_async(args, Path(tmp)))


if __name__ == "__main__":
    main()
