"""Coze variable types and the conversions Coze Studio applies between them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from knotflow.dsl import jsonutil
from knotflow.dsl.gojson import dumps, format_float

STRING, INTEGER, FLOAT, BOOLEAN, OBJECT, LIST = "string", "integer", "float", "boolean", "object", "list"
KNOWN_TYPES = frozenset({STRING, INTEGER, FLOAT, BOOLEAN, OBJECT, LIST})

# assistType values that make a string a file reference (Coze Studio vo.FileSubType); 10000 is a time string.
FILE_ASSIST_TYPES = frozenset(range(1, 10))
TIME_ASSIST_TYPE = 10000


class TypeMismatch(ValueError):
    pass


@dataclass(slots=True)
class TypeInfo:
    """A Coze `Variable`: name, type and, for objects and lists, the shape of what they hold."""

    type: str = STRING
    name: str = ""
    required: bool = False
    assist_type: int = 0
    description: str = ""
    properties: dict[str, TypeInfo] = field(default_factory=dict)
    element: TypeInfo | None = None
    default: Any = None

    @property
    def is_file(self) -> bool:
        return self.type == STRING and self.assist_type in FILE_ASSIST_TYPES

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> TypeInfo:
        type_name = str(raw.get("type") or STRING)
        info = cls(
            type=type_name,
            name=str(raw.get("name") or ""),
            required=bool(raw.get("required", False)),
            assist_type=int(raw.get("assistType") or 0),
            description=str(raw.get("description") or ""),
            default=raw.get("defaultValue"),
        )
        schema = raw.get("schema")
        if type_name == OBJECT and isinstance(schema, list):
            for prop in schema:
                if isinstance(prop, dict) and prop.get("name"):
                    if "input" in prop and "type" not in prop:
                        sub = cls.parse({"name": prop["name"], **prop["input"]})
                    else:
                        sub = cls.parse(prop)
                    info.properties[sub.name] = sub
        elif type_name == LIST and isinstance(schema, dict):
            info.element = cls.parse(schema)
        return info

    @classmethod
    def parse_list(cls, raw: Any) -> list[TypeInfo]:
        if not isinstance(raw, list):
            return []
        return [cls.parse(item) for item in raw if isinstance(item, dict) and item.get("name")]


def is_empty(value: Any) -> bool:
    """Coze treats these as 'not given' for Start inputs: they take the parameter's default."""
    return value is None or value == "" or value == [] or value == {}


def _parse_json_text(value: str, expected: type, type_name: str) -> Any:
    try:
        parsed = jsonutil.loads(value)
    except jsonutil.JSONDecodeError as exc:
        raise TypeMismatch(f"expected {type_name}, got a string that is not JSON") from exc
    if not isinstance(parsed, expected):
        raise TypeMismatch(f"expected {type_name}, got JSON {type(parsed).__name__}")
    return parsed


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeMismatch("expected integer, got boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise TypeMismatch(f"expected integer, got {value}")
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError as exc:
                raise TypeMismatch(f"expected integer, got {value!r}") from exc
            return _to_int(as_float)
    raise TypeMismatch(f"expected integer, got {type(value).__name__}")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeMismatch("expected number, got boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError as exc:
            raise TypeMismatch(f"expected number, got {value!r}") from exc
    raise TypeMismatch(f"expected number, got {type(value).__name__}")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int | float):
        return value != 0
    raise TypeMismatch(f"expected boolean, got {value!r}")


def to_text(value: Any) -> str:
    """How Coze turns any value into text: strings as they are, numbers as Go formats them (`1e-07` is
    `0.0000001`), the rest as Go's compact JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    try:
        return dumps(value)
    except (TypeError, ValueError):  # NaN or infinity inside: Go's encoder refuses them, orjson writes null
        return jsonutil.dumps(value)


def coerce(value: Any, info: TypeInfo) -> Any:
    """Convert `value` to `info`'s type the way Coze Studio converts node inputs; raise TypeMismatch if it can't."""
    if value is None:
        return None
    kind = info.type
    if kind == STRING:
        return to_text(value)
    if kind == INTEGER:
        return _to_int(value)
    if kind == FLOAT:
        return _to_float(value)
    if kind == BOOLEAN:
        return _to_bool(value)
    if kind == OBJECT:
        if isinstance(value, str):
            value = _parse_json_text(value, dict, "object")
        if not isinstance(value, dict):
            raise TypeMismatch(f"expected object, got {type(value).__name__}")
        if not info.properties:
            return value
        result = dict(value)
        for name, prop in info.properties.items():
            if name in result:
                result[name] = coerce(result[name], prop)
        return result
    if kind == LIST:
        if isinstance(value, str):
            value = _parse_json_text(value, list, "list")
        if not isinstance(value, list):
            raise TypeMismatch(f"expected list, got {type(value).__name__}")
        element = info.element
        if element is None:
            return value
        return [coerce(item, element) for item in value]
    return value
