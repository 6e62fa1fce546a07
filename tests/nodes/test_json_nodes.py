"""ToJSON (58) and FromJSON (59): Go-compatible encoding, and Coze's lenient conversion with warnings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from knotflow.dsl.convert import Conversion, MissingRequired, convert
from knotflow.dsl.gojson import dumps, format_float, json_float
from knotflow.dsl.types import TypeInfo
from knotflow.errors import CanvasError, NodeError
from tests import canvases as c
from tests.node_types import compile_canvas
from tests.nodes.helpers import conformance_canvas, conformance_case, finished, output, run

SER_ID, DE_ID = "112049", "179566"


def info(raw: dict[str, Any]) -> TypeInfo:
    return TypeInfo.parse({"name": "output", **raw})


# --- the Go encoder --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (1.0, "1"),
    (-0.0, "-0"),
    (2.5, "2.5"),
    (0.1, "0.1"),
    (100.0, "100"),
    (123456789.125, "123456789.125"),
    (1e20, "100000000000000000000"),
    (1e21, "1e+21"),
    (1.5e22, "1.5e+22"),
    (1e-6, "0.000001"),
    (1e-7, "1e-7"),
    (1.25e-10, "1.25e-10"),
    (-3e-8, "-3e-8"),
    (1e100, "1e+100"),
])
def test_json_float_matches_go(value: float, expected: str) -> None:
    assert json_float(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (1e21, "1000000000000000000000"),
    (1e-7, "0.0000001"),
    (2.0, "2"),
    (float("inf"), "+Inf"),
    (float("nan"), "NaN"),
])
def test_format_float_never_uses_an_exponent(value: float, expected: str) -> None:
    assert format_float(value) == expected


def test_dumps_is_compact_unescaped_and_ordered() -> None:
    value = {"z": [1, 2.0, None, True], "a": {"s": "<b>&\"quote\"\n中文"}}
    assert dumps(value) == '{"z":[1,2,null,true],"a":{"s":"<b>&\\"quote\\"\\n中文"}}'
    assert json.loads(dumps(value)) == value


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {1, 2}])
def test_dumps_rejects_what_go_cannot_encode(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        dumps({"x": bad})


# --- Coze's conversion ---------------------------------------------------------------------------------

# Coze Studio's json_deserialization_test.go: (declared type, parsed JSON, expected output, warning count).
OBJECT_NAME_AGE = {"type": "object", "schema": [{"name": "name", "type": "string", "required": True},
                                                {"name": "age", "type": "integer"}]}
COZE_CASES: list[tuple[dict[str, Any], Any, Any, int]] = [
    ({"type": "string"}, "test string", "test string", 0),
    ({"type": "integer"}, 123, 123, 0),
    ({"type": "boolean"}, True, True, 0),
    (OBJECT_NAME_AGE, {"name": "test", "age": 20}, {"name": "test", "age": 20}, 0),
    ({"type": "list", "schema": {"type": "integer"}}, [1, 2, 3], [1, 2, 3], 0),
    ({"type": "list", "schema": {"type": "object", "schema": [{"name": "id", "type": "integer"},
                                                             {"name": "name", "type": "string"}]}},
     [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], 0),
    ({"type": "integer"}, "not a number", None, 1),
    ({"type": "string"}, None, None, 0),
    ({"type": "integer"}, "123", 123, 0),
    ({"type": "integer"}, 123.0, 123, 0),
    ({"type": "integer"}, 123.5, 123, 0),  # truncated, silently
    ({"type": "integer"}, True, None, 1),
    ({"type": "boolean"}, "true", True, 0),
    ({"type": "object", "schema": [{"name": "age", "type": "integer"}]}, {"age": "456"}, {"age": 456}, 0),
    ({"type": "list", "schema": {"type": "integer"}}, ["1", "2", "3"], [1, 2, 3], 0),
    ({"type": "integer"}, "123abc", None, 1),
    ({"type": "object", "schema": [{"name": "score", "type": "integer"}]}, {"score": "invalid"}, {"score": None}, 1),
    ({"type": "list", "schema": {"type": "integer"}}, ["1", "two", 3], [1, 3], 1),
]


@pytest.mark.parametrize(("declared", "value", "expected", "warnings"), COZE_CASES)
def test_convert_matches_coze(declared: dict[str, Any], value: Any, expected: Any, warnings: int) -> None:
    conv = Conversion()
    result = convert(value, info(declared), "output", conv)
    assert result == expected
    assert type(result) is type(expected)
    assert len(conv.warnings) == warnings


@pytest.mark.parametrize(("declared", "value", "expected"), [
    ({"type": "string"}, 456, "456"),
    ({"type": "string"}, 2.50, "2.5"),
    ({"type": "string"}, 1e21, "1000000000000000000000"),
    ({"type": "string"}, False, "false"),
    ({"type": "string"}, {"a": [1.0]}, '{"a":[1]}'),
    ({"type": "integer"}, " 12", None),  # strconv does not trim
    ({"type": "integer"}, "1.0", None),
    ({"type": "integer"}, "+7", 7),
    ({"type": "integer"}, "99999999999999999999", None),  # beyond int64
    ({"type": "float"}, "1e3", 1000.0),
    ({"type": "float"}, 3, 3.0),
    ({"type": "float"}, ".5", 0.5),
    ({"type": "float"}, "1_0", None),
    ({"type": "float"}, "1e999", None),
    ({"type": "float"}, True, None),
    ({"type": "boolean"}, "T", True),
    ({"type": "boolean"}, "0", False),
    ({"type": "boolean"}, "yes", None),
    ({"type": "boolean"}, 1, None),
    ({"type": "object"}, '{"a": 1}', {"a": 1}),
    ({"type": "object"}, "[1]", None),
    ({"type": "object"}, 3, None),
    ({"type": "object"}, "null", None),
    ({"type": "list"}, "[1, 2]", [1, 2]),
    ({"type": "list"}, "{}", []),  # a list that does not parse is empty, not null
    ({"type": "list"}, 5, []),
    ({"type": "list", "schema": {"type": "object", "schema": [{"name": "a", "type": "integer"}]}},
     [{"a": "1"}, 7, None, {"a": "x"}], [{"a": 1}, None, None, {"a": None}]),  # objects stay even when they fail
])
def test_convert_edge_cases(declared: dict[str, Any], value: Any, expected: Any) -> None:
    assert convert(value, info(declared), "output", Conversion()) == expected


def test_convert_passes_undeclared_fields_and_reports_paths() -> None:
    conv = Conversion()
    declared = info({"type": "object", "schema": [
        {"name": "n", "type": "integer"},
        {"name": "inner", "type": "object", "schema": [{"name": "b", "type": "boolean"}]},
        {"name": "xs", "type": "list", "schema": {"type": "float"}},
    ]})
    result = convert({"n": "x", "extra": [1], "inner": {"b": "maybe"}, "xs": [1, "y"]}, declared, "output", conv)
    assert result == {"n": None, "extra": [1], "inner": {"b": None}, "xs": [1.0]}
    assert conv.warnings == ["field output.n is not integer", "field output.inner.b is not boolean",
                             "field output.xs.1 is not number"]


def test_convert_requires_required_fields() -> None:
    declared = info(OBJECT_NAME_AGE)
    with pytest.raises(MissingRequired, match=r"output\.name"):
        convert({"age": 1}, declared, "output", Conversion())
    with pytest.raises(MissingRequired, match=r"output\.name"):
        convert({}, declared, "output", Conversion())
    assert convert(None, declared, "output", Conversion()) is None


# --- the nodes ------------------------------------------------------------------------------------------

def from_json_canvas(output_schema: dict[str, Any], end_type: dict[str, Any] | None = None) -> dict[str, Any]:
    de = c.node(DE_ID, "59", "FromJSON", inputs={"inputParameters": [c.param("input", c.ref("100001", "text"))]},
                outputs=[{"name": "output", **output_schema}])
    end_input = {**c.ref(DE_ID, "output"), **(end_type or output_schema)}
    return c.canvas([c.start(("text", "string")), de, c.end_return(output=end_input)],
                    [c.edge("100001", DE_ID), c.edge(DE_ID, "900001")])


def to_json_canvas(param: dict[str, Any], block_input: dict[str, Any]) -> dict[str, Any]:
    ser = c.node(SER_ID, "58", "ToJSON", inputs={"inputParameters": [c.param("input", block_input)]},
                 outputs=[{"name": "output", "type": "string"}])
    return c.canvas([c.start(param), ser, c.end_return(output=c.ref(SER_ID, "output"))],
                    [c.edge("100001", SER_ID), c.edge(SER_ID, "900001")])


@pytest.mark.parametrize("case_id", ["json_serde_no_conversion", "json_serde_legal_conversion"])
async def test_conformance_cases(case_id: str) -> None:
    case = conformance_case(case_id)
    canvas = conformance_canvas(case["canvas"].removeprefix("canvases/"))
    result = await output(canvas, case["input"])
    for name, expected in case["expect"]["output_fields"].items():
        assert result[name] == expected


async def test_serialized_text_of_the_json_test_canvas() -> None:
    canvas = conformance_canvas("json/json_test.json")
    _, events = await run(canvas, {"person": '{"int":"123","string":456,"bool":"true"}'})
    assert json.loads(finished(events)[SER_ID].outputs) == {"output": '{"int":123,"string":"456","bool":true}'}


async def test_warning_canvas_nulls_the_mismatched_field() -> None:
    canvas = conformance_canvas("json/json_test_warning.json")
    result, events = await run(canvas, {"person": '{"int":123,"string":"hello","bool":true}'})
    assert result.output == {"output": {"int": None, "string": "hello", "bool": True}}
    deserialized = finished(events)[DE_ID]
    assert deserialized.status == "Success"
    assert deserialized.warnings == ["field output.int is not boolean"]


@pytest.mark.parametrize(("param", "block_input", "value", "expected"), [
    (("s", "string"), c.ref("100001", "s"), "test", '"test"'),
    (("s", "string"), c.ref("100001", "s"), '"test"\nwith\twhitespace', '"\\"test\\"\\nwith\\twhitespace"'),
    (("i", "integer"), c.ref("100001", "i", "integer"), 123, "123"),
    (("f", "float"), c.ref("100001", "f", "float"), 2, "2"),
    (("b", "boolean"), c.ref("100001", "b", "boolean"), True, "true"),
    ({"name": "l", "type": "list", "schema": {"type": "float"}},
     {**c.ref("100001", "l"), "type": "list", "schema": {"type": "float"}}, [1, 1.5, 1e21], "[1,1.5,1e+21]"),
    (("s", "string"), c.ref("100001", "s"), None, "null"),
])
async def test_to_json(param: Any, block_input: dict[str, Any], value: Any, expected: str) -> None:
    name = param["name"] if isinstance(param, dict) else param[0]
    params = {} if value is None else {name: value}
    assert await output(to_json_canvas(param, block_input), params) == {"output": expected}


@pytest.mark.parametrize(("schema", "text", "expected"), [
    ({"type": "string"}, '"test string"', "test string"),
    ({"type": "string"}, '{"a":1}', '{"a":1}'),
    ({"type": "string"}, "null", None),
    ({"type": "integer"}, "123.5", 123),
    ({"type": "float"}, "1", 1.0),
    ({"type": "boolean"}, '"true"', True),
    ({"type": "list", "schema": {"type": "integer"}}, '["1", "two", 3]', [1, 3]),
    ({"type": "list", "schema": {"type": "string"}}, "null", None),
    ({"type": "object", "schema": [{"name": "age", "type": "integer"}]}, '{"age":"456","x":[1]}',
     {"age": 456, "x": [1]}),
    ({"type": "object", "schema": []}, " null ", None),
])
async def test_from_json(schema: dict[str, Any], text: str, expected: Any) -> None:
    assert await output(from_json_canvas(schema), {"text": text}) == {"output": expected}


@pytest.mark.parametrize(("schema", "text", "message"), [
    ({"type": "string"}, "{invalid json}", "JSON unmarshaling failed"),
    ({"type": "integer"}, "   ", "JSON unmarshaling failed"),
    ({"type": "object", "schema": []}, "[1]", "expected a JSON object, got list"),
    ({"type": "object", "schema": []}, '"text"', "expected a JSON object, got str"),
    ({"type": "list", "schema": {"type": "string"}}, '{"a":1}', "expected a JSON array, got dict"),
    ({"type": "object", "schema": [{"name": "id", "type": "integer", "required": True}]}, "{}",
     "missing required parameter: output.id"),
    ({"type": "object", "schema": [{"name": "id", "type": "integer", "required": True}]}, "null",
     "missing required parameter: output.id"),
])
async def test_from_json_failures(schema: dict[str, Any], text: str, message: str) -> None:
    with pytest.raises(NodeError, match=message) as caught:
        await run(from_json_canvas(schema), {"text": text})
    assert caught.value.node_id == DE_ID


async def test_from_json_needs_a_string_input() -> None:
    # Start leaves an empty string out, so the node gets null rather than text.
    with pytest.raises(NodeError, match="input is not a string, got NoneType"):
        await run(from_json_canvas({"type": "string"}), {"text": ""})


@pytest.mark.parametrize(("outputs", "message"), [
    ([], "needs an output named 'output'"),
    ([{"name": "result", "type": "string"}], "needs an output named 'output'"),
    ([{"name": "output", "type": "any"}], "unsupported output type 'any'"),
])
def test_from_json_configuration(outputs: list[dict[str, Any]], message: str) -> None:
    de = c.node(DE_ID, "59", "FromJSON", inputs={"inputParameters": []}, outputs=outputs)
    canvas = c.canvas([c.start(), de, c.end_return()], [c.edge("100001", DE_ID), c.edge(DE_ID, "900001")])
    with pytest.raises(CanvasError, match=message):
        compile_canvas(canvas)
