"""Loop, Batch and Sub-workflow through cozepy: a question asked inside a loop iteration, inside two batch items and
two sub-workflows down pauses the run durably — each answer goes to a new server process after the one that asked
was killed with SIGKILL — and the trace and run history place every inner execution under its composite."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from cozepy import Coze, SyncHTTPClient, TokenAuth, WorkflowEventType

from knotflow.config import Settings
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port
from tests.api.test_resume import ServerProcess, processes, until_interrupt
from tests.nodes.test_composites import BATCH, LOOP, SUB, asking_batch, asking_loop, deep_asking, passing_on

__all__ = ["processes"]  # the fixture, used by name


class Restarts:
    """One server at a time on a fixed port and data dir; each `next()` SIGKILLs the running one first."""

    def __init__(self, settings: Settings, token: str, log: Path, started: list[ServerProcess]) -> None:
        self.settings, self.token, self.log, self.started = settings, token, log, started
        self.port = free_port()

    def next(self) -> Coze:
        if self.started:
            self.started[-1].kill()
            assert self.started[-1].process.returncode == -signal.SIGKILL
        self.started.append(ServerProcess(self.settings, self.port, self.log))
        return Coze(auth=TokenAuth(self.token), base_url=f"http://127.0.0.1:{self.port}",
                    http_client=SyncHTTPClient(timeout=30))

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30,
                            headers={"Authorization": f"Bearer {self.token}"})


def answer_each(restarts: Restarts, workflow_id: str, first: Any, reply: Callable[[Any], str]) -> tuple[
        list[Any], list[Any]]:
    """Answer every question (each in a new process) until the run ends: the interrupts seen, and the final
    events."""
    asked = [first]
    while True:
        events = list(restarts.next().workflows.runs.resume(
            workflow_id=workflow_id, event_id=asked[-1].interrupt_data.event_id, resume_data=reply(asked[-1]),
            interrupt_type=asked[-1].interrupt_data.type))
        if events and events[-1].event == WorkflowEventType.INTERRUPT:
            asked.append(events[-1].interrupt)
            continue
        return asked, events


def trace(restarts: Restarts, execute_id: str) -> list[dict[str, Any]]:
    with restarts.http() as http:
        nodes: list[dict[str, Any]] = http.get("/work_flow", params={"execute_id": execute_id}).json()["data"]["nodes"]
    return nodes


def history(restarts: Restarts, workflow_id: str, execute_id: str) -> dict[str, Any]:
    with restarts.http() as http:
        item: dict[str, Any] = http.get(f"/v1/workflows/{workflow_id}/run_histories/{execute_id}").json()["data"][0]
    return item


def first_question(restarts: Restarts, workflow_id: str, parameters: dict[str, Any]) -> tuple[Any, str]:
    """Start the run on a new server; its first interrupt and the run's execute_id."""
    _, first = until_interrupt(restarts.next().workflows.runs.stream(workflow_id=workflow_id, parameters=parameters))
    return first, first.interrupt_data.event_id.split("/")[0]


def seeded(tmp_path: Path, database_url: str, *canvases: dict[str, Any]) -> tuple[Settings, list[str], str]:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    seeding = LiveServer(settings, "")
    return settings, [seeding.publish(canvas) for canvas in canvases], seeding.token()


def test_a_question_inside_loop_iterations_survives_kills(tmp_path: Path, database_url: str,
                                                          processes: list[ServerProcess]) -> None:
    settings, (workflow_id,), token = seeded(tmp_path, database_url, asking_loop())
    restarts = Restarts(settings, token, tmp_path / "serve.log", processes)
    first, execute_id = first_question(restarts, workflow_id, {"words": ["sun", "moon"]})
    assert first.node_title == "Ask" and first.interrupt_data.type == 5
    # The answer is checked against the asking node inside the loop before the run is claimed: it still waits.
    with restarts.http() as http:
        bad = http.post("/v1/workflow/stream_resume", json={
            "workflow_id": workflow_id, "event_id": first.interrupt_data.event_id, "interrupt_type": 5,
            "resume_data": "[1, 2]"})
    assert bad.json()["code"] == 4000, bad.text
    answers = iter(["1", "2"])
    asked, final = answer_each(restarts, workflow_id, first, lambda _: json.dumps({"x": next(answers)}))
    assert len(asked) == 2 and [e.event for e in final] == [WorkflowEventType.MESSAGE], processes[-1].output()
    assert json.loads(final[0].message.content) == {"pairs": ["sun=1", "moon=2"]}

    nodes = trace(restarts, execute_id)
    inner = [(n["node_id"], n["iteration"]) for n in nodes if n["parent_node_id"] == LOOP and n["status"] == "Success"]
    # Each iteration's nodes ran once to success, the text before the question not again on resume.
    assert sorted(inner) == [("21001", 0), ("21001", 1), ("21007", 0), ("21007", 1), ("21008", 0), ("21008", 1)]
    # The Loop itself is recorded each time it paused (as every node that asks), then when it finished.
    assert [(n["status"], n["parent_node_id"]) for n in nodes if n["node_id"] == LOOP] == [
        ("Interrupted", None), ("Interrupted", None), ("Success", None)]
    status = history(restarts, workflow_id, execute_id)["node_execute_status"]
    assert status["Text[1]"]["loop_index"] == 1 and "batch_index" not in status["Text[1]"]
    assert status["Loop"]["node_id"] == LOOP and status["Loop"]["is_finish"]


