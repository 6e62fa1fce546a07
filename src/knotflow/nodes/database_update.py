"""Database update (42): set `updateParam.fieldInfo`'s fields on the rows matching `updateParam.condition` (both
required). Only the run's user's rows in a single-user table. Outputs `outputList` `[]` and `rowNum`, the rows
changed (null when none, as Coze Studio)."""

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
    parse_fields,
    table_ids,
    value,
)


class DatabaseUpdateNode(Node):
    type_id = "42"
    display_key = "DatabaseUpdate"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        where = label(self)
        self.table_id = table_ids(definition, where)[0]
        update = definition.inputs.get("updateParam") or {}
        self.clauses, self.logic = parse_condition(update.get("condition"), where, required=True)
        self.fields = parse_fields(update.get("fieldInfo"), where, required=True)
        self.element = output_element(definition, where)

    def sources(self) -> list[ValueSource]:
        return operand_sources(*[c.right for c in self.clauses], *[operand for _, operand in self.fields])

    async def run(self, ctx: NodeContext) -> NodeResult:
        values = {field_id: value(ctx, operand) for field_id, operand in self.fields}
        try:
            rows = await database(self, ctx).update(self.table_id, condition(ctx, self.clauses, self.logic), values)
        except KnotflowError as exc:
            raise failure(self, exc) from exc
        return NodeResult(outputs(rows, self.element, zero_is_null=True))
