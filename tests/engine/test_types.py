"""Type conversion as Coze applies it to inputs."""

from __future__ import annotations

from typing import Any

import pytest

from knotflow.dsl.types import TypeInfo, TypeMismatch, coerce


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
