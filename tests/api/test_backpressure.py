"""Clients that do not read, and clients that never finish their request, cost bounded memory and time.

The server runs as its own process so that its memory can be measured: a stream's unread messages are bounded by
`KNOTFLOW_STREAM_BUFFER_BYTES` (the run waits for its reader), a reader that reads nothing for
`KNOTFLOW_STREAM_SEND_TIMEOUT` seconds is cut off and its run cancelled with the reason, and connections that
never finish their headers or body are closed after `KNOTFLOW_HEADER_TIMEOUT` / `KNOTFLOW_BODY_TIMEOUT`."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from knotflow.config import Settings
from knotflow.store import tables as t
from knotflow.store.migrate import upgrade
from knotflow.store.records import FAIL
from knotflow.store.repository import Store
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port
from tests.api.test_resume import ServerProcess

OUTPUTS = 150
TEXT = "x" * 60_000
BUFFER = 1024 * 1024
SEND_TIMEOUT = 3.0
READERS = 20


def many_outputs() -> dict[str, Any]:
    """Start(text) → 150 Output nodes each showing the text → End: 9 MB of messages for one stream."""
    ids = [str(200000 + i) for i in range(OUTPUTS)]
    outputs = [c.output(node_id, "{{text}}", title=f"O{node_id}", text=c.ref("100001", "text")) for node_id in ids]
    chain = ["100001", *ids, "900001"]
    return c.canvas([c.start(("text", "string")), *outputs, c.end_return(done=c.literal("yes"))],
                    [c.edge(a, b) for a, b in itertools.pairwise(chain)])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture()
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ServerProcess, LiveServer, str, str]]:
    for name, value in {"KNOTFLOW_STREAM_BUFFER_BYTES": BUFFER, "KNOTFLOW_STREAM_SEND_TIMEOUT": SEND_TIMEOUT,
                        "KNOTFLOW_HEADER_TIMEOUT": 2, "KNOTFLOW_BODY_TIMEOUT": 2}.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings(data_dir=tmp_path / "data")
    upgrade(settings.resolved_database_url())
    seeding = LiveServer(settings, "")
    workflow_id, token = seeding.publish(many_outputs(), name="many"), seeding.token()
    port = free_port()
    process = ServerProcess(settings, port, tmp_path / "serve.log")
    try:
        yield process, LiveServer(settings, f"http://127.0.0.1:{port}"), workflow_id, token
    finally:
        process.kill()


def stalled_reader(port: int, token: str, workflow_id: str) -> socket.socket:
    """A client that sends its stream_run and then reads nothing, with a tiny receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    body = json.dumps({"workflow_id": workflow_id, "parameters": {"text": TEXT}}).encode()
    sock.sendall(b"POST /v1/workflow/stream_run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def failed_runs(live: LiveServer) -> list[dict[str, Any]]:
    async def read(store: Store) -> list[dict[str, Any]]:
        async with store.engine.connect() as conn:
            rows = await conn.execute(select(t.runs).where(t.runs.c.status == FAIL))
            return [dict(row) for row in rows.mappings()]

    result: list[dict[str, Any]] = live.call(read)
    return result


def test_readers_that_read_nothing_cost_bounded_memory_and_are_cut_off(server: Any) -> None:
    process, live, workflow_id, token = server
    pid = process.process.pid
    with httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        whole = http.post("/v1/workflow/stream_run", json={"workflow_id": workflow_id,
                                                            "parameters": {"text": TEXT}}).text
        assert whole.count("event: Message") == OUTPUTS + 1 and "event: Done" in whole  # a reader gets it all
        before = rss_kib(pid)
        readers = [stalled_reader(int(live.base_url.rsplit(":", 1)[1]), token, workflow_id) for _ in range(READERS)]
        peak = before
        deadline = time.monotonic() + SEND_TIMEOUT + 6
        while time.monotonic() < deadline:
            peak = max(peak, rss_kib(pid))
            assert http.get("/health").json()["code"] == 0  # the server keeps serving meanwhile
            if len(failed_runs(live)) >= READERS:
                break
            time.sleep(0.2)
        for reader in readers:
            reader.close()
    growth_mib = (peak - before) / 1024
    # Without back-pressure each reader's run piles up its 9 MB of messages and 18 MB of trace (about 30 MiB of
    # memory each). With it, a reader holds its 1 MiB buffer plus the trace of the nodes run until it filled.
    assert growth_mib < READERS * 15, f"RSS grew by {growth_mib:.0f} MiB for {READERS} stalled readers"
    cut = failed_runs(live)
    assert len(cut) == READERS
    assert all("read nothing of its stream" in row["error_message"] or row["error_message"] == "client disconnected"
               for row in cut), [row["error_message"] for row in cut]


def test_requests_that_never_finish_are_closed(server: Any) -> None:
    _, live, _, token = server
    port = int(live.base_url.rsplit(":", 1)[1])
    silent = socket.create_connection(("127.0.0.1", port))  # connects and sends nothing
    trickling = socket.create_connection(("127.0.0.1", port))
    trickling.sendall(b"POST /v1/workflow/run HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    stuck = socket.create_connection(("127.0.0.1", port))
    stuck.sendall(b"POST /v1/workflow/run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"Authorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n".encode() + b'{"workflow_id"')
    for sock in (silent, trickling, stuck):
        sock.settimeout(10)
    started = time.monotonic()
    assert silent.recv(100) == b"" and trickling.recv(100) == b""  # closed by the header timeout
    assert time.monotonic() - started < 6
    answer = b""
    while chunk := stuck.recv(65536):  # the body timeout answers in Coze's envelope, then closes
        answer += chunk
    assert b'"code":4000' in answer and b"stopped arriving" in answer
    for sock in (silent, trickling, stuck):
        sock.close()



def test_bursts_of_big_bodies_take_turns_and_are_given_back(server: Any) -> None:
    """20 concurrent 19 MB requests, three times: they take turns through the body budget, and a failed run's
    data is freed with it (its error's traceback no longer keeps the run alive in a reference cycle)."""
    process, live, _, token = server
    workflow_id = live.publish(c.echo(), name="echo-big")
    body = json.dumps({"workflow_id": workflow_id, "parameters": {"input": "x" * (19 * 1024 * 1024)}})
    pid = process.process.pid
    before = rss_kib(pid)

    def post() -> None:
        with httpx.Client(timeout=120) as http:
            answer = http.post(f"{live.base_url}/v1/workflow/run", content=body,
                               headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            assert answer.json()["code"] == 5000  # 19 MB in and 19 MB out: over the run's data limit, clearly

    settled = []
    peak = before
    for _ in range(3):
        threads = [threading.Thread(target=post) for _ in range(20)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            peak = max(peak, rss_kib(pid))
            time.sleep(0.05)
        time.sleep(1)
        settled.append(rss_kib(pid))
    # Before: a 1.4 GB peak in the first round, and 1.7 GB more kept after the third.
    assert (peak - before) / 1024 < 900, f"peak grew by {(peak - before) / 1024:.0f} MiB"
    assert (settled[-1] - settled[0]) / 1024 < 400, f"memory kept growing: {[s // 1024 for s in settled]} MiB"
