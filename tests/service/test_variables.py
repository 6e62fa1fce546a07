"""Bots, apps and their variables in the service layer (SQLite and, when configured, PostgreSQL): the registry
and who may name a bot or app, declarations, how values are converted, and what a run reads and writes —
app variables shared by the app's users, user variables isolated per connector and per connector uid."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from knotflow.dsl.types import LIST, TypeInfo
from knotflow.errors import BadRequest, CanvasError, NotFound
from knotflow.service.owners import APP, BOT, Registry, ensure_app, require_owner, run_owner
from knotflow.service.variables import (
    RunVariables,
    VariableError,
    VariableService,
    check_assignments,
    decode,
    encode,
    parse_type,
    type_name,
)
from knotflow.store.records import PERMISSION_RUN, Run, Token
from knotflow.store.repository import Store
from tests import canvases as c

APP_SOURCE, USER_SOURCE, SYSTEM_SOURCE = "global_variable_app", "global_variable_user", "global_variable_system"
ANY_SPACE = Token(id="1", name="t", permissions=[PERMISSION_RUN], space_ids=None, created_at=0)


def token(*spaces: str, permissions: tuple[str, ...] = (PERMISSION_RUN,)) -> Token:
    return Token(id="2", name="t", permissions=list(permissions), space_ids=list(spaces), created_at=0)


def run(*, bot: str = "", app: str = "", connector: str = "1024", uid: str = "", execute_id: str = "11") -> Run:
    return Run(execute_id=execute_id, workflow_id="7", version="v1", space_id="1", run_mode=0, status="Running",
               connector_id=connector, connector_uid=uid, bot_id=bot, app_id=app)


@pytest.fixture()
async def service(store: Store) -> VariableService:
    registry = Registry(store)
    await registry.create(BOT, "helper", owner_id="b1", space_id="s1")
    await registry.create(APP, "shop", owner_id="a1", space_id="s1")
    return VariableService(store, registry)


# --- types and conversions -------------------------------------------------------------------------------
def test_types_as_the_cli_writes_them() -> None:
    assert [type_name(parse_type(t)) for t in ("string", "Integer", "number", "float", "boolean", "object",
                                                "array<string>", "list< list<integer> >", "list<object>")] == [
        "string", "integer", "float", "float", "boolean", "object", "list<string>", "list<list<integer>>",
        "list<object>"]
    for bad, reason in (("list", "names its elements"), ("int", "unknown variable type"), ("list<>", "unknown")):
        with pytest.raises(BadRequest, match=reason):
            parse_type(bad)


@pytest.mark.parametrize(("type_text", "text", "value"), [
    ("string", "", ""), ("string", "007", "007"),
    ("integer", "", 0), ("integer", "42", 42), ("integer", "-7", -7),  # decimal (Studio parses base 64)
    ("float", "", 0), ("float", "1.5", 1.5), ("float", "1e2", 100.0),
    ("boolean", "", False), ("boolean", "true", True), ("boolean", "0", False),
    ("object", "", None), ("object", '{"a":{"b":1}}', {"a": {"b": 1}}),
    ("list<integer>", "", None), ("list<integer>", "[1,2]", [1, 2]), ("list<string>", '["a"]', ["a"]),
])
def test_stored_text_reads_as_coze_studio_reads_it(type_text: str, text: str, value: Any) -> None:
    assert decode(text, parse_type(type_text), "v") == value


@pytest.mark.parametrize(("type_text", "text"), [
    ("integer", "3.5"), ("integer", "x"), ("float", "one"), ("boolean", "yes"), ("object", "[1]"),
    ("list<integer>", '["a"]'), ("list<string>", "{"),
])
def test_text_that_is_no_value_of_the_type(type_text: str, text: str) -> None:
    with pytest.raises(ValueError, match="v: "):
        decode(text, parse_type(type_text), "v")


def test_values_are_stored_as_coze_keeps_them() -> None:
    assert encode("plain", parse_type("string"), "v") == "plain"
    assert encode(12, parse_type("string"), "v") == "12"
    assert encode("12", parse_type("integer"), "v") == "12"
    assert encode(3.0, parse_type("integer"), "v") == "3"  # a JSON number truncates, as Coze's conversion
    assert encode(True, parse_type("boolean"), "v") == "true"
    assert encode({"b": 1, "a": [1, "x"]}, parse_type("object"), "v") == '{"b":1,"a":[1,"x"]}'
    assert encode(["1", 2], parse_type("list<integer>"), "v") == "[1,2]"
    with pytest.raises(ValueError, match="is not integer"):
        encode("abc", parse_type("integer"), "v")


# --- the registry ------------------------------------------------------------------------------------------
async def test_bots_and_apps_live_in_a_space(store: Store) -> None:
    registry = Registry(store)
    bot = await registry.create(BOT, "helper")
    assert bot.id.isdigit() and bot.space_id == (await store.ensure_space()).id
    app = await registry.create(APP, "shop", owner_id="shop-1", space_id="77")
    assert (app.id, app.space_id, app.name) == ("shop-1", "77", "shop")
    assert (await store.get_space("77")) is not None  # named, hence created (as workflow import does)
    assert await registry.find(APP, "shop-1") == app and await registry.find(BOT, "shop-1") is None
    for kind, owner_id, name, reason in ((APP, "shop-1", "again", "already exists"),
                                         (BOT, "has space", "x", "letters, digits"),
                                         (BOT, "1" * 33, "x", "letters, digits"), (BOT, None, " ", "name is")):
        with pytest.raises(BadRequest, match=reason):
            await registry.create(kind, name, owner_id=owner_id)
    with pytest.raises(BadRequest, match="a space id is 1 to 32"):
        await registry.create(BOT, "x", space_id="7" * 33)
    assert [b.id for b in await registry.list(BOT)] == [bot.id]


async def test_who_may_name_a_bot_or_app(store: Store) -> None:
    registry = Registry(store)
    await registry.create(BOT, "helper", owner_id="b1", space_id="s1")
    assert await require_owner(registry, BOT, " b1 ") == "b1"
    assert await require_owner(registry, BOT, "b1", token("s1")) == "b1"
    for owner_id, caller in (("b1", token("s2")), ("nope", ANY_SPACE)):
        with pytest.raises(NotFound, match=f"bot {owner_id} does not exist"):
            await require_owner(registry, BOT, owner_id, caller)
    # A run request is refused with 4000 naming the id, whether unknown or of a space the token cannot use.
    await run_owner(registry, token("s1"), "b1", None)
    for bot_id, app_id, caller, named in (("b1", None, token("s2"), "bot_id b1"),
                                          (None, "a9", ANY_SPACE, "app_id a9")):
        with pytest.raises(BadRequest) as refused:
            await run_owner(registry, caller, bot_id, app_id)
        assert refused.value.code == 4000 and named in refused.value.message


async def test_an_imported_workflows_app_is_of_its_space(store: Store) -> None:
    created, new = await ensure_app(store, "a7", (await store.ensure_space("s1")).id)
    assert new and (created.id, created.space_id, created.name) == ("a7", "s1", "a7")
    assert await ensure_app(store, "a7", "s1") == (created, False)
    with pytest.raises(BadRequest, match="belongs to space s1"):
        await ensure_app(store, "a7", (await store.ensure_space("s2")).id)


# --- declarations ------------------------------------------------------------------------------------------
async def test_declare_and_list(service: VariableService) -> None:
    await service.declare(BOT, "b1", "nick", "string", "Ann")
    await service.declare(APP, "a1", "visits", "integer", "0", "app")
    declared = await service.declare(APP, "a1", "tags", "array<string>", '[ "x" ]', "user")
    assert (declared.type, declared.default, declared.scope) == ("list<string>", '["x"]', "user")
    assert [(d.name, d.scope, d.type, d.default) for d in await service.declarations(APP, "a1")] == [
        ("visits", "app", "integer", "0"), ("tags", "user", "list<string>", '["x"]')]
    changed = await service.declare(BOT, "b1", "nick", "string", "Bob")
    assert [(d.name, d.default) for d in await service.declarations(BOT, "b1")] == [("nick", "Bob")]
    assert changed.created_at <= changed.updated_at


@pytest.mark.parametrize(("kind", "name", "type_text", "default", "scope", "reason"), [
    (BOT, "nick", "string", None, "app", "user variables only"),
    (APP, "nick", "string", None, "everyone", "scope is app or user"),
    (APP, "1st", "string", None, None, "starting with a letter"),
    (APP, "sys_uuid", "string", None, None, "system variables"),
    (APP, "n", "integer", "3.5", None, "'3.5' is not of type integer"),
    (APP, "n", "list<integer>", '[1,"x"]', None, "field value.1 is not integer"),
    (APP, "n", "object", "[]", None, "is not of type object"),
    (APP, "n", "text", None, None, "unknown variable type"),
])
async def test_declarations_refused(service: VariableService, kind: str, name: str, type_text: str,
                                    default: str | None, scope: str | None, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        await service.declare(kind, "b1" if kind == BOT else "a1", name, type_text, default, scope)


async def test_a_variables_type_stays_once_it_holds_values(service: VariableService) -> None:
    with pytest.raises(NotFound, match="bot b9 does not exist"):
        await service.declare(BOT, "b9", "nick", "string")
    await service.declare(BOT, "b1", "level", "string")
    await service.declare(BOT, "b1", "level", "integer", "1")  # nothing stored yet: the type may change
    variables = await service.for_run(run(bot="b1", uid="ann"))
    await variables.assign(USER_SOURCE, "level", 5)
    with pytest.raises(BadRequest, match="1 stored value"):
        await service.declare(BOT, "b1", "level", "string")
    await service.declare(BOT, "b1", "level", "integer", "2")  # the default may
    assert (await service.for_run(run(bot="b1", uid="bob")))[(USER_SOURCE, "level")] == 2


# --- a run's variables -------------------------------------------------------------------------------------
async def test_user_variables_are_per_connector_and_user(service: VariableService) -> None:
    await service.declare(BOT, "b1", "nick", "string", "stranger")
    ann = await service.for_run(run(bot="b1", uid="ann"))
    assert ann[(USER_SOURCE, "nick")] == "stranger"
    await ann.assign(USER_SOURCE, "nick", "Ann")
    assert ann[(USER_SOURCE, "nick")] == "Ann"  # the rest of the run sees the write at once
    assert (await service.for_run(run(bot="b1", uid="ann")))[(USER_SOURCE, "nick")] == "Ann"  # durable
    for other in (run(bot="b1", uid="bob"), run(bot="b1", uid="ann", connector="999"), run(bot="b1")):
        assert (await service.for_run(other))[(USER_SOURCE, "nick")] == "stranger"
    anonymous = await service.for_run(run(bot="b1"))
    await anonymous.assign(USER_SOURCE, "nick", "nobody")
    assert (await service.for_run(run(bot="b1")))[(USER_SOURCE, "nick")] == "nobody"
    assert (await service.for_run(run(bot="b1", uid="ann")))[(USER_SOURCE, "nick")] == "Ann"


async def test_app_variables_are_one_per_app(service: VariableService, store: Store) -> None:
    await service.declare(APP, "a1", "visits", "integer", "0", "app")
    await service.declare(APP, "a1", "cart", "list<string>", "", "user")
    await Registry(store).create(APP, "other", owner_id="a2")
    await service.declare(APP, "a2", "visits", "integer", "100", "app")
    first = await service.for_run(run(app="a1", uid="ann"))
    await first.assign(APP_SOURCE, "visits", first[(APP_SOURCE, "visits")] + 1)
    await first.assign(USER_SOURCE, "cart", ["tea"])
    second = await service.for_run(run(app="a1", uid="bob", connector="999"))
    assert second[(APP_SOURCE, "visits")] == 1  # everyone's, whatever the connector or user
    assert second[(USER_SOURCE, "cart")] is None and first[(USER_SOURCE, "cart")] == ["tea"]
    assert (await service.for_run(run(app="a2")))[(APP_SOURCE, "visits")] == 100
    assert dict(second) == {(APP_SOURCE, "visits"): 1, (USER_SOURCE, "cart"): None,
                            **{key: second[key] for key in second if key[0] == SYSTEM_SOURCE}}


async def test_what_a_run_may_not_read_or_write(service: VariableService) -> None:
    await service.declare(APP, "a1", "visits", "integer", "0", "app")
    await service.declare(APP, "a1", "nick", "string")
    variables = await service.for_run(run(app="a1"))
    for key, reason in (((APP_SOURCE, "missing"), "variable missing is not declared by the app a1 "
                                                   r"\(declare it: knotflow variable declare --app a1 --name "
                                                   "missing --type T --scope app"),
                        ((USER_SOURCE, "visits"), "has the scope app, but global_variable_user names variables "
                                                  "of the scope user"),
                        ((APP_SOURCE, ""), "names none"),
                        ((SYSTEM_SOURCE, "sys_nothing"), "system variable 'sys_nothing' does not exist")):
        with pytest.raises(VariableError, match=reason) as error:
            _ = variables[key]
        assert error.value.internal_code == 777777764
    for source, name, value, reason in ((SYSTEM_SOURCE, "sys_uuid", "x", "read-only"),
                                        (APP_SOURCE, "visits", "many", "is integer: field visits is not integer"),
                                        (APP_SOURCE, "nick", "x", "scope user"),
                                        (APP_SOURCE, "nope", 1, "not declared"),
                                        (APP_SOURCE, "visits", None, "")):
        if value is None:
            await variables.assign(source, name, 0)  # 0 is a value, not a missing one
            continue
        with pytest.raises(VariableError, match=reason):
            await variables.assign(source, name, value)
    with pytest.raises(VariableError, match="at most 1048576 bytes"):
        await variables.assign(USER_SOURCE, "nick", "x" * ((1 << 20) + 1))


async def test_without_a_bot_or_app_variables_read_null(service: VariableService) -> None:
    variables = await service.for_run(run(uid="ann"))
    assert variables.get((USER_SOURCE, "nick")) is None and variables.get((APP_SOURCE, "x")) is None
    assert variables[(SYSTEM_SOURCE, "sys_user_id")] == "ann"
    assert variables[(SYSTEM_SOURCE, "sys_uuid")] is None
    with pytest.raises(VariableError, match="needs the run's bot_id or app_id"):
        await variables.assign(USER_SOURCE, "nick", "Ann")


async def test_system_variables(service: VariableService) -> None:
    variables = await service.for_run(run(bot="b1", uid="ann", connector="999", execute_id="55"), "c1")
    values = {name: variables[(SYSTEM_SOURCE, name)] for source, name in variables if source == SYSTEM_SOURCE}
    assert base64.b64decode(values.pop("sys_uuid")) == b"1|b1|ann|999"  # Coze Studio's
    now = values.pop("sys_current_time")
    assert now.endswith("+00:00") and now[:4].isdigit()
    assert isinstance(values.pop("sys_timestamp"), int)
    assert values == {"sys_user_id": "ann", "sys_connector_id": "999", "sys_bot_id": "b1", "sys_app_id": "",
                      "sys_conversation_id": "c1", "sys_workflow_id": "7", "sys_execute_id": "55"}
    in_app = await service.for_run(run(app="a1", uid="ann"))
    assert base64.b64decode(in_app[(SYSTEM_SOURCE, "sys_uuid")]) == b"2|a1|ann|1024"


async def test_a_stored_value_its_type_cannot_read_fails_the_read(service: VariableService, store: Store) -> None:
    await service.declare(BOT, "b1", "n", "integer")
    await store.set_variable_values(BOT, "b1", "1024", "", {"n": "not a number"}, 0)
    variables: RunVariables = await service.for_run(run(bot="b1"))
    with pytest.raises(VariableError, match="'not a number' is not of type integer"):
        _ = variables[(USER_SOURCE, "n")]


# --- the open API's user values ----------------------------------------------------------------------------
async def test_user_values_for_the_open_api(service: VariableService) -> None:
    await service.declare(BOT, "b1", "nick", "string", "stranger")
    await service.declare(BOT, "b1", "age", "integer")
    await service.set_user_values(ANY_SPACE, BOT, "b1", "1024", "ann", [("age", "30")])
    values = await service.user_values(token("s1"), BOT, "b1", "1024", "ann", [])
    assert [(v.name, v.value, v.created_at == 0) for v in values] == [("nick", "stranger", True),
                                                                       ("age", "30", False)]
    assert [v.name for v in await service.user_values(ANY_SPACE, BOT, "b1", "1024", "ann", ["age", "zz", "age"])] \
        == ["age"]
    assert (await service.user_values(ANY_SPACE, BOT, "b1", "1024", "bob", ["age"]))[0].value == ""
    assert (await service.for_run(run(bot="b1", uid="ann")))[(USER_SOURCE, "age")] == 30
    for items, reason in (([], "at least one"), ([("zz", "1")], "'zz' is no user variable"),
                          ([("nick", "x"), ("age", "old")], "'old' is not of type integer")):
        with pytest.raises(BadRequest, match=reason):
            await service.set_user_values(ANY_SPACE, BOT, "b1", "1024", "ann", items)
    assert (await service.user_values(ANY_SPACE, BOT, "b1", "1024", "ann", ["nick"]))[0].value == "stranger"
    with pytest.raises(NotFound):
        await service.user_values(token("s2"), BOT, "b1", "1024", "ann", [])


# --- publish checks ----------------------------------------------------------------------------------------
def test_assignments_must_have_the_declared_types() -> None:
    node = c.assign("140000", (c.variable("app", "v1"), c.literal("1")),
                    (c.variable("app", "tags", "list", schema={"type": "integer"}), c.literal("[1]", "list")))
    canvas = c.canvas([c.start(), node, c.end_return()], [c.edge("100001", "140000"), c.edge("140000", "900001")])
    strings = TypeInfo(LIST, element=TypeInfo("string"))
    check_assignments(canvas, {"v1": TypeInfo("string"), "tags": TypeInfo(LIST, element=TypeInfo("integer"))}, "app a")
    check_assignments(canvas, {}, "app a")  # undeclared names are the run's to refuse
    with pytest.raises(CanvasError, match=r"param \[tags\] is list<integer> but app a declares tags as "
                                          "list<string>: array element type mismatch"):
        check_assignments(canvas, {"tags": strings}, "app a")
    with pytest.raises(CanvasError, match=r"'Assign' \(140000\): param \[v1\] is string but app a declares v1 as "
                                          "integer: type mismatch"):
        check_assignments(canvas, {"v1": TypeInfo("integer")}, "app a")


async def test_an_apps_workflow_publishes_with_the_types_its_app_declares(service: VariableService,
                                                                         store: Store) -> None:
    from knotflow.service import catalog

    await service.declare(APP, "a1", "visits", "integer", "0", "app")
    node = c.assign("140000", (c.variable("app", "visits"), c.literal("1")))
    canvas = c.canvas([c.start(), node, c.end_return()], [c.edge("100001", "140000"), c.edge("140000", "900001")])
    with pytest.raises(catalog.PublishRefused, match=r"param \[visits\] is string but app a1 declares visits as "
                                                     "integer: type mismatch") as refused:
        await catalog.import_workflow(store, canvas, app_id="a1", space_id="s1", publish=True)
    with pytest.raises(CanvasError, match="type mismatch"):
        await catalog.publish(store, refused.value.workflow.id)
    node["data"]["inputs"]["inputParameters"][0]["left"]["type"] = "integer"
    workflow, version = await catalog.import_workflow(store, canvas, workflow_id=refused.value.workflow.id,
                                                      publish=True)
    assert version is not None and workflow.app_id == "a1"
    # A bot's workflow learns its bot only when it runs: nothing to check at publish.
    _, version = await catalog.import_workflow(store, c.canvas([c.start(), c.assign(
        "140000", (c.variable("user", "visits"), c.literal("x"))), c.end_return()], [
        c.edge("100001", "140000"), c.edge("140000", "900001")]), publish=True)
    assert version is not None


async def test_a_bot_or_app_has_at_most_100_variables(service: VariableService) -> None:
    for index in range(100):
        await service.declare(APP, "a1", f"v{index}", "string")
    await service.declare(APP, "a1", "v0", "string", "again")  # declaring again is no new variable
    with pytest.raises(BadRequest, match="already has 100 variables"):
        await service.declare(APP, "a1", "v100", "string")
    with pytest.raises(BadRequest, match="at most 1048576 bytes"):
        await service.set_user_values(ANY_SPACE, APP, "a1", "1024", "ann", [("v1", "x" * ((1 << 20) + 1))])
