"""Compact JSON the way Coze writes it: no spaces, raw UTF-8.

Every value read is at most `MAX_DEPTH` levels deep: deeper ones are refused as invalid JSON. Without the bound,
a request nested a few hundred levels passes parsing and then breaks whatever walks it (orjson refuses to write
more than 254 levels; Python's recursion stops at about 1 000 frames), far from the request that sent it.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_DEPTH = 128


class JSONDecodeError(ValueError):
    """Text that is not JSON, or JSON nested too deep."""


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def dumpb(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


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
