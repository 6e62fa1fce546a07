"""The platform nodes through the open API: a published workflow's database nodes run as the caller (`bot_id`,
`ext.user_id`, connector), and a chatflow's message nodes write into the chat's own conversation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cozepy import Coze, CozeAPIError, Message, TokenAuth

from knotflow.service import catalog
from knotflow.service.databases import DatabaseService
from knotflow.service.owners import Registry
from knotflow.store.repository import Store
from tests import canvases as c
from tests.api.conftest import LiveServer
from tests.node_types import TEST_NODE_TYPES
from tests.nodes.test_database_nodes import V1, definition, fields

BOT, APP, OTHER_BOT = "7400000000000000001", "7400000000000000002", "7400000000000000003"
TABLE_ID = "7400000000000000100"


def notes_canvas() -> dict[str, Any]:
    """Insert the input as a note, then read every note the caller may see."""
    row = [{"name": "v1", "type": "string"}]
    info = [{"databaseInfoID": TABLE_ID}]
    write = c.node("150001", "46", "Write", outputs=[{"name": "outputList", "type": "list", "schema": {
        "type": "object", "schema": []}}, {"name": "rowNum", "type": "integer"}],
        inputs={"databaseInfoList": info, "insertParam": {"fieldInfo": fields(f1783122026497=c.ref("100001", "note"))}})
    read = c.node("150002", "43", "Read", outputs=[{"name": "outputList", "type": "list", "schema": {
        "type": "object", "schema": row}}, {"name": "rowNum", "type": "integer"}],
        inputs={"databaseInfoList": info, "selectParam": {"limit": 10, "orderByList": [{"fieldID": int(V1),
                                                                                         "isAsc": True}]}})
    end = c.end_return(notes=c.ref("150002", "outputList", "list"))
    return c.canvas([c.start(("note", "string")), write, read, end],
                    [c.edge("100001", "150001"), c.edge("150001", "150002"), c.edge("150002", "900001")])


def test_database_nodes_run_as_the_caller(live: LiveServer, token: str) -> None:
    async def define(store: Store) -> None:
        registry = Registry(store)
        await registry.create("bot", "notes bot", owner_id=BOT)
        await registry.create("bot", "another bot", owner_id=OTHER_BOT)
        await DatabaseService(store, registry).define("bot", BOT, definition(TABLE_ID, "notes"))

    live.call(define)
    workflow_id = live.publish(notes_canvas())
    coze = Coze(auth=TokenAuth(token), base_url=live.base_url)

    def notes(note: str, user: str) -> list[str]:
        run = coze.workflows.runs.create(workflow_id=workflow_id, parameters={"note": note}, bot_id=BOT,
                                         ext={"user_id": user})
        return [row["v1"] for row in json.loads(run.data)["notes"]]

    assert notes("a1", "ann") == ["a1"]
    assert notes("b1", "bob") == ["b1"]
    assert notes("a2", "ann") == ["a1", "a2"]
    with pytest.raises(CozeAPIError) as error:
        coze.workflows.runs.create(workflow_id=workflow_id, parameters={"note": "x"}, bot_id=OTHER_BOT)
    assert f"belongs to bot {BOT}" in str(error.value)
    with pytest.raises(CozeAPIError) as error:  # a bot that does not exist: refused before the run
        coze.workflows.runs.create(workflow_id=workflow_id, parameters={"note": "x"}, bot_id="7400000000000000009")
    assert error.value.code == 4000 and "bot 7400000000000000009 does not exist" in str(error.value)


def test_message_nodes_write_into_the_chats_own_conversation(live: LiveServer, token: str) -> None:
    create = c.node("155000", "55", "Note", inputs={"inputParameters": [
        c.param("conversationName", c.ref("100001", "CONVERSATION_NAME")),
        c.param("role", c.literal("assistant")), c.param("content", c.literal("noted"))]},
        outputs=[{"name": "isSuccess", "type": "boolean"}, {"name": "message", "type": "object", "schema": [
            {"name": "messageId", "type": "string"}]}])
    canvas = c.canvas([c.start({"name": "USER_INPUT", "type": "string"}, {"name": "CONVERSATION_NAME",
                                                                         "type": "string"}),
                       create, c.end_answer("done: {{ok}}", ok=c.ref("155000", "isSuccess", "boolean"))],
                      [c.edge("100001", "155000"), c.edge("155000", "900001")])

    async def publish(store: Store) -> str:
        workflow, _ = await catalog.import_workflow(store, canvas, publish=True, chatflow=True, app_id=APP,
                                                    node_types=TEST_NODE_TYPES)
        return workflow.id

    workflow_id = str(live.call(publish))
    coze = Coze(auth=TokenAuth(token), base_url=live.base_url)
    events = list(coze.workflows.chat.stream(workflow_id=workflow_id, app_id=APP,
                                             additional_messages=[Message.build_user_question_text("hello")],
                                             parameters={"CONVERSATION_NAME": "Default"}))
    chat = events[-1].chat
    assert chat.status == "completed"
    listed = coze.conversations.messages.list(conversation_id=chat.conversation_id, order="asc").items
    assert {(m.role, m.content) for m in listed} == {("user", "hello"), ("assistant", "noted"),
                                                     ("assistant", "done: true")}
    assert {m.chat_id for m in listed} == {chat.id}  # the node's message belongs to the chat's round
