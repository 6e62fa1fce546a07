"""The Coze Studio canvas as knotflow reads it: nodes, edges, ports, nested blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knotflow.dsl import jsonutil
from knotflow.dsl.types import TypeInfo
from knotflow.dsl.values import ValueSource, parse_block_input
from knotflow.errors import CanvasError

START_NODE_ID = "100001"
END_NODE_ID = "900001"


@dataclass(slots=True)
class Param:
    name: str
    source: ValueSource
    type: TypeInfo


@dataclass(slots=True)
class NodeDef:
    id: str
    type: str
    title: str
    data: dict[str, Any]
    blocks: list[NodeDef] = field(default_factory=list)
    edges: list[EdgeDef] = field(default_factory=list)

    @property
    def inputs(self) -> dict[str, Any]:
        value = self.data.get("inputs")
        return value if isinstance(value, dict) else {}

    @property
    def outputs(self) -> list[TypeInfo]:
        return TypeInfo.parse_list(self.data.get("outputs"))

    def params(self, key: str = "inputParameters") -> list[Param]:
        """The named inputs under `inputs[key]` (a list of `{name, input: BlockInput}`)."""
        return parse_params(self.inputs.get(key))


def parse_params(raw: Any) -> list[Param]:
    """A list of `{name, input: BlockInput}` as named inputs; entries without a name are left out."""
    result = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and item.get("name"):
            source, info = parse_block_input(item.get("input"))
            info.name = str(item["name"])
            result.append(Param(info.name, source, info))
    return result


@dataclass(slots=True, frozen=True)
class EdgeDef:
    source: str
    target: str
    source_port: str = ""
    target_port: str = ""


@dataclass(slots=True)
class Canvas:
    nodes: list[NodeDef]
    edges: list[EdgeDef]
    raw: dict[str, Any]

    def node(self, node_id: str) -> NodeDef | None:
        return next((node for node in self.nodes if node.id == node_id), None)


def _parse_edges(raw: Any) -> list[EdgeDef]:
    edges = []
    for item in raw or []:
        if not isinstance(item, dict) or "sourceNodeID" not in item or "targetNodeID" not in item:
            raise CanvasError(f"edge {item!r} needs sourceNodeID and targetNodeID")
        edges.append(
            EdgeDef(
                str(item["sourceNodeID"]),
                str(item["targetNodeID"]),
                str(item.get("sourcePortID") or ""),
                str(item.get("targetPortID") or ""),
            )
        )
    return edges


def _parse_node(raw: Any) -> NodeDef:
    if not isinstance(raw, dict) or "id" not in raw or "type" not in raw:
        raise CanvasError(f"every node needs an id and a type; got {str(raw)[:120]}")
    data: dict[str, Any] = raw["data"] if isinstance(raw.get("data"), dict) else {}
    meta: dict[str, Any] = data["nodeMeta"] if isinstance(data.get("nodeMeta"), dict) else {}
    return NodeDef(
        id=str(raw["id"]),
        type=str(raw["type"]),
        title=str(meta.get("title") or ""),
        data=data,
        blocks=[_parse_node(child) for child in raw.get("blocks") or []],
        edges=_parse_edges(raw.get("edges")),
    )


def parse_canvas(raw: Any) -> Canvas:
    if isinstance(raw, str | bytes):
        raw = load_text(raw if isinstance(raw, str) else raw.decode())
    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), list):
        raise CanvasError("a canvas is a JSON object with a 'nodes' list and an 'edges' list")
    return Canvas([_parse_node(node) for node in raw["nodes"]], _parse_edges(raw.get("edges")), raw)


def load_text(text: str) -> dict[str, Any]:
    """Canvas text as JSON, or in its YAML form."""
    try:
        value = jsonutil.loads(text)
    except jsonutil.JSONDecodeError:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CanvasError(f"the canvas is neither JSON nor YAML: {exc}") from exc
    if not isinstance(value, dict):
        raise CanvasError("a canvas is a JSON object with a 'nodes' list and an 'edges' list")
    return value


def load_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CanvasError(f"cannot read {path}: {exc.strerror}") from exc
    return load_text(text)
