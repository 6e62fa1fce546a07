"""What the database nodes share: the canvas's table reference (`databaseInfoList`), conditions (`conditionList`,
`logic`), field settings (`fieldInfo`), and Coze Studio's shaping of `outputList` and `rowNum`.

A condition's right side and a field's value are BlockInputs (literals or references); they are resolved and
converted to their declared types as node inputs are (Studio makes them the inputs `__condition_right_<i>` and
`__setting_field_<id>`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from knotflow.contract import Clause, Condition, Database, Node, NodeContext, NodeResult, Rows
from knotflow.dsl import jsonutil
from knotflow.dsl.canvas import NodeDef
from knotflow.dsl.convert import coerce_lenient
from knotflow.dsl.gojson import format_float
from knotflow.dsl.types import BOOLEAN, FLOAT, INTEGER, LIST, OBJECT, STRING, TypeInfo
from knotflow.dsl.values import Literal, ValueSource, parse_block_input
from knotflow.errors import CanvasError, KnotflowError, NodeError

EXECUTION_FAILURE = 720701013  # Studio's "Workflow execution failure: {cause}"
INVALID_PARAMETER = 720702001
OPERATIONS = frozenset({"EQUAL", "NOT_EQUAL", "GREATER_THAN", "LESS_THAN", "GREATER_EQUAL", "LESS_EQUAL", "IN",
                        "NOT_IN", "IS_NULL", "IS_NOT_NULL", "LIKE", "NOT_LIKE"})
NO_RIGHT = frozenset({"IS_NULL", "IS_NOT_NULL"})
OUTPUT_LIST, ROW_NUM = "outputList", "rowNum"


@dataclass(frozen=True, slots=True)
class Operand:
    source: ValueSource
    type: TypeInfo


@dataclass(frozen=True, slots=True)
class ClauseDef:
    left: str
    operation: str
    right: Operand | None


def label(node: Node) -> str:
    return f"database node '{node.title}' ({node.id})"


def table_ids(definition: NodeDef, where: str) -> list[str]:
    infos = definition.inputs.get("databaseInfoList")
    ids = [str(info.get("databaseInfoID") or "").strip() for info in infos or [] if isinstance(info, dict)]
    if not ids or not all(ids):
        raise CanvasError(f"{where}: databaseInfoList names no table (databaseInfoID)")
    return ids


def _params(items: Any) -> dict[str, Any]:
    return {item["name"]: item.get("input") for item in items or [] if isinstance(item, dict) and item.get("name")}


def _literal_text(raw: Any, what: str, where: str) -> str:
    source, _ = parse_block_input(raw)
    if not isinstance(source, Literal) or source.value in (None, ""):
        raise CanvasError(f"{where}: {what} must be a literal")
    return str(source.value)


def parse_condition(raw: Any, where: str, *, required: bool) -> tuple[list[ClauseDef], str]:
    raw = raw if isinstance(raw, dict) else {}
    clauses = []
    for index, items in enumerate(raw.get("conditionList") or []):
        params = _params(items)
        left = _literal_text(params.get("left"), f"condition {index + 1}'s field (left)", where)
        operation = _literal_text(params.get("operation"), f"condition {index + 1}'s operation", where)
        if operation not in OPERATIONS:
            raise CanvasError(f"{where}: {operation!r} is not a valid Operation string")
        right = None
        if operation not in NO_RIGHT and params.get("right") is not None:
            right = Operand(*parse_block_input(params["right"]))
        clauses.append(ClauseDef(left, operation, right))
    if required and not clauses:
        raise CanvasError(f"{where}: a condition is required")
    logic = str(raw.get("logic") or "AND").upper()
    return clauses, "OR" if logic == "OR" else "AND"


def parse_fields(raw: Any, where: str, *, required: bool) -> list[tuple[str, Operand]]:
    fields = []
    for index, items in enumerate(raw or []):
        params = _params(items)
        field_id = _literal_text(params.get("fieldID"), f"field {index + 1}'s id (fieldID)", where)
        fields.append((field_id, Operand(*parse_block_input(params.get("fieldValue")))))
    if required and not fields:
        raise CanvasError(f"{where}: no field to set (fieldInfo)")
    return fields


def output_element(definition: NodeDef, where: str) -> TypeInfo:
    """The declared shape of `outputList`'s rows: Studio requires a list of objects."""
    output = next((info for info in definition.outputs if info.name == OUTPUT_LIST), None)
    if output is None:
        raise CanvasError(f"{where}: outputList key is required")
    if output.type != LIST or output.element is None or output.element.type != OBJECT:
        raise CanvasError(f"{where}: outputList must be a list of objects")
    return output.element


