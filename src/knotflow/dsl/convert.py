"""Coze Studio's value conversion (`nodes.Convert` / `ConvertInputs`), the one knotflow uses everywhere: lenient
inside a run (`convert`, `coerce_lenient`), fail-fast where Coze fails fast (`coerce`).

A value that does not fit the declared type is a warning, not an error: a scalar or an object field becomes
null, a list element that does not fit is dropped, and the warning (`field <path> is not <type>`) is collected
in a Conversion. Numbers become text the way Go formats them (`1e-07` → `0.0000001`); strings become numbers,
booleans, objects and lists only as Go's strconv / encoding/json would parse them. A required object field
that is missing is an error (MissingRequired), as Coze's ErrMissingRequiredParam.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from knotflow.dsl import jsonutil
from knotflow.dsl.files import strip_file_name_param
from knotflow.dsl.gojson import dumps
from knotflow.dsl.types import BOOLEAN, FLOAT, INTEGER, LIST, OBJECT, STRING, TypeInfo, TypeMismatch, to_text
from knotflow.errors import NodeError

# What Go's strconv accepts: ParseInt(s, 10, 64), ParseFloat(s, 64) (decimal forms) and ParseBool.
_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE
)
_GO_BOOL = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
            "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# Coze's DataType names, used in its warning text ("field output.age is not integer").
DATA_TYPE_NAMES = {
    STRING: "string", INTEGER: "integer", FLOAT: "number", BOOLEAN: "boolean", OBJECT: "object", LIST: "list",
}


@dataclass(slots=True)
class Conversion:
    """Warnings collected while converting one value."""

    warnings: list[str] = field(default_factory=list)

    def warn(self, path: str, info: TypeInfo) -> None:
        self.warnings.append(f"field {path} is not {DATA_TYPE_NAMES.get(info.type, info.type)}")


class MissingRequired(NodeError):
    def __init__(self, path: str) -> None:
        super().__init__(f"missing required parameter: {path}")


def _to_string(value: Any) -> str | None:
    if isinstance(value, str | bool | int | float):
        return to_text(value)
    if isinstance(value, list | dict):
        try:
            return dumps(value)
        except (TypeError, ValueError):
            return None
    return None


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        # Go's int64(f) truncates toward zero: 123.5 is 123, without a warning. Out of int64's range Go's result
        # depends on the CPU (amd64: -9223372036854775808); here the value does not fit.
        return int(value) if math.isfinite(value) and _INT64_MIN <= value < -float(_INT64_MIN) else None
    if isinstance(value, str) and _GO_INT.fullmatch(value):
        number = int(value)
        return number if _INT64_MIN <= number <= _INT64_MAX else None
    return None


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _GO_FLOAT.fullmatch(value):
        number = float(value)
        # ParseFloat reports a finite literal that overflows as an error.
        return None if math.isinf(number) and "inf" not in value.lower() else number
    return None


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _GO_BOOL.get(value)
    return None


def _parse_json(text: str) -> tuple[Any, bool]:
    try:
        return jsonutil.loads(text), True
    except jsonutil.JSONDecodeError:
        return None, False


def _to_object(value: Any, info: TypeInfo, path: str, conv: Conversion) -> dict[str, Any] | None:
    if isinstance(value, str):
        parsed, ok = _parse_json(value)
        if not ok or not (parsed is None or isinstance(parsed, dict)):
            conv.warn(path, info)
            return None
        value = parsed
    elif not isinstance(value, dict):
        conv.warn(path, info)
        return None
    if not value:
        check_required(info, {}, path)
        return value
    result: dict[str, Any] = {}
    for key, item in value.items():
        prop = info.properties.get(key)
        # Fields the schema does not declare pass through unchanged.
        result[key] = item if prop is None else convert(item, prop, f"{path}.{key}", conv)
    check_required(info, result, path)
    return result


def check_required(info: TypeInfo, present: dict[str, Any], path: str) -> None:
    for name, prop in info.properties.items():
        if prop.required and name not in present:
            raise MissingRequired(f"{path}.{name}")


def _to_list(value: Any, info: TypeInfo, path: str, conv: Conversion) -> list[Any] | None:
    if isinstance(value, str):
        parsed, ok = _parse_json(value)
        if not ok or not (parsed is None or isinstance(parsed, list)):
            conv.warn(path, info)
            return []
        value = parsed
    elif not isinstance(value, list):
        conv.warn(path, info)
        return []
    if not value or info.element is None:
        return value
    element = info.element
    result = []
    for index, item in enumerate(value):
        before = len(conv.warnings)
        converted = convert(item, element, f"{path}.{index}", conv)
        # An element that fails to convert is dropped, except an object, which stays (possibly as null).
        if len(conv.warnings) == before or element.type == OBJECT:
            result.append(converted)
    return result


def convert(value: Any, info: TypeInfo, path: str, conv: Conversion) -> Any:
    """Coze Studio's `nodes.Convert`: `value` as `info`'s type; misfits become warnings in `conv`."""
    if value is None:
        return None
    kind = info.type
    if kind == STRING:
        text = _to_string(value)
        if text is None:
            conv.warn(path, info)
        elif info.is_file:
            text = strip_file_name_param(text)
        return text
    scalar = {INTEGER: _to_int, FLOAT: _to_float, BOOLEAN: _to_bool}.get(kind)
    if scalar is not None:
        result = scalar(value)
        if result is None:
            conv.warn(path, info)
        return result
    if kind == OBJECT:
        return _to_object(value, info, path, conv)
    if kind == LIST:
        return _to_list(value, info, path, conv)
    conv.warn(path, info)
    return value


def coerce(value: Any, info: TypeInfo, path: str = "") -> Any:
    """Coze Studio's fail-fast conversion (`nodes.Convert` with FailFast: a run's parameters at the API, a Start
    node's default values): the same rules as `convert`, but the first value that does not fit raises
    TypeMismatch (`field count is not integer`) instead of becoming null."""
    conv = Conversion()
    result = convert(value, info, path or info.name or "value", conv)
    if conv.warnings:
        raise TypeMismatch(conv.warnings[0])
    return result


def coerce_lenient(value: Any, info: TypeInfo, warnings: list[str] | None = None, path: str = "") -> Any:
    """`convert` for a node input named `path` (default: the type's name); warnings go to `warnings` if given."""
    conv = Conversion()
    result = convert(value, info, path or info.name, conv)
    if warnings is not None:
        warnings.extend(conv.warnings)
    return result
