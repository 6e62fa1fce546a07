"""Durable interrupts end to end: Input nodes pause a stream, stream_resume goes on, in any process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import pytest
from cozepy import Coze, CozeAPIError, TokenAuth, WorkflowEventType

from tests import canvases as c
from tests.api.conftest import LiveServer, free_port

FORM = json.dumps([{"type": "string", "name": "city", "required": True},
                   {"type": "integer", "name": "days", "required": False}])


def form(node_id: str, title: str) -> dict[str, Any]:
    return c.node(node_id, "30", title, inputs={"outputSchema": FORM}, outputs=json.loads(FORM))


def two_questions() -> dict[str, Any]:
    return c.canvas(
        [c.start(), form("301", "Where"), form("302", "Again"),
         c.end_return(first=c.ref("301", "city"), days=c.ref("301", "days", "integer"), second=c.ref("302", "city"))],
        [c.edge("100001", "301"), c.edge("301", "302"), c.edge("302", "900001")],
    )


@pytest.fixture(scope="module")
def asking_id(live: LiveServer) -> str:
    return live.publish(two_questions(), name="asking")


@pytest.fixture()
def coze(live: LiveServer, token: str) -> Coze:
    return Coze(auth=TokenAuth(token), base_url=live.base_url)


def until_interrupt(events: Any) -> tuple[list[Any], Any]:
    seen = list(events)
    interrupts = [e for e in seen if e.event == WorkflowEventType.INTERRUPT]
    assert len(interrupts) == 1 and seen[-1] is interrupts[0]
    return seen, interrupts[0].interrupt


def test_two_questions_in_a_row_then_done(coze: Coze, asking_id: str, http: httpx.Client) -> None:
    seen, interrupt = until_interrupt(coze.workflows.runs.stream(workflow_id=asking_id))
    assert seen[0].message.node_title == "Where" and seen[0].message.node_is_finish
    assert json.loads(seen[0].message.content) == {"content": FORM, "content_type": "form_schema"}
    assert interrupt.node_title == "Where" and interrupt.interrupt_data.type == 5
    execute_id, _, event = interrupt.interrupt_data.event_id.partition("/")
    assert execute_id.isdigit() and event.isdigit()
    history = http.get(f"/v1/workflows/{asking_id}/run_histories/{execute_id}").json()["data"][0]
    assert history["execute_status"] == "Interrupted"

    seen, second = until_interrupt(coze.workflows.runs.resume(
        workflow_id=asking_id, event_id=interrupt.interrupt_data.event_id,
        resume_data=json.dumps({"city": "Hangzhou", "days": "2"}), interrupt_type=5))
    assert second.node_title == "Again" and second.interrupt_data.event_id != interrupt.interrupt_data.event_id
    assert second.interrupt_data.event_id.startswith(execute_id + "/")

    final = list(coze.workflows.runs.resume(
        workflow_id=asking_id, event_id=second.interrupt_data.event_id,
        resume_data=json.dumps({"city": "Paris"}), interrupt_type=5))
    assert [e.event for e in final] == [WorkflowEventType.MESSAGE]
    assert json.loads(final[0].message.content) == {"first": "Hangzhou", "days": 2, "second": "Paris"}
    history = http.get(f"/v1/workflows/{asking_id}/run_histories/{execute_id}").json()["data"][0]
    assert history["execute_status"] == "Success"


def resume_code(http: httpx.Client, body: dict[str, Any]) -> int:
    response = http.post("/v1/workflow/stream_resume", json=body)
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    return int(response.json()["code"])


def test_guards_leave_the_run_resumable(coze: Coze, asking_id: str, http: httpx.Client, live: LiveServer) -> None:
    _, interrupt = until_interrupt(coze.workflows.runs.stream(workflow_id=asking_id))
    event_id = interrupt.interrupt_data.event_id
    good = {"workflow_id": asking_id, "event_id": event_id, "interrupt_type": 5,
            "resume_data": json.dumps({"city": "Rome"})}
    other_workflow = live.publish(two_questions(), name="other")
    assert resume_code(http, {**good, "workflow_id": other_workflow}) == 4200
    assert resume_code(http, {**good, "event_id": event_id.split("/")[0] + "/1"}) == 4200
    assert resume_code(http, {**good, "event_id": "nonsense"}) == 4000
    assert resume_code(http, {**good, "interrupt_type": 2}) == 4000
    assert resume_code(http, {**good, "resume_data": "{}"}) == 4000  # city is required
    assert resume_code(http, {**good, "resume_data": '{"city": "x", "days": "many"}'}) == 4000
    assert resume_code(http, {**good, "connector_id": "999"}) == 4200
    # After all of that the run still waits, and the right answer goes through once.
    _, second = until_interrupt(coze.workflows.runs.resume(
        workflow_id=asking_id, event_id=event_id, resume_data=good["resume_data"], interrupt_type=5))
    assert second.node_title == "Again"
    with pytest.raises(CozeAPIError) as again:
        list(coze.workflows.runs.resume(workflow_id=asking_id, event_id=event_id,
                                        resume_data=good["resume_data"], interrupt_type=5))
    assert again.value.code == 4000


def test_concurrent_resumes_exactly_one_wins(coze: Coze, asking_id: str, http: httpx.Client) -> None:
    _, interrupt = until_interrupt(coze.workflows.runs.stream(workflow_id=asking_id))
    body = {"workflow_id": asking_id, "event_id": interrupt.interrupt_data.event_id, "interrupt_type": 5,
            "resume_data": json.dumps({"city": "Oslo"})}
    results: list[str] = []

    def resume() -> None:
        response = http.post("/v1/workflow/stream_resume", json=body)
        results.append(response.headers["content-type"].split(";")[0])

    threads = [threading.Thread(target=resume) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["application/json"] * 3 + ["text/event-stream"]


def test_sync_run_of_an_asking_workflow_fails_with_6039(http: httpx.Client, asking_id: str) -> None:
    body = http.post("/v1/workflow/run", json={"workflow_id": asking_id}).json()
    assert body["code"] == 6039 and "stream_resume" in body["msg"]
    history = http.get(f"/v1/workflows/{asking_id}/run_histories/{body['execute_id']}").json()["data"][0]
    assert history["execute_status"] == "Fail"


def test_resume_in_another_server_process(coze: Coze, asking_id: str, live: LiveServer, token: str) -> None:
    _, interrupt = until_interrupt(coze.workflows.runs.stream(workflow_id=asking_id))
    port = free_port()
    env = {**os.environ, "KNOTFLOW_DATA_DIR": str(live.settings.data_dir)}
    process = subprocess.Popen([sys.executable, "-m", "knotflow.cli", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        other = Coze(auth=TokenAuth(token), base_url=f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and process.poll() is None, "the second server did not start"
                time.sleep(0.1)
        _, second = until_interrupt(other.workflows.runs.resume(
            workflow_id=asking_id, event_id=interrupt.interrupt_data.event_id,
            resume_data=json.dumps({"city": "Lima"}), interrupt_type=5))
        assert second.node_title == "Again"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_unanswered_questions_expire(live: LiveServer, coze: Coze, asking_id: str, http: httpx.Client) -> None:
    from knotflow.config import Settings
    from knotflow.service.runs import RunService

    _, interrupt = until_interrupt(coze.workflows.runs.stream(workflow_id=asking_id))
    execute_id = interrupt.interrupt_data.event_id.split("/")[0]

    async def sweep(store: Any) -> None:
        await RunService(store, Settings(data_dir=live.settings.data_dir, interrupt_ttl=-1.0)).sweep()

    live.call(sweep)
    history = http.get(f"/v1/workflows/{asking_id}/run_histories/{execute_id}").json()["data"][0]
    assert history["execute_status"] == "Fail" and "not answered" in history["error_message"]
    assert resume_code(http, {"workflow_id": asking_id, "event_id": interrupt.interrupt_data.event_id,
                              "interrupt_type": 5, "resume_data": '{"city": "x"}'}) == 4000