def operand_sources(*operands: Operand | None) -> list[ValueSource]:
    return [operand.source for operand in operands if operand is not None]


def value(ctx: NodeContext, operand: Operand) -> Any:
    if ctx.is_skipped(operand.source):
        return None
    return coerce_lenient(ctx.resolve(operand.source), operand.type)


def condition(ctx: NodeContext, clauses: list[ClauseDef], logic: str) -> Condition:
    return Condition([Clause(c.left, c.operation, value(ctx, c.right) if c.right is not None else None)
                      for c in clauses], logic)


def database(node: Node, ctx: NodeContext) -> Database:
    found = ctx.services.database
    if found is None:
        raise NodeError(f"{label(node)} needs the server's tables, which this run has not", node_id=node.id)
    return found


def failure(node: Node, exc: KnotflowError) -> NodeError:
    """A table error as Studio reports a database node's failure."""
    if isinstance(exc, NodeError):
        return exc
    return NodeError(f"Workflow execution failure: {exc.message}", internal_code=EXECUTION_FAILURE,
                     node_id=node.id)


class DatabaseNode(Node):
    """A database node: the table(s) it names, the declared shape of its rows, and its call to the run's tables,
    whose errors fail the node as Studio reports them."""

    zero_is_null = False  # rowNum null when nothing changed (update, delete)

    def __init__(self, definition: NodeDef) -> None:
        super().__init__(definition)
        self.where = label(self)
        self.table_ids = table_ids(definition, self.where)
        self.table_id = self.table_ids[0]
        self.element = output_element(definition, self.where)

    async def call(self, ctx: NodeContext, operation: Callable[[Database], Awaitable[Rows]]) -> NodeResult:
        try:
            rows = await operation(database(self, ctx))
        except KnotflowError as exc:
            raise failure(self, exc) from exc
        return NodeResult(outputs(rows, self.element, zero_is_null=self.zero_is_null))


# --- outputs: Studio's responseFormatted ---------------------------------------------------------------------
def outputs(rows: Rows, element: TypeInfo, *, zero_is_null: bool = False) -> dict[str, Any]:
    """`outputList` with each row shaped to the declared properties (a missing one is null; none declared:
    every column as text), and `rowNum` (null when Studio reports none: an update or delete that changed
    nothing)."""
    count = rows.row_count
    if zero_is_null and count == 0:
        count = None
    return {OUTPUT_LIST: [_row(row, element) for row in rows.rows], ROW_NUM: count}


def _row(row: dict[str, Any], element: TypeInfo) -> dict[str, Any]:
    if not element.properties:
        return {key: _to_string(value) for key, value in row.items() if _to_string(value) is not None}
    return {name: (None if row.get(name) is None else formatted(row[name], info))
            for name, info in element.properties.items()}


def formatted(value: Any, info: TypeInfo) -> Any:
    if info.type == STRING:
        return _to_string(value)
    if info.type == FLOAT:
        return _to_number(value, float)
    if info.type == INTEGER:
        return _to_number(value, int)
    if info.type == BOOLEAN:
        return _to_bool(value)
    if info.type == LIST:
        text = _to_string(value)
        try:
            items = jsonutil.loads(text) if text is not None else None
        except jsonutil.JSONDecodeError:
            return []
        element = info.element or TypeInfo()
        converted = [formatted(item, element) for item in items] if isinstance(items, list) else []
        return [item for item in converted if item is not None]
    return None  # Studio formats no objects


def _to_string(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict | list):
        return jsonutil.dumps(value)
    return None if value is None else str(value)


def _to_number(value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return kind(value)
    try:
        return kind(str(value).strip())
    except ValueError:
        return None


def _to_bool(value: Any) -> bool:
    """Go's strconv.ParseBool of the value's text; what does not parse is false (as Studio)."""
    if isinstance(value, bool):
        return value
    text = _to_string(value) or ""
    return text in ("1", "t", "T", "TRUE", "true", "True")
