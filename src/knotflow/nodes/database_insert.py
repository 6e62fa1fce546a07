"""Database insert (46): one row into a bot's or app's table, from `insertParam.fieldInfo` (field id → value,
each converted to the field's type). Outputs `outputList` `[{"id": <the new row's id>}]` and `rowNum` 1."""

from __future__ import annotations

from knotflow.contract import NodeContext, NodeResult
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.values import ValueSource
from knotflow.nodes._database import DatabaseNode, operand_sources, parse_fields, value


class DatabaseInsertNode(DatabaseNode):
    type_id = "46"
    display_key = "DatabaseInsert"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        self.fields = parse_fields((definition.inputs.get("insertParam") or {}).get("fieldInfo"), self.where,
                                   required=True)

    def sources(self) -> list[ValueSource]:
        return operand_sources(*[operand for _, operand in self.fields])

    async def run(self, ctx: NodeContext) -> NodeResult:
        values = {field_id: value(ctx, operand) for field_id, operand in self.fields}
        return await self.call(ctx, lambda db: db.insert(self.table_id, values))
