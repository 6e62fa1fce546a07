"""Compact JSON the way Coze writes it: no spaces, raw UTF-8, and a whole float as Go's encoder writes it.

Coze Studio's values are Go values: a `float` output holding 123 is float64(123), which Go's encoding/json writes
as `123`; orjson writes `123.0`, and a client parsing it gets a float where Coze gave it an integer. So a float that
is a whole number within ±2^63 is written as an integer (Go does so up to 1e21; orjson writes no integer beyond 64
bits, so larger ones keep orjson's exponent form). The common case pays
one scan of the output: only text that may hold such a float is written again, walking the value (about ten
times orjson's time for an output full of floats).

Every value read is at most `MAX_DEPTH` levels deep: deeper ones are refused as invalid JSON. Without the bound,
a request nested a few hundred levels passes parsing and then breaks whatever walks it (orjson refuses to write
more than 254 levels; Python's recursion stops at about 1 000 frames), far from the request that sent it.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

MAX_DEPTH = 128
_OPTIONS = orjson.OPT_NON_STR_KEYS
_WHOLE_LIMIT = 2.0**63  # orjson's integer range; Go writes whole floats as integers up to 1e21
# How orjson writes a whole float: `123.0`, or `1e16` from 1e16 up. Text in strings may match too (`"v1.0"`): that
# costs a second writing, never a wrong one.
_MAYBE_WHOLE_FLOAT = re.compile(rb"\d\.0(?![0-9])|\de[-+]?\d")


class JSONDecodeError(ValueError):
    """Text that is not JSON, or JSON nested too deep."""


def dumps(value: Any) -> str:
    return dumpb(value).decode()


def dumpb(value: Any) -> bytes:
    data = orjson.dumps(value, option=_OPTIONS)
    if _MAYBE_WHOLE_FLOAT.search(data) is None:
        return data
    return orjson.dumps(_go_numbers(value), option=_OPTIONS)


def _go_numbers(value: Any) -> Any:
    """`value` with each whole float within ±2^63 as an int (see the module docstring); the rest as it is."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < _WHOLE_LIMIT else value
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
