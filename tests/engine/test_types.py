"""Type conversion as Coze applies it to inputs."""

from __future__ import annotations

from typing import Any

import pytest

from knotflow.dsl.convert import coerce, coerce_lenient
from knotflow.dsl.types import TypeInfo, TypeMismatch, to_text


def info(type_: str, schema: Any = None) -> TypeInfo:
    raw: dict[str, Any] = {"type": type_, "name": "x"}
    if schema is not None:
        raw["schema"] = schema
    return TypeInfo.parse(raw)


@pytest.mark.parametrize(("type_", "schema", "value", "expected"), [
    ("integer", None, "123", 123),
    ("integer", None, 12.0, 12),
    ("float", None, "3.5", 3.5),
    ("float", None, 2, 2.0),
    ("boolean", None, "true", True),
    ("boolean", None, "FALSE", False),
    ("string", None, 456, "456"),
    ("string", None, {"a": 1}, '{"a":1}'),
    ("list", {"type": "integer"}, "[1, \"2\"]", [1, 2]),
    ("object", [{"name": "n", "type": "integer"}], '{"n": "7", "x": 1}', {"n": 7, "x": 1}),
])
def test_coerce(type_: str, schema: Any, value: Any, expected: Any) -> None:
    assert coerce(value, info(type_, schema)) == expected


@pytest.mark.parametrize(("type_", "value"), [
    ("integer", "12.5"), ("integer", "abc"), ("integer", True), ("float", "x"), ("boolean", "yes"),
    ("object", "[1]"), ("list", "{}"), ("list", "not json"),
])
def test_coerce_refuses(type_: str, value: Any) -> None:
    with pytest.raises(TypeMismatch):
        coerce(value, info(type_))


@pytest.mark.parametrize(("type_", "schema", "value", "expected", "warnings"), [
    # Go's strconv: "3.0" is no integer, a float truncates toward zero without a warning.
    ("integer", None, "3.0", None, ["field x is not integer"]),
    ("integer", None, 3.9, 3, []),
    ("integer", None, "abc", None, ["field x is not integer"]),
    ("boolean", None, 1, None, ["field x is not boolean"]),
    ("boolean", None, "T", True, []),
    ("float", None, "1e3", 1000.0, []),
    ("string", None, 1e-7, "0.0000001", []),
    ("string", None, {"a": 1.0, "b": [1e21]}, '{"a":1,"b":[1e+21]}', []),
    ("object", None, "not json", None, ["field x is not object"]),
    ("list", {"type": "integer"}, ["1", "x", 2], [1, 2], ["field x.1 is not integer"]),
])
def test_lenient_conversion_is_go_faithful_and_warns(type_: str, schema: Any, value: Any, expected: Any,
                                                     warnings: list[str]) -> None:
    collected: list[str] = []
    assert coerce_lenient(value, info(type_, schema), collected) == expected
    assert collected == warnings


def test_to_text_formats_numbers_as_go() -> None:
    assert [to_text(v) for v in (1e-7, 1e21, 2.0, 0.1, -0.0)] == ["0.0000001", "1000000000000000000000", "2", "0.1",
                                                                  "-0"]
