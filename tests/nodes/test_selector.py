"""The Selector node through the engine: branch choice, and/or groups, operand conversion, compile checks."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from knotflow.errors import CanvasError, NodeError
from knotflow.nodes.selector import SelectorNode
from tests import canvases as c
from tests.node_types import compile_canvas
from tests.nodes.helpers import conformance_canvas, finished, run

SELECTOR_ID = "125542"


def cond(operator: int, left: dict[str, Any], right: dict[str, Any] | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {"operator": operator, "left": {"input": left}}
    if right is not None:
        condition["right"] = {"input": right}
    return condition


def branch(*conditions: dict[str, Any], logic: int = 2) -> dict[str, Any]:
    return {"condition": {"logic": logic, "conditions": list(conditions)}}


def selector(*branches: dict[str, Any], node_id: str = SELECTOR_ID) -> dict[str, Any]:
    return c.node(node_id, "8", "Condition", inputs={"branches": list(branches)})


def branching_canvas(start_params: list[tuple[str, str] | dict[str, Any]], sel: dict[str, Any]) -> dict[str, Any]:
    """Start → selector → one Output node per port (named after it) → End."""
    ports = SelectorNode(compile_node_def(sel)).ports()
    nodes = [c.start(*start_params), sel, c.end_return(done=c.literal("yes"))]
    edges = [c.edge("100001", sel["id"])]
    for port in ports:
        node_id = f"out_{port}"
        nodes.append(c.output(node_id, port, title=port))
        edges += [c.edge(sel["id"], node_id, port), c.edge(node_id, "900001")]
    return c.canvas(nodes, edges)


def compile_node_def(raw: dict[str, Any]) -> Any:
    from knotflow.dsl.canvas import parse_canvas

    return parse_canvas({"nodes": [raw], "edges": []}).nodes[0]


async def chosen(canvas: dict[str, Any], params: dict[str, Any]) -> str:
    _, events = await run(canvas, params)
    ran = [e.node_title for e in finished(events).values() if e.node_id.startswith("out_") and e.status == "Success"]
    assert len(ran) == 1, ran
    return ran[0]


def test_ports_are_true_then_true_n_then_false() -> None:
    sel = selector(
        branch(cond(9, c.literal("x"))), branch(cond(9, c.literal("x"))), branch(cond(9, c.literal("x")))
    )
    assert SelectorNode(compile_node_def(sel)).ports() == ["true", "true_1", "true_2", "false"]


async def test_selects_the_first_branch_that_holds_as_in_the_loop_canvas() -> None:
    # The selector of Coze's loop_selector_variable_assign_text_processor canvas: index >= 3, variable == "bb".
    sel = selector(
        branch(cond(14, c.ref("100001", "index", "integer"), c.literal(3, "integer"))),
        branch(cond(1, c.ref("100001", "variable"), c.literal("bb"))),
    )
    canvas = branching_canvas([("index", "integer"), ("variable", "string")], sel)
    assert await chosen(canvas, {"index": 3, "variable": "bb"}) == "true"  # both hold: the first wins
    assert await chosen(canvas, {"index": 1, "variable": "bb"}) == "true_1"
    assert await chosen(canvas, {"index": 2, "variable": "a"}) == "false"


async def test_the_loop_canvas_selector_itself() -> None:
    loop = conformance_canvas("loop_selector_variable_assign_text_processor.json")
    sel = next(b for n in loop["nodes"] for b in n.get("blocks") or [] if b["id"] == SELECTOR_ID)
    # The selector reads the loop's `index` and `variable`; a Start node with the loop's id stands in for it.
    start = c.start(("index", "integer"), ("variable", "string"))
    start["id"] = "192046"
    nodes = [start, copy.deepcopy(sel), c.end_return(done=c.literal("yes"))]
    edges = [c.edge("192046", SELECTOR_ID)]
    for port in ("true", "true_1", "false"):
        nodes.append(c.output(f"out_{port}", port, title=port))
        edges += [c.edge(SELECTOR_ID, f"out_{port}", port), c.edge(f"out_{port}", "900001")]
    canvas = c.canvas(nodes, edges)
    results = [await chosen(canvas, {"index": i, "variable": v}) for i, v in enumerate(["a", "bb", "ccc", "dddd"])]
    assert results == ["false", "true_1", "false", "true"]


async def test_and_group_needs_every_condition_or_group_needs_one() -> None:
    both = [cond(13, c.ref("100001", "n", "integer"), c.literal(1, "integer")),
            cond(7, c.ref("100001", "s"), c.literal("ok"))]
    canvas_and = branching_canvas([("n", "integer"), ("s", "string")], selector(branch(*both, logic=2)))
    canvas_or = branching_canvas([("n", "integer"), ("s", "string")], selector(branch(*both, logic=1)))
    assert await chosen(canvas_and, {"n": 5, "s": "it is ok"}) == "true"
    assert await chosen(canvas_and, {"n": 5, "s": "nope"}) == "false"
    assert await chosen(canvas_or, {"n": 5, "s": "nope"}) == "true"
    assert await chosen(canvas_or, {"n": 0, "s": "okay"}) == "true"
    assert await chosen(canvas_or, {"n": 0, "s": "nope"}) == "false"


async def test_or_group_stops_at_the_first_true_condition() -> None:
    # The second condition would fail the node (ordering on a string); OR never reaches it.
    group = branch(cond(9, c.ref("100001", "s")), cond(13, c.ref("100001", "s"), c.literal(1, "integer")), logic=1)
    canvas = branching_canvas([("s", "string")], selector(group))
    assert await chosen(canvas, {}) == "true"
    with pytest.raises(NodeError, match="only accepts float64 or int64, not string"):
        await run(canvas, {"s": "x"})


async def test_length_of_a_string_input_as_in_tool_workflow_2() -> None:
    tool = conformance_canvas("function_call/tool_workflow_2.json")
    sel = copy.deepcopy(next(n for n in tool["nodes"] if n["type"] == "8"))  # len(input) > 3
    canvas = branching_canvas([("input", "string")], sel)
    assert await chosen(canvas, {"input": "input for inner model"}) == "true"
    assert await chosen(canvas, {"input": "abc"}) == "false"
    assert await chosen(canvas, {"input": "四个"}) == "true"  # 6 UTF-8 bytes
    assert await chosen(canvas, {}) == "false"  # a missing string is empty


async def test_operands_are_converted_to_their_declared_types() -> None:
    # The Start parameter is a string; the condition declares its left operand an integer.
    sel = selector(branch(cond(13, c.ref("100001", "n", "integer"), c.literal(10, "integer"))),
                   branch(cond(9, c.ref("100001", "n", "integer"))))
    canvas = branching_canvas([("n", "string")], sel)
    assert await chosen(canvas, {"n": "12"}) == "true"
    assert await chosen(canvas, {"n": "9"}) == "false"
    # Text that is no integer converts to null, as in Coze: not greater, but empty.
    assert await chosen(canvas, {"n": "twelve"}) == "true_1"


async def test_contain_on_an_object_checks_its_keys() -> None:
    obj = {"name": "obj", "type": "object", "schema": [{"name": "a", "type": "string"}], "required": False}
    sel = selector(branch(cond(7, {**c.ref("100001", "obj"), "type": "object"}, c.literal("a"))),
                   branch(cond(8, {**c.ref("100001", "obj"), "type": "object"}, c.literal("b"))))
    canvas = branching_canvas([obj], sel)
    assert await chosen(canvas, {"obj": {"a": "1"}}) == "true"
    assert await chosen(canvas, {"obj": {"c": "1"}}) == "true_1"
    assert await chosen(canvas, {"obj": {"b": "1"}}) == "false"
    assert await chosen(canvas, {}) == "false"  # a missing object contains nothing, and "not contains" is false too


async def test_list_contains_and_is_true() -> None:
    tags = {"name": "tags", "type": "list", "schema": {"type": "string"}, "required": False}
    tags_input = {**c.ref("100001", "tags"), "type": "list", "schema": {"type": "string"}}
    sel = selector(branch(cond(11, c.ref("100001", "flag", "boolean")), cond(7, tags_input, c.literal("vip")),
                          logic=2))
    canvas = branching_canvas([tags, ("flag", "boolean")], sel)
    assert await chosen(canvas, {"tags": ["a", "vip"], "flag": True}) == "true"
    assert await chosen(canvas, {"tags": ["a", "vip"], "flag": False}) == "false"
    assert await chosen(canvas, {"tags": ["a"], "flag": True}) == "false"


async def test_right_operand_may_reference_another_value() -> None:
    sel = selector(branch(cond(1, c.ref("100001", "a", "integer"), c.ref("100001", "b", "float"))))
    canvas = branching_canvas([("a", "integer"), ("b", "float")], sel)
    assert await chosen(canvas, {"a": 3, "b": 3.0}) == "true"
    assert await chosen(canvas, {"a": 3, "b": 3.5}) == "false"


async def test_incomparable_operands_fail_the_node() -> None:
    tags = {"name": "tags", "type": "list", "schema": {"type": "string"}, "required": False}
    sel = selector(branch(cond(1, {**c.ref("100001", "tags"), "type": "list"}, c.literal("[]", "list"))))
    canvas = branching_canvas([tags], sel)
    with pytest.raises(NodeError, match="only accepts int64, float64, bool or string"):
        await run(canvas, {"tags": ["a"]})


@pytest.mark.parametrize(("value", "note"), [
    ("a", "pass to condition 1 branch"),
    ("b", "pass to condition 2 branch"),
    ("z", "pass to else branch"),
])
async def test_the_trace_says_which_branch_the_selector_passed_to(value: str, note: str) -> None:
    # Coze Studio's Selector.ToCallbackOutput: the node's outputs stay empty, its trace entry names the branch.
    sel = selector(branch(cond(1, c.ref("100001", "s"), c.literal("a"))),
                   branch(cond(1, c.ref("100001", "s"), c.literal("b"))))
    result, events = await run(branching_canvas([("s", "string")], sel), {"s": value})
    event = finished(events)[SELECTOR_ID]
    assert (event.status, json.loads(event.outputs), event.warnings) == ("Success", {"result": note}, None)
    assert result.output == {"done": "yes"}


async def test_an_operand_that_does_not_fit_its_type_is_a_warning_on_the_selector() -> None:
    canvas = branching_canvas([("s", "string")], selector(branch(cond(9, c.ref("100001", "s", "integer")))))
    _, events = await run(canvas, {"s": "abc"})
    event = finished(events)[SELECTOR_ID]
    assert (event.status, event.warnings) == ("Success", ["field left is not integer"])
    assert json.loads(event.outputs) == {"result": "pass to condition 1 branch"}
    assert finished(events)["out_false"].status == "Skipped"


@pytest.mark.parametrize(("inputs", "message"), [
    ({}, "needs at least one branch"),
    ({"branches": []}, "needs at least one branch"),
    ({"branches": [{"condition": {"logic": 2, "conditions": []}}]}, "branch 1 has no conditions"),
    ({"branches": [branch(cond(99, c.literal("x")))]}, "unsupported operator type: 99"),
    ({"branches": [branch({"operator": 9})]}, "operator left is nil"),
    ({"branches": [branch(cond(9, c.literal("x")), cond(9, c.literal("y")), logic=0)]}, "unknown logic 0"),
])
def test_bad_configuration_is_a_canvas_error(inputs: dict[str, Any], message: str) -> None:
    canvas = c.canvas([c.start(), c.node(SELECTOR_ID, "8", "Condition", inputs=inputs), c.end_return()],
                      [c.edge("100001", SELECTOR_ID), c.edge(SELECTOR_ID, "900001", "false")])
    with pytest.raises(CanvasError, match=message):
        compile_canvas(canvas)


def test_a_single_condition_ignores_logic() -> None:
    sel = selector(branch(cond(9, c.literal("x")), logic=0))
    assert SelectorNode(compile_node_def(sel)).ports() == ["true", "false"]


def test_edges_from_unknown_ports_are_rejected() -> None:
    sel = selector(branch(cond(9, c.literal("x"))))
    canvas = c.canvas([c.start(), sel, c.end_return()],
                      [c.edge("100001", SELECTOR_ID), c.edge(SELECTOR_ID, "900001", "true_1")])
    with pytest.raises(CanvasError, match="no branch 'true_1'"):
        compile_canvas(canvas)


def test_condition_references_are_validated() -> None:
    sel = selector(branch(cond(1, c.ref("100001", "s"), c.ref("424242", "missing"))))
    canvas = c.canvas([c.start(("s", "string")), sel, c.end_return()],
                      [c.edge("100001", SELECTOR_ID), c.edge(SELECTOR_ID, "900001", "true"),
                       c.edge(SELECTOR_ID, "900001", "false")])
    with pytest.raises(CanvasError, match="node 424242 does not exist"):
        compile_canvas(canvas)
