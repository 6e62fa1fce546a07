"""Database delete (44): delete the rows matching `deleteParam.condition` (required). Only the run's user's rows
in a single-user table. Outputs `outputList` `[]` and `rowNum`, the rows deleted (null when none, as Coze
Studio)."""

from __future__ import annotations

from knotflow.contract import NodeContext, NodeResult
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.values import ValueSource
from knotflow.nodes._database import DatabaseNode, condition, operand_sources, parse_condition


class DatabaseDeleteNode(DatabaseNode):
    type_id = "44"
    display_key = "DatabaseDelete"
    zero_is_null = True

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        self.clauses, self.logic = parse_condition((definition.inputs.get("deleteParam") or {}).get("condition"),
                                                   self.where, required=True)

    def sources(self) -> list[ValueSource]:
        return operand_sources(*[c.right for c in self.clauses])

    async def run(self, ctx: NodeContext) -> NodeResult:
        where = condition(ctx, self.clauses, self.logic)
        return await self.call(ctx, lambda db: db.delete(self.table_id, where))
