"""Variables end to end with cozepy against the live server: `variables.retrieve` / `variables.update` (the calls
of cozepy's examples `variable_retrieve.py` and `variable_update.py`), workflows that write variables with
Variable assign and read them through references, isolation across connectors and users, app variables that
outlast the run, and the errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from cozepy import Coze, CozeAPIError, Message, TokenAuth, VariableValue

from knotflow.service.owners import Registry
from knotflow.service.variables import VariableService
from knotflow.store.repository import Store
from tests import canvases as c
from tests.api.conftest import LiveServer

ASSIGN = "140000"


@pytest.fixture()
def coze(live: LiveServer, token: str) -> Coze:
    return Coze(auth=TokenAuth(token), base_url=live.base_url)


def declare(live: LiveServer, kind: str, owner_id: str, name: str, type_text: str, default: str | None = None,
            scope: str | None = None) -> None:
    async def work(store: Store) -> None:
        await VariableService(store, Registry(store)).declare(kind, owner_id, name, type_text, default, scope)

    live.call(work)


def writer(*pairs: tuple[dict[str, Any], dict[str, Any]], **outputs: dict[str, Any]) -> dict[str, Any]:
    """Start(input) → Variable assign(pairs) → End(outputs)."""
    return c.canvas([c.start(("input", "string")), c.assign(ASSIGN, *pairs), c.end_return(**outputs)],
                    [c.edge("100001", ASSIGN), c.edge(ASSIGN, "900001")])


def reader(**outputs: dict[str, Any]) -> dict[str, Any]:
    return c.canvas([c.start(), c.end_return(**outputs)], [c.edge("100001", "900001")])


def output(run: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run.data)
    return data


# --- cozepy's variables calls --------------------------------------------------------------------------------
def test_cozepy_examples_variable_update_and_retrieve(live: LiveServer, coze: Coze) -> None:
    bot_id = live.bot()
    declare(live, "bot", bot_id, "name", "string", "nobody")
    declare(live, "bot", bot_id, "user_like", "string")
    user_id = "user id"
    coze.variables.update(bot_id=bot_id, connector_uid=user_id, data=[VariableValue(keyword="user_like",
                                                                                    value="coze")])
    res = coze.variables.retrieve(bot_id=bot_id, connector_uid=user_id, keywords=["name", "user_like"])
    assert res.response.logid
    items = list(res)
    assert [(v.keyword, v.value) for v in items] == [("name", "nobody"), ("user_like", "coze")]
    assert items[0].create_time == items[0].update_time == 0  # the default: never set
    assert items[1].create_time > 0 and items[1].update_time >= items[1].create_time


def test_user_variables_are_isolated_per_connector_and_user(live: LiveServer, coze: Coze) -> None:
    app_id = live.app()
    declare(live, "app", app_id, "lang", "string", "en")
    declare(live, "app", app_id, "visits", "integer", "0", "app")  # app variables are not the API's
    coze.variables.update(app_id=app_id, connector_uid="ann", data=[VariableValue(keyword="lang", value="fr")])
    coze.variables.update(app_id=app_id, connector_uid="ann", connector_id="999",
                          data=[VariableValue(keyword="lang", value="de")])

    def lang(uid: str, connector_id: str | None = None) -> str:
        found = coze.variables.retrieve(app_id=app_id, connector_uid=uid, keywords=[], connector_id=connector_id)
        return {v.keyword: v.value for v in found}["lang"]

    assert (lang("ann"), lang("ann", "999"), lang("bob"), lang("bob", "999")) == ("fr", "de", "en", "en")
    assert [v.keyword for v in coze.variables.retrieve(app_id=app_id, connector_uid="ann", keywords=[])] == ["lang"]


def test_variable_calls_refused(live: LiveServer, coze: Coze, http: httpx.Client) -> None:
    bot_id = live.bot()
    declare(live, "bot", bot_id, "age", "integer")
    theirs = live.bot(space=live.space("7900000000000000001"))
    cases: list[tuple[Any, int, str]] = [
        (lambda: coze.variables.retrieve(connector_uid="u", keywords=[]), 4000, "either app_id or bot_id"),
        (lambda: coze.variables.retrieve(bot_id=bot_id, app_id=bot_id, connector_uid="u", keywords=[]), 4000,
         "at the same time"),
        (lambda: coze.variables.retrieve(bot_id="7900000000000000404", connector_uid="u", keywords=[]), 4200,
         "bot 7900000000000000404 does not exist"),
        (lambda: coze.variables.update(bot_id=bot_id, connector_uid="u", data=[]), 4000, "at least one"),
        (lambda: coze.variables.update(bot_id=bot_id, connector_uid="u",
                                       data=[VariableValue(keyword="name", value="x")]), 4000,
         "'name' is no user variable"),
        (lambda: coze.variables.update(bot_id=bot_id, connector_uid="u",
                                       data=[VariableValue(keyword="age", value="old")]), 4000,
         "'old' is not of type integer"),
    ]
    mine_only = Coze(auth=TokenAuth(live.token(spaces=[live.call(_first_space)])), base_url=live.base_url)
    cases.append((lambda: mine_only.variables.retrieve(bot_id=theirs, connector_uid="u", keywords=[]), 4200,
                  f"bot {theirs} does not exist"))
    reading = Coze(auth=TokenAuth(live.token(permissions=("read",))), base_url=live.base_url)
    cases.append((lambda: reading.variables.update(bot_id=bot_id, connector_uid="u",
                                                   data=[VariableValue(keyword="age", value="1")]), 4101,
                  "'run' permission"))
    for call, code, reason in cases:
        with pytest.raises(CozeAPIError) as error:
            call()
        assert (error.value.code, reason in (error.value.msg or "")) == (code, True), error.value
    assert [v.value for v in reading.variables.retrieve(bot_id=bot_id, connector_uid="u", keywords=["age"])] == [""]
    assert http.put("/v1/variables", json={"bot_id": bot_id, "data": [{"keyword": "age"}]}).json()["code"] == 4000


async def _first_space(store: Store) -> str:
    return str((await store.ensure_space()).id)


# --- workflows -----------------------------------------------------------------------------------------------
def test_a_workflow_writes_a_users_variables(live: LiveServer, coze: Coze, http: httpx.Client) -> None:
    bot_id = live.bot()
    declare(live, "bot", bot_id, "nick", "string", "stranger")
    workflow_id = live.publish(writer((c.variable("user", "nick"), c.ref("100001", "input")),
                                      nick=c.variable("user", "nick"), user=c.variable("system", "sys_user_id")))
    run = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"input": "Ann"}, bot_id=bot_id,
                                     ext={"user_id": "ann"})
    assert output(run) == {"nick": "Ann", "user": "ann"}
    stored = coze.variables.retrieve(bot_id=bot_id, connector_uid="ann", keywords=["nick"])
    assert [v.value for v in stored] == ["Ann"]
    reading = live.publish(reader(nick=c.variable("user", "nick")))
    for params, expected in (({"bot_id": bot_id, "ext": {"user_id": "ann"}}, "Ann"),
                             ({"bot_id": bot_id, "ext": {"user_id": "bob"}}, "stranger"),
                             ({}, None)):  # reading needs no bot: null, as Studio's test runs
        assert output(coze.workflows.runs.create(workflow_id=reading, **params)) == {"nick": expected}
    # Another connector (cozepy's runs.create cannot name one) is another user.
    other = http.post("/v1/workflow/run", json={"workflow_id": reading, "bot_id": bot_id, "connector_id": "999",
                                                "ext": {"user_id": "ann"}}).json()
    assert json.loads(other["data"]) == {"nick": "stranger"}
    coze.variables.update(bot_id=bot_id, connector_uid="bob", data=[VariableValue(keyword="nick", value="Bob")])
    assert output(coze.workflows.runs.create(workflow_id=reading, bot_id=bot_id, ext={"user_id": "bob"})) == {
        "nick": "Bob"}
    # Writing needs the bot (or app) whose data it is: refused before anything runs.
    with pytest.raises(CozeAPIError) as error:
        coze.workflows.runs.create(workflow_id=workflow_id, parameters={"input": "x"})
    assert error.value.code == 4000 and "pass bot_id or app_id" in error.value.msg


def test_app_variables_outlast_the_run_and_are_the_apps(live: LiveServer, coze: Coze, http: httpx.Client) -> None:
    app_id = "7900000000000000100"
    workflow_id = live.publish(writer((c.variable("app", "motto", "string"), c.ref("100001", "input")),
                                      motto=c.variable("app", "motto")), app_id=app_id)  # creates the app
    declare(live, "app", app_id, "motto", "string", "none yet", "app")
    first = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"input": "carpe diem"}, app_id=app_id,
                                       ext={"user_id": "ann"})
    assert output(first) == {"motto": "carpe diem"}
    reading = live.publish(reader(motto=c.variable("app", "motto")), app_id=app_id)
    body = http.post("/v1/workflow/run", json={"workflow_id": reading, "app_id": app_id, "connector_id": "999",
                                               "ext": {"user_id": "bob"}}).json()
    assert json.loads(body["data"]) == {"motto": "carpe diem"}  # whoever runs the app


def test_reading_an_undeclared_variable_fails_the_run(live: LiveServer, coze: Coze) -> None:
    bot_id = live.bot()
    workflow_id = live.publish(reader(nick=c.variable("user", "nickname")))
    events = list(coze.workflows.runs.stream(workflow_id=workflow_id, bot_id=bot_id))
    error = next(e.error for e in events if e.event == "Error")
    assert error is not None and f"variable nickname is not declared by the bot {bot_id}" in error.error_message


def test_a_chat_reads_its_conversation_id(live: LiveServer, coze: Coze) -> None:
    app_id = live.app()
    canvas = c.canvas([c.start({"name": "USER_INPUT", "type": "string"}),
                       c.end_answer("{{conversation}}", conversation=c.variable("system", "sys_conversation_id"))],
                      [c.edge("100001", "900001")])
    workflow_id = live.publish(canvas, chatflow=True, app_id=app_id)
    events = list(coze.workflows.chat.stream(workflow_id=workflow_id, app_id=app_id,
                                             additional_messages=[Message.build_user_question_text("hi")]))
    chat = events[-1].chat
    completed = [e.message.content for e in events if e.event == "conversation.message.completed"]
    assert completed == [chat.conversation_id]


def test_a_resumed_run_reads_the_variables_anew(live: LiveServer, coze: Coze) -> None:
    from tests.api.test_resume import form, until_interrupt

    bot_id = live.bot()
    declare(live, "bot", bot_id, "nick", "string", "stranger")
    canvas = c.canvas([c.start(), form("301", "Where"),
                       c.end_return(nick=c.variable("user", "nick"), city=c.ref("301", "city"))],
                      [c.edge("100001", "301"), c.edge("301", "900001")])
    workflow_id = live.publish(canvas)
    _, interrupt = until_interrupt(coze.workflows.runs.stream(workflow_id=workflow_id, bot_id=bot_id,
                                                              ext={"user_id": "ann"}))
    coze.variables.update(bot_id=bot_id, connector_uid="ann", data=[VariableValue(keyword="nick", value="Ann")])
    events = list(coze.workflows.runs.resume(workflow_id=workflow_id, event_id=interrupt.interrupt_data.event_id,
                                             resume_data=json.dumps({"city": "Paris"}), interrupt_type=5))
    ended = [e.message.content for e in events if e.event == "Message" and e.message.node_title == "End"]
    assert [json.loads(content) for content in ended] == [{"nick": "Ann", "city": "Paris"}]


def test_a_sub_workflow_sees_what_its_parent_wrote(live: LiveServer, coze: Coze) -> None:
    from tests.nodes.test_composites import sub_node

    bot_id = live.bot()
    declare(live, "bot", bot_id, "nick", "string", "stranger")
    child = live.publish(c.canvas([c.start(), c.end_return(output=c.variable("user", "nick"))],
                                  [c.edge("100001", "900001")]))
    parent = c.canvas([c.start(("input", "string")), c.assign(ASSIGN, (c.variable("user", "nick"),
                                                                      c.ref("100001", "input"))),
                       sub_node("190000", child), c.end_return(out=c.ref("190000", "output"))],
                      [c.edge("100001", ASSIGN), c.edge(ASSIGN, "190000"), c.edge("190000", "900001")])
    workflow_id = live.publish(parent)
    run = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"input": "Ann"}, bot_id=bot_id,
                                     ext={"user_id": "ann"})
    assert output(run) == {"out": "Ann"}
