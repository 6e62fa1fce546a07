"""Bots' and apps' tables (Coze's databases): their definitions, and their rows in real tables of this database.

A table defined with `knotflow database create` gets a table of its own, `kfdb_<table id>`, with Coze Studio's
system columns (`bstudio_id` the row id, `bstudio_connector_uid` and `bstudio_connector_id` who wrote it,
`bstudio_create_time`) and one typed column per field, `f_<field id>`. Real tables rather than JSON rows: the
database compares, sorts and indexes typed values itself on SQLite and PostgreSQL alike, and custom SQL runs as
SQL on them (see knotflow.service.custom_sql) instead of being reinterpreted over JSON.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Index,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from knotflow.dsl import jsonutil
from knotflow.errors import BadRequest
from knotflow.store import tables as t
from knotflow.store.base import Repository, dumps
from knotflow.store.records import (
    BOOLEAN_FIELD,
    DATE_FIELD,
    FLOAT_FIELD,
    NUMBER_FIELD,
    TEXT_FIELD,
    TableField,
    UserTable,
)

ID_COLUMN, UID_COLUMN, CID_COLUMN, TIME_COLUMN = (
    "bstudio_id", "bstudio_connector_uid", "bstudio_connector_id", "bstudio_create_time")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"  # how Coze writes dates; SQLite stores them so, and so they read back
_SQLITE_DATE = sqlite.DATETIME(storage_format="%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d",
                               regexp=r"(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)")
_DATE = DateTime().with_variant(_SQLITE_DATE, "sqlite")
_COLUMN_TYPES: dict[int, Any] = {TEXT_FIELD: Text, NUMBER_FIELD: BigInteger, DATE_FIELD: _DATE, FLOAT_FIELD: Double,
                                 BOOLEAN_FIELD: Boolean}
_STATUS_COUNT = re.compile(r"(\d+)$")


@dataclass(frozen=True, slots=True)
class RowFilter:
    """One condition on a stored column: Coze's operation (EQUAL, IN, LIKE…) and its converted value."""

    column: str
    operation: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class Owner:
    """Who reads and writes: the rows of a single-user table are filtered by these."""

    uid: str
    connector_id: str


def physical_name(table_id: str) -> str:
    return f"kfdb_{table_id}"


def physical_table(table: UserTable) -> Table:
    return Table(
        table.physical_name,
        MetaData(),
        Column(ID_COLUMN, BigInteger, primary_key=True, autoincrement=False),
        Column(UID_COLUMN, String(255), nullable=False, server_default=""),
        Column(CID_COLUMN, String(32), nullable=False, server_default=""),
        Column(TIME_COLUMN, _DATE, nullable=False),
        *[Column(field.column, _COLUMN_TYPES[field.type], nullable=True) for field in table.fields],
        Index(f"ix_{table.physical_name}_owner", UID_COLUMN, CID_COLUMN),
    )


def _user_table(row: Any) -> UserTable:
    values = dict(row)
    values["fields"] = [TableField(**item) for item in jsonutil.loads(values["fields"])]
    return UserTable(**values)


_OPERATORS: dict[str, Any] = {
    "EQUAL": lambda c, v: c == v, "NOT_EQUAL": lambda c, v: c != v, "GREATER_THAN": lambda c, v: c > v,
    "LESS_THAN": lambda c, v: c < v, "GREATER_EQUAL": lambda c, v: c >= v, "LESS_EQUAL": lambda c, v: c <= v,
    "IN": lambda c, v: c.in_(list(v)), "NOT_IN": lambda c, v: c.not_in(list(v)),
    "IS_NULL": lambda c, v: c.is_(None), "IS_NOT_NULL": lambda c, v: c.is_not(None),
    "LIKE": lambda c, v: c.like(v), "NOT_LIKE": lambda c, v: c.not_like(v),
}
OPERATIONS = frozenset(_OPERATORS)


def _where(table: Table, filters: Sequence[RowFilter], logic: str, owner: Owner | None) -> Any:
    clauses = [_OPERATORS[f.operation](table.c[f.column], f.value) for f in filters]
    condition = (or_(*clauses) if logic == "OR" else and_(*clauses)) if clauses else None
    if owner is not None:
        mine = and_(table.c[UID_COLUMN] == owner.uid, table.c[CID_COLUMN] == owner.connector_id)
        condition = mine if condition is None else and_(condition, mine)
    return condition


def _plain(value: Any) -> Any:
    """A value read back, as JSON takes it."""
    if isinstance(value, datetime | date):
        return value.strftime(DATE_FORMAT)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode(errors="replace")
    return value


