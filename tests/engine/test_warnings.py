"""Node warnings: what went wrong without failing a node (a value that did not fit its type) reaches its trace."""

from __future__ import annotations

from typing import Any

import pytest
from tests import canvases as c
from tests.node_types import compile_canvas, register

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.engine.events import Event, NodeFinished
from knotflow.engine.runner import Execution
from knotflow.errors import NodeError


@register
class CountingTokensNode(Node):
    """Test-only streaming producer: streams `output`, and returns a `count` that is not a number."""

    type_id = "test-warning-tokens"
    display_key = "LLM"
    stream_fields = frozenset({"output"})

    async def run(self, ctx: NodeContext) -> NodeResult:
        stream = ctx.open_stream("output")
        for token in ("a", "b"):
            stream.write(token)
        return NodeResult({"output": "ab", "count": "many"})


async def run(canvas: dict[str, Any], params: dict[str, Any]) -> dict[str, NodeFinished]:
    events: list[Event] = []
    await Execution(compile_canvas(canvas), sink=events.append).run(params)
    return {e.node_id: e for e in events if isinstance(e, NodeFinished)}


async def test_an_input_that_does_not_fit_its_type_is_a_warning_on_the_node() -> None:
    canvas = c.canvas(
        [c.start(("s", "string")),
         c.output("400", "{{n}} {{s}}", n=c.ref("100001", "s", "integer"), s=c.ref("100001", "s")),
         c.end_return(output=c.ref("100001", "s"))],
        [c.edge("100001", "400"), c.edge("400", "900001")],
    )
    finished = await run(canvas, {"s": "abc"})
    assert (finished["400"].status, finished["400"].warnings) == ("Success", ["field n is not integer"])
    assert finished["900001"].warnings is None


async def test_a_streaming_consumer_started_early_records_its_input_warnings() -> None:
    # n is known when the consumer starts; m only once the producer has finished (a late input).
    canvas = c.canvas(
        [c.start(("s", "string")),
         c.node("300", "test-warning-tokens", "Model", inputs={"inputParameters": []}),
         c.output("400", "{{x}} {{n}} {{m}}", streaming=True, x=c.ref("300", "output"),
                  n=c.ref("100001", "s", "integer"), m=c.ref("300", "count", "integer")),
         c.end_return(output=c.ref("300", "output"))],
        [c.edge("100001", "300"), c.edge("300", "400"), c.edge("400", "900001")],
    )
    finished = await run(canvas, {"s": "abc"})
    assert finished["400"].status == "Success"
    assert sorted(finished["400"].warnings or []) == ["field m is not integer", "field n is not integer"]


async def test_single_node_debug_records_the_warnings_of_the_inputs_given() -> None:
    canvas = c.canvas(
        [c.start(("s", "string")), c.output("400", "{{n}}", n=c.ref("100001", "s", "integer")),
         c.end_return(output=c.ref("100001", "s"))],
        [c.edge("100001", "400"), c.edge("400", "900001")],
    )
    events: list[Event] = []
    await Execution(compile_canvas(canvas), sink=events.append).run_node("400", {"n": "3.5"})
    [debugged] = [e for e in events if isinstance(e, NodeFinished)]
    assert (debugged.status, debugged.warnings) == ("Success", ["field n is not integer"])


async def test_a_failing_node_keeps_its_input_warnings() -> None:
    # FromJSON's input declared an integer: "abc" becomes null with a warning, and null is no JSON text.
    canvas = c.canvas(
        [c.start(("s", "string")),
         c.node("500", "59", "FromJSON",
                inputs={"inputParameters": [c.param("input", c.ref("100001", "s", "integer"))]},
                outputs=[{"name": "output", "type": "object"}]),
         c.end_return(output=c.ref("500", "output"))],
        [c.edge("100001", "500"), c.edge("500", "900001")],
    )
    events: list[Event] = []
    with pytest.raises(NodeError, match="input is not a string"):
        await Execution(compile_canvas(canvas), sink=events.append).run({"s": "abc"})
    [failed] = [e for e in events if isinstance(e, NodeFinished) and e.node_id == "500"]
    assert (failed.status, failed.warnings) == ("Fail", ["field input is not integer"])
