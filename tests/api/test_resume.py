"""Durable interrupts end to end: Input and Question nodes pause a stream, stream_resume goes on, in any process,
even after the process that asked was killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cozepy import Coze, CozeAPIError, SyncHTTPClient, TokenAuth, WorkflowEventType, WorkflowExecuteStatus

from knotflow.config import Settings
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port, serving
from tests.api.test_wire import parse_frames
from tests.fakes.model_server import FakeModelServer, Reply, write_models_file
from tests.nodes.test_question import LLM_PARAM, MODEL_TYPE

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
    # cozepy reads an interrupted run as Coze's cloud shows it: still running; the trace says Interrupted.
    history = http.get(f"/v1/workflows/{asking_id}/run_histories/{execute_id}").json()["data"][0]
    assert history["execute_status"] == "Running"
    assert coze.workflows.runs.run_histories.retrieve(workflow_id=asking_id, execute_id=execute_id).execute_status \
        == WorkflowExecuteStatus.RUNNING
    assert http.get("/work_flow", params={"execute_id": execute_id}).json()["data"]["status"] == "Interrupted"

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


def test_concurrent_resumes_in_two_processes_exactly_one_wins(tmp_path: Path, database_url: str,
                                                             processes: list[ServerProcess]) -> None:
    """The compare-and-swap holds across processes sharing the database (SQLite file, or PostgreSQL)."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    seeding = LiveServer(settings, "")
    workflow_id, token = seeding.publish(two_questions(), name="two"), seeding.token()
    processes.extend(ServerProcess(settings, free_port(), tmp_path / f"serve-{i}.log") for i in range(2))
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{p.port}", headers={"Authorization": f"Bearer {token}"},
                            timeout=30) for p in processes]
    with clients[0].stream("POST", "/v1/workflow/stream_run", json={"workflow_id": workflow_id}) as response:
        _, event, data = parse_frames(response.read().decode())[-1]
    assert event == "Interrupt"
    interrupt = data["interrupt_data"]
    body = {"workflow_id": workflow_id, "event_id": interrupt["event_id"], "interrupt_type": 5,
            "resume_data": json.dumps({"city": "Oslo"})}
    results: list[str] = []

    def resume(client: httpx.Client) -> None:
        with client.stream("POST", "/v1/workflow/stream_resume", json=body) as answer:
            answer.read()
            results.append(answer.headers["content-type"].split(";")[0])

    threads = [threading.Thread(target=resume, args=(clients[i % 2],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for client in clients:
        client.close()
    assert sorted(results) == ["application/json"] * 5 + ["text/event-stream"], [p.output() for p in processes]


def asking_canvas() -> dict[str, Any]:
    """A text question, then an option question whose three ports all lead to the End node."""
    text = c.node("181", "18", "Where", inputs={
        "inputParameters": [c.param("name", c.ref("100001", "name"))], "question": "Hi {{name}}, where to?",
        "answer_type": "text", "extra_output": False, "limit": 3,
    }, outputs=[{"name": "USER_RESPONSE", "type": "string", "required": True}])
    option = c.node("182", "18", "Season", inputs={
        "inputParameters": [], "question": "Which season?", "answer_type": "option", "option_type": "static",
        "options": [{"name": "spring"}, {"name": "autumn"}],
    }, outputs=[{"name": "optionId", "type": "string"}, {"name": "optionContent", "type": "string"}])
    end = c.end_return(where=c.ref("181", "USER_RESPONSE"), season=c.ref("182", "optionContent"),
                       option=c.ref("182", "optionId"))
    return c.canvas([c.start(("name", "string")), text, option, end],
                    [c.edge("100001", "181"), c.edge("181", "182"), c.edge("182", "900001", "branch_0"),
                     c.edge("182", "900001", "branch_1"), c.edge("182", "900001", "default")])


class ServerProcess:
    """`knotflow serve` as a child process on a data dir; killed with SIGKILL, so nothing is flushed on exit."""

    def __init__(self, settings: Settings, port: int, log: Path) -> None:
        self.port, self.log = port, log
        env = {**os.environ, "KNOTFLOW_DATA_DIR": str(settings.data_dir),
               "KNOTFLOW_DATABASE_URL": settings.resolved_database_url()}
        with log.open("ab") as sink:
            self.process = subprocess.Popen([sys.executable, "-m", "knotflow.cli", "serve", "--port", str(port)],
                                            env=env, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"knotflow serve did not start on port {port}:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


STARTUP_SECONDS = 30


@pytest.fixture()
def processes() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        yield started
    finally:
        for server in started:
            server.kill()


def test_resume_after_kill_and_restart(tmp_path: Path, database_url: str, processes: list[ServerProcess]) -> None:
    """Every interrupt survives SIGKILL of the server that asked: a new process on the same data dir (and
    database) and port takes the answer, twice in a row, and the run ends with the right output."""
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    seeding = LiveServer(settings, "")
    workflow_id, token = seeding.publish(asking_canvas(), name="asking"), seeding.token()
    port, log = free_port(), tmp_path / "serve.log"

    def restart() -> Coze:
        if processes:
            processes[-1].kill()
            assert processes[-1].process.returncode == -signal.SIGKILL
        processes.append(ServerProcess(settings, port, log))
        # A client timeout turns a server that never answers into a failure instead of a hung test.
        return Coze(auth=TokenAuth(token), base_url=f"http://127.0.0.1:{port}",
                    http_client=SyncHTTPClient(timeout=30))

    seen, first = until_interrupt(restart().workflows.runs.stream(workflow_id=workflow_id,
                                                                 parameters={"name": "Ann"}))
    assert first.node_title == "Where" and first.interrupt_data.type == 2
    assert json.loads(seen[0].message.content)["messages"][0]["content"] == "Hi Ann, where to?"
    execute_id = first.interrupt_data.event_id.split("/")[0]

    seen, second = until_interrupt(restart().workflows.runs.resume(
        workflow_id=workflow_id, event_id=first.interrupt_data.event_id, resume_data="Lima", interrupt_type=2))
    assert second.node_title == "Season" and second.interrupt_data.event_id.startswith(execute_id + "/")
    assert json.loads(seen[0].message.content)["messages"][0]["content"] == {
        "options": [{"name": "spring"}, {"name": "autumn"}], "question": "Which season?"}

    coze = restart()
    final = list(coze.workflows.runs.resume(
        workflow_id=workflow_id, event_id=second.interrupt_data.event_id, resume_data="autumn", interrupt_type=2))
    assert [e.event for e in final] == [WorkflowEventType.MESSAGE], processes[-1].output()
    assert json.loads(final[0].message.content) == {"where": "Lima", "season": "autumn", "option": "B"}
    history = coze.workflows.runs.run_histories.retrieve(workflow_id=workflow_id, execute_id=execute_id)
    assert history.execute_status == "Success"


def test_unanswered_questions_expire(live: LiveServer, coze: Coze, asking_id: str, http: httpx.Client) -> None:
    from knotflow.service.sweeper import Sweeper

    _, interrupt = until_interrupt(coze.workflows.runs.stream(workflow_id=asking_id))
    execute_id = interrupt.interrupt_data.event_id.split("/")[0]

    async def sweep(store: Any) -> None:
        await Sweeper(store, Settings(data_dir=live.settings.data_dir, interrupt_ttl=-1.0)).sweep()

    live.call(sweep)
    history = http.get(f"/v1/workflows/{asking_id}/run_histories/{execute_id}").json()["data"][0]
    assert history["execute_status"] == "Fail" and "not answered" in history["error_message"]
    assert resume_code(http, {"workflow_id": asking_id, "event_id": interrupt.interrupt_data.event_id,
                              "interrupt_type": 5, "resume_data": '{"city": "x"}'}) == 4000


@pytest.fixture(scope="module")
def model_live(tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModelServer) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("question-models")
    write_models_file(data_dir, {MODEL_TYPE: fake_model})
    settings = Settings(data_dir=data_dir, port=free_port())
    with serving(settings) as server:
        yield server


def test_option_answer_matched_by_the_model(model_live: LiveServer, fake_model: FakeModelServer) -> None:
    canvas = asking_canvas()
    canvas["nodes"][2]["data"]["inputs"]["llmParam"] = LLM_PARAM
    workflow_id, token = model_live.publish(canvas, name="seasons"), model_live.token()
    coze = Coze(auth=TokenAuth(token), base_url=model_live.base_url, http_client=SyncHTTPClient(timeout=30))
    _, first = until_interrupt(coze.workflows.runs.stream(workflow_id=workflow_id, parameters={"name": "Bo"}))
    _, second = until_interrupt(coze.workflows.runs.resume(
        workflow_id=workflow_id, event_id=first.interrupt_data.event_id, resume_data="Oslo", interrupt_type=2))
    fake_model.script(Reply(content="1", usage=(30, 1)))
    final = list(coze.workflows.runs.resume(workflow_id=workflow_id, event_id=second.interrupt_data.event_id,
                                            resume_data="when the leaves fall", interrupt_type=2))
    assert [e.event for e in final] == [WorkflowEventType.MESSAGE]
    assert json.loads(final[0].message.content) == {"where": "Oslo", "season": "autumn", "option": "B"}
    assert final[0].message.usage is not None and final[0].message.usage.input_count == 30
    assert fake_model.requests[-1]["messages"][1] == {"role": "user", "content": "when the leaves fall"}


def test_option_question_on_the_wire(live: LiveServer, http: httpx.Client) -> None:
    """As Coze Studio: one Message (content_type "text", not streamed) whose content is the interrupt payload with
    the options inside, then the Interrupt carrying the same payload and the node's title."""
    workflow_id = live.publish(asking_canvas(), name="wire")
    frames = parse_frames(http.post("/v1/workflow/stream_run", json={"workflow_id": workflow_id,
                                                                     "parameters": {"name": "Al"}}).text)
    body = {"workflow_id": workflow_id, "event_id": frames[-1][2]["interrupt_data"]["event_id"], "interrupt_type": 2,
            "resume_data": "Rome"}
    frames = parse_frames(http.post("/v1/workflow/stream_resume", json=body).text)
    assert [(i, e) for i, e, _ in frames] == [(0, "Message"), (1, "Interrupt")]
    message, interrupt = frames[0][2], frames[1][2]
    payload = {"messages": [{"type": "question", "content_type": "option", "content": {
        "options": [{"name": "spring"}, {"name": "autumn"}], "question": "Which season?"}, "id": "182_0"}]}
    assert message == {"content": json.dumps(payload, separators=(",", ":")), "content_type": "text",
                       "node_title": "Season", "node_seq_id": "0", "node_is_finish": True, "node_type": "Question",
                       "node_id": "182", "node_execute_uuid": ""}
    assert interrupt["node_title"] == "Season"
    assert interrupt["interrupt_data"]["type"] == 2 and interrupt["interrupt_data"]["data"] == message["content"]
