"""Token → SSE latency: the time from a provider sending a token to the client reading it as a knotflow event.

Three processes on 127.0.0.1, each one uvicorn (uvloop + httptools) or asyncio loop:
  fake model  this script with `--serve-model PORT`: an OpenAI-compatible `POST /v1/chat/completions` that
              streams N tokens, each after a gap of G ms × uniform(1 − J, 1 + J), and stamps every token with
              `time.monotonic_ns()` taken just before its write (`"@<ns>@ "`; CLOCK_MONOTONIC is system-wide, so
              the client can compare it with its own clock)
  knotflow    `.venv/bin/knotflow serve` on a fresh temporary data dir, with a models.yaml pointing at the fake
              and a published Start → LLM → End(answer, streaming) workflow
  client      this script: C concurrent streams on raw asyncio connections; every read is stamped with
              `monotonic_ns()` as it returns, so a token's latency = read time − provider stamp

Each round runs C concurrent `stream_run` streams through knotflow ("knotflow"), then C concurrent streams read
from the fake model directly with the same client ("direct"), alternating, so the machine's drift hits both. The
figures are percentiles over every token of every round; knotflow's added latency is knotflow − direct at each
percentile (and their ratio). Every stream is checked: HTTP 200 `text/event-stream`, every token present once and
in order, and knotflow's stream ends with `Done`.

Every loop is bounded in count and time, and only 127.0.0.1 is ever contacted.

Run by hand:  .venv/bin/python bench/token_latency.py [--streams 100] [--tokens 100] [--gap-ms 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stream_load import (  # a sibling bench script (bench/ is not a package)
    HOST,
    ROOT,
    VENV_BIN,
    Server,
    _install_uvloop,
    free_port,
    print_profile,
    start_knotflow,
    wait_listening,
)

MODEL_TYPE = 1737521813
TARGET_P50_MS = 1.0
STAMP = re.compile(rb"@(\d{6,20})@")


# --- the fake model (runs in its own process) --------------------------------------------------------------
def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "bench",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


async def model_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Stream the tokens the last user message asks for: {"tokens": N, "gap_ms": G, "jitter": J, "seed": S}."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    spec = json.loads(json.loads(body)["messages"][-1]["content"])
    rng = random.Random(spec["seed"])
    gap = spec["gap_ms"] / 1000
    jitter = spec["jitter"]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
    await send({"type": "http.response.body", "body": _chunk({"role": "assistant", "content": ""}),
                "more_body": True})
    for _ in range(spec["tokens"]):
        await asyncio.sleep(gap * rng.uniform(1 - jitter, 1 + jitter))
        chunk = _chunk({"content": f"@{time.monotonic_ns()}@ "})
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    usage = {"prompt_tokens": 10, "completion_tokens": spec["tokens"], "total_tokens": 10 + spec["tokens"]}
    tail = _chunk({}, "stop") + b"data: " + json.dumps({"id": "chatcmpl-bench", "object": "chat.completion.chunk",
                                                         "created": 0, "model": "bench", "choices": [],
                                                         "usage": usage}).encode() + b"\n\ndata: [DONE]\n\n"
    await send({"type": "http.response.body", "body": tail, "more_body": False})


def serve_model(port: int) -> None:
    import uvicorn

    # A long keep-alive: knotflow's pooled provider connections must not be closed under it between rounds (with
    # the default 5 s, a request racing the close fails with "Connection error": max_retries is 0 by default).
    uvicorn.run(model_app, host=HOST, port=port, loop="uvloop", http="httptools", lifespan="on",
                log_level="warning", access_log=False, timeout_keep_alive=600)


# --- the measuring client -----------------------------------------------------------------------------------
class BadStream(Exception):
    pass


@dataclass
class Target:
    name: str
    port: int
    path: str
    headers: dict[str, str]

    def request(self, body: dict[str, Any]) -> bytes:
        data = json.dumps(body).encode()
        head = [f"POST {self.path} HTTP/1.1", f"Host: {HOST}:{self.port}", "Content-Type: application/json",
                f"Content-Length: {len(data)}", "Connection: close",
                *(f"{k}: {v}" for k, v in self.headers.items())]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + data


def dechunk(body: bytes) -> bytes:
    out = bytearray()
    at = 0
    while True:
        end = body.index(b"\r\n", at)
        size = int(body[at:end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[end + 2:end + 2 + size]
        at = end + 2 + size + 2


async def one_stream(target: Target, body: dict[str, Any], tokens: int, timeout: float) -> list[float]:
    """Open a connection, POST, read to EOF stamping each read; the latency of every token, in ms."""
    reader, writer = await asyncio.open_connection(HOST, target.port)
    reads: list[tuple[int, int]] = []  # (bytes received so far, monotonic ns when that read returned)
    received = bytearray()
    try:
        writer.write(target.request(body))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = await asyncio.wait_for(reader.read(65536), timeout)
            now = time.monotonic_ns()
            if not data:
                break
            received += data
            reads.append((len(received), now))
        else:
            raise BadStream(f"{target.name}: the stream did not end within {timeout:.0f} s")
    finally:
        writer.close()
    head_end = received.find(b"\r\n\r\n")
    head = bytes(received[:head_end]).decode("latin-1").lower()
    if not head.startswith("http/1.1 200") or "text/event-stream" not in head:
        raise BadStream(f"{target.name}: not an event stream: {bytes(received[:300])!r}")
    payload = dechunk(bytes(received[head_end + 4:])) if "transfer-encoding: chunked" in head else b""
    if target.name == "knotflow" and b"\nevent: Done\n" not in payload[-400:]:
        raise BadStream(f"{target.name}: the stream did not end with Done: {payload[-400:]!r}")
    ends = [r[0] for r in reads]
    latencies = []
    stamps = []
    for match in STAMP.finditer(received):
        stamps.append(int(match.group(1)))
        read_time = reads[bisect.bisect_left(ends, match.end())][1]
        latencies.append((read_time - stamps[-1]) / 1e6)
    if len(stamps) != tokens or stamps != sorted(stamps) or len(STAMP.findall(payload)) != tokens:
        raise BadStream(f"{target.name}: {len(stamps)} of {tokens} tokens, in order: {stamps == sorted(stamps)};"
                        f" the stream ended with {payload[-400:]!r}")
    return latencies


@dataclass
class Round:
    target: str
    index: int
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    server_cpu_s: float = 0.0


async def run_round(target: Target, index: int, args: argparse.Namespace, knotflow: Server,
                    workflow_id: str) -> Round:
    result = Round(target.name, index)
    started = time.monotonic()
    cpu_before = knotflow.cpu_seconds()

    def body(stream: int) -> dict[str, Any]:
        spec = json.dumps({"tokens": args.tokens, "gap_ms": args.gap_ms, "jitter": args.jitter,
                           "seed": index * 100_000 + stream})
        if target.name == "knotflow":
            return {"workflow_id": workflow_id, "parameters": {"input": spec}}
        return {"model": "bench", "stream": True, "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": spec}]}

    timeout = 30 + args.tokens * args.gap_ms * (1 + args.jitter) / 1000 * 3
    streams = [one_stream(target, body(i), args.tokens, timeout) for i in range(args.streams)]
    for latencies in await asyncio.gather(*streams):
        result.latencies_ms.extend(latencies)
    result.wall_s = time.monotonic() - started
    result.server_cpu_s = knotflow.cpu_seconds() - cpu_before
    return result


# --- set-up, report ------------------------------------------------------------------------------------------
def answer_canvas() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests import canvases as c
    from tests.nodes.test_llm import LLM_ID, llm_node

    return c.canvas(
        [c.start(("input", "string")), llm_node(),
         c.end_answer("{{output}}", streaming=True, output=c.ref(LLM_ID, "output"))],
        [c.edge("100001", LLM_ID), c.edge(LLM_ID, "900001")],
    )


def start_model(workdir: Path) -> Server:
    port = free_port()
    log = workdir / "model.log"
    proc = subprocess.Popen([sys.executable, __file__, "--serve-model", str(port)], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, cwd=ROOT)
    server = Server("fake model", port, proc, log)
    wait_listening(server, 30)
    return server


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def report(rounds: list[Round], args: argparse.Namespace) -> None:
    print(f"\n{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{args.streams} concurrent streams × {args.tokens} tokens, gap {args.gap_ms:g} ms ± {args.jitter:.0%}")
    print(f"{'round':>5} {'target':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'wall s':>7}"
          f" {'knotflow CPU s':>15}")
    for r in rounds:
        lat = r.latencies_ms
        print(f"{r.index:>5} {r.target:>9} {pct(lat, 50):8.3f} {pct(lat, 90):8.3f} {pct(lat, 99):8.3f}"
              f" {max(lat):8.3f} {r.wall_s:7.2f} {r.server_cpu_s:15.2f}")
    combined = {name: [v for r in rounds if r.target == name for v in r.latencies_ms] for name in ("knotflow",
                                                                                                 "direct")}
    print(f"\nall rounds ({len(combined['knotflow'])} tokens each):")
    print(f"{'':>10} {'knotflow':>9} {'direct':>9} {'added':>9} {'ratio':>7}")
    for p in (50, 90, 99):
        k, d = pct(combined["knotflow"], p), pct(combined["direct"], p)
        print(f"{'p' + str(p) + ' ms':>10} {k:9.3f} {d:9.3f} {k - d:9.3f} {k / d:7.2f}")
    k_rounds = [r for r in rounds if r.target == "knotflow"]
    cpu_per_token = statistics.median(r.server_cpu_s / (args.streams * args.tokens) for r in k_rounds) * 1e6
    per_round = [pct(r.latencies_ms, 50) for r in k_rounds]
    print(f"knotflow p50 per round: {', '.join(f'{v:.3f}' for v in per_round)} ms;"
          f" server CPU {cpu_per_token:.0f} µs per token (median of rounds, the whole run included)")
    p50 = pct(combined["knotflow"], 50)
    verdict = "met" if p50 < TARGET_P50_MS else "MISSED"
    print(f"target: knotflow p50 < {TARGET_P50_MS:g} ms with {args.streams} streams: {verdict} ({p50:.3f} ms)")


async def profile_round(args: argparse.Namespace, target: Target, knotflow: Server, workflow_id: str) -> None:
    py_spy = str(VENV_BIN / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is not installed (.venv/bin/pip install py-spy): no profile")
        return
    stacks = Path(args.py_spy_output).resolve()
    load = asyncio.create_task(run_round(target, 0, args, knotflow, workflow_id))
    await asyncio.sleep(1)
    seconds = max(1, int(args.tokens * args.gap_ms / 1000) - 1)
    spy = await asyncio.create_subprocess_exec(
        py_spy, "record", "--pid", str(knotflow.proc.pid), "--duration", str(seconds), "--rate", "250", "--gil",
        "--nonblocking", "--format", "raw", "--output", str(stacks), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(spy.communicate(), timeout=seconds + 60)
    await load
    print(f"\nprofile: py-spy --gil on knotflow for {seconds} s of a loaded round; raw stacks in {stacks}")
    if spy.returncode != 0 or not stacks.exists():
        print(out.decode(errors="replace")[-2000:])
        return
    print_profile(stacks, args.py_spy_top)


async def main_async(args: argparse.Namespace, workdir: Path) -> None:
    model = start_model(workdir)
    servers = [model]
    try:
        models_file = workdir / "models.yaml"
        models_file.write_text(f"models:\n  - model_type: {MODEL_TYPE}\n    base_url: http://{HOST}:{model.port}/v1\n"
                               "    model: bench\n    timeout: 120\n")
        os.environ["KNOTFLOW_MODELS_FILE"] = str(models_file)  # read by the CLI and the server
        workflow_file = workdir / "answer.json"
        workflow_file.write_text(json.dumps(answer_canvas()))
        knotflow = start_knotflow(workdir, None, workflow_file, args.knotflow_command)
        servers.append(knotflow)
        assert knotflow.token is not None and knotflow.workflow_id is not None
        targets = [
            Target("knotflow", knotflow.port, "/v1/workflow/stream_run",
                   {"Authorization": f"Bearer {knotflow.token}"}),
            Target("direct", model.port, "/v1/chat/completions", {}),
        ]
        warm = argparse.Namespace(**{**vars(args), "tokens": 5})
        for target in targets:
            await run_round(target, 0, warm, knotflow, knotflow.workflow_id)
        rounds = []
        for index in range(1, args.rounds + 1):
            for target in targets:
                rounds.append(await run_round(target, index, args, knotflow, knotflow.workflow_id))
                print(f"round {index} {target.name}: p50 {pct(rounds[-1].latencies_ms, 50):.3f} ms", flush=True)
        report(rounds, args)
        if args.py_spy:
            await profile_round(args, targets[0], knotflow, knotflow.workflow_id)
    finally:
        for server in reversed(servers):
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=100, help="concurrent streams per round")
    parser.add_argument("--tokens", type=int, default=100, help="tokens per stream")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="mean gap between a stream's tokens")
    parser.add_argument("--jitter", type=float, default=0.5, help="each gap is gap × uniform(1 − J, 1 + J)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--knotflow-command", default=str(VENV_BIN / "knotflow"),
                        help="the command that runs knotflow's CLI (e.g. a patched launcher for an A/B)")
    parser.add_argument("--py-spy", action="store_true", help="then one more knotflow round under py-spy --gil")
    parser.add_argument("--py-spy-output", default="/tmp/token_latency.stacks")
    parser.add_argument("--py-spy-top", type=int, default=25)
    parser.add_argument("--serve-model", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_model:
        serve_model(args.serve_model)
        return
    _install_uvloop()
    with tempfile.TemporaryDirectory(prefix="knotflow-token-latency-") as tmp:
        asyncio.run(main_async(args, Path(tmp)))


if __name__ == "__main__":
    main()
