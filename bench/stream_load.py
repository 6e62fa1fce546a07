"""`POST /v1/workflow/stream_run` of the demo "hello" workflow under load, beside a bare ASGI endpoint.

Two servers, each one uvicorn process on 127.0.0.1 (uvloop + httptools):
  A  knotflow  `.venv/bin/knotflow serve --port P` with a fresh temporary KNOTFLOW_DATA_DIR (it seeds the
               demo workflow and a token on first start; both are parsed from its stdout, or created with
               `knotflow token create` / `knotflow workflow import --publish` if it printed none)
  B  bare      `bench/bare_sse.py`: a plain `async def app(scope, receive, send)` returning a fixed 2-event
               SSE stream in the same framing
They are loaded one at a time, alternating A, B, A, B, ... so drift on this noisy 2-core machine shows.

Each turn: a warm-up, then `wrk` (POST via a Lua script; a Python load generator in a separate process if
wrk is missing) with C keep-alive connections for D seconds, while this process probes time-to-first-event
on one extra connection at a low fixed rate ("under load"). After each turn, an idle probe sends sequential
requests on one connection and measures time-to-first-event ("idle"): the time from writing the request to
having read the first complete SSE event (`...\\n\\n`). Server CPU per request comes from /proc/PID/stat.

Every loop is bounded in count and time, and only 127.0.0.1 is ever contacted.

Run by hand:  .venv/bin/python bench/stream_load.py [--connections 16] [--duration 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PATH = "/v1/workflow/stream_run"
ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
TARGET_RATIO = 0.5
TARGET_TTFE_EXTRA_MS = 2.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[%(body)s]]
wrk.headers["Content-Type"] = "application/json"
%(auth)s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"bytes":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"mean_us":%%f}\\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


# --- a minimal HTTP/1.1 client that times the first SSE event ---------------------------------------------
class BadResponse(Exception):
    pass


@dataclass
class Reply:
    ttfe: float  # seconds from writing the request to the first complete SSE event
    total: float  # seconds to the end of the response
    size: int  # bytes read, headers included
    body: bytes


class Client:
    """One keep-alive connection; `request()` sends the POST and reads the (chunked) response."""

    def __init__(self, port: int, request: bytes) -> None:
        self.port = port
        self.request_bytes = request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        return self.reader, self.writer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self) -> Reply:
        reader, writer = await self._connect()
        started = time.perf_counter()
        writer.write(self.request_bytes)
        head = await reader.readuntil(b"\r\n\r\n")
        size = len(head)
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        if len(status) < 2 or status[1] != "200":
            raise BadResponse(f"HTTP status {lines[0]!r}")
        body = b""
        ttfe = 0.0
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = await reader.readuntil(b"\r\n")
                length = int(size_line.split(b";")[0], 16)
                size += len(size_line)
                if length == 0:
                    size += len(await reader.readuntil(b"\r\n"))
                    break
                chunk = await reader.readexactly(length + 2)
                size += len(chunk)
                body += chunk[:-2]
                if not ttfe and b"\n\n" in body:
                    ttfe = time.perf_counter() - started
        else:
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length)
            size += length
        total = time.perf_counter() - started
        if headers.get("connection", "").lower() == "close":
            await self.close()
        if not headers.get("content-type", "").startswith("text/event-stream"):
            raise BadResponse(f"not an SSE stream ({headers.get('content-type')}): {body[:300]!r}")
        if not body.startswith(b"id: 0\nevent: Message\n") or b"event: Done" not in body:
            raise BadResponse(f"unexpected stream: {body[:300]!r}")
        return Reply(ttfe or total, total, size, body)


def build_request(port: int, body: bytes, token: str | None) -> bytes:
    head = [
        f"POST {PATH} HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Accept: text/event-stream",
    ]
    if token:
        head.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def probe(
    port: int,
    request: bytes,
    count: int,
    time_limit: float,
    interval: float = 0.0,
    stop: asyncio.Event | None = None,
) -> list[Reply]:
    """Sequential requests on one connection: at most `count`, for at most `time_limit` seconds."""
    client = Client(port, request)
    replies: list[Reply] = []
    deadline = time.monotonic() + time_limit
    try:
        while len(replies) < count and time.monotonic() < deadline and not (stop and stop.is_set()):
            replies.append(await asyncio.wait_for(client.request(), timeout=30))
            if interval:
                await asyncio.sleep(interval)
    finally:
        await client.close()
    return replies


# --- the Python load generator (used only when wrk is missing) ----------------------------------------------
async def _loadgen(port: int, request: bytes, connections: int, duration: float) -> dict[str, Any]:
    stop_at = time.monotonic() + duration
    counts = {"requests": 0, "bytes": 0, "errors": 0}
    latencies: list[float] = []

    async def worker() -> None:
        client = Client(port, request)
        try:
            while time.monotonic() < stop_at:
                try:
                    reply = await asyncio.wait_for(client.request(), timeout=30)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, BadResponse):
                    counts["errors"] += 1
                    await client.close()
                    continue
                counts["requests"] += 1
                counts["bytes"] += reply.size
                latencies.append(reply.total)
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> int:
        return (
            int(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e6) if latencies else 0
        )

    return {
        "requests": counts["requests"],
        "bytes": counts["bytes"],
        "duration_us": int(elapsed * 1e6),
        "connect": 0,
        "read": counts["errors"],
        "write": 0,
        "status": 0,
        "timeout": 0,
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "mean_us": statistics.fmean(latencies) * 1e6 if latencies else 0.0,
    }


def loadgen_main(args: argparse.Namespace) -> None:
    request = build_request(args.port, args.body.encode(), args.token or None)
    _install_uvloop()
    result = asyncio.run(_loadgen(args.port, request, args.connections, args.duration))
    print("WRKJSON " + json.dumps(result), flush=True)


# --- servers ------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    token: str | None = None
    workflow_id: str | None = None

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, all threads

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def wait_listening(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            with socket.create_connection((HOST, server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(
        f"{server.name} did not listen on {server.port} within {timeout:.0f}s:\n{server.log_tail()}"
    )


def start_bare(workdir: Path, cpus: str | None, starlette: bool = False) -> Server:
    port = free_port()
    name = "starlette" if starlette else "bare"
    log = workdir / f"{name}.log"
    command = [sys.executable, str(BENCH / "bare_sse.py"), "--port", str(port)]
    if starlette:
        command.append("--starlette")
    proc = subprocess.Popen(_pinned(command, cpus), stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
    server = Server(name, port, proc, log)
    wait_listening(server, 30)
    return server


def _knotflow_env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "KNOTFLOW_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}


def _cli(env: dict[str, str], *args: str) -> str:
    """Run `knotflow ARGS` and return its last stdout line."""
    done = subprocess.run(
        [str(VENV_BIN / "knotflow"), *args], env=env, cwd=ROOT, capture_output=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"knotflow {' '.join(args)} failed ({done.returncode}):\n"
            f"{done.stdout.decode(errors='replace')}\n{done.stderr.decode(errors='replace')}"
        )
    lines = [line.strip() for line in done.stdout.decode().splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"knotflow {' '.join(args)} printed nothing")
    return lines[-1]


def _hello_canvas() -> dict[str, Any]:
    try:
        from knotflow.service.catalog import demo_canvas

        canvas: dict[str, Any] = demo_canvas()
        return canvas
    except ImportError:
        sys.path.insert(0, str(ROOT))
        from tests.canvases import greeting

        return greeting()


def start_knotflow(workdir: Path, cpus: str | None, workflow_file: Path | None, command_prefix: str) -> Server:
    port = free_port()
    data_dir = workdir / "knotflow-data"
    data_dir.mkdir()
    env = _knotflow_env(data_dir)
    token = workflow_id = None
    if workflow_file is not None:  # our own workflow: create token and workflow before the server starts
        token = _cli(env, "token", "create", "--name", "bench")
        workflow_id = _cli(env, "workflow", "import", str(workflow_file), "--publish")
    log = workdir / "knotflow.log"
    command = [*shlex.split(command_prefix), "serve", "--port", str(port)]
    proc = subprocess.Popen(
        _pinned(command, cpus), stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT, env=env
    )
    server = Server("knotflow", port, proc, log)
    wait_listening(server, 60)
    if token is None:
        text = log.read_text(errors="replace")
        found_id = re.search(r"workflow_id:\s+(\S+)", text)
        found_token = re.search(r"token:\s+(\S+)", text)
        if found_id and found_token:
            workflow_id, token = found_id.group(1), found_token.group(1)
        else:  # no demo printed: make our own with the CLI (it works while the server runs)
            canvas_file = workdir / "hello.json"
            canvas_file.write_text(json.dumps(_hello_canvas()))
            token = _cli(env, "token", "create", "--name", "bench")
            workflow_id = _cli(env, "workflow", "import", str(canvas_file), "--publish")
    server.token, server.workflow_id = token, workflow_id
    return server


def _pinned(command: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *command] if cpus else command


# --- one measured turn --------------------------------------------------------------------------------------
@dataclass
class Turn:
    server: str
    round: int
    rps: float
    requests: int
    errors: int
    bytes_per_request: float
    latency_p50_ms: float
    latency_p99_ms: float
    cpu_us_per_request: float
    ttfe_idle_ms: list[float] = field(default_factory=list)
    ttfe_load_ms: list[float] = field(default_factory=list)


def _parse_wrk(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("WRKJSON "):
            result: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
            return result
    raise RuntimeError(f"no summary in load generator output:\n{output[-2000:]}")


async def run_load(
    args: argparse.Namespace, server: Server, body: str, duration: float, script: Path | None
) -> dict[str, Any]:
    if script is not None:
        command = [
            "wrk",
            "-t",
            str(args.threads),
            "-c",
            str(args.connections),
            "-d",
            f"{duration:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://{HOST}:{server.port}{PATH}",
        ]
    else:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--loadgen",
            "--port",
            str(server.port),
            "--connections",
            str(args.connections),
            "--duration",
            str(duration),
            "--body",
            body,
            "--token",
            server.token or "",
        ]
    proc = await asyncio.create_subprocess_exec(
        *_pinned(command, args.client_cpus), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=duration + 60)
    return _parse_wrk(out.decode(errors="replace"))


def _write_script(workdir: Path, server: Server, body: str) -> Path:
    auth = f'wrk.headers["Authorization"] = "Bearer {server.token}"' if server.token else ""
    path = workdir / f"post-{server.name}.lua"
    path.write_text(WRK_SCRIPT % {"body": body, "auth": auth})
    return path


async def turn(
    args: argparse.Namespace, server: Server, body: str, round_: int, workdir: Path, use_wrk: bool
) -> Turn:
    request = build_request(server.port, body.encode(), server.token)
    check = await probe(server.port, request, 3, 30)  # fails loudly on a wrong token, an error event, ...
    script = _write_script(workdir, server, body) if use_wrk else None
    await run_load(args, server, body, args.warmup, script)

    stop = asyncio.Event()
    loaded = asyncio.create_task(
        probe(
            server.port,
            request,
            int(args.duration / args.probe_interval) + 1,
            args.duration,
            args.probe_interval,
            stop,
        )
    )
    cpu_before = server.cpu_seconds()
    result = await run_load(args, server, body, args.duration, script)
    cpu = server.cpu_seconds() - cpu_before
    stop.set()
    under_load = await loaded
    await asyncio.sleep(0.5)
    idle = await probe(server.port, request, args.probe_requests, 60)

    requests = result["requests"]
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    seconds = result["duration_us"] / 1e6
    per_request = result["bytes"] / max(requests, 1)
    expected = check[-1].size
    if requests and abs(per_request - expected) > 0.15 * expected:
        raise RuntimeError(
            f"{server.name}: {per_request:.0f} bytes per response under load, expected about "
            f"{expected} — responses are not the expected stream"
        )
    return Turn(
        server.name,
        round_,
        requests / seconds,
        requests,
        errors,
        per_request,
        result["p50_us"] / 1000,
        result["p99_us"] / 1000,
        cpu / max(requests + len(under_load), 1) * 1e6,
        [r.ttfe * 1000 for r in idle],
        [r.ttfe * 1000 for r in under_load],
    )


# --- report -------------------------------------------------------------------------------------------------
def _pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def report(turns: list[Turn]) -> None:
    print(
        f"\n{'turn':>4} {'server':8} {'req/s':>8} {'errors':>6} {'B/resp':>6} {'lat p50':>8} {'lat p99':>8} "
        f"{'CPU µs/req':>10} {'TTFE idle p50':>13} {'p90':>6} {'TTFE load p50':>13} {'p90':>6}"
    )
    for i, t in enumerate(turns):
        print(
            f"{i + 1:>4} {t.server:8} {t.rps:8.0f} {t.errors:6} {t.bytes_per_request:6.0f} "
            f"{t.latency_p50_ms:6.2f}ms {t.latency_p99_ms:6.2f}ms {t.cpu_us_per_request:10.0f} "
            f"{_pct(t.ttfe_idle_ms, 50):11.3f}ms {_pct(t.ttfe_idle_ms, 90):6.3f} "
            f"{_pct(t.ttfe_load_ms, 50):11.3f}ms {_pct(t.ttfe_load_ms, 90):6.3f}"
        )
    a = [t for t in turns if t.server == "knotflow"]
    b = [t for t in turns if t.server == "bare"]
    ratios = [x.rps / y.rps for x, y in zip(a, b, strict=False)]
    print("\nsummary (medians over rounds; ratio = knotflow / bare, paired by round)")
    print(
        f"  req/s            knotflow {statistics.median(t.rps for t in a):8.0f}   "
        f"bare {statistics.median(t.rps for t in b):8.0f}   ratio per round "
        f"{', '.join(f'{r:.3f}' for r in ratios)}   median {statistics.median(ratios):.3f} "
        f"(target ≥ {TARGET_RATIO}) [{'ok' if statistics.median(ratios) >= TARGET_RATIO else 'MISSED'}]"
    )
    cpu_a = statistics.median(t.cpu_us_per_request for t in a)
    cpu_b = statistics.median(t.cpu_us_per_request for t in b)
    print(f"  server CPU/req   knotflow {cpu_a:8.0f} µs   bare {cpu_b:8.0f} µs   ratio {cpu_b / cpu_a:.3f}")
    idle_a = [v for t in a for v in t.ttfe_idle_ms]
    idle_b = [v for t in b for v in t.ttfe_idle_ms]
    load_a = [v for t in a for v in t.ttfe_load_ms]
    load_b = [v for t in b for v in t.ttfe_load_ms]
    p50_a, p50_b = _pct(idle_a, 50), _pct(idle_b, 50)
    verdict = "ok" if p50_a <= p50_b + TARGET_TTFE_EXTRA_MS else "MISSED"
    print(
        f"  TTFE idle p50    knotflow {p50_a:8.3f} ms   bare {p50_b:8.3f} ms   "
        f"difference {p50_a - p50_b:.3f} ms "
        f"(target ≤ {TARGET_TTFE_EXTRA_MS} ms) [{verdict}]   (n = {len(idle_a)} / {len(idle_b)})"
    )
    print(f"  TTFE idle p99    knotflow {_pct(idle_a, 99):8.3f} ms   bare {_pct(idle_b, 99):8.3f} ms")
    print(
        f"  TTFE load p50    knotflow {_pct(load_a, 50):8.3f} ms   bare {_pct(load_b, 50):8.3f} ms   "
        f"(n = {len(load_a)} / {len(load_b)}; 1 probe connection beside the load)"
    )
    c = [t for t in turns if t.server == "starlette"]
    if c:
        floor = [x.rps / y.rps for x, y in zip(c, b, strict=False)]
        over_floor = statistics.median(t.rps for t in a) / statistics.median(t.rps for t in c)
        print(
            f"  starlette floor  {statistics.median(t.rps for t in c):8.0f} req/s   ratio to bare "
            f"{statistics.median(floor):.3f}   CPU {statistics.median(t.cpu_us_per_request for t in c):.0f} µs/req"
            f"   TTFE idle p50 {_pct([v for t in c for v in t.ttfe_idle_ms], 50):.3f} ms   "
            f"(knotflow / starlette floor: {over_floor:.3f})"
        )


def _install_uvloop() -> None:
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass


async def main_async(args: argparse.Namespace, workdir: Path) -> list[Turn]:
    use_wrk = shutil.which("wrk") is not None and not args.python_loadgen
    print(
        f"load generator: {f'wrk ({args.threads} thread)' if use_wrk else 'Python (separate process)'}"
        f", {args.connections} connections, {args.warmup:g}s warm-up + {args.duration:g}s per turn, "
        f"{args.rounds} rounds",
        flush=True,
    )
    servers: dict[str, Server] = {}
    try:
        if not args.bare_only:
            workflow_file = Path(args.workflow).resolve() if args.workflow else None
            servers["knotflow"] = start_knotflow(
                workdir, args.server_cpus, workflow_file, args.knotflow_command
            )
            print(
                f"knotflow on port {servers['knotflow'].port}, workflow {servers['knotflow'].workflow_id}",
                flush=True,
            )
        servers["bare"] = start_bare(workdir, args.server_cpus)
        print(f"bare on port {servers['bare'].port}", flush=True)
        if args.starlette_floor:
            servers["starlette"] = start_bare(workdir, args.server_cpus, starlette=True)
            print(f"starlette floor on port {servers['starlette'].port}", flush=True)
        turns: list[Turn] = []
        for round_ in range(1, args.rounds + 1):
            for name in ("knotflow", "bare", "starlette"):
                if name not in servers:
                    continue
                server = servers[name]
                workflow = server.workflow_id or "0"
                body = json.dumps({"workflow_id": workflow, "parameters": json.loads(args.parameters)})
                t = await turn(args, server, body, round_, workdir, use_wrk)
                turns.append(t)
                print(
                    f"  round {round_} {name:8} {t.rps:8.0f} req/s  errors {t.errors}  TTFE idle p50 "
                    f"{_pct(t.ttfe_idle_ms, 50):.3f} ms  CPU {t.cpu_us_per_request:.0f} µs/req",
                    flush=True,
                )
        if args.py_spy and "knotflow" in servers:
            await profile_turn(args, servers["knotflow"], workdir, use_wrk)
        return turns
    finally:
        for server in servers.values():
            server.stop()


async def profile_turn(args: argparse.Namespace, server: Server, workdir: Path, use_wrk: bool) -> None:
    """One more loaded turn on knotflow with `py-spy record --gil` attached; print the top entries."""
    py_spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is not installed (.venv/bin/pip install py-spy): no profile")
        return
    body = json.dumps({"workflow_id": server.workflow_id, "parameters": json.loads(args.parameters)})
    script = _write_script(workdir, server, body) if use_wrk else None
    stacks = Path(args.py_spy_output).resolve()
    seconds = max(2, int(args.py_spy))
    load = asyncio.create_task(run_load(args, server, body, seconds + 3, script))
    await asyncio.sleep(1)
    spy = await asyncio.create_subprocess_exec(
        py_spy, "record", "--pid", str(server.proc.pid), "--duration", str(seconds), "--rate", "200", "--gil",
        "--format", "raw", "--output", str(stacks), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(spy.communicate(), timeout=seconds + 60)
    result = await load
    print(f"\nprofile: py-spy --gil, {seconds}s under load ({result['requests'] / (result['duration_us'] / 1e6):.0f}"
          f" req/s while sampled); raw stacks in {stacks}")
    if spy.returncode != 0 or not stacks.exists():
        print(out.decode(errors="replace")[-2000:])
        return
    print_profile(stacks, args.py_spy_top)


def print_profile(stacks: Path, top: int) -> None:
    """Top self and inclusive entries of py-spy's raw (collapsed) stacks, as shares of all samples."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in stacks.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")[1:]  # the first frame names the thread
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    print(f"  {total} samples holding the GIL")
    for title, table in (("self", own), ("inclusive (frames under uvicorn's request cycle)", inclusive)):
        print(f"  top {top} by {title}:")
        rows = sorted(table.items(), key=lambda item: -item[1])
        if title != "self":
            rows = [row for row in rows if "typer" not in row[0] and "click" not in row[0]]
        for frame, count in rows[:top]:
            print(f"    {count / max(total, 1):6.1%}  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", "-c", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per turn")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each turn")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (knotflow, bare)")
    parser.add_argument("--probe-requests", type=int, default=300, help="idle TTFE probe requests per turn")
    parser.add_argument(
        "--probe-interval", type=float, default=0.05, help="seconds between TTFE probe requests during load"
    )
    parser.add_argument("--parameters", default='{"name": "George"}', help="workflow parameters (JSON)")
    parser.add_argument("--workflow", help="canvas file to import and publish instead of the seeded demo")
    parser.add_argument("--server-cpus", help="pin the servers with taskset -c (e.g. 0)")
    parser.add_argument("--client-cpus", help="pin the load generator with taskset -c (e.g. 1)")
    parser.add_argument("--bare-only", action="store_true", help="benchmark the bare endpoint alone")
    parser.add_argument(
        "--starlette-floor", action="store_true",
        help="add a third server: the same fixed stream behind a Starlette route (what the framework costs)",
    )
    parser.add_argument(
        "--python-loadgen", action="store_true", help="use the Python load generator, not wrk"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    parser.add_argument(
        "--knotflow-command",
        default=str(VENV_BIN / "knotflow"),
        help="command that takes `serve --port P` (default: the venv's knotflow; e.g. a patched launcher)",
    )
    parser.add_argument(
        "--py-spy", type=float, default=0, metavar="SECONDS",
        help="after the rounds, profile knotflow under load for SECONDS with py-spy --gil",
    )
    parser.add_argument(
        "--py-spy-output",
        default=str(Path(tempfile.gettempdir()) / "knotflow-bench-stacks.txt"),
        help="py-spy raw stacks file",
    )
    parser.add_argument("--py-spy-top", type=int, default=25, help="entries to print from the profile")
    # internal: the Python load generator's own process
    parser.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--body", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(args)
        return
    if not (
        0 < args.duration <= 300
        and 0 <= args.warmup <= 60
        and 0 < args.rounds <= 20
        and 0 < args.connections <= 512
        and 0 < args.probe_requests <= 10_000
    ):
        parser.error(
            "keep --duration ≤ 300, --warmup ≤ 60, --rounds ≤ 20, --connections ≤ 512, "
            "--probe-requests ≤ 10000"
        )

    print(
        f"knotflow stream_run load — {time.strftime('%Y-%m-%d %H:%M')}, python {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.machine()}, servers pinned to {args.server_cpus or '-'}, "
        f"client to {args.client_cpus or '-'}"
    )
    _install_uvloop()
    workdir = Path(tempfile.mkdtemp(prefix="knotflow-bench-"))
    try:
        turns = asyncio.run(main_async(args, workdir))
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.bare_only:
        for t in turns:
            print(
                f"  bare round {t.round}: {t.rps:.0f} req/s, TTFE idle p50 {_pct(t.ttfe_idle_ms, 50):.3f} ms"
            )
        return
    report(turns)


if __name__ == "__main__":
    main()
