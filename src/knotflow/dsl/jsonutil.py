"""Compact JSON the way Coze writes it: no spaces, raw UTF-8, and numbers as Go's encoder writes them.

Coze Studio's values are Go values: a `float` output holding 123 is float64(123), which Go's encoding/json writes as
`123`; orjson writes `123.0`, and a client parsing it gets a float where Coze gave it an integer. So a whole float
within ±2^63 is written as an integer, and the other floats orjson writes differently from Go — in exponent form
where Go has none, from 1e-6 to 1e-5 and from 1e16 to 1e21 (`1e-6` against `0.000001`) — as Go writes them
(`gojson.json_float`). The common case pays one scan of the output: only text that may hold such a float is written
again, walking the value (about ten times orjson's time for an output full of floats).

Every value read is at most `MAX_DEPTH` levels deep: deeper ones are refused as invalid JSON. Without the bound,
a request nested a few hundred levels passes parsing and then breaks whatever walks it (orjson refuses to write
more than 254 levels; Python's recursion stops at about 1 000 frames), far from the request that sent it.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from knotflow.dsl.gojson import json_float

MAX_DEPTH = 128
_OPTIONS = orjson.OPT_NON_STR_KEYS
_WHOLE_LIMIT = 2.0**63  # orjson's integer range; Go writes whole floats as integers up to 1e21
# What orjson writes where Go differs: a whole float (`123.0`) or an exponent (`1e-6`, `1e+16`). Text in strings may
# match too (`"v1.0"`): that costs a second writing, never a wrong one.
_MAYBE_UNLIKE_GO = re.compile(rb"\d\.0(?![0-9])|\de[-+]?\d")


class JSONDecodeError(ValueError):
    """Text that is not JSON, or JSON nested too deep."""


def dumps(value: Any) -> str:
    return dumpb(value).decode()


def dumpb(value: Any) -> bytes:
    data = orjson.dumps(value, option=_OPTIONS)
    if _MAYBE_UNLIKE_GO.search(data) is None:
        return data
    return orjson.dumps(_go_numbers(value), option=_OPTIONS)


def _go_numbers(value: Any) -> Any:
    """`value` with its floats as Go writes them (see the module docstring); the rest as it is."""
    if isinstance(value, float):
        magnitude = abs(value)
        if value.is_integer() and magnitude < _WHOLE_LIMIT:
            return int(value)
        if 1e-6 <= magnitude < 1e-5 or 1e16 <= magnitude < 1e21:  # where orjson writes an exponent and Go does not
            return orjson.Fragment(json_float(value))
        return value
    if isinstance(value, dict):
        return {key: _go_numbers(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_go_numbers(item) for item in value]
    return value


def loads(data: str | bytes) -> Any:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise JSONDecodeError(str(exc)) from exc
    if isinstance(value, dict | list):
        _check_depth(value)
    return value


def _check_depth(value: dict[str, Any] | list[Any]) -> None:
    # Iterative: the check itself must not recurse. Only containers are visited.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise JSONDecodeError(f"the JSON nests deeper than {MAX_DEPTH} levels")
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
