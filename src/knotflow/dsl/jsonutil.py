"""Compact JSON the way Coze writes it: no spaces, raw UTF-8."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def dumpb(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def loads(data: str | bytes) -> Any:
    return orjson.loads(data)


JSONDecodeError = orjson.JSONDecodeError
