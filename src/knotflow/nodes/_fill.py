"""Coze Studio's filling of absent values (`compose/field_fill.go`, FillIfNotRequired): before a node runs, its
inputs' missing values become zero values (PreFillZero); after it ran, the declared outputs it did not produce
become null (PostFillNil). Nodes whose Studio metadata asks for it apply these themselves.

Zero values are Go's: "" for text, 0 for numbers, false for booleans, and null for objects and lists (Go's nil map
and nil slice). Only top-level values get a zero value; a missing field inside an object stays null. An object
output with declared fields that is absent becomes an object of those fields, each null (recursively).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from knotflow.dsl.types import BOOLEAN, FLOAT, INTEGER, LIST, STRING, TypeInfo

_ZERO: dict[str, Any] = {STRING: "", INTEGER: 0, FLOAT: 0.0, BOOLEAN: False}


def zero_value(info: TypeInfo) -> Any:
    return _ZERO.get(info.type)


def fill_zero(values: dict[str, Any], types: Iterable[TypeInfo]) -> dict[str, Any]:
    """Studio's PreFillZero over a node's inputs."""
    return _fill(values, types, zero=True)


def fill_nil(values: dict[str, Any], types: Iterable[TypeInfo]) -> dict[str, Any]:
    """Studio's PostFillNil over a node's outputs."""
    return _fill(values, types, zero=False)


def _fill(values: dict[str, Any], types: Iterable[TypeInfo], *, zero: bool) -> dict[str, Any]:
    filled = dict(values)
    for info in types:
        _field(filled, info.name, info, zero=zero, inside=False)
    return filled


def _field(container: dict[str, Any], key: str, info: TypeInfo, *, zero: bool, inside: bool) -> None:
    if key not in container:
        if info.properties:
            container[key] = _object({}, info, zero)
        else:
            container[key] = zero_value(info) if zero and not inside else None
        return
    value = container[key]
    if value is None:
        if zero and not inside and not info.properties:
            container[key] = zero_value(info)
        return
    if info.properties:
        if isinstance(value, dict):
            container[key] = _object(value, info, zero)
    elif info.type == LIST and isinstance(value, list) and info.element is not None:
        container[key] = _list(value, info.element, zero)


def _object(value: dict[str, Any], info: TypeInfo, zero: bool) -> dict[str, Any]:
    filled = dict(value)
    for name, prop in info.properties.items():
        _field(filled, name, prop, zero=zero, inside=True)
    return filled


def _list(items: list[Any], element: TypeInfo, zero: bool) -> list[Any]:
    filled = []
    for item in items:
        if item is None and zero:
            item = zero_value(element)
        elif element.properties and isinstance(item, dict):
            item = _object(item, element, zero)
        filled.append(item)
    return filled
