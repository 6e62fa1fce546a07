"""Custom SQL (the database node 12): check a statement written against a bot's or app's tables, and rewrite it
for the tables as they are stored.

The statement is parsed by sqlglot (MySQL syntax, as Coze Studio's users write it) and checked on its syntax
tree, never by matching text: exactly one SELECT (set operations and CTEs included), INSERT … VALUES, UPDATE or
DELETE; every table it names is one of the node's tables (or a CTE of the statement), with no schema; only
functions sqlglot knows (an unknown name could be anything the database offers, such as PostgreSQL's
`query_to_xml`, which runs SQL of its own), none that reads the server's identity; no variables and no
parameter markers but the node's. Values only ever reach the database as bound parameters.

The rewrite: in a SELECT, each table becomes a subquery over its stored table that names the columns as the
table's fields (plus `id`, `uuid`, `bstudio_create_time`) and, for a single-user table, keeps only the caller's
rows, so the statement's own column names, `*` and aliases work unchanged. An UPDATE or DELETE targets the
stored table with its columns renamed and the caller's filter added; an INSERT gets the system columns (row id,
caller, connector, time) for every row. The result is written for SQLite or PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from knotflow.errors import BadRequest

SELECT, INSERT, UPDATE, DELETE = "select", "insert", "update", "delete"
ID, UUID, CREATE_TIME = "id", "uuid", "bstudio_create_time"  # the system fields as Coze shows them
ID_COLUMN, UID_COLUMN, CID_COLUMN, TIME_COLUMN = (
    "bstudio_id", "bstudio_connector_uid", "bstudio_connector_id", "bstudio_create_time")
SYSTEM_FIELDS = {ID: ID_COLUMN, UUID: UID_COLUMN, CREATE_TIME: TIME_COLUMN}
SYSTEM_COLUMNS = frozenset({ID_COLUMN, UID_COLUMN, CID_COLUMN, TIME_COLUMN})
_PARAM = "kfp"  # the node's parameter markers are renamed :kfp0, :kfp1… before parsing
_ALLOWED_CURRENT = (exp.CurrentDate, exp.CurrentTime, exp.CurrentTimestamp)
_UNKNOWN_FUNCTIONS = {"NOW": exp.CurrentTimestamp}  # MySQL spellings sqlglot leaves unparsed, and their meaning


class SqlRefused(BadRequest):
    """A custom SQL statement knotflow will not run."""


@dataclass(frozen=True, slots=True)
class SqlTable:
    """A table as the statement names it (its definition's name) and as it is stored."""

    name: str
    physical: str
    columns: dict[str, str]  # field name → stored column
    single_user: bool
    read_only: bool


@dataclass(slots=True)
class PreparedSql:
    kind: str  # SELECT, INSERT, UPDATE or DELETE
    sql: str  # for the store's dialect, parameters as :name (SQLite) or $n (PostgreSQL)
    params: list[Any]  # in $n order (PostgreSQL)
    named: dict[str, Any] = field(default_factory=dict)  # by name (SQLite)
    inserted_ids: list[int] = field(default_factory=list)


def _numbered(sql: str, count: int) -> str:
    """`?` markers renamed :kfp0, :kfp1… in the order they appear, so each keeps its value whatever the syntax
    tree's order (a `?` inside a quoted string is text, not a marker)."""
    try:
        tokens = MySQL().tokenize(sql)
    except TokenError as exc:
        raise SqlRefused(f"the SQL does not parse: {exc}") from exc
    markers = [token for token in tokens if token.token_type == TokenType.PLACEHOLDER and token.text == "?"]
    if len(markers) != count:
        raise SqlRefused(f"the SQL has {len(markers)} parameter markers for {count} values")
    pieces, last = [], 0
    for index, token in enumerate(markers):
        pieces += [sql[last:token.start], f":{_PARAM}{index}"]
        last = token.end + 1
    return "".join(pieces) + sql[last:]


def _parse(sql: str) -> exp.Expr:
    try:
        statements = [s for s in sqlglot.parse(sql, read="mysql") if s is not None]
    except (ParseError, TokenError) as exc:
        raise SqlRefused(f"the SQL does not parse: {str(exc).splitlines()[0]}") from exc
    if len(statements) != 1:
        raise SqlRefused(f"custom SQL runs exactly one statement, got {len(statements)}")
    return statements[0]


def _kind(statement: exp.Expr) -> str:
    if isinstance(statement, exp.Query):
        return SELECT
    if isinstance(statement, exp.Insert):
        return INSERT
    if isinstance(statement, exp.Update):
        return UPDATE
    if isinstance(statement, exp.Delete):
        return DELETE
    raise SqlRefused(f"custom SQL runs SELECT, INSERT, UPDATE or DELETE, not {statement.key.upper()} "
                     "(no DDL, no settings, no transactions)")


def _check_nodes(statement: exp.Expr, tables: dict[str, SqlTable], count: int) -> None:
    ctes = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
    ours = {f"{_PARAM}{index}" for index in range(count)}
    for node in list(statement.walk()):
        if isinstance(node, exp.Command):
            raise SqlRefused(f"custom SQL cannot run {node.name.upper() or 'that command'}")
        if isinstance(node, exp.Placeholder) and node.name not in ours:
            raise SqlRefused(f"the SQL may not hold parameter markers of its own ({node.sql(dialect='mysql')})")
        if isinstance(node, exp.Parameter | exp.SessionParameter):
            raise SqlRefused(f"the SQL may not use variables ({node.sql(dialect='mysql')})")
        if isinstance(node, exp.Into):
            raise SqlRefused("SELECT … INTO is not allowed")
        if isinstance(node, exp.Anonymous):
            name = node.name.upper()
            if name in _UNKNOWN_FUNCTIONS and not node.expressions:
                node.replace(_UNKNOWN_FUNCTIONS[name]())
                continue
            raise SqlRefused(f"function {node.name} is not allowed in custom SQL")
        if type(node).__name__.startswith("Current") and not isinstance(node, _ALLOWED_CURRENT):
            raise SqlRefused(f"{node.sql(dialect='mysql')} is not allowed in custom SQL")
        if isinstance(node, exp.Table):
            _check_table(node, tables, ctes)


def _check_table(node: exp.Table, tables: dict[str, SqlTable], ctes: set[str]) -> None:
    if not isinstance(node.this, exp.Identifier):
        raise SqlRefused(f"{node.sql(dialect='mysql')} is not a table of this node")
    if node.args.get("db") or node.args.get("catalog"):
        raise SqlRefused(f"table {node.sql(dialect='mysql')} is not one of this node's tables")
    if node.name not in tables and node.name not in ctes:
        allowed = ", ".join(sorted(tables))
        raise SqlRefused(f"table {node.name} is not one of this node's tables ({allowed})")


def _owner_filter(column: Callable[[str], exp.Expr]) -> exp.Expr:
    return exp.and_(exp.EQ(this=column(UID_COLUMN), expression=exp.Placeholder(this="kfuid")),
                    exp.EQ(this=column(CID_COLUMN), expression=exp.Placeholder(this="kfcid")))


def _readable(table: SqlTable, alias: str) -> exp.Expr:
    """The table as a subquery with its fields' names, and only the caller's rows if it is single-user."""
    names = {**SYSTEM_FIELDS, **table.columns}
    query = exp.select(*[exp.alias_(exp.column(column, quoted=True), name, quoted=True)
                         for name, column in names.items()]).from_(exp.to_table(table.physical, quoted=True))
    if table.single_user:
        query = query.where(_owner_filter(lambda name: exp.column(name, quoted=True)))
    return query.subquery(exp.to_identifier(alias, quoted=True))


def _replace_tables(root: exp.Expr, tables: dict[str, SqlTable], skip: exp.Table | None = None) -> None:
    ctes = {cte.alias_or_name for cte in root.find_all(exp.CTE)}
    for node in list(root.find_all(exp.Table)):
        if node is skip or (node.name in ctes and node.name not in tables):
            continue
        table = tables[node.name]
        node.replace(_readable(table, node.alias or table.name))


def _stored_columns(root: exp.Expr, table: SqlTable, names: set[str]) -> None:
    """Rename the target table's columns outside nested queries (those read the subqueries above)."""
    columns = {**SYSTEM_FIELDS, **table.columns}
    for node in list(root.walk(prune=lambda n: isinstance(n, exp.Query))):
        if not isinstance(node, exp.Column) or (node.table and node.table not in names):
            continue
        column = columns.get(node.name)
        if column is None:
            raise SqlRefused(f"table {table.name} has no field {node.name}")
        node.replace(exp.column(column, quoted=True))


def _target(statement: exp.Expr, tables: dict[str, SqlTable]) -> tuple[exp.Table, SqlTable]:
    target = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
    if not isinstance(target, exp.Table) or target.name not in tables or target.args.get("joins"):
        raise SqlRefused(f"{statement.key.upper()} must name one of this node's tables, without joins")
    table = tables[target.name]
    if table.read_only:
        raise SqlRefused(f"table {table.name} is read-only")
    return target, table


def _writable_field(table: SqlTable, name: str) -> str:
    if name in SYSTEM_FIELDS or name in SYSTEM_COLUMNS:
        raise SqlRefused(f"field {name} is set by knotflow, not by the statement")
    column = table.columns.get(name)
    if column is None:
        raise SqlRefused(f"table {table.name} has no field {name}")
    return column


def _rewrite_update(statement: exp.Update, tables: dict[str, SqlTable]) -> None:
    target, table = _target(statement, tables)
    if statement.args.get("from") or statement.args.get("order") or statement.args.get("limit"):
        raise SqlRefused("UPDATE may not use FROM, ORDER BY or LIMIT here")
    for assignment in statement.expressions:
        left = assignment.this
        if not isinstance(left, exp.Column):
            raise SqlRefused(f"cannot assign to {left.sql(dialect='mysql')}")
        _writable_field(table, left.name)  # renamed with the other columns below
    _finish_write(statement, target, table, tables)


def _rewrite_delete(statement: exp.Delete, tables: dict[str, SqlTable]) -> None:
    target, table = _target(statement, tables)
    if statement.args.get("tables") or statement.args.get("using") or statement.args.get("order") \
            or statement.args.get("limit"):
        raise SqlRefused("DELETE removes rows of one table, without USING, ORDER BY or LIMIT")
    _finish_write(statement, target, table, tables)


def _finish_write(statement: exp.Expr, target: exp.Table, table: SqlTable,
                  tables: dict[str, SqlTable]) -> None:
    _stored_columns(statement, table, {target.name, target.alias} - {""})
    _replace_tables(statement, tables, skip=target)
    if table.single_user:
        owner = _owner_filter(lambda name: exp.column(name, quoted=True))
        where = statement.args.get("where")
        statement.set("where", exp.Where(this=exp.and_(exp.paren(where.this), owner) if where else owner))
    target.replace(exp.to_table(table.physical, quoted=True))


def _rewrite_insert(statement: exp.Insert, tables: dict[str, SqlTable], new_id: Callable[[], int],
                    params: dict[str, Any]) -> list[int]:
    _, table = _target(statement, tables)
    schema = statement.this
    if not isinstance(schema, exp.Schema) or not schema.expressions:
        raise SqlRefused("INSERT must list the fields it sets: INSERT INTO t (a, b) VALUES (…)")
    for key in ("conflict", "returning", "where", "overwrite", "ignore", "partition"):
        if statement.args.get(key):
            raise SqlRefused("INSERT … VALUES only, without ON DUPLICATE KEY, IGNORE or RETURNING")
    values = statement.expression
    if not isinstance(values, exp.Values):
        raise SqlRefused("INSERT … SELECT is not allowed: list the VALUES")
    columns = [_writable_field(table, column.name) for column in schema.expressions]
    _replace_tables(values, tables)
    ids = []
    for index, row in enumerate(values.expressions):
        if not isinstance(row, exp.Tuple) or len(row.expressions) != len(columns):
            raise SqlRefused(f"row {index + 1} of VALUES does not have {len(columns)} values")
        ids.append(new_id())
        params[f"kfid{index}"] = ids[-1]
        row.set("expressions", [*row.expressions, exp.Placeholder(this=f"kfid{index}"),
                                exp.Placeholder(this="kfuid"), exp.Placeholder(this="kfcid"),
                                exp.Placeholder(this="kftime")])
    schema.set("expressions", [exp.to_identifier(name, quoted=True)
                               for name in [*columns, ID_COLUMN, UID_COLUMN, CID_COLUMN, TIME_COLUMN]])
    schema.set("this", exp.to_table(table.physical, quoted=True))
    return ids


def prepare(sql: str, values: Sequence[Any], tables: dict[str, SqlTable], *, dialect: str, uid: str,
            connector_id: str, now: Any, new_id: Callable[[], int]) -> PreparedSql:
    """Check `sql` (MySQL syntax, `?` for each of `values`) and write it for `dialect` ("sqlite" or
    "postgresql") over the stored tables; raises SqlRefused with the reason."""
    statement = _parse(_numbered(sql, len(values)))
    kind = _kind(statement)
    _check_nodes(statement, tables, len(values))
    named: dict[str, Any] = {f"{_PARAM}{index}": value for index, value in enumerate(values)}
    named |= {"kfuid": uid, "kfcid": connector_id}
    ids: list[int] = []
    if kind == SELECT:
        _replace_tables(statement, tables)
    elif kind == UPDATE:
        assert isinstance(statement, exp.Update)
        _rewrite_update(statement, tables)
    elif kind == DELETE:
        assert isinstance(statement, exp.Delete)
        _rewrite_delete(statement, tables)
    else:
        assert isinstance(statement, exp.Insert)
        ids = _rewrite_insert(statement, tables, new_id, named)
        named["kftime"] = now
    used = [node for node in statement.find_all(exp.Placeholder)]
    if dialect == "postgresql":
        order: list[str] = []
        for node in used:
            if node.name not in order:
                order.append(node.name)
            node.replace(exp.Parameter(this=exp.Literal.number(order.index(node.name) + 1)))
        return PreparedSql(kind, statement.sql(dialect="postgres", identify=True), [named[name] for name in order],
                           inserted_ids=ids)
    names = {node.name for node in used}
    return PreparedSql(kind, statement.sql(dialect="sqlite", identify=True), [],
                       {name: value for name, value in named.items() if name in names}, ids)
