"""The database nodes on the real engine and real tables (SQLite and, when configured, PostgreSQL): Coze Studio's
database_curd canvas, users' rows in single-user and multi-user tables, read-only tables, owners, conditions,
and custom SQL, including everything it must refuse."""

from __future__ import annotations

from typing import Any

import pytest

from knotflow.contract import RunServices
from knotflow.engine.runner import Execution
from knotflow.errors import NodeError
from knotflow.nodes.start import StartNode
from knotflow.service.databases import DatabaseService
from knotflow.service.owners import Registry
from knotflow.store.records import MULTI_USER, READ_ONLY, SINGLE_USER, Run
from knotflow.store.repository import Store
from tests import canvases as c
from tests.node_types import compile_canvas
from tests.nodes.helpers import conformance_canvas
from tests.store.backends import backend, database_url, store

__all__ = ["backend", "database_url", "store"]

BOT, OTHER_BOT = "7300000000000000001", "7300000000000000002"
TABLE_ID = "7478954112676282405"  # what database_curd.json references
V1, V2, V3, V4 = "1783122026497", "1783392627713", "1784288924673", "1785960530945"


def definition(table_id: str = TABLE_ID, name: str = "v1", rw_mode: int = SINGLE_USER) -> dict[str, Any]:
    return {"id": table_id, "table_name": name, "rw_mode": rw_mode, "field_list": [
        {"name": "v1", "type": 1, "alterId": int(V1)}, {"name": "v2", "type": 2, "alterId": int(V2)},
        {"name": "v3", "type": 3, "alterId": int(V3)}, {"name": "v4", "type": 2, "alterId": int(V4)},
        {"name": "ok", "type": 5, "alterId": 5}, {"name": "score", "type": 4, "alterId": 6}]}


async def bots(store: Store, *bot_ids: str) -> Registry:
    """The registry, with these bots (in the first space) created."""
    registry = Registry(store)
    for bot_id in bot_ids:
        await registry.create("bot", f"bot {bot_id}", owner_id=bot_id)
    return registry


def services(store: Store, *, bot: str = BOT, uid: str = "u1", connector: str = "1024") -> RunServices:
    run = Run(execute_id="1", workflow_id="1", version="v1", space_id="1", run_mode=0, status="Running",
              connector_id=connector, connector_uid=uid, bot_id=bot)
    return RunServices(database=DatabaseService(store, Registry(store)).for_run(run))


async def run(canvas: dict[str, Any], run_services: RunServices, **params: Any) -> dict[str, Any]:
    plan = compile_canvas(canvas)
    assert isinstance(plan.entry, StartNode)
    return (await Execution(plan, services=run_services).run(plan.entry.prepare(params))).output


@pytest.fixture()
async def tables(store: Store) -> DatabaseService:
    service = DatabaseService(store, await bots(store, BOT, OTHER_BOT))
    await service.define("bot", BOT, definition())
    return service


