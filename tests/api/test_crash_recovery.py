"""Nothing lost, nothing stuck: a server SIGKILLed again and again with runs of every kind in flight (streams,
sync and async runs, a resume in flight, runs waiting for an answer). After each restart every run ends within
1.5 leases as `Success`, `Fail` with a reason, or `Interrupted` with a question that can be answered — and is
answered, and goes on."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from knotflow.config import Settings
from knotflow.store import tables as t
from knotflow.store.records import FAIL, INTERRUPTED, RUNNING, SUCCESS
from knotflow.store.repository import Store
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port
from tests.api.test_resume import ServerProcess, form, processes
from tests.fakes.model_server import FakeModelServer, Reply, write_models_file
from tests.nodes.test_llm import LLM_ID, MODEL_TYPE, llm_node

__all__ = ["processes"]

LEASE = 1.0  # seconds: short, so the test waits little for lapsed leases
CYCLES = 3
QUESTION = "140000"


def slow_answer() -> Reply:
    return Reply(content=["tok "] * 60, usage=(5, 60), delay=0.05)  # about 3 s of streaming


def llm_canvas() -> dict[str, Any]:
    """Start(input) → LLM → End answering with the LLM's text as it streams."""
    return c.canvas([c.start(("input", "string")), llm_node(),
                     c.end_answer("{{output}}", streaming=True, output=c.ref(LLM_ID, "output"))],
                    [c.edge("100001", LLM_ID), c.edge(LLM_ID, "900001")])


def question_then_llm() -> dict[str, Any]:
    """Start → Question (free text) → LLM on the answer → End: a resume that runs a slow model."""
    question = c.node(QUESTION, "18", "Ask", inputs={
        "inputParameters": [], "question": "What then?", "answer_type": "text", "extra_output": False, "limit": 3,
    }, outputs=[{"name": "USER_RESPONSE", "type": "string", "required": True}])
    llm = llm_node()
    llm["data"]["inputs"]["inputParameters"] = [c.param("input", c.ref(QUESTION, "USER_RESPONSE"))]
    return c.canvas([c.start(("input", "string")), question, llm,
                     c.end_answer("{{output}}", streaming=True, output=c.ref(LLM_ID, "output"))],
                    [c.edge("100001", QUESTION), c.edge(QUESTION, LLM_ID), c.edge(LLM_ID, "900001")])


def forms() -> dict[str, Any]:
    return c.canvas([c.start(), form("301", "Where"), c.end_return(city=c.ref("301", "city"))],
                    [c.edge("100001", "301"), c.edge("301", "900001")])


@pytest.fixture()
def slow_model() -> Iterator[FakeModelServer]:
    server = FakeModelServer(default=slow_answer()).start()
    try:
        yield server
    finally:
        server.stop()


def event_of(stream: str) -> str | None:
    """The event id of a stream's Interrupt, if it ended with one."""
    if "event: Interrupt" not in stream:
        return None
    data = stream.split("event: Interrupt\ndata: ")[1].split("\n")[0]
    event_id: str = json.loads(data)["interrupt_data"]["event_id"]
    return event_id


def in_background(work: Callable[[], Any]) -> threading.Thread:
    def quietly() -> None:
        # The server is killed under this request: what matters is how the run was recorded.
        with contextlib.suppress(httpx.HTTPError):
            work()

    thread = threading.Thread(target=quietly, daemon=True)
    thread.start()
    return thread


