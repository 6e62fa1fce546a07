"""Per-node tokens in the trace: each execution entry of a node that called a model carries that execution's
tokens (each attempt's, each iteration's, a child workflow's nodes theirs), every other entry carries None, and
the run's usage counts every token once: the entries of a trace sum to it."""

from __future__ import annotations

from typing import Any

import pytest

from knotflow.contract import RunServices, Usage
from knotflow.engine.events import NodeFinished, RunInterrupted, RunResult
from knotflow.engine.runner import Execution
from knotflow.errors import NodeError
from tests import canvases as c
from tests.fakes.model_server import FakeModelServer, Reply, model_server, registry_for
from tests.node_types import compile_canvas
from tests.nodes.test_composites import LOOP, SUB, Workflows, around, composite, ref, sub_node
from tests.nodes.test_intent import INTENT_ID, routed
from tests.nodes.test_intent import MODEL_TYPE as INTENT_MODEL
from tests.nodes.test_llm import JSON_END, JSON_OUTPUTS, LLM_ID, llm_node, through_llm
from tests.nodes.test_question import QA, extract_canvas, first, resume

__all__ = ["model_server"]  # the fixture, imported so pytest finds it here


def tokens(event: NodeFinished) -> tuple[int, int] | None:
    return None if event.usage is None else (event.usage.input_count, event.usage.output_count)


def entries(events: list[Any]) -> list[NodeFinished]:
    return [event for event in events if isinstance(event, NodeFinished)]


def summed(events: list[Any]) -> tuple[int, int]:
    total = Usage()
    for event in entries(events):
        if event.usage is not None:
            total.add(event.usage.input_count, event.usage.output_count)
    return total.input_count, total.output_count


def used(result: RunResult) -> tuple[int, int]:
    return result.usage.input_count, result.usage.output_count


async def run(canvas: dict[str, Any], services: RunServices, events: list[Any],
              params: dict[str, Any] | None = None) -> RunResult:
    plan = compile_canvas(canvas)
    return await Execution(plan, sink=events.append, services=services).run(
        plan.entry.prepare(params if params is not None else {"input": "hello"}))


def llm(node_id: str, prompt: str = "{{input}}", reads: dict[str, Any] | None = None,
        **options: Any) -> dict[str, Any]:
    node = llm_node(prompt=prompt, **options)
    node["id"] = node_id
    node["data"]["inputs"]["inputParameters"] = [c.param("input", reads or c.ref("100001", "input"))]
    return node


async def test_an_llm_nodes_entry_carries_its_tokens_and_the_others_none(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content=["I ", "know."], usage=(12, 4)))
    events: list[Any] = []
    result = await run(through_llm(llm_node()), RunServices(models=registry_for(model_server)), events)
    assert [(e.node_id, e.status, tokens(e)) for e in entries(events)] == [
        ("100001", "Success", None), (LLM_ID, "Success", (12, 4)), ("900001", "Success", None)]
    assert used(result) == (12, 4)


async def test_parallel_llm_nodes_each_get_their_own_tokens_and_the_run_their_sum(
        model_server: FakeModelServer) -> None:
    canvas = c.canvas([c.start(("input", "string")), llm("156551"), llm("156552"),
                       c.end_return(a=c.ref("156551", "output"), b=c.ref("156552", "output"))],
                      [c.edge("100001", "156551"), c.edge("100001", "156552"), c.edge("156551", "900001"),
                       c.edge("156552", "900001")])
    # The first request answers slowly: the second node's call starts and ends while the first one's is open.
    model_server.script(Reply(content=["o", "n", "e"], usage=(10, 1), delay=0.1), Reply(content="two", usage=(20, 2)))
    events: list[Any] = []
    result = await run(canvas, RunServices(models=registry_for(model_server)), events)
    by_reply = {"one": (10, 1), "two": (20, 2)}
    answers = {"156551": result.output["a"], "156552": result.output["b"]}
    assert sorted(answers.values()) == ["one", "two"]
    got = {e.node_id: tokens(e) for e in entries(events) if e.node_id in answers}
    assert got == {node_id: by_reply[answer] for node_id, answer in answers.items()}
    assert used(result) == summed(events) == (30, 3)


