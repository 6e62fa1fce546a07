"""Variable aggregator (32): each group outputs its first variable that has a value.

Canvas: `inputs.mergeGroups = [{name, variables: [BlockInput, ...]}]`; the node outputs one field per group,
named after it. A variable from a skipped branch, or whose value is null (or does not convert to its declared
type, which Coze turns into null), is passed over. A group with no such variable is left out of the output
altogether, as Coze Studio's non-streaming aggregator does, so a reader of it gets null.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.convert import coerce_lenient
from knotflow.dsl.types import TypeInfo
from knotflow.dsl.values import ValueSource, parse_block_input
from knotflow.errors import CanvasError, NodeError


@dataclass(slots=True, frozen=True)
class Group:
    name: str
    variables: tuple[tuple[ValueSource, TypeInfo], ...]


def _groups(raw: Any) -> list[Group]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError("mergeGroups must be a list")
    groups: list[Group] = []
    for index, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise ValueError(f"merge group {index + 1} has no name")
        if any(group.name == name for group in groups):
            raise ValueError(f"two merge groups are named {name!r}")
        variables = item.get("variables") or []
        if not isinstance(variables, list):
            raise ValueError(f"the variables of merge group {name!r} must be a list")
        groups.append(Group(name, tuple(parse_block_input(v) for v in variables)))
    return groups


class VariableAggregatorNode(Node):
    type_id = "32"
    display_key = "VariableAggregator"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        try:
            self.groups = _groups(definition.inputs.get("mergeGroups"))
        except ValueError as exc:
            raise CanvasError(f"node '{self.title}' ({self.id}): {exc}") from exc

    def sources(self) -> list[ValueSource]:
        return [source for group in self.groups for source, _ in group.variables]

    async def run(self, ctx: NodeContext) -> NodeResult:
        outputs: dict[str, Any] = {}
        warnings: list[str] = []
        for group in self.groups:
            for index, (source, info) in enumerate(group.variables):
                if ctx.is_skipped(source):
                    continue
                try:
                    value = coerce_lenient(ctx.resolve(source), info, warnings, f"{group.name}.{index}")
                except NodeError as exc:  # an object variable missing a required field
                    exc.node_id = exc.node_id or self.id
                    raise
                if value is not None:
                    outputs[group.name] = value
                    break
        return NodeResult(outputs, warnings=warnings)
