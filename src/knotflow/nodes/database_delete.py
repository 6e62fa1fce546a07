"""Database delete (44): delete the rows matching `deleteParam.condition` (required). Only the run's user's rows
in a single-user table. Outputs `outputList` `[]` and `rowNum`, the rows deleted (null when none, as Coze
Studio)."""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.values import ValueSource
from knotflow.errors import KnotflowError
from knotflow.nodes._database import (
    condition,
    database,
    failure,
    label,
    operand_sources,
    output_element,
    outputs,
    parse_condition,
    table_ids,
)


class DatabaseDeleteNode(Node):
    type_id = "44"
    display_key = "DatabaseDelete"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        where = label(self)
        self.table_id = table_ids(definition, where)[0]
        self.clauses, self.logic = parse_condition((definition.inputs.get("deleteParam") or {}).get("condition"),
                                                   where, required=True)
        self.element = output_element(definition, where)

    def sources(self) -> list[ValueSource]:
        return operand_sources(*[c.right for c in self.clauses])

    async def run(self, ctx: NodeContext) -> NodeResult:
        try:
            rows = await database(self, ctx).delete(self.table_id, condition(ctx, self.clauses, self.logic))
        except KnotflowError as exc:
            raise failure(self, exc) from exc
        return NodeResult(outputs(rows, self.element, zero_is_null=True))
