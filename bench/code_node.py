"""The Code node end to end: `POST /v1/workflow/run` of a trivial Python and a trivial JavaScript Code node, beside
the same workflow without the node, on one `knotflow serve` process (uvloop, its default sandbox pools: 2 warm
sandboxes per language).

Workflows (published with the CLI into a fresh temporary KNOTFLOW_DATA_DIR):
  none        Start(n) → End(n)
  python      Start(n) → Code: `async def main(args: Args) -> Output: return {'n': args.params['n'] + 1}` → End(n)
  javascript  Start(n) → Code: `async function main({ params }: Args): Promise<Output> { return { n: params.n + 1 } }`
              → End(n)

- latency:  sequential calls on one keep-alive connection, `--gap` seconds apart (a server between calls); the
            cases alternate inside each round; "added" is a case's p50 minus the p50 of `none`. Each case is also
            timed back to back (no gap), where a call follows the previous one's cleanup at once.
- calls/s:  `--concurrency` keep-alive connections calling as fast as they can for `--seconds`, per case.

The load generator is this process (asyncio, raw HTTP/1.1), on the same 2 cores as the server. Only 127.0.0.1 is
contacted.

Run by hand:  .venv/bin/python bench/code_node.py [--rounds 3] [--samples 30] [--gap 0.1] [--concurrency 8]
              [--seconds 5] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
VENV_BIN = Path(sys.executable).parent
PYTHON_CODE = "async def main(args: Args) -> Output:\n    return {'n': args.params['n'] + 1}"
JS_CODE = "async function main({ params }: Args): Promise<Output> {\n  return { n: params.n + 1 };\n}"
TARGET_ADDED_MS, TARGET_CALLS = 10.0, 100.0


def canvas(code: str | None, language: int = 3) -> dict[str, Any]:
    start = {"id": "100001", "type": "1", "data": {"nodeMeta": {"title": "Start"},
                                                    "outputs": [{"name": "n", "type": "integer", "required": True}]}}
    source = "100001" if code is None else "150000"
    end = {"id": "900001", "type": "2", "data": {"nodeMeta": {"title": "End"}, "inputs": {
        "terminatePlan": "returnVariables", "inputParameters": [{"name": "n", "input": {"type": "integer", "value": {
            "type": "ref", "content": {"source": "block-output", "blockID": source, "name": "n"}}}}]}}}
    if code is None:
        return {"nodes": [start, end], "edges": [{"sourceNodeID": "100001", "targetNodeID": "900001"}]}
    node = {"id": "150000", "type": "5", "data": {
        "nodeMeta": {"title": "Code"}, "outputs": [{"name": "n", "type": "integer"}],
        "inputs": {"code": code, "language": language, "inputParameters": [{"name": "n", "input": {
            "type": "integer", "value": {"type": "ref", "content": {"source": "block-output", "blockID": "100001",
                                                                     "name": "n"}}}}]}}}
    return {"nodes": [start, node, end], "edges": [{"sourceNodeID": "100001", "targetNodeID": "150000"},
                                                   {"sourceNodeID": "150000", "targetNodeID": "900001"}]}


CASES = {"none": canvas(None), "python": canvas(PYTHON_CODE, 3), "javascript": canvas(JS_CODE, 5)}
CODE_CASES = ["python", "javascript"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(VENV_BIN / "knotflow"), *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


class Connection:
    """One keep-alive HTTP/1.1 connection; `call` posts a run and returns its response body."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self, workflow_id: str, n: int) -> bytes:
        body = json.dumps({"workflow_id": workflow_id, "parameters": {"n": n}}).encode()
        request = (b"POST /v1/workflow/run HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                   b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                   % (HOST.encode(), self.token.encode(), len(body), body))
        for attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
            assert self.reader is not None
            self.writer.write(request)
            try:
                head = await self.reader.readuntil(b"\r\n\r\n")
                break
            except (asyncio.IncompleteReadError, ConnectionError):
                # The server closed an idle keep-alive connection (uvicorn: after 5 s): open a new one.
                await self.close()
                self.writer = None
                if attempt:
                    raise
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        assert self.reader is not None
        return await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def checked(body: bytes, n: int, case: str) -> None:
    reply = json.loads(body)
    expected = n if case == "none" else n + 1
    if reply.get("code") != 0 or json.loads(reply["data"]) != {"n": expected}:
        raise RuntimeError(f"{case}: unexpected reply {body[:300]!r}")


async def latency(connection: Connection, ids: dict[str, str], case: str, samples: int, gap: float) -> list[float]:
    times = []
    for i in range(samples):
        if gap:
            await asyncio.sleep(gap)
        started = time.perf_counter()
        body = await connection.call(ids[case], i)
        times.append((time.perf_counter() - started) * 1000)
        checked(body, i, case)
    return times


async def throughput(port: int, token: str, workflow_id: str, case: str, concurrency: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        connection = Connection(port, token)
        try:
            while time.perf_counter() < deadline:
                n = done
                checked(await connection.call(workflow_id, n), n, case)
                done += 1
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(port: int, token: str, ids: dict[str, str], args: argparse.Namespace) -> None:
    connection = Connection(port, token)
    for case in CASES:  # warm-up: the sandbox pools start on their first call
        for i in range(5):
            checked(await connection.call(ids[case], i), i, case)
    times: dict[str, list[float]] = {case: [] for case in CASES} | {f"{case} back to back": [] for case in CODE_CASES}
    rates: dict[str, list[float]] = {case: [] for case in CASES}
    for number in range(args.rounds):
        for case in CASES:
            times[case] += await latency(connection, ids, case, args.samples, args.gap)
        for case in CODE_CASES:
            times[f"{case} back to back"] += await latency(connection, ids, case, args.samples, 0.0)
        for case in CASES:
            rates[case].append(await throughput(port, token, ids[case], case, args.concurrency, args.seconds))
        print(f"round {number + 1}/{args.rounds} done", file=sys.stderr)
    await connection.close()
    base = statistics.median(times["none"])
    print(f"\n{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {args.rounds} rounds "
          f"of {args.samples} calls ({args.gap:g} s apart) and {args.seconds:g} s at {args.concurrency} connections, "
          f"{args.workers or 2} warm sandboxes per language, load average {os.getloadavg()[0]:.1f}\n")
    print("| workflow | p50 (ms) | p99 (ms) | added at p50 (ms) | calls/s, median of rounds (min–max) |")
    print("|---|---|---|---|---|")
    for case, values in times.items():
        p50 = statistics.median(values)
        added = "" if case == "none" else f"{p50 - base:.1f}"
        rate = rates.get(case)
        shown = f"{statistics.median(rate):.0f} ({min(rate):.0f}–{max(rate):.0f})" if rate else ""
        print(f"| {case} | {p50:.1f} | {percentile(values, 0.99):.1f} | {added} | {shown} |")
    print(f"\ntargets: ≤ {TARGET_ADDED_MS:g} ms added at p50, ≥ {TARGET_CALLS:g} code-node calls/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--gap", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=None,
                        help="warm sandboxes per language (KNOTFLOW_CODE_PYTHON_WORKERS / _JS_WORKERS; default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="knotflow-code-bench-") as workdir:
        data_dir = Path(workdir) / "data"
        env = {**os.environ, "KNOTFLOW_DATA_DIR": str(data_dir), "KNOTFLOW_LOG_LEVEL": "warning"}
        if args.workers is not None:
            env |= {"KNOTFLOW_CODE_PYTHON_WORKERS": str(args.workers), "KNOTFLOW_CODE_JS_WORKERS": str(args.workers)}
        cli(env, "db", "upgrade")
        token = cli(env, "token", "create", "--name", "bench")
        ids = {}
        for case, graph in CASES.items():
            path = Path(workdir) / f"{case}.json"
            path.write_text(json.dumps(graph))
            ids[case] = cli(env, "workflow", "import", str(path), "--publish")
        port = free_port()
        log = (Path(workdir) / "serve.log").open("wb")
        server = subprocess.Popen([str(VENV_BIN / "knotflow"), "serve", "--port", str(port)], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://{HOST}:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"knotflow serve did not start: {(Path(workdir) / 'serve.log').read_text()}")
                time.sleep(0.1)
            asyncio.run(measure(port, token, ids, args))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
