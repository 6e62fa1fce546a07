"""What Loop and Batch share: the arrays they iterate, what their outputs collect, and asking for a body."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from knotflow.contract import InterruptRequest
from knotflow.dsl.canvas import NodeDef, Param, parse_params
from knotflow.dsl.types import LIST
from knotflow.dsl.values import Ref
from knotflow.errors import CanvasError


@dataclass(frozen=True, slots=True)
class Collect:
    """An output that collects, per iteration or item, a field of a node inside the body."""

    name: str
    node_id: str
    path: tuple[str, ...]


def arrays(params: list[Param], excluded: frozenset[str] = frozenset()) -> list[Param]:
    """The list-typed inputs: the arrays a composite iterates together (Coze Studio's input arrays)."""
    return [param for param in params if param.type.type == LIST and param.name not in excluded]


def output_refs(definition: NodeDef, label: str) -> list[tuple[str, Ref]]:
    """The composite's outputs, `{name, input: ref}` each (a literal output is refused, as Studio's Build does)."""
    refs: list[tuple[str, Ref]] = []
    for param in parse_params(definition.data.get("outputs")):
        if not isinstance(param.source, Ref):
            raise CanvasError(f"{label}: output '{param.name}' must reference a node's output")
        # An empty name references a node's whole output (a node in batch mode collects it whole).
        refs.append((param.name, replace(param.source, path=tuple(step for step in param.source.path if step))))
    return refs


def length(value: Any) -> int:
    """How many iterations an array allows: null or a missing array allows none."""
    return len(value) if isinstance(value, list) else 0


def element(value: Any, index: int) -> Any:
    return value[index] if isinstance(value, list) and index < len(value) else None


def request_json(request: InterruptRequest) -> dict[str, Any]:
    return {"kind": request.kind, "data": request.data, "node_id": request.node_id,
            "node_title": request.node_title, "node_type": request.node_type, "path": list(request.path)}


def request_of(saved: dict[str, Any]) -> InterruptRequest:
    return InterruptRequest(int(saved["kind"]), str(saved["data"]), str(saved.get("node_id") or ""),
                            str(saved.get("node_title") or ""), str(saved.get("node_type") or ""),
                            tuple(str(key) for key in saved.get("path") or ()))
