"""A canvas as the console draws it: every node where the canvas places it, with its branch ports, and the
inner blocks of composite nodes (Loop, Batch) beside their parent, each with the parent's id.

Generic over node types: the ports come from the node type when knotflow implements it (the same ports the
publish checks demand), plus any port an edge names; a node type knotflow does not know is drawn all the same,
marked `known: false`.
"""

from __future__ import annotations

from typing import Any

from knotflow.contract import NodeTypes
from knotflow.dsl.canvas import NodeDef, parse_canvas
from knotflow.dsl.types import TypeInfo
from knotflow.engine.compiler import branch_ports
from knotflow.errors import CanvasError

START_TYPE = "1"


def _position(raw: Any, key: str = "position") -> dict[str, float] | None:
    meta = raw.get("meta") if isinstance(raw, dict) else None
    where = meta.get(key) if isinstance(meta, dict) else None
    if not isinstance(where, dict):
        return None
    try:
        return {"x": float(where.get("x") or 0), "y": float(where.get("y") or 0)}
    except (TypeError, ValueError):
        return None


def _edge(raw: dict[str, Any], parent: str | None) -> dict[str, Any]:
    return {"source": str(raw.get("sourceNodeID")), "target": str(raw.get("targetNodeID")),
            "source_port": str(raw.get("sourcePortID") or ""), "target_port": str(raw.get("targetPortID") or ""),
            "parent": parent}


def _nodes(raws: list[Any], definitions: list[NodeDef], edges: list[Any], node_types: NodeTypes,
           parent: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes: list[dict[str, Any]] = []
    flat_edges = [_edge(edge, parent) for edge in edges if isinstance(edge, dict)]
    for raw, definition in zip(raws, definitions, strict=True):
        meta = definition.data.get("nodeMeta")
        meta = meta if isinstance(meta, dict) else {}
        inner_nodes, inner_edges = _nodes(raw.get("blocks") or [], definition.blocks, raw.get("edges") or [],
                                          node_types, definition.id) if definition.blocks else ([], [])
        # Ports edges name (a composite's body starts at one of its own ports, on an inner edge) join the
        # type's ports, so every edge has a port to start from.
        used = [e["source_port"] for e in [*flat_edges, *inner_edges]
                if e["source"] == definition.id and e["source_port"]]
        nodes.append({
            "id": definition.id,
            "type": definition.type,
            "title": definition.title,
            "description": str(meta.get("description") or ""),
            "known": definition.type in node_types,
            "position": _position(raw) or {"x": 0.0, "y": 0.0},
            "canvas_position": _position(raw, "canvasPosition"),
            "ports": list(dict.fromkeys([*branch_ports(definition, node_types), *used])),
            "parent": parent,
            "data": definition.data,
        })
        nodes += inner_nodes
        flat_edges += inner_edges
    return nodes, flat_edges


def canvas_view(raw: dict[str, Any], node_types: NodeTypes) -> dict[str, Any]:
    """Nodes (inner blocks follow their composite, with `parent` set) and edges, as the console draws them."""
    try:
        canvas = parse_canvas(raw)
    except CanvasError as exc:
        return {"nodes": [], "edges": [], "problem": exc.message}
    nodes, edges = _nodes(raw["nodes"], canvas.nodes, raw.get("edges") or [], node_types, None)
    return {"nodes": nodes, "edges": edges, "problem": None}


def _parameter(info: TypeInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "type": info.type,
        "required": info.required,
        "description": info.description,
        "default": info.default,
        "file": info.is_file,
        "element": _parameter(info.element) if info.element is not None else None,
    }


def start_parameters(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The Start node's parameters (what a run takes): names, types, required, defaults, files."""
    try:
        canvas = parse_canvas(raw)
    except CanvasError:
        return []
    start = next((node for node in canvas.nodes if node.type == START_TYPE), None)
    return [] if start is None else [_parameter(info) for info in start.outputs]
