"""Database insert (46): one row into a bot's or app's table, from `insertParam.fieldInfo` (field id → value,
each converted to the field's type). Outputs `outputList` `[{"id": <the new row's id>}]` and `rowNum` 1."""

from __future__ import annotations

from knotflow.contract import Node, NodeContext, NodeResult
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.values import ValueSource
from knotflow.errors import KnotflowError
from knotflow.nodes._database import (
    database,
    failure,
    label,
    operand_sources,
    output_element,
    outputs,
    parse_fields,
    table_ids,
    value,
)


class DatabaseInsertNode(Node):
    type_id = "46"
    display_key = "DatabaseInsert"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        where = label(self)
        self.table_id = table_ids(definition, where)[0]
        self.fields = parse_fields((definition.inputs.get("insertParam") or {}).get("fieldInfo"), where,
                                   required=True)
        self.element = output_element(definition, where)

    def sources(self) -> list[ValueSource]:
        return operand_sources(*[operand for _, operand in self.fields])

    async def run(self, ctx: NodeContext) -> NodeResult:
        values = {field_id: value(ctx, operand) for field_id, operand in self.fields}
        try:
            rows = await database(self, ctx).insert(self.table_id, values)
        except KnotflowError as exc:
            raise failure(self, exc) from exc
        return NodeResult(outputs(rows, self.element))