def _block(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    kind = "integer" if isinstance(value, int) and not isinstance(value, bool) else "list" if isinstance(
        value, list) else "string"
    return c.literal(value, kind)


def condition(*clauses: tuple[str, str, Any], logic: str = "AND") -> dict[str, Any]:
    items = []
    for left, operation, right in clauses:
        item = [c.param("left", c.literal(left)), c.param("operation", c.literal(operation))]
        if right is not None:
            item.append(c.param("right", _block(right)))
        items.append(item)
    return {"conditionList": items, "logic": logic}


def fields(**values: Any) -> list[list[dict[str, Any]]]:
    return [[c.param("fieldID", c.literal(field_id.lstrip("f"))), c.param("fieldValue", _block(value))]
            for field_id, value in values.items()]


ROWS = [{"name": "outputList", "type": "list", "schema": {"type": "object", "schema": []}},
        {"name": "rowNum", "type": "integer"}]


def db_node(type_id: str, inputs: dict[str, Any], outputs: list[dict[str, Any]] | None = None,
            table_id: str = TABLE_ID) -> dict[str, Any]:
    return c.node("150000", type_id, "Database", inputs={"databaseInfoList": [{"databaseInfoID": table_id}], **inputs},
                  outputs=outputs or ROWS)


def one(node: dict[str, Any], *start: tuple[str, str]) -> dict[str, Any]:
    return c.canvas([c.start(*start), node, c.end_return(rows=c.ref("150000", "outputList", "list"),
                                                          count=c.ref("150000", "rowNum", "integer"))],
                    [c.edge("100001", "150000"), c.edge("150000", "900001")])


def insert(**values: Any) -> dict[str, Any]:
    return one(db_node("46", {"insertParam": {"fieldInfo": fields(**values)}}))


def select(cond: dict[str, Any] | None = None, field_ids: tuple[str, ...] = (),
           order: tuple[tuple[str, bool], ...] = (), limit: int = 100, row_schema: list[dict[str, Any]] | None = None,
           table_id: str = TABLE_ID) -> dict[str, Any]:
    param: dict[str, Any] = {"limit": limit, "fieldList": [{"fieldID": int(f), "isDistinct": False} for f in field_ids],
                             "orderByList": [{"fieldID": int(f), "isAsc": asc} for f, asc in order]}
    if cond is not None:
        param["condition"] = cond
    outputs = [{"name": "outputList", "type": "list", "schema": {"type": "object", "schema": row_schema or []}},
               {"name": "rowNum", "type": "integer"}]
    return one(db_node("43", {"selectParam": param}, outputs, table_id))


def custom(sql: str, *start: tuple[str, str], row_schema: list[dict[str, Any]] | None = None,
           table_id: str = TABLE_ID) -> dict[str, Any]:
    params = [c.param(name, c.ref("100001", name, kind)) for name, kind in start]
    outputs = [{"name": "outputList", "type": "list", "schema": {"type": "object", "schema": row_schema or []}},
               {"name": "rowNum", "type": "integer"}]
    return one(db_node("12", {"sql": sql, "inputParameters": params}, outputs, table_id), *start)


async def test_studio_database_curd_canvas(tables: DatabaseService, store: Store) -> None:
    """TestDatabaseCURD's canvas (insert, update, query, delete) on real rows."""
    await run(insert(f1783122026497="abc", f1783392627713=1), services(store))
    await run(insert(f1783122026497="x", f1783392627713=1), services(store))
    output = await run(conformance_canvas("database_curd.json"), services(store), input="input for database curd",
                       v2=123)
    assert output == {"output": 1}  # the delete of v2 = 1 (the insert's rowNum) removed the "x" row
    left = (await run(select(order=((V1, True),), row_schema=[{"name": "v1", "type": "string"},
                                                              {"name": "v2", "type": "integer"},
                                                              {"name": "v4", "type": "integer"}]),
                      services(store)))["rows"]
    assert left == [{"v1": "abc", "v2": 123, "v4": None}, {"v1": "input for database curd", "v2": None, "v4": 123}]


async def test_single_user_rows_are_each_users_own(tables: DatabaseService, store: Store) -> None:
    await run(insert(f1783122026497="ann's"), services(store, uid="ann"))
    await run(insert(f1783122026497="bob's"), services(store, uid="bob"))
    await run(insert(f1783122026497="ann's on the web"), services(store, uid="ann", connector="999"))
    names = [{"name": "v1", "type": "string"}]
    assert (await run(select(row_schema=names), services(store, uid="ann")))["rows"] == [{"v1": "ann's"}]
    assert (await run(select(row_schema=names), services(store, uid="bob")))["rows"] == [{"v1": "bob's"}]
    everything = one(db_node("44", {"deleteParam": {"condition": condition(("v1", "IS_NOT_NULL", None))}}))
    assert (await run(everything, services(store, uid="bob")))["count"] == 1
    assert (await run(select(row_schema=names), services(store, uid="ann")))["rows"] == [{"v1": "ann's"}]
    sql = custom("select v1 from v1", row_schema=names)
    assert (await run(sql, services(store, uid="ann")))["rows"] == [{"v1": "ann's"}]
    assert (await run(sql, services(store, uid="bob")))["rows"] == []


async def test_multi_user_rows_are_shared_and_read_only_tables_refuse_changes(store: Store) -> None:
    service = DatabaseService(store, await bots(store, BOT))
    await service.define("bot", BOT, definition("11", "shared", MULTI_USER))
    await service.define("bot", BOT, definition("12", "fixed", READ_ONLY))
    await run(one(db_node("46", {"insertParam": {"fieldInfo": fields(f1783122026497="a")}}, table_id="11")),
              services(store, uid="ann"))
    names = [{"name": "v1", "type": "string"}]
    assert (await run(select(row_schema=names, table_id="11"), services(store, uid="bob")))["rows"] == [{"v1": "a"}]
    with pytest.raises(NodeError) as error:
        await run(one(db_node("46", {"insertParam": {"fieldInfo": fields(f1783122026497="a")}}, table_id="12")),
                  services(store))
    assert "read-only" in error.value.message and error.value.internal_code == 720701013
    with pytest.raises(NodeError) as error:
        await run(custom("delete from fixed where v1 = 'a'", table_id="12"), services(store))
    assert "read-only" in error.value.message
    assert (await run(select(table_id="12"), services(store)))["rows"] == []


async def test_tables_belong_to_their_bot(tables: DatabaseService, store: Store) -> None:
    for run_services, expected in ((services(store, bot=OTHER_BOT), f"belongs to bot {BOT}"),
                                   (services(store, bot=""), "bot_id or app_id")):
        with pytest.raises(NodeError) as error:
            await run(select(), run_services)
        assert expected in error.value.message
    with pytest.raises(NodeError) as error:
        await run(select(table_id="404"), services(store))
    assert "does not exist" in error.value.message


async def test_conditions_orderings_limits_and_output_shapes(tables: DatabaseService, store: Store) -> None:
    for index, name in enumerate(["ann", "bob", "cid", "dan"]):
        await run(insert(f1783122026497=name, f1783392627713=index, f1784288924673=f"2025-01-0{index + 1} 10:00:00",
                         f5=index % 2 == 0, f6=index + 0.5), services(store))
    schema = [{"name": "v1", "type": "string"}, {"name": "v2", "type": "integer"}, {"name": "v3", "type": "string"},
              {"name": "ok", "type": "boolean"}, {"name": "score", "type": "float"}, {"name": "id", "type": "string"}]

    async def names(cond: dict[str, Any] | None = None, **options: Any) -> list[str]:
        rows = (await run(select(cond, row_schema=schema, **options), services(store)))["rows"]
        return [row["v1"] for row in rows]

    assert await names(order=((V2, False),), limit=2) == ["dan", "cid"]
    assert await names(condition(("v2", "GREATER_EQUAL", 1), ("v2", "LESS_THAN", 3)), order=((V2, True),)) == [
        "bob", "cid"]
    assert await names(condition(("v1", "EQUAL", "ann"), ("v1", "EQUAL", "dan"), logic="OR"),
                       order=((V1, True),)) == ["ann", "dan"]
    assert await names(condition(("v1", "IN", ["bob", "cid"])), order=((V1, True),)) == ["bob", "cid"]
    assert await names(condition(("v1", "NOT_IN", ["bob", "cid"])), order=((V1, True),)) == ["ann", "dan"]
    assert await names(condition(("v1", "LIKE", "a")), order=((V1, True),)) == ["ann", "dan"]  # contains
    assert await names(condition(("v1", "NOT_LIKE", "a")), order=((V1, True),)) == ["bob", "cid"]
    assert await names(condition(("v3", "GREATER_THAN", "2025-01-02 12:00:00")), order=((V3, False),)) == [
        "dan", "cid"]
    assert await names(condition(("v4", "IS_NULL", None)), order=((V1, True),), limit=1) == ["ann"]
    assert await names(condition(("v2", "NOT_EQUAL", 1), ("v2", "EQUAL", None)), order=((V1, True),)) == [
        "ann", "cid", "dan"]  # a condition without its value is left out, as Studio
    rows = (await run(select(condition(("v1", "EQUAL", "cid")), row_schema=schema), services(store)))["rows"]
    assert rows[0] | {"id": "x"} == {"v1": "cid", "v2": 2, "v3": "2025-01-03 10:00:00", "ok": True, "score": 2.5,
                                     "id": "x"} and rows[0]["id"].isdigit()
    loose = (await run(select(condition(("v1", "EQUAL", "cid")), field_ids=(V1, V2, "102")), services(store)))
    assert loose["count"] == 1 and set(loose["rows"][0]) == {"v1", "v2", "id"}  # undeclared: every field, as text
    assert loose["rows"][0]["v2"] == "2"
    with pytest.raises(NodeError) as error:
        await run(select(condition(("v2", "EQUAL", "two"))), services(store))
    assert "is not a Number value" in error.value.message
    with pytest.raises(NodeError) as error:
        await run(select(condition(("nope", "EQUAL", "x"))), services(store))
    assert "has no field 'nope'" in error.value.message


async def test_update_and_delete_report_rows_changed_or_null(tables: DatabaseService, store: Store) -> None:
    await run(insert(f1783122026497="a", f1783392627713=1), services(store))
    update = one(db_node("42", {"updateParam": {"condition": condition(("v1", "EQUAL", "a")),
                                                "fieldInfo": fields(f1783392627713=5)}}))
    assert await run(update, services(store)) == {"rows": [], "count": 1}
    nothing = one(db_node("42", {"updateParam": {"condition": condition(("v1", "EQUAL", "zzz")),
                                                 "fieldInfo": fields(f1783392627713=5)}}))
    assert await run(nothing, services(store)) == {"rows": [], "count": None}
    inserted = await run(insert(f1783122026497="b"), services(store))
    assert inserted["count"] == 1 and inserted["rows"][0]["id"].isdigit()


async def test_custom_sql_reads_and_writes_the_nodes_table(tables: DatabaseService, store: Store) -> None:
    written = await run(custom("insert into v1 (v1, v2) values ('{{name}}', {{n}}), ('b', 2)", ("name", "string"),
                               ("n", "integer")), services(store), name="a'; drop table v1; --", n=1)
    assert written["count"] == 2 and len(written["rows"]) == 2
    schema = [{"name": "v1", "type": "string"}, {"name": "total", "type": "integer"}]
    rows = await run(custom("select v1, sum(v2) as total from v1 where v1 <> {{skip}} group by v1 order by v1",
                            ("skip", "string"), row_schema=schema), services(store), skip="zzz")
    assert rows == {"rows": [{"v1": "a'; drop table v1; --", "total": 1}, {"v1": "b", "total": 2}], "count": 2}
    changed = await run(custom("update v1 set v2 = v2 + {{by}} where v1 = `{{name}}`", ("by", "integer"),
                               ("name", "string")), services(store), by=10, name="b")
    assert changed["count"] == 1
    assert (await run(custom("delete from v1 where v2 > 5"), services(store)))["count"] == 1


@pytest.mark.parametrize(("sql", "reason"), [
    ("select * from v1 where v1 = {{input}}", None),  # the input is bound, never SQL
    ("select * from other", "not one of this node's tables"),
    ("select * from conversations", "not one of this node's tables"),
    ("select * from kfdb_7478954112676282405", "not one of this node's tables"),
    ("select * from sqlite_master", "not one of this node's tables"),
    ("select * from pg_catalog.pg_tables", "not one of this node's tables"),
    ("drop table v1", "not DROP"),
    ("create table x (a int)", "not CREATE"),
    ("alter table v1 add column x int", "not ALTER"),
    ("select * from v1; delete from v1", "exactly one statement"),
    ("select 1; select 2", "exactly one statement"),
    ("update v1 set uuid = 'someone else'", "set by knotflow"),
    ("select query_to_xml('select 1', true, true, '')", "not allowed"),
    ("insert into v1 (v1) select v1 from v1", "INSERT … SELECT"),
])
async def test_custom_sql_refuses_everything_but_the_nodes_tables(tables: DatabaseService, store: Store, sql: str,
                                                                   reason: str | None) -> None:
    await tables.define("bot", OTHER_BOT, definition("21", "other"))
    await run(insert(f1783122026497="mine"), services(store))
    canvas = custom(sql, ("input", "string"), row_schema=[{"name": "v1", "type": "string"}])
    attack = "x' or '1'='1"
    if reason is None:
        assert await run(canvas, services(store), input=attack) == {"rows": [], "count": 0}
        assert (await run(canvas, services(store), input="mine"))["rows"] == [{"v1": "mine"}]
        return
    with pytest.raises(NodeError) as error:
        await run(canvas, services(store), input=attack)
    assert reason in error.value.message and error.value.internal_code == 720701013
    assert (await run(select(), services(store)))["count"] == 1  # nothing happened to the rows
