"""Bots' and apps' tables (Coze's databases): defining them (`knotflow database create | list | drop`), and what
the database nodes reach in a run (`RunDatabase`).

A definition is Coze's table shape (Studio's DatabaseInfo): the table id canvases reference (`id`), its name
(`table_name`, what custom SQL calls it), `table_desc`, `rw_mode` (1 single-user, the default; 2 read-only;
3 multi-user) and `field_list`, each field with its id (`alterId`, else `id`: what canvases reference), `name`,
`desc`, `type` (1 Text, 2 Number, 3 Date, 4 Float, 5 Boolean) and `must_required`.

Who a row belongs to: the run's user, `connector_id` + `connector_uid` (the `user_id` of a run's `ext`; an empty
one is one anonymous user per connector). In a single-user table each user reads, changes and deletes only the
rows they wrote; in a multi-user table everyone shares them; a read-only table refuses every change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from knotflow.contract import Condition, Rows, TableFieldInfo
from knotflow.dsl import jsonutil
from knotflow.dsl.gojson import json_float
from knotflow.errors import BadRequest, NotFound
from knotflow.ids import new_id
from knotflow.service import custom_sql
from knotflow.service.owners import APP, BOT, Owners, check_owner_id, require_owner
from knotflow.store.databases import (
    CID_COLUMN,
    DATE_FORMAT,
    ID_COLUMN,
    OPERATIONS,
    TIME_COLUMN,
    UID_COLUMN,
    Owner,
    RowFilter,
    now_for_rows,
    physical_name,
)
from knotflow.store.records import (
    BOOLEAN_FIELD,
    DATE_FIELD,
    FIELD_TYPES,
    FLOAT_FIELD,
    MULTI_USER,
    NUMBER_FIELD,
    READ_ONLY,
    RW_MODES,
    SINGLE_USER,
    TEXT_FIELD,
    Run,
    TableField,
    UserTable,
)
from knotflow.store.repository import Store

# The system fields: by name in conditions and results, by Coze's field ids in field lists and orderings.
SYSTEM_NAMES = {"id": ID_COLUMN, "uuid": UID_COLUMN, "bstudio_create_time": TIME_COLUMN}
SYSTEM_IDS = {"101": "uuid", "102": "id", "103": "bstudio_create_time"}
_SYSTEM_TYPES = {"id": NUMBER_FIELD, "uuid": TEXT_FIELD, "bstudio_create_time": DATE_FIELD}
MAX_TABLE_ID = 20  # digits: Coze's ids are int64
MAX_NAME = 64
_TRUE, _FALSE = ("1", "t", "true"), ("0", "f", "false")  # Go's strconv.ParseBool, case-insensitive


class TableError(BadRequest):
    """A table operation that cannot be done (unknown table or field, a value that does not fit, a write
    to a read-only table)."""


# --- definitions ----------------------------------------------------------------------------------------------
def _id_text(value: Any, label: str) -> str:
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not text.isascii() or not text.isdigit() or len(text) > MAX_TABLE_ID or int(text) == 0:
        raise BadRequest(f"{label} must be a positive number of at most {MAX_TABLE_ID} digits, got {value!r}")
    return str(int(text))


def _name(value: Any, label: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_NAME:
        raise BadRequest(f"{label} must be a name of 1 to {MAX_NAME} characters")
    return value.strip()


def parse_fields(items: Any) -> list[TableField]:
    if not isinstance(items, list) or not items:
        raise BadRequest("field_list must list the table's fields")
    fields: list[TableField] = []
    for index, item in enumerate(items, start=1):
        label = f"field_list[{index - 1}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{label} must be an object")
        raw_id = item.get("alterId") or item.get("id") or index
        field_id = _id_text(raw_id, f"{label} id (alterId)")
        name = _name(item.get("name"), f"{label}.name")
        if name in SYSTEM_NAMES or name in (ID_COLUMN, UID_COLUMN, CID_COLUMN, TIME_COLUMN):
            raise BadRequest(f"{label}: {name!r} is a system field's name")
        kind = item.get("type")
        if kind not in FIELD_TYPES or isinstance(kind, bool):
            raise BadRequest(f"{label}.type must be 1 (Text), 2 (Number), 3 (Date), 4 (Float) or 5 (Boolean)")
        if field_id in SYSTEM_IDS:
            raise BadRequest(f"{label}: field id {field_id} is a system field's (101 to 104)")
        fields.append(TableField(id=field_id, name=name, type=int(kind), required=bool(item.get("must_required")),
                                 description=str(item.get("desc") or "")))
    for attribute in ("id", "name"):
        seen = [getattr(f, attribute) for f in fields]
        twice = sorted({value for value in seen if seen.count(value) > 1})
        if twice:
            raise BadRequest(f"field {attribute}s must differ: {', '.join(twice)} appear more than once")
    return fields


def parse_definition(definition: Any, owner_kind: str, owner_id: str) -> UserTable:
    if not isinstance(definition, dict):
        raise BadRequest("a table definition is a JSON object (Coze's table: id, table_name, field_list...)")
    raw_id = definition.get("id", definition.get("table_id"))
    table_id = _id_text(raw_id, "id") if raw_id not in (None, "", 0) else new_id()
    rw_mode = definition.get("rw_mode", SINGLE_USER)
    if rw_mode not in RW_MODES or isinstance(rw_mode, bool):
        raise BadRequest("rw_mode must be 1 (single-user), 2 (read-only) or 3 (multi-user)")
    return UserTable(id=table_id, owner_kind=owner_kind, owner_id=owner_id,
                     name=_name(definition.get("table_name", definition.get("name")), "table_name"),
                     description=str(definition.get("table_desc") or ""), rw_mode=int(rw_mode),
                     fields=parse_fields(definition.get("field_list")), physical_name=physical_name(table_id),
                     created_at=datetime.now().timestamp())


class DatabaseService:
    def __init__(self, store: Store, owners: Owners) -> None:
        self.store = store
        self.owners = owners

    async def define(self, owner_kind: str, owner_id: str, definition: Any) -> UserTable:
        owner_id = await require_owner(self.owners, owner_kind, owner_id)
        table = parse_definition(definition, owner_kind, owner_id)
        if await self.store.get_user_table(table.id) is not None:
            raise BadRequest(f"table {table.id} already exists (drop it first to define it anew)")
        if not await self.store.create_user_table(table):
            raise BadRequest(f"{owner_kind} {owner_id} already has a table named {table.name!r}")
        return table

    async def tables(self, owner_kind: str | None = None, owner_id: str | None = None) -> list[UserTable]:
        if owner_id is not None and owner_kind is not None:
            owner_id = check_owner_id(owner_kind, owner_id)
        return await self.store.user_tables(owner_kind, owner_id)

    async def drop(self, table_id: str) -> UserTable:
        table = await self.store.get_user_table(_id_text(table_id, "table id"))
        if table is None or not await self.store.drop_user_table(table):
            raise NotFound(f"table {table_id} does not exist")
        return table

    def for_run(self, run: Run) -> RunDatabase:
        owner = (BOT, run.bot_id) if run.bot_id else (APP, run.app_id) if run.app_id else None
        return RunDatabase(self.store, owner, Owner(run.connector_uid, run.connector_id))


# --- values -------------------------------------------------------------------------------------------------
def convert(value: Any, kind: int, label: str) -> Any:
    """A value for a field of type `kind`, as Coze Studio converts it (ConvertValueByType): "" and null are
    NULL; a number from its text; a boolean from true/false/1/0; a date from "2006-01-02 15:04:05". A value
    that does not convert is an error (Studio hands it to MySQL as it is)."""
    if value is None or value == "":
        return None
    try:
        if kind == TEXT_FIELD:
            return _text(value)
        if kind == NUMBER_FIELD:
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, bool | float):
                raise ValueError
            return int(value) if isinstance(value, int) else int(str(value).strip())
        if kind == FLOAT_FIELD:
            if isinstance(value, bool):
                raise ValueError
            return float(value) if isinstance(value, int | float) else float(str(value).strip())
        if kind == BOOLEAN_FIELD:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError
        if kind == DATE_FIELD:
            return value if isinstance(value, datetime) else datetime.strptime(str(value).strip(), DATE_FORMAT)
    except (TypeError, ValueError, OverflowError):
        pass
    raise TableError(f"{label}: {value!r} is not a {FIELD_TYPES.get(kind, kind)} value"
                     + (f" (dates are written {DATE_FORMAT.replace('%', '')})" if kind == DATE_FIELD else ""))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, dict | list):
        return jsonutil.dumps(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class _Column:
    name: str  # as conditions and results name it
    column: str
    type: int


class RunDatabase:
    """`knotflow.contract.Database` for one run: the tables of the run's bot (else app), read and written as the
    run's user."""

    def __init__(self, store: Store, owner: tuple[str, str] | None, user: Owner) -> None:
        self.store = store
        self.owner = owner
        self.user = user

    async def _table(self, table_id: str) -> UserTable:
        if self.owner is None:
            raise TableError("database nodes need the run's bot_id or app_id: the tables belong to a bot or app")
        table = await self.store.get_user_table(str(table_id).strip()) if str(table_id).strip().isdigit() else None
        if table is None:
            raise TableError(f"table {table_id} does not exist: define it with `knotflow database create`")
        if (table.owner_kind, table.owner_id) != self.owner:
            raise TableError(f"table {table_id} belongs to {table.owner_kind} {table.owner_id}, not to "
                             f"{self.owner[0]} {self.owner[1]}")
        return table

    def _filter_owner(self, table: UserTable) -> Owner | None:
        return self.user if table.rw_mode == SINGLE_USER else None

    @staticmethod
    def _writable(table: UserTable) -> None:
        if table.rw_mode == READ_ONLY:
            raise TableError(f"table {table.name} ({table.id}) is read-only")

    @staticmethod
    def _by_name(table: UserTable, name: str) -> _Column:
        if name in SYSTEM_NAMES:
            return _Column(name, SYSTEM_NAMES[name], _SYSTEM_TYPES[name])
        field = table.field_by_name(name)
        if field is None:
            raise TableError(f"table {table.name} has no field {name!r}")
        return _Column(field.name, field.column, field.type)

    def _by_id(self, table: UserTable, field_id: str) -> _Column:
        field_id = str(field_id).strip()
        if field_id in SYSTEM_IDS:
            return self._by_name(table, SYSTEM_IDS[field_id])
        field = table.field_by_id(field_id)
        if field is None:
            raise TableError(f"table {table.name} has no field with id {field_id}")
        return _Column(field.name, field.column, field.type)

    def _filters(self, table: UserTable, condition: Condition | None) -> tuple[list[RowFilter], str]:
        if condition is None:
            return [], "AND"
        filters = []
        for clause in condition.clauses:
            if clause.operation not in OPERATIONS:
                raise TableError(f"{clause.operation!r} is not a condition operation")
            column = self._by_name(table, clause.left)
            label = f"condition on {clause.left}"
            if clause.operation in ("IS_NULL", "IS_NOT_NULL"):
                filters.append(RowFilter(column.column, clause.operation))
                continue
            if clause.right is None:
                continue  # as Coze Studio: a condition without its value is left out
            if clause.operation in ("IN", "NOT_IN"):
                if not isinstance(clause.right, list):
                    raise TableError(f"{label}: {clause.operation} needs a list")
                value: Any = [convert(item, column.type, label) for item in clause.right]
            elif clause.operation in ("LIKE", "NOT_LIKE"):
                value = f"%{_text(clause.right)}%"  # contains (Studio binds a broken "%s…%s" pattern)
            else:
                value = convert(clause.right, column.type, label)
            filters.append(RowFilter(column.column, clause.operation, value))
        return filters, "OR" if condition.logic.upper() == "OR" else "AND"

    def _values(self, table: UserTable, values: Mapping[str, Any]) -> dict[str, Any]:
        converted = {}
        for field_id, value in values.items():
            field = table.field_by_id(str(field_id).strip())
            if field is None:
                raise TableError(f"table {table.name} has no field with id {field_id} (or it is a system field)")
            converted[field.column] = convert(value, field.type, f"field {field.name}")
        return converted

    async def fields(self, table_id: str) -> list[TableFieldInfo]:
        table = await self._table(table_id)
        return [TableFieldInfo(f.id, f.name, f.type, f.required) for f in table.fields]

    async def select(self, table_id: str, *, field_ids: Sequence[str], condition: Condition | None,
                     order_by: Sequence[tuple[str, bool]], limit: int) -> Rows:
        table = await self._table(table_id)
        columns = ([self._by_id(table, field_id) for field_id in field_ids] if field_ids else
                   [self._by_name(table, name) for name in SYSTEM_NAMES]
                   + [_Column(f.name, f.column, f.type) for f in table.fields])
        filters, logic = self._filters(table, condition)
        order = [(self._by_id(table, field_id).column, ascending) for field_id, ascending in order_by]
        stored = await self.store.select_rows(table, [c.column for c in columns], filters, logic,
                                              self._filter_owner(table), order, limit)
        rows = [{c.name: row[c.column] for c in columns} for row in stored]
        return Rows(rows, len(rows))

    async def insert(self, table_id: str, values: Mapping[str, Any]) -> Rows:
        table = await self._table(table_id)
        self._writable(table)
        converted = self._values(table, values)
        missing = [f.name for f in table.fields if f.required and converted.get(f.column) is None]
        if missing:
            raise TableError(f"table {table.name}: required field(s) {', '.join(missing)} have no value")
        row_id = int(new_id())
        await self.store.insert_row(table, row_id, converted, self.user)
        return Rows([{"id": row_id}], 1)

    async def update(self, table_id: str, condition: Condition, values: Mapping[str, Any]) -> Rows:
        table = await self._table(table_id)
        self._writable(table)
        converted = self._values(table, values)
        required = [f.name for f in table.fields if f.required and f.column in converted
                    and converted[f.column] is None]
        if required:
            raise TableError(f"table {table.name}: required field(s) {', '.join(required)} cannot be emptied")
        filters, logic = self._filters(table, condition)
        changed = await self.store.update_rows(table, converted, filters, logic, self._filter_owner(table))
        return Rows([], changed)

    async def delete(self, table_id: str, condition: Condition) -> Rows:
        table = await self._table(table_id)
        self._writable(table)
        filters, logic = self._filters(table, condition)
        changed = await self.store.delete_rows(table, filters, logic, self._filter_owner(table))
        return Rows([], changed)

    async def execute(self, table_ids: Sequence[str], sql: str, params: Sequence[Any]) -> Rows:
        tables = [await self._table(table_id) for table_id in table_ids]
        if not tables:
            raise TableError("custom SQL needs a table (databaseInfoList)")
        named = {table.name: custom_sql.SqlTable(table.name, table.physical_name,
                                                 {f.name: f.column for f in table.fields},
                                                 single_user=table.rw_mode == SINGLE_USER,
                                                 read_only=table.rw_mode == READ_ONLY)
                 for table in tables}
        prepared = custom_sql.prepare(sql, params, named, dialect=self.store.engine.dialect.name,
                                      uid=self.user.uid, connector_id=self.user.connector_id,
                                      now=now_for_rows().strftime(DATE_FORMAT), new_id=lambda: int(new_id()))
        rows, changed = await self.store.execute_user_sql(prepared.sql, prepared.params, prepared.named)
        if prepared.kind == custom_sql.SELECT:
            return Rows(rows, len(rows))
        if prepared.kind == custom_sql.INSERT:
            return Rows([{"id": row_id} for row_id in prepared.inserted_ids], changed)
        return Rows([], changed)


__all__ = ["MULTI_USER", "DatabaseService", "RunDatabase", "TableError", "convert", "parse_definition"]
