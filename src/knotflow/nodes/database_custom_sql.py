"""Database custom SQL (12): a statement (MySQL syntax) over a bot's or app's table, written as a template over
the node's inputs.

As Coze Studio, a quoted placeholder (`'{{x}}'` or `` `{{x}}` ``) becomes a bound parameter holding the value's
text (booleans as 1 and 0). Studio pastes every other `{{x}}` into the SQL as text, which lets an input rewrite
the statement; knotflow pastes only numbers (and booleans as 1 / 0) and binds anything else as a parameter, so
no input ever becomes SQL. The server then allows one SELECT, INSERT, UPDATE or DELETE on the node's tables only
(knotflow.service.custom_sql) and refuses anything else with the reason. Outputs `outputList` (the rows of a
SELECT, `{"id": …}` per inserted row) and `rowNum` (rows returned or changed).
"""

from __future__ import annotations

import re
from typing import Any

from knotflow.contract import NodeContext, NodeResult, Template, is_missing, lookup
from knotflow.dsl import jsonutil
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.types import to_text
from knotflow.errors import CanvasError
from knotflow.nodes._database import DatabaseNode

# Studio's singleQuotesStringRegexp, and any other placeholder.
_QUOTED = r"[`']\{\{([a-zA-Z_][a-zA-Z0-9_]*(?:\.\w+|\[\d+\])*)\}\}[`']"
_PIECES = re.compile(rf"{_QUOTED}|{{{{\s*([^}}]+?)\s*}}}}")
_MISSING_VALUE = object()


class DatabaseCustomSQLNode(DatabaseNode):
    type_id = "12"
    display_key = "DatabaseCustomSQL"

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        sql = definition.inputs.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            raise CanvasError(f"{self.where}: sql is required")
        self.sql = sql

    def _value(self, expression: str, inputs: dict[str, Any], skipped: set[str]) -> Any:
        [part] = Template.parse("{{" + expression + "}}").parts
        if part.root is None or part.root not in inputs or part.root in skipped:
            return _MISSING_VALUE
        found = lookup(inputs[part.root], part.path)
        return _MISSING_VALUE if is_missing(found) else found

    def render(self, inputs: dict[str, Any], skipped: set[str]) -> tuple[str, list[Any]]:
        """The SQL with `?` for each bound value, and the values in order."""
        pieces: list[str] = []
        params: list[Any] = []
        last = 0
        for match in _PIECES.finditer(self.sql):
            pieces.append(self.sql[last:match.start()])
            last = match.end()
            quoted, expression = match.group(1), match.group(2)
            found = self._value(quoted or expression, inputs, skipped)
            if quoted is not None:
                params.append("" if found is _MISSING_VALUE or found is None else _text(found))
                pieces.append("?")
            elif isinstance(found, bool):
                pieces.append("1" if found else "0")
            elif isinstance(found, int | float):
                pieces.append(to_text(found))
            else:
                params.append(None if found is _MISSING_VALUE else found if found is None or isinstance(found, str)
                              else jsonutil.dumps(found))
                pieces.append("?")
        pieces.append(self.sql[last:])
        return "".join(pieces), params

    async def run(self, ctx: NodeContext) -> NodeResult:
        skipped = {param.name for param in self.params if ctx.is_skipped(param.source)}
        sql, params = self.render(ctx.inputs, skipped)
        return await self.call(ctx, lambda db: db.execute(self.table_ids, sql, params))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return to_text(value)