class DatabaseStore(Repository):
    async def create_user_table(self, table: UserTable) -> bool:
        """Record the definition and create its table; False when the id, or the owner's table name, is taken."""
        row = asdict(table)
        row["fields"] = dumps([asdict(f) for f in table.fields])
        try:
            async with self._writer.begin() as conn:
                await conn.execute(insert(t.database_tables).values(**row))
                await conn.run_sync(lambda sync: physical_table(table).create(sync))
        except IntegrityError:
            return False
        return True

    async def get_user_table(self, table_id: str) -> UserTable | None:
        d = t.database_tables
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(d).where(d.c.id == table_id))).mappings().first()
        return None if row is None else _user_table(row)

    async def user_tables(self, owner_kind: str | None = None, owner_id: str | None = None) -> list[UserTable]:
        d = t.database_tables
        query = select(d).order_by(d.c.owner_kind, d.c.owner_id, d.c.name)
        if owner_kind is not None:
            query = query.where(d.c.owner_kind == owner_kind)
        if owner_id is not None:
            query = query.where(d.c.owner_id == owner_id)
        async with self._engine.connect() as conn:
            return [_user_table(row) for row in (await conn.execute(query)).mappings().all()]

    async def drop_user_table(self, table: UserTable) -> bool:
        """Drop the table, its rows with it."""
        d = t.database_tables
        async with self._writer.begin() as conn:
            result = await conn.execute(delete(d).where(d.c.id == table.id))
            if int(result.rowcount) != 1:
                return False
            await conn.run_sync(lambda sync: physical_table(table).drop(sync, checkfirst=True))
        return True

    # --- rows ---------------------------------------------------------------------------------------------
    async def insert_row(self, table: UserTable, row_id: int, values: dict[str, Any], owner: Owner) -> None:
        stored = physical_table(table)
        row = {**values, ID_COLUMN: row_id, UID_COLUMN: owner.uid, CID_COLUMN: owner.connector_id,
               TIME_COLUMN: now_for_rows()}
        async with self._writer.begin() as conn:
            await conn.execute(insert(stored).values(**row))

    async def select_rows(self, table: UserTable, columns: Sequence[str], filters: Sequence[RowFilter], logic: str,
                          owner: Owner | None, order_by: Sequence[tuple[str, bool]],
                          limit: int) -> list[dict[str, Any]]:
        """Rows as {column: value}, of `columns` (none: every column)."""
        stored = physical_table(table)
        query = select(*[stored.c[c] for c in columns]) if columns else select(stored)
        condition = _where(stored, filters, logic, owner)
        if condition is not None:
            query = query.where(condition)
        query = query.order_by(*[stored.c[c].asc() if asc else stored.c[c].desc() for c, asc in order_by])
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.limit(limit))).mappings().all()
        return [{key: _plain(value) for key, value in row.items()} for row in rows]

    async def update_rows(self, table: UserTable, values: dict[str, Any], filters: Sequence[RowFilter], logic: str,
                          owner: Owner | None) -> int:
        stored = physical_table(table)
        query = update(stored).values(**values)
        condition = _where(stored, filters, logic, owner)
        if condition is not None:
            query = query.where(condition)
        async with self._writer.begin() as conn:
            return int((await conn.execute(query)).rowcount)

    async def delete_rows(self, table: UserTable, filters: Sequence[RowFilter], logic: str,
                          owner: Owner | None) -> int:
        stored = physical_table(table)
        query = delete(stored)
        condition = _where(stored, filters, logic, owner)
        if condition is not None:
            query = query.where(condition)
        async with self._writer.begin() as conn:
            return int((await conn.execute(query)).rowcount)

    async def execute_user_sql(self, sql: str, params: Sequence[Any],
                               named: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """A statement written by knotflow.service.custom_sql: with `named` parameters on SQLite, positional
        ($n) ones on PostgreSQL. Returns its rows and the rows it changed; a statement the database refuses
        (a user's SQL: a misspelt field, a type the database will not compare) is a BadRequest saying why."""
        try:
            return await self._execute_user_sql(sql, params, named)
        except BadRequest:
            raise
        except Exception as exc:  # the drivers' errors differ (sqlite3, asyncpg); each names the problem
            cause = getattr(exc, "orig", None) or exc
            raise BadRequest(f"the database refused the statement: {cause}") from exc

    async def _execute_user_sql(self, sql: str, params: Sequence[Any],
                                named: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        async with self._writer.begin() as conn:
            if self._dialect == "sqlite":
                result = await conn.exec_driver_sql(sql, named)
                rows = [dict(row) for row in result.mappings().all()] if result.returns_rows else []
                changed = 0 if result.returns_rows else max(int(result.rowcount), 0)
            else:
                raw = (await conn.get_raw_connection()).driver_connection
                assert raw is not None
                statement = await raw.prepare(sql)
                args = [_for_postgres(value, kind.name) for value, kind in zip(params, statement.get_parameters(),
                                                                                strict=True)]
                records = await statement.fetch(*args)
                rows = [dict(record.items()) for record in records]
                match = _STATUS_COUNT.search(statement.get_statusmsg() or "")
                changed = int(match.group(1)) if match and not statement.get_attributes() else 0
        return [{key: _plain(value) for key, value in row.items()} for row in rows], changed


def _for_postgres(value: Any, kind: str) -> Any:
    """A parameter as PostgreSQL's inferred type wants it. Coze's custom SQL binds text and MySQL converts it
    where the statement needs a number or a date; PostgreSQL converts nothing, so knotflow does it here."""
    if value is None:
        return None
    try:
        if kind in ("int2", "int4", "int8"):
            return int(value) if not isinstance(value, str) else int(value.strip())
        if kind in ("float4", "float8"):
            return float(value)
        if kind == "numeric":
            return Decimal(str(value))
        if kind == "bool":
            return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "t")
        if kind in ("timestamp", "timestamptz"):
            return value if isinstance(value, datetime) else datetime.strptime(str(value).strip(), DATE_FORMAT)
        if kind == "date":
            return value if isinstance(value, date) else datetime.strptime(str(value).strip()[:10], "%Y-%m-%d").date()
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"value {value!r} does not fit where the statement uses it ({kind})") from exc
    if isinstance(value, bool):
        return "1" if value else "0"
    return value if isinstance(value, str) else jsonutil.dumps(value) if isinstance(value, dict | list) else str(value)


def now_for_rows() -> datetime:
    return datetime.fromtimestamp(time.time()).replace(microsecond=0)
