"""Database query (43): rows of a bot's or app's table.

Canvas `selectParam`: `fieldList` (field ids; none: every field), `condition` (conditionList, logic), `orderByList`
(field id, isAsc), `limit` (required, > 0). Only the run's user's rows in a single-user table. Outputs
`outputList` shaped to its declared row properties and `rowNum`, the number of rows (Studio reports null).
"""

from __future__ import annotations

from knotflow.contract import NodeContext, NodeResult
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.values import ValueSource
from knotflow.errors import CanvasError
from knotflow.nodes._database import DatabaseNode, condition, operand_sources, parse_condition


class DatabaseQueryNode(DatabaseNode):
    type_id = "43"
    display_key = "DatabaseQuery"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        select = definition.inputs.get("selectParam") or {}
        self.clauses, self.logic = parse_condition(select.get("condition"), self.where, required=False)
        self.field_ids = [str(f["fieldID"]) for f in select.get("fieldList") or [] if isinstance(f, dict)]
        self.order_by = [(str(o["fieldID"]), bool(o.get("isAsc"))) for o in select.get("orderByList") or []
                         if isinstance(o, dict)]
        limit = select.get("limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            raise CanvasError(f"{self.where}: limit is required and greater than 0")
        self.limit = limit

    def sources(self) -> list[ValueSource]:
        return operand_sources(*[c.right for c in self.clauses])

    async def run(self, ctx: NodeContext) -> NodeResult:
        where = condition(ctx, self.clauses, self.logic) if self.clauses else None
        return await self.call(ctx, lambda db: db.select(self.table_id, field_ids=self.field_ids, condition=where,
                                                         order_by=self.order_by, limit=self.limit))
