"""Values written the way Coze Studio's Go code writes them: Go's float formatting and its JSON encoder.

Several node types render values through Go's JSON (JSON serialize, text concat, FromJSON's string conversion).
Go differs from Python's encoders only in numbers: `1.0` is `1`, and exponents appear below 1e-6 and from 1e21
up, without a leading zero (`1e-7`, `1e+21`).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import orjson


def format_float(value: float) -> str:
    """Go's `strconv.FormatFloat(f, 'f', -1, 64)`: the shortest round-tripping digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return format(Decimal(repr(value)).normalize(), "f")


def json_float(value: float) -> str:
    """A float64 as Go's JSON encoder writes it."""
    if not math.isfinite(value):
        raise ValueError(f"json: unsupported value: {format_float(value)}")
    magnitude = abs(value)
    if magnitude == 0 or 1e-6 <= magnitude < 1e21:
        return format_float(value)
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)  # finite, so never 'n'/'N'/'F'
    text = "".join(str(d) for d in digits)
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    power = exponent + len(text) - 1
    # strconv pads the exponent to two digits; encoding/json drops the pad of a negative one (e-07 → e-7).
    written = f"{'+' if power >= 0 else '-'}{abs(power):02d}"
    if power < 0 and abs(power) < 10:
        written = f"-{abs(power)}"
    return f"{'-' if sign else ''}{mantissa}e{written}"


def dumps(value: Any, sort_keys: bool = False) -> str:
    """Compact JSON as Coze's sonic encoder writes it (no HTML escaping, map keys in their order, or sorted as
    sonic's SortMapKeys config sorts them)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(item, sort_keys) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda item: str(item[0])) if sort_keys else value.items()
        return "{" + ",".join(f"{orjson.dumps(str(k)).decode()}:{dumps(v, sort_keys)}" for k, v in items) + "}"
    raise TypeError(f"json: unsupported type: {type(value).__name__}")
