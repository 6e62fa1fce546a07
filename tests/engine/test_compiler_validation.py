"""Coze Studio's publish-time canvas checks (engine/validation.py) as compile_canvas applies them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests import canvases as c
from tests.node_types import compile_canvas

from knotflow.dsl import jsonutil
from knotflow.engine.validation import InvalidCanvas

COZE_VALIDATE = Path(__file__).parents[2].parent / "shared" / "conformance" / "canvases" / "validate"


def issues(canvas: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidCanvas) as caught:
        compile_canvas(canvas)
    return [str(issue) for issue in caught.value.issues]


def intent(node_id: str, *names: str, **inputs: Any) -> dict[str, Any]:
    return c.node(node_id, "22", "Intent", inputs={
        "intents": [{"name": name} for name in names], "mode": "top_speed",
        "inputParameters": [c.param("query", c.literal("hi"))], **inputs})


def test_a_node_leading_nowhere_is_named() -> None:
    canvas = c.canvas([c.start(), c.output("1", "a", title="Dead end"), c.end_return()],
                      [c.edge("100001", "1"), c.edge("100001", "900001")])
    assert issues(canvas) == ["node 'Dead end' (1) is not connected to a next node"]


def test_every_branch_port_must_be_connected() -> None:
    canvas = c.canvas([c.start(), intent("2", "greet", "ask"), c.end_return()],
                      [c.edge("100001", "2"), c.edge("2", "900001", "branch_0")])
    assert issues(canvas) == ["node 'Intent' (2) has branch ports that are not connected: branch_1, default"]


def test_an_exception_branch_needs_both_its_ports() -> None:
    guarded = c.output("1", "a")
    guarded["data"]["inputs"]["settingOnError"] = {"processType": 3}
    canvas = c.canvas([c.start(), guarded, c.end_return()],
                      [c.edge("100001", "1"), c.edge("1", "900001")])  # a plain edge is the `default` way out
    assert issues(canvas) == ["node 'Output' (1) has branch ports that are not connected: branch_error"]
    canvas["edges"].append(c.edge("1", "900001", "branch_error"))
    compile_canvas(canvas)


def test_isolated_nodes_are_pruned_before_the_checks_as_in_coze() -> None:
    comment = c.node("5", "31", "Note")
    lonely = c.output("6", "never", title="Lonely")  # nothing leads to it: pruned, so its missing exit is fine
    fed = c.output("7", "fed", title="Fed by lonely")  # something leads to it: kept, and checked
    canvas = c.canvas([c.start(), comment, lonely, fed, c.end_return()],
                      [c.edge("100001", "900001"), c.edge("6", "7")])
    assert issues(canvas) == ["node 'Fed by lonely' (7) is not connected to a next node"]
    canvas["edges"].append(c.edge("7", "900001"))
    assert [n.node.id for n in compile_canvas(canvas).nodes] == ["100001", "900001"]


def test_parameter_names_must_be_identifiers() -> None:
    canvas = c.canvas([c.start(("x", "string")), c.output("1", "{{x}}", **{"my-var": c.ref("100001", "x")}),
                       c.end_return(_ok=c.ref("100001", "x"))],
                      [c.edge("100001", "1"), c.edge("1", "900001")])
    (problem,) = issues(canvas)
    assert problem.startswith("node 'Output' (1) has an input parameter named \"my-var\"")


def test_cycles_are_named_by_their_nodes() -> None:
    canvas = c.canvas([c.start(), c.output("1", "a", title="A"), c.output("2", "b", title="B"), c.end_return()],
                      [c.edge("100001", "1"), c.edge("1", "2"), c.edge("2", "1"), c.edge("2", "900001")])
    (problem,) = issues(canvas)
    assert "cycle" in problem and "'A' (1)" in problem and "'B' (2)" in problem


def test_structure_is_checked_before_node_types_are_required() -> None:
    canvas = c.canvas([c.start(), c.node("8", "9999", "Mystery"), c.end_return()],
                      [c.edge("100001", "8"), c.edge("100001", "900001")])
    assert issues(canvas) == ["node 'Mystery' (8) is not connected to a next node"]


@pytest.mark.skipif(not COZE_VALIDATE.is_dir(), reason=f"Coze Studio conformance data not at {COZE_VALIDATE}")
@pytest.mark.parametrize(("name", "expected"), [
    # Coze Studio's TestValidateTree: node 108984 `node "代码_1" not connected`, 160892's ports branch_1, default.
    ("workflow_has_no_connected_nodes.json", [
        "node '代码_1' (108984) is not connected to a next node",
        "node '意图识别' (160892) has branch ports that are not connected: branch_1, default"]),
    ("invalid_input_parameter.json", ["node '大模型' (198684) has an input parameter named \"123\""]),
    ("workflow_has_loop.json", ["cycle", "(161668)", "(177387)", "(101917)"]),
    ("workflow_nested_has_loop_or_batch.json", ["cannot be nested"]),
])
def test_coze_studio_validate_canvases(name: str, expected: list[str]) -> None:
    canvas = jsonutil.loads((COZE_VALIDATE / name).read_bytes())
    message = "; ".join(issues(canvas))
    for text in expected:
        assert text in message
