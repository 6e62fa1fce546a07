"""The engine: scheduling, branch pruning, concurrency, errors, compile-time validation."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from tests import canvases as c
from tests.node_types import compile_canvas, register

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.dsl.canvas import NodeDef
from knotflow.engine.events import NodeFinished, NodeMessage
from knotflow.engine.runner import Execution
from knotflow.errors import CanvasError, NodeError, UnknownNodeType


@register
class PickNode(Node):
    """Test-only branching node: takes the port named by its `port` input."""

    type_id = "test-pick"
    display_key = "Pick"
    branching = True

    def ports(self) -> list[str]:
        return ["true", "true_1", "false"]

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.inputs
        return NodeResult({}, port=inputs["port"])


@register
class RendezvousNode(Node):
    """Test-only node that finishes only when its partner has started: proves two branches run at once."""

    type_id = "test-rendezvous"
    display_key = "Rendezvous"
    arrived: ClassVar[dict[str, asyncio.Event]] = {}

    async def run(self, ctx: NodeContext) -> NodeResult:
        inputs = ctx.inputs
        mine, partner = inputs["me"], inputs["partner"]
        self.arrived.setdefault(mine, asyncio.Event()).set()
        await asyncio.wait_for(self.arrived.setdefault(partner, asyncio.Event()).wait(), 5)
        return NodeResult({"done": mine})


@register
class BoomNode(Node):
    type_id = "test-boom"
    display_key = "Boom"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)

    async def run(self, ctx: NodeContext) -> NodeResult:
        raise ZeroDivisionError("division by zero")


def pick(node_id: str, port: str) -> dict[str, Any]:
    return c.node(node_id, "test-pick", f"pick {node_id}",
                  inputs={"inputParameters": [c.param("port", c.literal(port))]})


async def run(canvas: dict[str, Any], params: dict[str, Any] | None = None) -> tuple[Any, list[Any]]:
    plan = compile_canvas(canvas)
    events: list[Any] = []
    result = await Execution(plan, sink=events.append).run(plan.entry.prepare(params or {}))  # type: ignore[attr-defined]
    return result, events


def statuses(events: list[Any]) -> dict[str, str]:
    return {e.node_id: e.status for e in events if isinstance(e, NodeFinished)}


@pytest.mark.parametrize(("port", "ran", "skipped"), [
    ("true", "a", {"b", "c"}), ("true_1", "b", {"a", "c"}), ("false", "c", {"a", "b"}),
])
async def test_branch_runs_one_path_and_merges(port: str, ran: str, skipped: set[str]) -> None:
    ids = {"a": "301", "b": "302", "c": "303"}
    canvas = c.canvas(
        [c.start(("input", "string")), pick("200", port),
         *[c.output(node_id, name) for name, node_id in ids.items()],
         c.end_answer("{{a}}|{{b}}|{{c}}", **{name: c.ref(node_id, "output") for name, node_id in ids.items()})],
        [c.edge("100001", "200"), c.edge("200", "301", "true"), c.edge("200", "302", "true_1"),
         c.edge("200", "303", "false"), *[c.edge(node_id, "900001") for node_id in ids.values()]],
    )
    result, events = await run(canvas)
    state = statuses(events)
    assert state[ids[ran]] == "Success" and state["900001"] == "Success"
    assert {name for name, node_id in ids.items() if state[node_id] == "Skipped"} == skipped
    # Coze renders a reference to a skipped node as nothing.
    assert result.answer == "|".join(name if name == ran else "" for name in ids)


async def test_skip_propagates_down_a_dead_branch() -> None:
    canvas = c.canvas(
        [c.start(), pick("200", "false"), c.output("301", "one"), c.output("302", "two"), c.output("303", "else"),
         c.end_return()],
        [c.edge("100001", "200"), c.edge("200", "301", "true"), c.edge("301", "302"), c.edge("302", "900001"),
         c.edge("200", "303", "false"), c.edge("303", "900001"), c.edge("200", "900001", "true_1")],
    )
    _, events = await run(canvas)
    assert statuses(events) == {"100001": "Success", "200": "Success", "301": "Skipped", "302": "Skipped",
                                "303": "Success", "900001": "Success"}
    assert [e.content for e in events if isinstance(e, NodeMessage) and e.node_type == "Message"] == ["else"]


async def test_independent_branches_run_concurrently() -> None:
    RendezvousNode.arrived.clear()

    def meet(node_id: str, me: str, partner: str) -> dict[str, Any]:
        return c.node(node_id, "test-rendezvous", me, inputs={"inputParameters": [
            c.param("me", c.literal(me)), c.param("partner", c.literal(partner))]})

    canvas = c.canvas(
        [c.start(), meet("201", "left", "right"), meet("202", "right", "left"),
         c.end_return(l=c.ref("201", "done"), r=c.ref("202", "done"))],
        [c.edge("100001", "201"), c.edge("100001", "202"), c.edge("201", "900001"), c.edge("202", "900001")],
    )
    result, _ = await run(canvas)
    assert result.output == {"l": "left", "r": "right"}


async def test_node_failure_names_the_node() -> None:
    canvas = c.canvas([c.start(), c.node("250", "test-boom", "Divider"), c.end_return()],
                      [c.edge("100001", "250"), c.edge("250", "900001")])
    with pytest.raises(NodeError, match=r"'Divider' \(250\) failed: division by zero"):
        await run(canvas)


async def test_messages_stream_in_order_through_a_chain() -> None:
    nodes = [c.start(("input", "string"))]
    edges = []
    previous = "100001"
    for i in range(50):
        node_id = str(400 + i)
        nodes.append(c.output(node_id, f"{i}:{{{{x}}}}", x=c.ref("100001", "input")))
        edges.append(c.edge(previous, node_id))
        previous = node_id
    nodes.append(c.end_return(output=c.ref("100001", "input")))
    edges.append(c.edge(previous, "900001"))
    result, events = await run(c.canvas(nodes, edges), {"input": "v"})
    texts = [e.content for e in events if isinstance(e, NodeMessage) and e.node_type == "Message"]
    assert texts == [f"{i}:v" for i in range(50)]
    assert result.output == {"output": "v"}


def test_unknown_node_type_names_node_and_type() -> None:
    canvas = c.canvas([c.start(), c.node("777", "9999", "Mystery"), c.end_return()],
                      [c.edge("100001", "777"), c.edge("777", "900001")])
    with pytest.raises(UnknownNodeType, match=r"'Mystery' \(777\) has type 9999"):
        compile_canvas(canvas)


@pytest.mark.parametrize(("canvas", "message"), [
    (c.canvas([c.start(), c.output("1", "a"), c.output("2", "b"), c.end_return()],
              [c.edge("100001", "1"), c.edge("1", "2"), c.edge("2", "1"), c.edge("2", "900001")]), "cycle"),
    (c.canvas([c.start(), c.end_return(x=c.ref("555", "output"))], [c.edge("100001", "900001")]),
     "does not exist"),
    (c.canvas([c.start(), c.output("1", "a"), c.output("2", "b", x=c.ref("1", "output")), c.end_return()],
              [c.edge("100001", "1"), c.edge("100001", "2"), c.edge("1", "900001"), c.edge("2", "900001")]),
     "not upstream"),
    (c.canvas([c.start(), c.end_return()], []), r"'Start' \(100001\) \(Start\) is not connected"),
    (c.canvas([c.start(), c.output("1", "a"), c.end_return()], [c.edge("100001", "1"), c.edge("100001", "900001")]),
     r"'Output' \(1\) is not connected to a next node"),
    (c.canvas([c.end_return()], []), "exactly one Start"),
    (c.canvas([c.start(), c.end_return(x=c.ref("", "output"))], [c.edge("100001", "900001")]), "empty blockID"),
    (c.canvas([c.start(), pick("2", "x"), c.end_return()],
              [c.edge("100001", "2"), c.edge("2", "900001", "maybe")]), "no branch 'maybe'"),
    ({"edges": []}, "'nodes' list"),
])
def test_invalid_canvases_are_refused_with_a_reason(canvas: dict[str, Any], message: str) -> None:
    with pytest.raises(CanvasError, match=message):
        compile_canvas(canvas)


def test_isolated_nodes_are_pruned() -> None:
    canvas = c.canvas([c.start(), c.output("1", "orphan"), c.end_return()], [c.edge("100001", "900001")])
    plan = compile_canvas(canvas)
    assert [n.node.id for n in plan.nodes] == ["100001", "900001"]


async def test_a_finished_run_is_freed_without_the_garbage_collector() -> None:
    """No reference cycle holds a run: its data (a 19 MB input, say) goes when the run does, not at the next full
    garbage collection, which big strings never prompt."""
    import gc
    import weakref

    plan = compile_canvas(c.echo())
    gc.disable()
    try:
        execution = Execution(plan)
        await execution.run({"input": "x"})
        gone = weakref.ref(execution)
        del execution
        assert gone() is None
    finally:
        gc.enable()
