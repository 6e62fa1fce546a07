"""If / Selector (8): the first branch whose condition holds, else the `false` branch.

Canvas: `inputs.branches[i].condition = {logic, conditions: [{operator, left: {input}, right?: {input}}]}`.
Branch 0 leaves through port `true`, branch i through `true_i`, the else branch through `false`. A branch with
one condition ignores `logic`; with several, `logic` 1 is OR and 2 is AND. Operands are converted to their
declared types the way Coze converts node inputs (a misfit is a warning on the node's trace entry); see
`_selector_operators` for the comparisons. As Coze Studio's ToCallbackOutput, the trace shows the node's output as
`{"result": "pass to condition N branch"}` (N from 1) or `{"result": "pass to else branch"}`.
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
from knotflow.nodes._selector_operators import Operator, OperatorError, canvas_operator, evaluate

LOGIC_OR, LOGIC_AND = 1, 2
ELSE_PORT = "false"


@dataclass(slots=True, frozen=True)
class Operand:
    source: ValueSource
    type: TypeInfo


@dataclass(slots=True, frozen=True)
class Condition:
    operator: Operator
    left: Operand
    right: Operand | None


@dataclass(slots=True, frozen=True)
class Branch:
    conditions: tuple[Condition, ...]
    any_of: bool  # OR (else AND); irrelevant for a single condition


def branch_port(index: int) -> str:
    return "true" if index == 0 else f"true_{index}"


def _operand(raw: Any, where: str) -> Operand:
    block_input = raw.get("input") if isinstance(raw, dict) else None
    if not isinstance(block_input, dict):
        raise ValueError(f"{where} has no input")
    source, info = parse_block_input(block_input)
    return Operand(source, info)


def _condition(raw: Any, where: str) -> Condition:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} is not an object")
    if raw.get("left") is None:
        raise ValueError(f"{where}: operator left is nil")
    left = _operand(raw["left"], f"{where}, left operand")
    right = _operand(raw["right"], f"{where}, right operand") if raw.get("right") is not None else None
    return Condition(canvas_operator(raw.get("operator"), left.type.type), left, right)


def _branch(raw: Any, index: int) -> Branch:
    condition = raw.get("condition") if isinstance(raw, dict) else None
    conditions = condition.get("conditions") if isinstance(condition, dict) else None
    if not isinstance(conditions, list) or not conditions:
        raise ValueError(f"branch {index + 1} has no conditions")
    parsed = tuple(_condition(c, f"branch {index + 1}, condition {j + 1}") for j, c in enumerate(conditions))
    logic = condition.get("logic") if isinstance(condition, dict) else None
    if len(parsed) > 1 and logic not in (LOGIC_OR, LOGIC_AND):
        raise ValueError(f"branch {index + 1} has unknown logic {logic!r} (1=or, 2=and)")
    return Branch(parsed, logic == LOGIC_OR)


class SelectorNode(Node):
    type_id = "8"
    display_key = "If"
    branching = True

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        raw = definition.inputs.get("branches")
        if not isinstance(raw, list) or not raw:
            raise CanvasError(f"node '{self.title}' ({self.id}): a selector needs at least one branch")
        try:
            self.branches = [_branch(item, i) for i, item in enumerate(raw)]
        except ValueError as exc:
            raise CanvasError(f"node '{self.title}' ({self.id}): {exc}") from exc

    def ports(self) -> list[str]:
        return [branch_port(i) for i in range(len(self.branches))] + [ELSE_PORT]

    def sources(self) -> list[ValueSource]:
        return [
            operand.source
            for branch in self.branches
            for condition in branch.conditions
            for operand in (condition.left, condition.right)
            if operand is not None
        ]

    def _operand(self, ctx: NodeContext, operand: Operand | None, path: str, warnings: list[str]) -> Any:
        if operand is None:
            return None
        try:
            return coerce_lenient(ctx.resolve(operand.source), operand.type, warnings, path)
        except NodeError as exc:  # an object operand missing a required field
            exc.node_id = exc.node_id or self.id
            raise

    def _holds(self, ctx: NodeContext, condition: Condition, warnings: list[str]) -> bool:
        left = self._operand(ctx, condition.left, "left", warnings)
        right = self._operand(ctx, condition.right, "right", warnings)
        try:
            return evaluate(condition.operator, left, right)
        except OperatorError as exc:
            raise NodeError(str(exc), node_id=self.id) from exc

    async def run(self, ctx: NodeContext) -> NodeResult:
        warnings: list[str] = []
        for index, branch in enumerate(self.branches):
            results = (self._holds(ctx, condition, warnings) for condition in branch.conditions)
            if any(results) if branch.any_of else all(results):
                return _passed(branch_port(index), f"pass to condition {index + 1} branch", warnings)
        return _passed(ELSE_PORT, "pass to else branch", warnings)


def _passed(port: str, note: str, warnings: list[str]) -> NodeResult:
    return NodeResult({}, port=port, warnings=warnings or None, trace_output={"result": note})
