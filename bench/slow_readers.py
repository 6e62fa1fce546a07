"""Memory per stream when clients read nothing: back-pressure on, beside back-pressure off, in one run.

Each variant starts `knotflow serve` as its own process on a fresh data dir, runs the 150-Output-node workflow of
tests/api/test_backpressure.py once with a reading client (warm-up), then opens N clients that send stream_run
with a 60 KB input and never read (4 KiB receive buffers). It samples the server's RSS for a few seconds and
reports the growth per stalled reader. "off" is the same server with a stream buffer larger than any run (1 GiB),
i.e. what knotflow did before back-pressure.

Run by hand:  .venv/bin/python bench/slow_readers.py [--readers 20] [--seconds 6]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.api.conftest import LiveServer, free_port  # noqa: E402
from tests.api.test_backpressure import TEXT, many_outputs, rss_kib, stalled_reader  # noqa: E402

from knotflow.config import Settings  # noqa: E402
from knotflow.store.migrate import upgrade  # noqa: E402


def measure(readers: int, buffer: int, seconds: float) -> float:
    data = Path(tempfile.mkdtemp(prefix="knotflow-slow-readers-"))
    settings = Settings(data_dir=data)
    upgrade(settings.resolved_database_url())
    seeding = LiveServer(settings, "")
    workflow_id, token = seeding.publish(many_outputs(), name="many"), seeding.token()
    port = free_port()
    env = {**os.environ, "KNOTFLOW_DATA_DIR": str(data), "KNOTFLOW_STREAM_BUFFER_BYTES": str(buffer),
           "KNOTFLOW_STREAM_SEND_TIMEOUT": str(seconds * 4)}
    with (data / "serve.log").open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "knotflow.cli", "serve", "--port", str(port)], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
            http.post("/v1/workflow/stream_run", json={"workflow_id": workflow_id, "parameters": {"text": TEXT}})
        before = peak = rss_kib(server.pid)
        sockets = [stalled_reader(port, token, workflow_id) for _ in range(readers)]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            peak = max(peak, rss_kib(server.pid))
            time.sleep(0.1)
        for sock in sockets:
            sock.close()
        return (peak - before) / 1024 / readers
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    print(f"{args.readers} stalled readers, 150 Output nodes x 60 KB each, {args.seconds:g} s sampled")
    for name, buffer in [("on (1 MiB buffer, the default)", 1024 * 1024), ("on (4 MiB buffer)", 4 * 1024 * 1024),
                         ("off (1 GiB buffer)", 1024 * 1024 * 1024)]:
        growth = measure(args.readers, buffer, args.seconds)
        print(f"  back-pressure {name:32} RSS growth per reader: {growth:6.1f} MiB")


if __name__ == "__main__":
    main()
