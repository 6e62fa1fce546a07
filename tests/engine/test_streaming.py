"""Streamed outputs (an LLM's tokens) reach streaming Output/End nodes chunk by chunk, while they are produced."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from tests import canvases as c
from tests.node_types import compile_canvas, register

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.engine.events import NodeMessage
from knotflow.engine.runner import Execution
from knotflow.errors import NodeError


@register
class TokensNode(Node):
    """Test-only producer: writes each token, then waits until a consumer has shown it before writing the next.

    If tokens were not passed through while produced, the wait would time out: this checks order, not time.
    """

    type_id = "test-tokens"
    display_key = "LLM"
    stream_fields = frozenset({"output"})
    shown: ClassVar[set[str]] = set()
    changed: ClassVar[asyncio.Event | None] = None

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.inputs
        stream = ctx.open_stream("output")
        tokens = str(inputs["tokens"]).split("|")
        wait_for_consumer = bool(inputs.get("wait"))
        gap = float(inputs.get("gap") or 0)  # seconds between tokens, like a model's pace
        for token in tokens:
            if token == "BOOM":
                raise RuntimeError("provider failed mid-stream")
            stream.write(token)
            if gap:
                await asyncio.sleep(gap)
            while wait_for_consumer and token not in self.shown:
                assert self.changed is not None
                self.changed.clear()
                await asyncio.wait_for(self.changed.wait(), 2)
        return NodeResult({"output": "".join(tokens)})


def tokens(node_id: str, text: str, wait: bool = True, gap: float = 0) -> dict[str, Any]:
    return c.node(node_id, "test-tokens", "Model", inputs={"inputParameters": [
        c.param("tokens", c.literal(text)), c.param("wait", c.literal(wait, "boolean")),
        c.param("gap", c.literal(gap, "float"))]})


async def run(canvas: dict[str, Any]) -> tuple[Any, list[NodeMessage]]:
    TokensNode.shown = set()
    TokensNode.changed = asyncio.Event()
    messages: list[NodeMessage] = []

    def sink(event: Any) -> None:
        if isinstance(event, NodeMessage):
            messages.append(event)
            TokensNode.shown.add(event.content)
            assert TokensNode.changed is not None
            TokensNode.changed.set()

    plan = compile_canvas(canvas)
    result = await Execution(plan, sink=sink).run({})
    return result, messages


async def test_tokens_flow_through_a_streaming_output_node_in_template_order() -> None:
    canvas = c.canvas(
        [c.start(), tokens("300", "I |don't |know."),
         c.output("400", "emitter: {{x}} (end)", streaming=True, x=c.ref("300", "output")),
         c.end_return(output=c.ref("300", "output"))],
        [c.edge("100001", "300"), c.edge("300", "400"), c.edge("400", "900001")],
    )
    result, messages = await run(canvas)
    emitted = [(m.content, m.is_finish) for m in messages if m.node_id == "400"]
    assert emitted == [("emitter: ", False), ("I ", False), ("don't ", False), ("know.", False), (" (end)", True)]
    assert result.output == {"output": "I don't know."}


async def test_tokens_flow_into_a_streaming_end_node() -> None:
    canvas = c.canvas(
        [c.start(), tokens("300", "a|b"), c.end_answer("<{{x}}>", streaming=True, x=c.ref("300", "output"))],
        [c.edge("100001", "300"), c.edge("300", "900001")],
    )
    result, messages = await run(canvas)
    assert [(m.content, m.is_finish) for m in messages] == [("<", False), ("a", False), ("b", False), (">", True)]
    assert result.answer == "<ab>" and result.output == {"x": "ab"}


async def test_a_non_streaming_output_node_waits_for_the_whole_text() -> None:
    canvas = c.canvas(
        [c.start(), tokens("300", "a|b", wait=False), c.output("400", "[{{x}}]", x=c.ref("300", "output")),
         c.end_return()],
        [c.edge("100001", "300"), c.edge("300", "400"), c.edge("400", "900001")],
    )
    _, messages = await run(canvas)
    assert [(m.content, m.is_finish) for m in messages if m.node_id == "400"] == [("[ab]", True)]


async def test_a_consumer_reading_other_nodes_is_not_started_early() -> None:
    plan = compile_canvas(c.canvas(
        [c.start(("q", "string")), tokens("300", "a"),
         c.output("400", "{{x}}{{q}}", streaming=True, x=c.ref("300", "output"), q=c.ref("100001", "q")),
         c.output("500", "{{x}}", streaming=True, x=c.ref("300", "output")), c.end_return()],
        [c.edge("100001", "300"), c.edge("300", "400"), c.edge("400", "500"), c.edge("500", "900001")],
    ))
    # 400 reads Start too (already known when 300 starts), so it may start early; 500 follows 400, not 300.
    assert [plan.nodes[i].node.id for i in plan.nodes[plan.by_id["300"]].early_consumers] == ["400"]


async def test_a_failure_mid_stream_fails_the_run_and_the_consumer() -> None:
    canvas = c.canvas(
        [c.start(), tokens("300", "a|BOOM"), c.output("400", "{{x}}", streaming=True, x=c.ref("300", "output")),
         c.end_return()],
        [c.edge("100001", "300"), c.edge("300", "400"), c.edge("400", "900001")],
    )
    with pytest.raises(NodeError, match="provider failed mid-stream"):
        await run(canvas)
