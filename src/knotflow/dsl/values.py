"""Where a node input's value comes from: a literal, a reference to another node's output, or an object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from knotflow.dsl import jsonutil
from knotflow.dsl.convert import coerce_lenient
from knotflow.dsl.types import LIST, OBJECT, TypeInfo

BLOCK_OUTPUT = "block-output"
GLOBAL_SOURCES = frozenset({"global_variable_app", "global_variable_system", "global_variable_user"})


@dataclass(slots=True, frozen=True)
class Literal:
    value: Any


@dataclass(slots=True, frozen=True)
class Ref:
    """`block_id`'s output at `path`; for global variables `block_id` is empty and `source` names the scope."""

    source: str
    block_id: str
    path: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.block_id or self.source}.{'.'.join(self.path)}"


@dataclass(slots=True, frozen=True)
class ObjectValue:
    fields: dict[str, ValueSource] = field(default_factory=dict)


ValueSource = Literal | Ref | ObjectValue


def _parse_literal(content: Any, info: TypeInfo) -> Any:
    if isinstance(content, str) and info.type in (OBJECT, LIST):
        try:
            content = jsonutil.loads(content) if content.strip() else None
        except jsonutil.JSONDecodeError:
            return content
    return coerce_lenient(content, info)


def parse_block_input(raw: Any) -> tuple[ValueSource, TypeInfo]:
    """Parse a canvas `BlockInput` ({type, schema, value: {type, content}}) into a source and its type."""
    if not isinstance(raw, dict):
        return Literal(None), TypeInfo()
    info = TypeInfo.parse(raw)
    value = raw.get("value") or {}
    kind = value.get("type")
    content = value.get("content")
    if kind == "ref" and isinstance(content, dict):
        source = str(content.get("source") or BLOCK_OUTPUT)
        if source == BLOCK_OUTPUT:
            name = str(content.get("name") or "")
            path = tuple(part for part in name.split(".") if part)
        else:
            path = tuple(str(part) for part in (content.get("path") or []))
            if not path and content.get("name"):
                path = tuple(str(content["name"]).split("."))
        return Ref(source, str(content.get("blockID") or ""), path), info
    if kind == "object_ref":
        fields: dict[str, ValueSource] = {}
        for prop in raw.get("schema") or []:
            if isinstance(prop, dict) and prop.get("name") and isinstance(prop.get("input"), dict):
                fields[prop["name"]] = parse_block_input(prop["input"])[0]
        return ObjectValue(fields), info
    return Literal(_parse_literal(content, info)), info


def refs_in(source: ValueSource) -> list[Ref]:
    if isinstance(source, Ref):
        return [source]
    if isinstance(source, ObjectValue):
        return [ref for sub in source.fields.values() for ref in refs_in(sub)]
    return []
