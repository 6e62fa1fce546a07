"""Pausing a run for the user: the checkpoint is plain JSON, and a restored run goes on where it stopped."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests import canvases as c
from tests.engine.test_runner import pick
from tests.node_types import compile_canvas

from knotflow.engine.checkpoint import Checkpoint
from knotflow.engine.events import NodeFinished, NodeMessage, RunInterrupted
from knotflow.engine.runner import Execution
from knotflow.errors import BadRequest

FORM = json.dumps([
    {"type": "object", "name": "person", "required": True,
     "schema": [{"type": "string", "name": "name"}, {"type": "integer", "name": "age"}]},
    {"type": "list", "name": "scores", "schema": {"type": "float"}},
])


def form(node_id: str) -> dict[str, Any]:
    return c.node(node_id, "30", "Form", inputs={"outputSchema": FORM}, outputs=json.loads(FORM))


def canvas() -> dict[str, Any]:
    return c.canvas(
        [c.start(("q", "string")), c.output("300", "before {{q}}", q=c.ref("100001", "q")), form("400"),
         c.end_return(person=c.ref("400", "person", "object"), scores=c.ref("400", "scores", "list"),
                      q=c.ref("100001", "q"))],
        [c.edge("100001", "300"), c.edge("300", "400"), c.edge("400", "900001")],
    )


async def interrupt(plan: Any, events: list[Any]) -> RunInterrupted:
    with pytest.raises(RunInterrupted) as caught:
        await Execution(plan, sink=events.append).run(plan.entry.prepare({"q": "hi"}))
    return caught.value


async def test_input_node_pauses_then_resumes_from_a_json_checkpoint() -> None:
    plan = compile_canvas(canvas())
    first: list[Any] = []
    paused = await interrupt(plan, first)
    assert (paused.node_id, paused.node_type, paused.request.kind) == ("400", "Input", 5)
    assert json.loads(paused.request.data) == {"content": FORM, "content_type": "form_schema"}
    messages = [e for e in first if isinstance(e, NodeMessage)]
    assert [(m.node_id, m.content, m.is_finish) for m in messages] == [
        ("300", "before hi", True), ("400", paused.request.data, True)]
    stored = Checkpoint.loads(paused.checkpoint.dumps())  # what the store keeps

    second: list[Any] = []
    restored = Execution.restore(plan, stored, sink=second.append)
    answer = json.dumps({"person": json.dumps({"name": "eino"}), "scores": "[1, 2.5]"})
    result = await restored.resume(answer)
    assert result.output == {"person": {"name": "eino", "age": None}, "scores": [1.0, 2.5], "q": "hi"}
    ran = [e.node_id for e in second if isinstance(e, NodeFinished)]
    assert ran == ["400", "900001"]  # nothing that finished before the pause runs again


async def test_invalid_answers_are_refused_before_resuming() -> None:
    plan = compile_canvas(canvas())
    node = plan.nodes[plan.by_id["400"]].node
    for answer, message in [("not json", "JSON object"), ("[]", "JSON object"), ("{}", "'person' is required"),
                            ('{"person": {"age": "old"}}', "'person'"), ('{"person": {}, "scores": "x"}', "'scores'")]:
        with pytest.raises(BadRequest, match=message):
            node.check_resume(answer)
    node.check_resume('{"person": {"name": "a"}}')


async def test_a_parallel_branch_finishes_before_the_checkpoint() -> None:
    plan = compile_canvas(c.canvas(
        [c.start(), form("400"), c.output("500", "side"),
         c.end_return(person=c.ref("400", "person", "object"), side=c.ref("500", "output"))],
        [c.edge("100001", "400"), c.edge("100001", "500"), c.edge("400", "900001"), c.edge("500", "900001")],
    ))
    events: list[Any] = []
    paused = await interrupt(plan, events)
    assert {e.node_id: e.status for e in events if isinstance(e, NodeFinished)}["500"] == "Success"
    later: list[Any] = []
    result = await Execution.restore(plan, paused.checkpoint, sink=later.append).resume('{"person": {"name": "x"}}')
    assert result.output["side"] == "side" and result.output["person"]["name"] == "x"
    assert "500" not in [e.node_id for e in later if isinstance(e, NodeFinished)]


async def test_a_skipped_branch_stays_skipped_after_resume() -> None:
    plan = compile_canvas(c.canvas(
        [c.start(), pick("200", "true"), form("400"), c.output("500", "never"),
         c.end_answer("{{p}}|{{n}}", p=c.ref("400", "person", "object"), n=c.ref("500", "output"))],
        [c.edge("100001", "200"), c.edge("200", "400", "true"), c.edge("200", "500", "false"),
         c.edge("200", "900001", "true_1"), c.edge("400", "900001"), c.edge("500", "900001")],
    ))
    paused = await interrupt(plan, [])
    result = await Execution.restore(plan, paused.checkpoint).resume('{"person": {"name": "y"}}')
    assert result.answer == '{"age":null,"name":"y"}|'  # a template shows an object's keys sorted, as Studio


async def test_node_state_survives_the_checkpoint() -> None:
    from tests.node_types import register

    from knotflow.contract import InterruptRequest, Node, NodeContext, NodeInterrupt, NodeResult

    @register
    class AskTwice(Node):
        type_id = "test-ask-twice"
        display_key = "Question"

        async def run(self, ctx: NodeContext) -> NodeResult:
            answers = ctx.state.setdefault("answers", [])
            if ctx.resume_data is not None:
                answers.append(ctx.resume_data)
            if len(answers) < 2:
                raise NodeInterrupt(InterruptRequest(2, f"question {len(answers) + 1}"))
            return NodeResult({"answers": answers})

    plan = compile_canvas(c.canvas(
        [c.start(), c.node("600", "test-ask-twice", "Ask"), c.end_return(a=c.ref("600", "answers", "list"))],
        [c.edge("100001", "600"), c.edge("600", "900001")],
    ))
    with pytest.raises(RunInterrupted) as first:
        await Execution(plan).run({})
    with pytest.raises(RunInterrupted) as second:
        await Execution.restore(plan, Checkpoint.loads(first.value.checkpoint.dumps())).resume("one")
    assert second.value.request.data == "question 2"
    result = await Execution.restore(plan, Checkpoint.loads(second.value.checkpoint.dumps())).resume("two")
    assert result.output == {"a": ["one", "two"]}
