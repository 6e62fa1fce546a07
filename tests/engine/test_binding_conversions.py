"""Every pair of Coze's conversion table — a source value's type × the type an End or Output node declares for its
input — rendered by the node's template, as Coze Studio renders it.

Expected values follow Studio's source: the input is converted to the declared type by `nodes.Convert`
(`convertToString`: strconv.FormatFloat(f, 'f', -1); `convertToInt64`: strconv.ParseInt(s, 10, 64) or int64(f);
`convertToFloat64`: strconv.ParseFloat; `convertToBool`: strconv.ParseBool of a string only; objects and lists
from their JSON text; a misfit is null, a list that does not fit `[]`) and the template then renders it
(`TemplatePart.Render`: null as nothing, strings as they are, everything else as JSON read back with UseNumber, so
a float is Go's JSON `1e-7`/`1e+21`/`3` and object keys are sorted). The only deviation: a float beyond int64 is
no integer here (null), where Go's int64(f) gives a CPU-dependent number.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests import canvases as c
from tests.node_types import compile_canvas

from knotflow.engine.events import NodeFinished, NodeMessage
from knotflow.engine.runner import Execution

TARGETS = ("string", "integer", "float", "boolean", "object", "list")
# (declared Start type, value given, {target: rendered}) — list targets are lists of strings.
CASES: list[tuple[str, Any, dict[str, str]]] = [
    ("string", "1", {"string": "1", "integer": "1", "float": "1", "boolean": "true", "object": "", "list": "[]"}),
    ("string", "3.0", {"string": "3.0", "integer": "", "float": "3", "boolean": "", "object": "", "list": "[]"}),
    ("string", "1e2", {"string": "1e2", "integer": "", "float": "100", "boolean": "", "object": "", "list": "[]"}),
    ("string", "0.0000001",
     {"string": "0.0000001", "integer": "", "float": "1e-7", "boolean": "", "object": "", "list": "[]"}),
    ("string", "abc", {"string": "abc", "integer": "", "float": "", "boolean": "", "object": "", "list": "[]"}),
    ("string", "t", {"string": "t", "integer": "", "float": "", "boolean": "true", "object": "", "list": "[]"}),
    ("string", "FALSE",
     {"string": "FALSE", "integer": "", "float": "", "boolean": "false", "object": "", "list": "[]"}),
    ("string", '{"b":1,"a":2}',
     {"string": '{"b":1,"a":2}', "integer": "", "float": "", "boolean": "", "object": '{"a":2,"b":1}',
      "list": "[]"}),
    ("string", "[1,2.5]",
     {"string": "[1,2.5]", "integer": "", "float": "", "boolean": "", "object": "", "list": '["1","2.5"]'}),
    ("integer", 1, {"string": "1", "integer": "1", "float": "1", "boolean": "", "object": "", "list": "[]"}),
    ("integer", -7, {"string": "-7", "integer": "-7", "float": "-7", "boolean": "", "object": "", "list": "[]"}),
    ("float", 3.0, {"string": "3", "integer": "3", "float": "3", "boolean": "", "object": "", "list": "[]"}),
    ("float", 3.9, {"string": "3.9", "integer": "3", "float": "3.9", "boolean": "", "object": "", "list": "[]"}),
    ("float", 1e-07,
     {"string": "0.0000001", "integer": "0", "float": "1e-7", "boolean": "", "object": "", "list": "[]"}),
    ("float", 1e21, {"string": "1000000000000000000000", "integer": "", "float": "1e+21", "boolean": "",
                     "object": "", "list": "[]"}),
    ("boolean", True,
     {"string": "true", "integer": "", "float": "", "boolean": "true", "object": "", "list": "[]"}),
    ("boolean", False,
     {"string": "false", "integer": "", "float": "", "boolean": "false", "object": "", "list": "[]"}),
    # Go's map order is random when an object becomes text; knotflow keeps the given order (one of Go's).
    ("object", {"b": 1, "a": 2.5},
     {"string": '{"b":1,"a":2.5}', "integer": "", "float": "", "boolean": "", "object": '{"a":2.5,"b":1}',
      "list": "[]"}),
    ("list", ["x", 1.5],
     {"string": '["x","1.5"]', "integer": "", "float": "", "boolean": "", "object": "", "list": '["x","1.5"]'}),
]


def declared(name: str, type_: str) -> dict[str, Any]:
    if type_ == "list":
        return {"name": name, "type": "list", "schema": {"type": "string"}, "required": False}
    return {"name": name, "type": type_, "required": False}


def bound(type_: str) -> dict[str, Any]:
    source = c.ref("100001", "x", type_)
    if type_ == "list":
        source["schema"] = {"type": "string"}
    return source


def canvas(node: str, source: str) -> dict[str, Any]:
    inputs = {target: bound(target) for target in TARGETS}
    template = "|".join(f"{{{{{target}}}}}" for target in TARGETS)
    start = c.start(declared("x", source))
    if node == "output":
        nodes = [start, c.output("135000", template, title="输出", **inputs),
                 c.end_return(output=c.ref("135000", "output"))]
        return c.canvas(nodes, [c.edge("100001", "135000"), c.edge("135000", "900001")])
    return c.canvas([start, c.end_answer(template, streaming=node == "streaming end", **inputs)],
                    [c.edge("100001", "900001")])


@pytest.mark.parametrize("node", ["end", "streaming end", "output"])
@pytest.mark.parametrize(("source", "given", "expected"), CASES,
                         ids=[f"{source}:{given!r}" for source, given, _ in CASES])
async def test_template_renders_each_conversion_as_coze(node: str, source: str, given: Any,
                                                        expected: dict[str, str]) -> None:
    plan = compile_canvas(canvas(node, source))
    events: list[Any] = []
    await Execution(plan, sink=events.append).run(plan.entry.prepare({"x": given}))  # type: ignore[attr-defined]
    shown = "".join(e.content for e in events if isinstance(e, NodeMessage)
                    and e.node_id == ("135000" if node == "output" else "900001"))
    assert shown.split("|") == [expected[target] for target in TARGETS]


async def test_each_misfit_is_a_warning_on_the_node() -> None:
    plan = compile_canvas(canvas("end", "integer"))
    events: list[Any] = []
    await Execution(plan, sink=events.append).run(plan.entry.prepare({"x": 1}))  # type: ignore[attr-defined]
    end = next(e for e in events if isinstance(e, NodeFinished) and e.node_id == "900001")
    assert end.warnings == ["field boolean is not boolean", "field object is not object", "field list is not list"]