def test_questions_inside_two_batch_items_survive_kills(tmp_path: Path, database_url: str,
                                                        processes: list[ServerProcess]) -> None:
    settings, (workflow_id,), token = seeded(tmp_path, database_url, asking_batch())
    restarts = Restarts(settings, token, tmp_path / "serve.log", processes)
    first, execute_id = first_question(restarts, workflow_id, {"words": ["sun", "moon"]})
    # Both items asked; each answer goes to the item whose question it was, whichever asked first.
    shown: list[str] = []

    def reply(interrupt: Any) -> str:
        shown.append(interrupt.interrupt_data.event_id)
        return json.dumps({"x": f"answer {len(shown)}"})

    asked, final = answer_each(restarts, workflow_id, first, reply)
    assert len(asked) == 2 and len(set(shown)) == 2, processes[-1].output()
    assert [e.event for e in final] == [WorkflowEventType.MESSAGE], processes[-1].output()
    pairs = json.loads(final[0].message.content)["pairs"]
    assert sorted(pairs) in (["moon=answer 1", "sun=answer 2"], ["moon=answer 2", "sun=answer 1"])
    assert [p.split("=")[0] for p in pairs] == ["sun", "moon"]  # collected in the items' order

    nodes = trace(restarts, execute_id)
    done = sorted((n["node_id"], n["iteration"]) for n in nodes if n["parent_node_id"] == BATCH
                  and n["status"] == "Success")
    assert done == [("28007", 0), ("28007", 1), ("28008", 0), ("28008", 1)]
    status = history(restarts, workflow_id, execute_id)["node_execute_status"]
    assert {status["Text[0]"]["batch_index"], status["Text[1]"]["batch_index"]} == {0, 1}


def test_a_question_two_sub_workflows_down_survives_a_kill(tmp_path: Path, database_url: str,
                                                          processes: list[ServerProcess]) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    seeding = LiveServer(settings, "")
    bottom = seeding.publish(deep_asking())
    middle = seeding.publish(passing_on(bottom))
    top = seeding.publish(passing_on(middle, output="out"))
    restarts = Restarts(settings, seeding.token(), tmp_path / "serve.log", processes)
    first, execute_id = first_question(restarts, top, {"name": "Ann"})
    assert first.node_title == "Deep"
    # A new version of the bottom workflow, published while the run waits, is not the one the run goes on in.
    changed = deep_asking()
    changed["nodes"][2]["data"]["inputs"]["concatParams"][0]["input"] = c.literal("changed")
    seeding.publish(changed, workflow_id=bottom)
    asked, final = answer_each(restarts, top, first, lambda _: json.dumps({"x": "deep answer"}))
    assert len(asked) == 1 and [e.event for e in final] == [WorkflowEventType.MESSAGE], processes[-1].output()
    assert json.loads(final[0].message.content) == {"out": "Ann: deep answer"}  # not "changed"

    nodes = trace(restarts, execute_id)
    deep = [(n["status"], n["parent_node_id"]) for n in nodes if n["node_id"] == "300"]
    assert deep == [("Interrupted", SUB), ("Success", SUB)]
    assert {n["iteration"] for n in nodes} == {None}  # a child workflow runs no iteration
    # The top workflow's End is the run's; the children's Ends are recorded under their Sub-workflow nodes.
    assert [n["parent_node_id"] for n in nodes if n["node_id"] == "900001"] == [SUB, SUB, None]
    status = history(restarts, top, execute_id)["node_execute_status"]
    child = status["Child"]
    assert child["sub_execute_id"] == child["node_execute_uuid"] == status["Child/Deep"]["sub_execute_id"]
