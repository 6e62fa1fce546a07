"""The Text processing node: concat templates with list joining, and split on several delimiters."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from knotflow.contract import Template
from knotflow.errors import CanvasError, NodeError
from knotflow.nodes.text import join_items, render, split
from tests import canvases as c
from tests.node_types import compile_canvas
from tests.nodes.helpers import conformance_canvas, finished, output, run

TEXT_ID = "121518"


def concat_node(template: str, separator: str | None = "，", node_id: str = TEXT_ID,
                **inputs: dict[str, Any]) -> dict[str, Any]:
    params = [c.param("concatResult", c.literal(template))]
    if separator is not None:
        params.append(c.param("arrayItemConcatChar", c.literal(separator)))
    return c.node(node_id, "15", "Text", outputs=[{"name": "output", "type": "string"}], inputs={
        "method": "concat",
        "concatParams": params,
        "inputParameters": [c.param(name, source) for name, source in inputs.items()],
    })


def split_node(delimiters: list[str], source: dict[str, Any], name: str = "String") -> dict[str, Any]:
    return c.node(TEXT_ID, "15", "Text", outputs=[{"name": "output", "type": "list", "schema": {"type": "string"}}],
                  inputs={
                      "method": "split",
                      "splitParams": [c.param("delimiters", {"type": "list", "schema": {"type": "string"},
                                                             "value": {"type": "literal", "content": delimiters}})],
                      "inputParameters": [c.param(name, source)],
                  })


def through(text_node: dict[str, Any], *params: tuple[str, str] | dict[str, Any],
            output_type: str = "string") -> dict[str, Any]:
    out = {**c.ref(TEXT_ID, "output", output_type)}
    if output_type == "list":
        out["schema"] = {"type": "string"}
    return c.canvas([c.start(*params), text_node, c.end_return(output=out)],
                    [c.edge("100001", TEXT_ID), c.edge(TEXT_ID, "900001")])


def obj(name: str, **props: str) -> dict[str, Any]:
    return {"name": name, "type": "object", "required": False,
            "schema": [{"name": k, "type": v} for k, v in props.items()]}


def test_coze_concat_example() -> None:
    # Coze's text_processor_test: lists at any depth are joined; objects render as JSON.
    values = {
        "a": ["1", {"1": 1}, 3],
        "b": {"b1": ["1", "2", "3"], "b2": ["1", 2, "3"]},
        "c": {"c1": "1"},
    }
    template = Template.parse("fx{{a}}=={{b.b1}}=={{b.b2[1]}}=={{c}}")
    assert render(template, values, set(), "\\t") == 'fx1\\t{"1":1}\\t3==1\\t2\\t3==2=={"c1":"1"}'


@pytest.mark.parametrize(("items", "expected"), [
    (["a", "b"], "a|b"),
    ([1, 2.5, 3.0, True, None, "x"], "1|2.5|3|true||x"),
    ([{"k": "v", "n": 1.0}], '{"k":"v","n":1}'),
    ([["a", 1], ["b"]], "[a 1]|[b]"),  # nested lists print the way Go's %v does
    ([[{"z": 1, "a": None}]], "[map[a:<nil> z:1]]"),
    ([1e21, 1e-7], "1e+21|1e-7"),
    ([], ""),
])
def test_join_items(items: list[Any], expected: str) -> None:
    assert join_items(items, "|") == expected


def test_skipped_roots_render_empty_even_when_lists() -> None:
    template = Template.parse("[{{a}}][{{b}}][{{missing}}]")
    assert render(template, {"a": ["x", "y"], "b": ["z"]}, {"a"}, ",") == "[][z][{{missing}}]"


@pytest.mark.parametrize(("text", "delimiters", "expected"), [
    ("a,b|c.d,e|f|g", [",", "|", "."], ["a", "b", "c", "d", "e", "f", "g"]),
    ("a,,b", [","], ["a", "", "b"]),
    ("", [","], [""]),
    ("abc", [""], ["a", "b", "c"]),
    ("", [""], []),
    ("一。二，三", ["。", "，"], ["一", "二", "三"]),
    ("no delimiter here", ["|"], ["no delimiter here"]),
])
def test_split(text: str, delimiters: list[str], expected: list[str]) -> None:
    assert split(text, delimiters) == expected


async def test_concat_through_the_engine() -> None:
    node = concat_node("new_{{String1}}_{{String2}}", String1=c.ref("100001", "a"), String2=c.ref("100001", "b"))
    canvas = through(node, ("a", "string"), ("b", "string"))
    assert await output(canvas, {"a": "x", "b": "y"}) == {"output": "new_x_y"}
    assert await output(canvas, {"a": "x"}) == {"output": "new_x_"}  # a missing value renders as nothing


async def test_concat_joins_list_inputs_with_the_separator() -> None:
    tags = {"name": "tags", "type": "list", "schema": {"type": "string"}, "required": False}
    nums = {"name": "nums", "type": "list", "schema": {"type": "float"}, "required": False}
    node = concat_node("tags: {{tags}}; first: {{tags[0]}}; nums: {{nums}}", separator="、",
                       tags={**c.ref("100001", "tags"), "type": "list", "schema": {"type": "string"}},
                       nums={**c.ref("100001", "nums"), "type": "list", "schema": {"type": "float"}})
    canvas = through(node, tags, nums)
    assert await output(canvas, {"tags": ["a", "b", "c"], "nums": [1, 2.5]}) == {
        "output": "tags: a、b、c; first: a; nums: 1、2.5"
    }


async def test_concat_without_separator_joins_directly() -> None:
    tags = {"name": "tags", "type": "list", "schema": {"type": "string"}, "required": False}
    node = concat_node("{{tags}}", separator=None,
                       tags={**c.ref("100001", "tags"), "type": "list", "schema": {"type": "string"}})
    assert await output(through(node, tags), {"tags": ["a", "b"]}) == {"output": "ab"}


async def test_concat_renders_scalars_objects_and_paths() -> None:
    node = concat_node("{{i}} {{f}} {{b}} {{o}} {{o.k}} {{o.nope}} {{unknown}}",
                       i=c.ref("100001", "i", "integer"), f=c.ref("100001", "f", "float"),
                       b=c.ref("100001", "b", "boolean"), o={**c.ref("100001", "o"), "type": "object"})
    canvas = through(node, ("i", "integer"), ("f", "float"), ("b", "boolean"), obj("o", k="string"))
    result = await output(canvas, {"i": 7, "f": 2.5, "b": False, "o": {"k": "v"}})
    # Unknown roots stay as written; a path that does not exist renders as the engine's templates do.
    assert result["output"].startswith('7 2.5 false {"k":"v"} v ')
    assert result["output"].endswith(" {{unknown}}")


async def test_concat_from_the_tool_workflow_canvas() -> None:
    tool = conformance_canvas("function_call/tool_workflow_1.json")
    node = copy.deepcopy(next(n for n in tool["nodes"] if n["type"] == "15"))
    node["id"] = TEXT_ID
    canvas = through(node, ("input_i", "integer"), ("input_f", "float"))
    assert await output(canvas, {"input_i": 1, "input_f": 2.5}) == {"output": "1 2.5"}
    assert await output(canvas, {"input_i": 1, "input_f": 3}) == {"output": "1 3"}


async def test_concat_skips_references_to_skipped_branches() -> None:
    sel = c.node("125542", "8", "Condition", inputs={"branches": [{"condition": {"logic": 2, "conditions": [
        {"operator": 11, "left": {"input": c.ref("100001", "flag", "boolean")}}]}}]})
    yes = c.output("131000", "yes", title="yes")
    node = concat_node("[{{a}}]", a=c.ref("131000", "output"), node_id=TEXT_ID)
    canvas = c.canvas([c.start(("flag", "boolean")), sel, yes, node, c.end_return(output=c.ref(TEXT_ID, "output"))],
                      [c.edge("100001", "125542"), c.edge("125542", "131000", "true"),
                       c.edge("125542", TEXT_ID, "false"), c.edge("131000", TEXT_ID), c.edge(TEXT_ID, "900001")])
    assert await output(canvas, {"flag": True}) == {"output": "[yes]"}
    assert await output(canvas, {"flag": False}) == {"output": "[]"}


async def test_split_through_the_engine_with_the_batch_canvas_delimiters() -> None:
    batch = conformance_canvas("batch/sub_workflow_as_batch.json")
    node = copy.deepcopy(next(n for n in batch["nodes"] if n["type"] == "15"))
    node["id"] = TEXT_ID
    canvas = through(node, ("input", "string"), output_type="list")
    assert await output(canvas, {"input": "今天天气很好。我们去公园，好吗"}) == {
        "output": ["今天天气很好", "我们去公园", "好吗"]
    }


async def test_split_records_its_output_list() -> None:
    canvas = through(split_node([",", ";"], c.ref("100001", "s")), ("s", "string"), output_type="list")
    result, events = await run(canvas, {"s": "a,b;c"})
    assert result.output == {"output": ["a", "b", "c"]}
    assert finished(events)[TEXT_ID].outputs == b'{"output":["a","b","c"]}'


async def test_split_needs_a_string_named_String() -> None:
    missing = through(split_node([","], c.ref("100001", "s"), name="Text"), ("s", "string"), output_type="list")
    with pytest.raises(NodeError, match="input parameter named 'String'"):
        await run(missing, {"s": "a,b"})
    empty = through(split_node([","], c.ref("100001", "s")), ("s", "string"), output_type="list")
    with pytest.raises(NodeError, match="must be a string, got NoneType"):
        await run(empty, {})


@pytest.mark.parametrize(("inputs", "message"), [
    ({"method": "reverse"}, "not supported method: 'reverse'"),
    ({}, "not supported method: None"),
    ({"method": "concat", "concatParams": []}, "concat needs a template"),
    ({"method": "concat", "concatParams": [c.param("concatResult", c.literal(""))]}, "concat needs a template"),
    ({"method": "concat", "concatParams": [c.param("concatResult", c.ref("100001", "t"))]}, "must be a literal"),
    ({"method": "split", "splitParams": []}, "at least one delimiter"),
    ({"method": "split", "splitParams": [c.param("delimiters", {"type": "list", "value": {
        "type": "literal", "content": []}})]}, "at least one delimiter"),
])
def test_bad_configuration_is_a_canvas_error(inputs: dict[str, Any], message: str) -> None:
    canvas = c.canvas([c.start(("t", "string")), c.node(TEXT_ID, "15", "Text", inputs=inputs), c.end_return()],
                      [c.edge("100001", TEXT_ID), c.edge(TEXT_ID, "900001")])
    with pytest.raises(CanvasError, match=message):
        compile_canvas(canvas)