def runs_by_status(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    async def read(store: Store) -> list[dict[str, Any]]:
        async with store.engine.connect() as conn:
            return [dict(row) for row in (await conn.execute(select(t.runs))).mappings()]

    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in LiveServer(settings, "").call(read):
        grouped.setdefault(row["status"], []).append(row)
    return grouped


def open_question(settings: Settings, execute_id: str) -> tuple[str, int]:
    """The run's latest question, which must be unanswered: its event id and interrupt type."""
    async def read(store: Store) -> Any:
        async with store.engine.connect() as conn:
            return (await conn.execute(select(t.interrupts).where(t.interrupts.c.execute_id == execute_id)
                                       .order_by(t.interrupts.c.created_at.desc()).limit(1))).mappings().first()

    row = LiveServer(settings, "").call(read)
    assert row is not None and row["resumed_at"] is None, f"run {execute_id} waits on no answerable question"
    return f"{execute_id}/{row['event_id']}", int(row["kind"])


def test_repeated_sigkill_with_runs_of_every_kind_in_flight(tmp_path: Path, database_url: str, slow_model:
                                                            FakeModelServer, processes: list[ServerProcess],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNOTFLOW_RUN_LEASE", str(LEASE))
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    settings.data_dir.mkdir(exist_ok=True)
    write_models_file(settings.data_dir, {MODEL_TYPE: slow_model})
    seeding = LiveServer(settings, "")
    from knotflow.models.registry import load_registry

    models = load_registry(settings.resolved_models_file())
    llm_id = seeding.publish(llm_canvas(), name="llm", models=models)
    asking_id = seeding.publish(question_then_llm(), name="ask-then-llm", models=models)
    forms_id = seeding.publish(forms(), name="forms")
    token = seeding.token()
    log = tmp_path / "serve.log"
    base = ""

    def restart() -> None:
        # A fresh port each time: another process on the machine may take a port between a kill and a start.
        nonlocal base
        port = free_port()
        processes.append(ServerProcess(settings, port, log))
        base = f"http://127.0.0.1:{port}"

    def client() -> httpx.Client:
        return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def stream(body: dict[str, Any], path: str = "/v1/workflow/stream_run") -> str:
        with client() as http:
            return http.post(path, json=body).text

    for cycle in range(CYCLES):
        restart()
        # A question answered now runs the slow model: its resume is in flight when the server dies.
        asked = event_of(stream({"workflow_id": asking_id, "parameters": {"input": "x"}}))
        assert asked is not None, processes[-1].output()
        assert event_of(stream({"workflow_id": forms_id})) is not None  # a run that waits through the kills
        threads = [
            *(in_background(lambda: stream({"workflow_id": llm_id, "parameters": {"input": "s"}}))
              for _ in range(4)),
            *(in_background(lambda: client().post("/v1/workflow/run", json={
                "workflow_id": llm_id, "parameters": {"input": "y"}})) for _ in range(2)),
            in_background(lambda: client().post("/v1/workflow/run", json={
                "workflow_id": llm_id, "parameters": {"input": "a"}, "is_async": True})),
            in_background(lambda event=asked, answer=f"cycle {cycle}": stream(
                {"workflow_id": asking_id, "event_id": event, "interrupt_type": 2, "resume_data": answer},
                "/v1/workflow/stream_resume")),
        ]
        deadline = time.monotonic() + 10
        while len(slow_model.requests) < 8 * (cycle + 1) and time.monotonic() < deadline:
            time.sleep(0.05)  # every model call started: the runs are mid-stream
        processes[-1].kill()
        for thread in threads:
            thread.join(timeout=30)
        assert runs_by_status(settings).get(RUNNING), "the kill left no run in flight: the test proves nothing"

    restart()
    started = time.monotonic()
    while runs_by_status(settings).get(RUNNING) and time.monotonic() - started < 1.5 * LEASE + 5:
        time.sleep(0.1)
    statuses = runs_by_status(settings)
    assert not statuses.get(RUNNING), f"runs still Running after 1.5 leases: {statuses[RUNNING]}"
    assert set(statuses) <= {SUCCESS, FAIL, INTERRUPTED}
    assert all(row["error_message"] for row in statuses.get(FAIL, [])), "a failed run without a reason"
    assert len(statuses.get(FAIL, [])) >= 4 * CYCLES  # the streams cut by each kill

    # Every waiting run can be answered: the resumes cut by a kill got their question back.
    waiting = statuses.get(INTERRUPTED, [])
    assert len(waiting) >= 2 * CYCLES
    slow_model.default = Reply(content=["done"], usage=(1, 1))
    for row in waiting:
        event_id, kind = open_question(settings, row["execute_id"])
        answer = json.dumps({"city": "Oslo"}) if kind == 5 else "again"
        answered = stream({"workflow_id": row["workflow_id"], "event_id": event_id, "interrupt_type": kind,
                           "resume_data": answer}, "/v1/workflow/stream_resume")
        assert "event: Done" in answered and "event: Error" not in answered, answered


def chat_events(base: str, token: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A chatflow chat's SSE events (name, data) as Coze's /v1/workflows/chat streams them."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        text = http.post("/v1/workflows/chat", json=body).text
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        if "event" in fields:
            data = fields.get("data", "").strip()
            events.append((fields["event"].strip(), json.loads(data) if data.startswith("{") else {}))
    return events


def test_a_chat_answer_cut_short_by_a_kill_is_answered_by_the_next_chat(
        tmp_path: Path, database_url: str, slow_model: FakeModelServer, processes: list[ServerProcess],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A chat that answers a chatflow's question resumes its run; when the process dies mid-resume the sweeper
    hands the question back, and the conversation still waits on it: the next chat answers it (the same run goes
    on) rather than starting a new run that asks again."""
    from tests.api.test_chat import publish, question_chatflow

    monkeypatch.setenv("KNOTFLOW_RUN_LEASE", str(LEASE))
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    settings.data_dir.mkdir(exist_ok=True)
    write_models_file(settings.data_dir, {MODEL_TYPE: slow_model})
    seeding = LiveServer(settings, "")
    workflow_id = publish(seeding, question_chatflow())
    token = seeding.token()
    log = tmp_path / "serve.log"

    def start() -> str:
        port = free_port()
        processes.append(ServerProcess(settings, port, log))
        return f"http://127.0.0.1:{port}"

    def message(text: str, conversation_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"workflow_id": workflow_id, "additional_messages": [
            {"role": "user", "content": text, "content_type": "text"}]}
        if conversation_id is not None:
            body["conversation_id"] = conversation_id
        return body

    base = start()
    asked = chat_events(base, token, message("hello"))
    assert asked[-2][0] == "conversation.chat.requires_action", asked[-3:]
    conversation_id = asked[-2][1]["conversation_id"]
    cut = in_background(lambda: chat_events(base, token, message("Bob", conversation_id)))
    deadline = time.monotonic() + 10
    while not slow_model.requests and time.monotonic() < deadline:
        time.sleep(0.05)  # the resumed run is streaming its answer
    assert slow_model.requests, processes[-1].output()
    processes[-1].kill()
    cut.join(timeout=30)
    (running,) = runs_by_status(settings)[RUNNING]

    base = start()
    deadline = time.monotonic() + 1.5 * LEASE + 5
    while runs_by_status(settings).get(RUNNING) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [row["execute_id"] for row in runs_by_status(settings).get(INTERRUPTED, [])] == [running["execute_id"]]

    async def lapse_the_dead_chat(store: Store) -> None:  # its 60 s lease, as if it had run out
        async with store.engine.begin() as conn:
            await conn.execute(t.conversations.update().values(running_until=0.0))

    seeding.call(lapse_the_dead_chat)
    slow_model.default = Reply(content=["Hi Bob"], usage=(1, 1))
    answered = chat_events(base, token, message("Bob, again", conversation_id))
    names = [name for name, _ in answered]
    assert "conversation.chat.completed" in names and "conversation.chat.requires_action" not in names, answered
    assert slow_model.requests[-1]["messages"][-1] == {"role": "user", "content": "Q: Bob, again"}
    statuses = runs_by_status(settings)
    assert [row["execute_id"] for row in statuses[SUCCESS]] == [running["execute_id"]]  # the same run, no new one
    assert not statuses.get(RUNNING) and not statuses.get(INTERRUPTED)
