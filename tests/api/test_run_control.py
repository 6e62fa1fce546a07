"""Re-attach, cancel, idempotency keys and limits in one process without Redis (README "Many processes"): each
works within the process as it does across processes with Redis (tests/scale/)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from knotflow.config import Settings
from knotflow.models.registry import load_registry
from knotflow.store import tables as t
from knotflow.store.records import RUNNING
from knotflow.store.repository import Store
from tests.api.conftest import LiveServer, free_port, serving
from tests.api.test_crash_recovery import forms, llm_canvas
from tests.fakes.model_server import FakeModelServer, Reply, write_models_file
from tests.nodes.test_llm import MODEL_TYPE


def slow_reply(pieces: int = 40, delay: float = 0.05) -> Reply:
    return Reply(content=[f"t{i} " for i in range(pieces)], usage=(3, pieces), delay=delay)


def parse(text: str) -> list[tuple[int, str, dict[str, Any]]]:
    """A stream's events as (id, event, data)."""
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if line)
        events.append((int(lines["id"]), lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    server = FakeModelServer(default=slow_reply()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model: FakeModelServer) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("control"), port=free_port(), max_concurrent_runs=2,
                        requests_per_second=0)
    settings.data_dir.mkdir(exist_ok=True)
    write_models_file(settings.data_dir, {MODEL_TYPE: model})
    with serving(settings) as live:
        yield live


@pytest.fixture(scope="module")
def ids(server: LiveServer) -> dict[str, str]:
    models = load_registry(server.settings.resolved_models_file())
    return {"llm": server.publish(llm_canvas(), name="llm", models=models),
            "forms": server.publish(forms(), name="forms"), "token": server.token()}


@pytest.fixture()
def http(server: LiveServer, ids: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {ids['token']}"},
                      timeout=30) as client:
        yield client


class Reader:
    """Reads an open stream's events a few at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.iter_text()
        self._buffer = ""

    def take(self, count: int) -> list[tuple[int, str, dict[str, Any]]]:
        while self._buffer.count("\n\n") < count:
            self._buffer += next(self._chunks)
        blocks = self._buffer.split("\n\n")
        self._buffer = "\n\n".join(blocks[count:])
        return parse("\n\n".join(blocks[:count]))

    def rest(self) -> list[tuple[int, str, dict[str, Any]]]:
        text = self._buffer + "".join(self._chunks)
        return parse(text) if text.strip() else []


def real(events: list[tuple[int, str, dict[str, Any]]]) -> list[tuple[int, str, dict[str, Any]]]:
    return [event for event in events if event[1] != "PING"]


def test_reattach_mid_stream_gets_the_rest_with_the_same_ids(http: httpx.Client, ids: dict[str, str]) -> None:
    body = {"workflow_id": ids["llm"], "parameters": {"input": "x"}}
    with http.stream("POST", "/v1/workflow/stream_run", json=body) as first:
        execute_id = first.headers["X-Knotflow-Execute-Id"]
        reader = Reader(first)
        seen = reader.take(5)
        attached = http.get("/v1/workflow/stream_attach", params={"workflow_id": ids["llm"],
                                                                   "execute_id": execute_id},
                            headers={"Last-Event-ID": str(seen[-1][0])})
        rest = reader.rest()
    assert attached.headers["X-Knotflow-Execute-Id"] == execute_id
    again = parse(attached.text)
    assert real(again) == real(rest), "the re-attached stream differs from the original's rest"
    assert again[0][0] == seen[-1][0] + 1 and again[-1][1] == "Done"
    assert [e[0] for e in again] == sorted({e[0] for e in again})  # increasing, no repeats
    contents = "".join(e[2]["content"] for e in seen + again if e[1] == "Message")
    assert contents.startswith("t0 t1 ") and "t39" in contents

    whole = parse(http.get("/v1/workflow/stream_attach", params={"workflow_id": ids["llm"],
                                                                 "execute_id": execute_id}).text)
    assert whole[0][0] == 0 and whole[-1][1] == "Done"
    assert real(whole) == real(seen + rest)


def test_attach_refuses_unknown_runs_and_bad_ids(http: httpx.Client, ids: dict[str, str]) -> None:
    unknown = http.get("/v1/workflow/stream_attach", params={"workflow_id": ids["llm"], "execute_id": "123"})
    assert unknown.json()["code"] == 4200
    bad = http.get("/v1/workflow/stream_attach", params={"workflow_id": ids["llm"], "execute_id": "123"},
                   headers={"Last-Event-ID": "x"})
    assert bad.json()["code"] == 4000


def history(http: httpx.Client, workflow_id: str, execute_id: str) -> dict[str, Any]:
    item: dict[str, Any] = http.get(f"/v1/workflows/{workflow_id}/run_histories/{execute_id}").json()["data"][0]
    return item


def test_cancel_a_streaming_run(http: httpx.Client, ids: dict[str, str], model: FakeModelServer) -> None:
    aborted_before = model.streams.count("aborted")
    body = {"workflow_id": ids["llm"], "parameters": {"input": "x"}}
    with http.stream("POST", "/v1/workflow/stream_run", json=body) as stream:
        execute_id = stream.headers["X-Knotflow-Execute-Id"]
        reader = Reader(stream)
        reader.take(2)
        cancelled = http.post("/v1/workflow/cancel", json={"workflow_id": ids["llm"], "execute_id": execute_id})
        tail = reader.rest()
    assert cancelled.json()["code"] == 0, cancelled.text
    assert cancelled.json()["data"]["execute_status"] == "Fail"
    assert [e[1] for e in tail[-2:]] == ["Error", "Done"]
    assert "cancelled" in tail[-2][2]["error_message"]
    recorded = history(http, ids["llm"], execute_id)
    assert recorded["execute_status"] == "Fail" and recorded["error_message"] == "cancelled"
    deadline = time.monotonic() + 5
    while model.streams.count("aborted") == aborted_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert model.streams.count("aborted") > aborted_before, "the provider request was not aborted"

    again = http.post("/v1/workflow/cancel", json={"workflow_id": ids["llm"], "execute_id": execute_id})
    assert again.json()["code"] == 4000 and "already ended" in again.json()["msg"]
    unknown = http.post("/v1/workflow/cancel", json={"workflow_id": ids["llm"], "execute_id": "42"})
    assert unknown.json()["code"] == 4200


def test_cancel_a_sync_run_and_a_waiting_run(http: httpx.Client, ids: dict[str, str], server: LiveServer) -> None:
    results: list[dict[str, Any]] = []
    body = {"workflow_id": ids["llm"], "parameters": {"input": "x"}}
    thread = threading.Thread(target=lambda: results.append(http.post("/v1/workflow/run", json=body).json()))
    thread.start()
    deadline = time.monotonic() + 10
    execute_id = None
    while execute_id is None and time.monotonic() < deadline:
        time.sleep(0.1)
        execute_id = _running_run(server, ids["llm"])
    assert execute_id is not None
    assert http.post("/v1/workflow/cancel", json={"workflow_id": ids["llm"],
                                                   "execute_id": execute_id}).json()["code"] == 0
    thread.join(10)
    assert results[0]["code"] == 5000 and "cancelled" in results[0]["msg"]

    asked = parse(http.post("/v1/workflow/stream_run", json={"workflow_id": ids["forms"]}).text)
    event_id = asked[-1][2]["interrupt_data"]["event_id"]
    waiting = event_id.split("/")[0]
    assert http.post("/v1/workflow/cancel", json={"workflow_id": ids["forms"],
                                                   "execute_id": waiting}).json()["code"] == 0
    assert history(http, ids["forms"], waiting)["execute_status"] == "Fail"
    resumed = http.post("/v1/workflow/stream_resume", json={"workflow_id": ids["forms"], "event_id": event_id,
                                                            "interrupt_type": 5, "resume_data": "{}"})
    assert resumed.json()["code"] == 4000


def _running_run(server: LiveServer, workflow_id: str) -> str | None:
    """The workflow's run that is running now, if any (a sync run's id is known only at its end)."""
    async def read(store: Store) -> str | None:
        async with store.engine.connect() as conn:
            return (await conn.execute(select(t.runs.c.execute_id).where(
                t.runs.c.workflow_id == workflow_id, t.runs.c.status == RUNNING))).scalar()

    found: str | None = server.call(read)
    return found


def test_idempotency_key_names_one_run(http: httpx.Client, ids: dict[str, str]) -> None:
    body = {"workflow_id": ids["llm"], "parameters": {"input": "x"}}
    headers = {"Idempotency-Key": f"order-{time.time()}"}
    first = http.post("/v1/workflow/stream_run", json=body, headers=headers)
    second = http.post("/v1/workflow/stream_run", json=body, headers=headers)
    assert first.headers["X-Knotflow-Execute-Id"] == second.headers["X-Knotflow-Execute-Id"]
    assert [e for e in parse(first.text) if e[1] != "PING"] == [e for e in parse(second.text) if e[1] != "PING"]

    sync_headers = {"Idempotency-Key": f"sync-{time.time()}"}
    one = http.post("/v1/workflow/run", json=body, headers=sync_headers).json()
    two = http.post("/v1/workflow/run", json=body, headers=sync_headers).json()
    assert one["code"] == two["code"] == 0
    assert one["execute_id"] == two["execute_id"] and one["data"] == two["data"] and one["usage"] == two["usage"]

    other = http.post("/v1/workflow/run", json={"workflow_id": ids["forms"]}, headers=sync_headers).json()
    assert other["code"] == 4000 and "already names run" in other["msg"]
    too_long = http.post("/v1/workflow/run", json=body, headers={"Idempotency-Key": "k" * 300}).json()
    assert too_long["code"] == 4000

    refused_key = {"Idempotency-Key": f"refused-{time.time()}"}  # a refused request frees its key
    assert http.post("/v1/workflow/run", json={"workflow_id": "404"}, headers=refused_key).json()["code"] == 4200
    assert http.post("/v1/workflow/run", json=body, headers=refused_key).json()["code"] == 0


def test_concurrent_runs_per_token_are_limited(http: httpx.Client, ids: dict[str, str]) -> None:
    body = {"workflow_id": ids["llm"], "parameters": {"input": "x"}}
    with http.stream("POST", "/v1/workflow/stream_run", json=body) as one, \
            http.stream("POST", "/v1/workflow/stream_run", json=body) as two:
        readers = [Reader(one), Reader(two)]  # kept: a dropped reader closes its stream, cancelling its run
        for reader in readers:
            reader.take(1)
        third = http.post("/v1/workflow/stream_run", json=body).json()
        assert third["code"] == 4013 and "KNOTFLOW_MAX_CONCURRENT_RUNS" in third["msg"]
        for stream in (one, two):
            http.post("/v1/workflow/cancel", json={"workflow_id": ids["llm"],
                                                   "execute_id": stream.headers["X-Knotflow-Execute-Id"]})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the slots are free once the runs ended
        answer = http.post("/v1/workflow/stream_run", json=body, headers={"Idempotency-Key": f"a{time.time()}"})
        if answer.headers.get("content-type", "").startswith("text/event-stream"):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the run slots were not freed")


def test_requests_per_second_per_token(tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = Settings(data_dir=tmp_path_factory.mktemp("rps"), port=free_port(), requests_per_second=3)
    with serving(settings) as live, httpx.Client(base_url=live.base_url, timeout=10, headers={
            "Authorization": f"Bearer {live.token()}"}) as client:
        codes = [client.get("/v1/workflows").json()["code"] for _ in range(6)]
        assert codes[:3] == [0, 0, 0] and 4013 in codes[3:]
        time.sleep(1.1)
        assert client.get("/v1/workflows").json()["code"] == 0
