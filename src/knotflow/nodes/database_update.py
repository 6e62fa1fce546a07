"""Database update (42): set `updateParam.fieldInfo`'s fields on the rows matching `updateParam.condition` (both
required). Only the run's user's rows in a single-user table. Outputs `outputList` `[]` and `rowNum`, the rows
changed (null when none, as Coze Studio)."""

from __future__ import annotations

from knotflow.contract import NodeContext, NodeResult
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.values import ValueSource
from knotflow.nodes._database import DatabaseNode, condition, operand_sources, parse_condition, parse_fields, value


class DatabaseUpdateNode(DatabaseNode):
    type_id = "42"
    display_key = "DatabaseUpdate"
    zero_is_null = True

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        update = definition.inputs.get("updateParam") or {}
        self.clauses, self.logic = parse_condition(update.get("condition"), self.where, required=True)
        self.fields = parse_fields(update.get("fieldInfo"), self.where, required=True)

    def sources(self) -> list[ValueSource]:
        return operand_sources(*[c.right for c in self.clauses], *[operand for _, operand in self.fields])

    async def run(self, ctx: NodeContext) -> NodeResult:
        values = {field_id: value(ctx, operand) for field_id, operand in self.fields}
        where = condition(ctx, self.clauses, self.logic)
        return await self.call(ctx, lambda db: db.update(self.table_id, where, values))
