"""Two LLM branches streaming into one answer-mode End, through the real server and cozepy.

Order is forced with gates on the fake model servers (a model answers only once the test opens its gate), never
with timings: a model the End waited for too early would hold its gate shut until the provider timeout failed the
run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cozepy import Coze, TokenAuth, WorkflowEvent, WorkflowEventType

from knotflow.config import Settings
from tests import canvases as c
from tests.api.conftest import LiveServer, free_port, serving
from tests.fakes.model_server import FakeModelServer, Reply, write_models_file
from tests.nodes.test_llm import llm_node

END = "900001"
FIRST, SECOND, UNRELATED = "301", "302", "303"  # node ids: `a`, `b` in the template, and a third branch
MODEL_TYPES = {FIRST: 11, SECOND: 12, UNRELATED: 13}


@pytest.fixture(scope="module")
def models() -> Iterator[dict[str, FakeModelServer]]:
    servers = {node: FakeModelServer().start() for node in MODEL_TYPES}
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def two_model_live(tmp_path_factory: pytest.TempPathFactory,
                   models: dict[str, FakeModelServer]) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("multi-stream")
    write_models_file(data_dir, {MODEL_TYPES[node]: server for node, server in models.items()})
    with serving(Settings(data_dir=data_dir, port=free_port())) as live:
        yield live


def llm(node_id: str) -> dict[str, Any]:
    node = llm_node(model_type=MODEL_TYPES[node_id])
    node["id"] = node_id
    node["data"]["nodeMeta"]["title"] = "LLM " + node_id
    return node


def publish(live: LiveServer, *, unrelated: bool) -> tuple[Coze, str]:
    """Start → LLM a, LLM b (and an unrelated LLM, an End input the template does not show) → End answering
    `A: {{a}} | B: {{b}}` with streaming on."""
    from knotflow.models.registry import load_registry
    from knotflow.service import catalog
    from knotflow.store.repository import Store

    branches = [FIRST, SECOND] + ([UNRELATED] if unrelated else [])
    extra = {"c": c.ref(UNRELATED, "output")} if unrelated else {}
    canvas = c.canvas(
        [c.start(("input", "string")), *(llm(node) for node in branches),
         c.end_answer("A: {{a}} | B: {{b}}", streaming=True, a=c.ref(FIRST, "output"), b=c.ref(SECOND, "output"),
                      **extra)],
        [edge for node in branches for edge in (c.edge("100001", node), c.edge(node, END))],
    )

    async def work(store: Store) -> str:
        workflow, _ = await catalog.import_workflow(store, canvas, publish=True,
                                                    models=load_registry(live.settings.resolved_models_file()))
        return workflow.id

    return Coze(auth=TokenAuth(live.token()), base_url=live.base_url), str(live.call(work))


def open_when(gate: threading.Event, server: FakeModelServer) -> threading.Thread:
    """Opens `gate` once `server` has sent a whole streamed answer (or was stopped)."""

    def watch() -> None:
        while not server.streams and not server._stop.is_set():
            server.wait(0.01)
        gate.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def end_pieces(events: list[WorkflowEvent]) -> list[tuple[str, str, bool]]:
    return [(e.message.content, e.message.node_seq_id, e.message.node_is_finish) for e in events
            if e.event == WorkflowEventType.MESSAGE and e.message is not None and e.message.node_title == "End"]


def test_the_end_follows_its_template_whichever_model_answers_first(
        two_model_live: LiveServer, models: dict[str, FakeModelServer]) -> None:
    coze, workflow_id = publish(two_model_live, unrelated=False)
    first_may_answer = threading.Event()
    models[SECOND].streams.clear()
    # `b` answers at once; `a` only once `b` has sent its whole answer, then slowly, token by token.
    models[SECOND].script(Reply(content=["b1 ", "b2"], usage=(3, 2)))
    models[FIRST].script(Reply(content=["a1 ", "a2 ", "a3"], usage=(4, 3), delay=0.02, gate=first_may_answer))
    watcher = open_when(first_may_answer, models[SECOND])
    events = list(coze.workflows.runs.stream(workflow_id=workflow_id, parameters={"input": "why?"}))
    watcher.join(5)
    assert {e.event for e in events} == {WorkflowEventType.MESSAGE}  # cozepy ends at Done without yielding it
    pieces = end_pieces(events)
    # `b` was complete when the template reached it: its chunks are replayed after `a`'s tokens (as Coze Studio).
    assert [content for content, _, _ in pieces] == ["A: ", "a1 ", "a2 ", "a3", " | B: ", "b1 ", "b2", ""]
    assert [seq for _, seq, _ in pieces] == [str(i) for i in range(len(pieces))]
    assert [finish for _, _, finish in pieces] == [False] * (len(pieces) - 1) + [True]
    end = events[-1].message
    assert end is not None and end.usage is not None
    assert (end.usage.input_count, end.usage.output_count) == (7, 5)


def test_an_unrelated_slow_branch_does_not_hold_back_the_tokens(
        two_model_live: LiveServer, models: dict[str, FakeModelServer]) -> None:
    """The third LLM feeds the End (an input its template does not show) and answers only once the client has
    seen all of `a`'s tokens: an End that waited for it before streaming would never show them."""
    coze, workflow_id = publish(two_model_live, unrelated=True)
    unrelated_may_answer = threading.Event()
    models[FIRST].script(Reply(content=["a1 ", "a2"]))
    models[SECOND].script(Reply(content=["b1"]))
    models[UNRELATED].script(Reply(content="late", gate=unrelated_may_answer))
    events: list[WorkflowEvent] = []
    shown_before_unrelated: list[str] = []
    for event in coze.workflows.runs.stream(workflow_id=workflow_id, parameters={"input": "x"}):
        events.append(event)
        if not unrelated_may_answer.is_set() and [p[0] for p in end_pieces(events)][-2:] == ["a1 ", "a2"]:
            shown_before_unrelated = [p[0] for p in end_pieces(events)]
            unrelated_may_answer.set()
    unrelated_may_answer.set()  # never leave the fake server's handler waiting, whatever happened
    assert shown_before_unrelated == ["A: ", "a1 ", "a2"]
    assert {e.event for e in events} == {WorkflowEventType.MESSAGE}, [e.error for e in events]
    pieces = end_pieces(events)
    assert "".join(p[0] for p in pieces) == "A: a1 a2 | B: b1"
    assert [seq for _, seq, _ in pieces] == [str(i) for i in range(len(pieces))]
    assert pieces[-1][2] is True and not any(p[2] for p in pieces[:-1])
    assert len(models[UNRELATED].requests) >= 1