async def test_an_llm_in_a_loop_has_each_iterations_tokens(model_server: FakeModelServer) -> None:
    body = llm("21001", prompt="round {{input}}", reads=ref(LOOP, "index", "integer"))
    loop = composite(LOOP, "21", {"loopType": "count", "loopCount": c.literal(3, "integer")}, [body], ["21001"],
                     [("outs", ref("21001", "output", "list"))], "loop")
    model_server.script(*(Reply(content=f"r{i}", usage=(i, 10 * i)) for i in (1, 2, 3)))
    events: list[Any] = []
    result = await run(around(loop, ("input", "string"), outs=ref(LOOP, "outs", "list")),
                       RunServices(models=registry_for(model_server)), events)
    assert result.output == {"outs": ["r1", "r2", "r3"]}
    inner = [(e.iteration, tokens(e)) for e in entries(events) if e.node_id == "21001"]
    assert inner == [(0, (1, 10)), (1, (2, 20)), (2, (3, 30))]
    assert all(e.parent_node_id == LOOP for e in entries(events) if e.node_id == "21001")
    loop_entry = next(e for e in entries(events) if e.node_id == LOOP)
    assert loop_entry.usage is None  # its body's entries have the tokens: the trace never counts them twice
    assert used(result) == summed(events) == (6, 60)


async def test_a_child_workflows_llm_has_its_tokens_and_counts_once_in_the_parents_run(
        model_server: FakeModelServer) -> None:
    child = through_llm(llm_node())
    workflows = Workflows(w777=child)
    parent = around(sub_node(SUB, "777", input=c.ref("100001", "input")), ("input", "string"),
                    out=ref(SUB, "output"))
    model_server.script(Reply(content="deep", usage=(7, 3)))
    events: list[Any] = []
    result = await run(parent, RunServices(models=registry_for(model_server), workflows=workflows), events)
    assert result.output == {"out": "deep"}
    model_entries = [(e.node_id, e.parent_node_id, tokens(e)) for e in entries(events) if e.usage is not None]
    assert model_entries == [(LLM_ID, SUB, (7, 3))]
    assert used(result) == (7, 3)


async def test_a_retried_llm_shows_each_attempts_tokens_on_its_entry(model_server: FakeModelServer) -> None:
    node = llm_node(response_format=2, outputs=JSON_OUTPUTS)
    node["data"]["inputs"]["settingOnError"] = {"retryTimes": 1, "processType": 1}
    # The first attempt asks twice (json_retries 1) and gets no JSON: it fails having used tokens.
    model_server.script(Reply(content="no", usage=(5, 1)), Reply(content="still no", usage=(6, 2)),
                        Reply(content='{"name":"eino","age":3}', usage=(7, 3)))
    events: list[Any] = []
    result = await run(through_llm(node, **JSON_END), RunServices(models=registry_for(model_server, json_retries=1)),
                       events)
    assert result.output == {"name": "eino", "age": 3}
    attempts = [(e.status, tokens(e)) for e in entries(events) if e.node_id == LLM_ID]
    assert attempts == [("Fail", (11, 3)), ("Success", (7, 3))]
    assert used(result) == summed(events) == (18, 6)


async def test_a_failing_llm_records_what_its_last_attempt_used(model_server: FakeModelServer) -> None:
    model_server.default = Reply(content="never JSON", usage=(2, 1))
    events: list[Any] = []
    plan = compile_canvas(through_llm(llm_node(response_format=2, outputs=JSON_OUTPUTS), **JSON_END))
    execution = Execution(plan, sink=events.append,
                          services=RunServices(models=registry_for(model_server, json_retries=1)))
    with pytest.raises(NodeError):
        await execution.run(plan.entry.prepare({"input": "hello"}))
    assert [(e.status, tokens(e)) for e in entries(events) if e.node_id == LLM_ID] == [("Fail", (4, 2))]
    assert (execution.usage.input_count, execution.usage.output_count) == (4, 2)


async def test_an_intent_nodes_entry_carries_its_tokens(model_server: FakeModelServer) -> None:
    model_server.script(Reply(content='{"classificationId":1,"reason":"weather"}', usage=(30, 5)))
    events: list[Any] = []
    result = await run(routed(["weather", "music"]),
                       RunServices(models=registry_for(model_server, model_type=INTENT_MODEL)), events)
    assert [tokens(e) for e in entries(events) if e.node_id == INTENT_ID] == [(30, 5)]
    assert used(result) == summed(events) == (30, 5)


async def test_a_question_that_asks_again_after_a_model_call_has_the_tokens_on_its_interrupted_entry(
        model_server: FakeModelServer) -> None:
    registry = registry_for(model_server)
    plan = compile_canvas(extract_canvas())
    events: list[Any] = []
    paused = await first(plan, {"name": "x"}, registry, events)
    model_server.script(Reply(content='{"fields": {"user_name": "Ann"}, "question": "Age?"}', usage=(9, 3)),
                        Reply(content='{"fields": {"user_name": "Ann", "user_age": 7}}', usage=(4, 2)))
    with pytest.raises(RunInterrupted) as again:
        await resume(plan, paused, "Ann", registry, events)
    result = await resume(plan, again.value, "7", registry, events)
    assert [(e.status, tokens(e)) for e in entries(events) if e.node_id == QA] == [
        ("Interrupted", None), ("Interrupted", (9, 3)), ("Success", (4, 2))]
    assert used(result) == summed(events) == (13, 5)
