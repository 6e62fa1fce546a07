"""Coze variable types, and how Coze writes any value as text. The conversions between types are in `convert`."""

from __future__ import annotations

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
