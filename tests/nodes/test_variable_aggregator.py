"""The Variable aggregator: each group takes its first variable with a value; skipped branches don't count."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from knotflow.errors import CanvasError, NodeError
from tests import canvases as c
from tests.node_types import compile_canvas
from tests.nodes.helpers import conformance_canvas, conformance_case, finished, output, run

AGG_ID = "187282"


def aggregator(groups: dict[str, list[dict[str, Any]]], node_id: str = AGG_ID) -> dict[str, Any]:
    return c.node(node_id, "32", "Aggregator", inputs={
        "mergeGroups": [{"name": name, "variables": variables} for name, variables in groups.items()]
    })


async def test_coze_variable_aggregator_canvas() -> None:
    canvas = conformance_canvas("variable_aggregate/variable_aggregator.json")
    # Coze's TestVariableAggregatorNode: v1 is missing, so Group1 takes v11; v2 and v21 are missing, so the
    # literal 100.
    assert await output(canvas, {"v11": "v11"}) == {"g1": "v11", "g2": 100}
    assert await output(canvas, {"v1": "first", "v11": "v11", "v21": 7}) == {"g1": "first", "g2": 7}


async def test_tool_workflow_1_canvas_runs_end_to_end() -> None:
    canvas = conformance_canvas("function_call/tool_workflow_1.json")
    result, events = await run(canvas, {"input_i": 1, "input_f": 2.5, "obj": {"f1": True}})
    assert result.output == {"output": 1, "output1": "1 2.5", "Group2": True, "obj": {"f1": True}}
    # Run as a tool with no arguments (conformance case llm_workflow_tool_invoke): every group is empty.
    result, events = await run(canvas, {})
    assert result.output == {"output": None, "output1": " ", "Group2": None, "obj": None}
    assert finished(events)["157838"].outputs == b"{}"


async def test_group_falls_through_to_a_later_variable_of_another_type() -> None:
    canvas = conformance_canvas("function_call/tool_workflow_1.json")
    _, events = await run(canvas, {"input_f": 2.5})
    assert finished(events)["157838"].outputs == b'{"Group1":2.5}'


def test_tool_invoke_case_uses_this_canvas() -> None:
    case = conformance_case("llm_workflow_tool_invoke")
    assert "canvases/function_call/tool_workflow_1.json" in case["sub_canvases"].values()
    assert "32" in case["nodes"]


async def test_values_from_skipped_branches_are_passed_over() -> None:
    # Start → selector(flag) → [true: Output "from true"] / [false: Output "from false"] → aggregator → End.
    sel = c.node("125542", "8", "Condition", inputs={"branches": [{"condition": {"logic": 2, "conditions": [
        {"operator": 11, "left": {"input": c.ref("100001", "flag", "boolean")}}]}}]})
    agg = aggregator({"Group1": [c.ref("131001", "output"), c.ref("131002", "output")]})
    canvas = c.canvas(
        [c.start(("flag", "boolean")), sel, c.output("131001", "from true"), c.output("131002", "from false"), agg,
         c.end_return(result=c.ref(AGG_ID, "Group1"))],
        [c.edge("100001", "125542"), c.edge("125542", "131001", "true"), c.edge("125542", "131002", "false"),
         c.edge("131001", AGG_ID), c.edge("131002", AGG_ID), c.edge(AGG_ID, "900001")],
    )
    assert await output(canvas, {"flag": True}) == {"result": "from true"}
    assert await output(canvas, {"flag": False}) == {"result": "from false"}


async def test_empty_values_count_but_null_and_unconvertible_do_not() -> None:
    agg = aggregator({
        "text": [c.ref("100001", "missing"), c.ref("100001", "empty"), c.literal("fallback")],
        "number": [c.ref("100001", "word", "integer"), c.ref("100001", "digits", "integer")],
        "nothing": [c.ref("100001", "missing")],
        "none_at_all": [],
    })
    canvas = c.canvas(
        [c.start(("missing", "string"), ("empty", "string"), ("word", "string"), ("digits", "string")), agg,
         c.end_return(text=c.ref(AGG_ID, "text"), number=c.ref(AGG_ID, "number", "integer"),
                      nothing=c.ref(AGG_ID, "nothing"))],
        [c.edge("100001", AGG_ID), c.edge(AGG_ID, "900001")],
    )
    result, events = await run(canvas, {"empty": " ", "word": "ten", "digits": "10"})
    assert result.output == {"text": " ", "number": 10, "nothing": None}
    # Groups without a value are left out of the node's output, as in Coze.
    assert finished(events)[AGG_ID].outputs == b'{"text":" ","number":10}'


async def test_object_and_list_groups_keep_their_shape() -> None:
    obj = {"name": "o", "type": "object", "required": False, "schema": [{"name": "n", "type": "integer"}]}
    agg = aggregator({"o": [{**c.ref("100001", "o"), "type": "object", "schema": [{"name": "n", "type": "integer"}]}],
                      "l": [{**c.ref("100001", "l"), "type": "list", "schema": {"type": "integer"}}]})
    canvas = c.canvas(
        [c.start(obj, {"name": "l", "type": "list", "schema": {"type": "string"}}), agg,
         c.end_return(o={**c.ref(AGG_ID, "o"), "type": "object"}, l={**c.ref(AGG_ID, "l"), "type": "list"})],
        [c.edge("100001", AGG_ID), c.edge(AGG_ID, "900001")],
    )
    # The list of strings is converted to the variable's declared list of integers, dropping what won't fit.
    assert await output(canvas, {"o": {"n": 1}, "l": ["1", "x", "3"]}) == {"o": {"n": 1}, "l": [1, 3]}


def test_references_in_groups_are_validated() -> None:
    agg = aggregator({"g": [c.ref("999999", "nope")]})
    canvas = c.canvas([c.start(), agg, c.end_return()], [c.edge("100001", AGG_ID), c.edge(AGG_ID, "900001")])
    with pytest.raises(CanvasError, match="node 999999 does not exist"):
        compile_canvas(canvas)


@pytest.mark.parametrize(("groups", "message"), [
    ("Group1", "mergeGroups must be a list"),
    ([{"variables": []}], "merge group 1 has no name"),
    ([{"name": "g", "variables": []}, {"name": "g", "variables": []}], "two merge groups are named 'g'"),
    ([{"name": "g", "variables": "x"}], "must be a list"),
])
def test_bad_configuration_is_a_canvas_error(groups: Any, message: str) -> None:
    node = c.node(AGG_ID, "32", "Aggregator", inputs={"mergeGroups": copy.deepcopy(groups)})
    canvas = c.canvas([c.start(), node, c.end_return()], [c.edge("100001", AGG_ID), c.edge(AGG_ID, "900001")])
    with pytest.raises(CanvasError, match=message):
        compile_canvas(canvas)


async def test_an_object_missing_a_required_field_fails_the_node() -> None:
    schema = [{"name": "id", "type": "integer", "required": True}]
    agg = aggregator({"o": [{**c.ref("100001", "o"), "type": "object", "schema": schema}]})
    canvas = c.canvas(
        [c.start({"name": "o", "type": "object", "required": False, "schema": [{"name": "id", "type": "integer"}]}),
         agg, c.end_return(o={**c.ref(AGG_ID, "o"), "type": "object"})],
        [c.edge("100001", AGG_ID), c.edge(AGG_ID, "900001")],
    )
    assert await output(canvas, {"o": {"id": 1}}) == {"o": {"id": 1}}
    with pytest.raises(NodeError, match=r"missing required parameter: o\.0\.id") as caught:
        await run(canvas, {"o": {"name": "x"}})
    assert caught.value.node_id == AGG_ID


async def test_a_variable_that_does_not_convert_is_passed_over_with_a_warning() -> None:
    agg = aggregator({"Group1": [c.ref("100001", "x", "integer"), c.ref("100001", "y")]})
    canvas = c.canvas([c.start(("x", "string"), ("y", "string")), agg,
                       c.end_return(out=c.ref(AGG_ID, "Group1"))],
                      [c.edge("100001", AGG_ID), c.edge(AGG_ID, "900001")])
    result, events = await run(canvas, {"x": "not a number", "y": "fallback"})
    assert result.output == {"out": "fallback"}
    warnings = finished(events)[AGG_ID].warnings
    assert len(warnings) == 1 and "Group1.0" in warnings[0]
