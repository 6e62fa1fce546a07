"""The conversation and message nodes on the real engine and knotflow's conversation services (SQLite and, when
configured, PostgreSQL): Coze Studio's multi-run scenarios (TestConversationNodes, create_assistant_message x2),
a bot's chat ("Default" only), and what each node refuses."""

from __future__ import annotations

from typing import Any

import pytest

from knotflow.contract import RunServices
from knotflow.engine.runner import Execution
from knotflow.errors import NodeError
from knotflow.files.links import FileLinks
from knotflow.ids import new_id
from knotflow.nodes.start import StartNode
from knotflow.service.conversations import RunConversation, RunConversations
from knotflow.service.message_content import MessageContent
from knotflow.store.records import ChatMessage
from knotflow.store.repository import ConversationScope, Store
from tests import canvases as c
from tests.node_types import compile_canvas
from tests.nodes.helpers import conformance_canvas
from tests.store.backends import backend, database_url, store

__all__ = ["backend", "database_url", "store"]

APP = "7100000000000000001"
BOT = "7200000000000000001"


def services(store: Store, *, app: str = APP, bot: str = "", chat: RunConversation | None = None) -> RunServices:
    links = FileLinks("http://127.0.0.1:1", b"secret", 3600)
    return RunServices(conversations=RunConversations(store, MessageContent(store, links), space_id="1",
                                                      app_id=app, bot_id=bot, connector_id="1024", chat=chat))


async def run(canvas: dict[str, Any], run_services: RunServices, **params: Any) -> dict[str, Any]:
    plan = compile_canvas(canvas)
    assert isinstance(plan.entry, StartNode)
    result = await Execution(plan, services=run_services).run(plan.entry.prepare(params))
    return result.output


@pytest.fixture()
async def space(store: Store) -> Store:
    await store.ensure_space("1")
    return store


async def test_studio_update_and_delete_sequence(space: Store) -> None:
    """TestConversationNodes: rename v1 → v2, again (v2 taken), then delete a template (refused), v1, v2."""
    update = conformance_canvas("conversation_manager/update_dynamic_conversation.json")
    delete = conformance_canvas("conversation_manager/delete_conversation.json")
    first = (await run(update, services(space), input="v1", new_name="v2"))["obj"]
    assert first["isSuccess"] is True and first["isExisted"] is False and first["conversationId"].isdigit()
    second = (await run(update, services(space), input="v1", new_name="v2"))["obj"]
    assert second == {"isSuccess": False, "isExisted": True, "conversationId": first["conversationId"]}
    await space.add_template(APP, "template_v1")
    with pytest.raises(NodeError) as error:
        await run(delete, services(space), input="template_v1")
    assert error.value.internal_code == 720702250
    assert "Only conversation created through nodes are allowed to be modified or deleted" in error.value.message
    assert await run(delete, services(space), input="v1") == {"output": True}
    assert await run(delete, services(space), input="v2") == {"output": True}
    with pytest.raises(NodeError) as error:
        await run(delete, services(space), input="v2")
    assert error.value.internal_code == 720702201
    third = (await run(update, services(space), input="v1", new_name="v2"))["obj"]
    assert third["isSuccess"] is True and third["conversationId"] not in ("0", first["conversationId"])
    # The deleted names' conversations and messages stay; only the names went.
    assert await space.get_conversation(first["conversationId"]) is not None


async def test_assistant_messages_join_the_latest_round_or_open_one(space: Store) -> None:
    """create_assistant_message run twice: the first assistant message opens a round (none yet), the second
    joins the latest one."""
    canvas = conformance_canvas("message/create_assistant_message.json")
    outputs = [await run(canvas, services(space), CONVERSATION_NAME="support") for _ in range(2)]
    assert all(o["output"] is True and o["mID"].isdigit() for o in outputs)
    first, second = [await space.get_message(o["mID"]) for o in outputs]
    assert first is not None and second is not None
    assert first.role == second.role == "assistant" and first.chat_id == second.chat_id


async def test_a_bot_uses_only_its_chats_default_conversation(space: Store) -> None:
    conversation = await space.create_conversation("1", "1024", bot_id=BOT)
    chat = RunConversation(conversation.id, conversation.section_id, new_id())
    canvas = conformance_canvas("message/agent_message.json")
    outside_chat = await run(canvas, services(space, app="", bot=BOT), CONVERSATION_NAME="Default")
    assert outside_chat == {"create_success": False, "edit_success": False, "delete_success": False}
    in_chat = await run(canvas, services(space, app="", bot=BOT, chat=chat), CONVERSATION_NAME="Default")
    assert in_chat == {"create_success": True, "edit_success": True, "delete_success": True}
    with pytest.raises(NodeError) as error:
        await run(canvas, services(space, app="", bot=BOT, chat=chat), CONVERSATION_NAME="other")
    assert error.value.internal_code == 720712033
    for path in ("conversation_manager/create_conversation.json", "conversation_manager/conversation_list.json"):
        with pytest.raises(NodeError) as error:
            await run(conformance_canvas(path), services(space, app="", bot=BOT), input="x", CONVERSATION_NAME="x")
        assert error.value.internal_code == 702093204


async def test_history_and_clear_in_a_chats_own_conversation(space: Store) -> None:
    """In a chat the history leaves out the chat's own round; a clear moves the rest of the run to a new
    section, which the history then reads."""
    conversation, _ = await space.name_conversation(ConversationScope("1", APP, "1024"), "Default")
    assert conversation is not None
    earlier = new_id()
    await space.add_messages([ChatMessage(id=new_id(), conversation_id=conversation.id, chat_id=earlier, role=r,
                                          type=t, content=x, content_type="text", created_at=1.0 + i)
                              for i, (r, t, x) in enumerate([("user", "question", "hi"),
                                                             ("assistant", "answer", "hello")])])
    round_id = new_id()
    await space.add_messages([ChatMessage(id=new_id(), conversation_id=conversation.id, chat_id=round_id,
                                          role="user", type="question", content="now", content_type="text",
                                          created_at=5.0)])
    chat = RunConversation(conversation.id, conversation.section_id, round_id)
    run_services = services(space, chat=chat)
    svc = run_services.conversations
    assert svc is not None
    history = await svc.history(conversation.id, None)
    assert [(m.role, m.content) for m in history] == [("user", "hi"), ("assistant", "hello")]
    assert await svc.clear(conversation.id)
    assert await svc.history(conversation.id, 3) == []
    message_id = await svc.add_message(conversation.id, "assistant", "in the new section")
    stored = await space.get_message(str(message_id))
    current = await space.get_conversation(conversation.id)
    assert stored is not None and current is not None and stored.section_id == current.section_id
    assert stored.chat_id == round_id  # the chat's round


async def test_message_list_pages(space: Store) -> None:
    svc = services(space).conversations
    assert svc is not None
    conversation_id, existed = await svc.get_or_create("paged")
    assert not existed and (await svc.get_or_create("paged")) == (conversation_id, True)
    ids = [await svc.add_message(conversation_id, "user", str(i)) for i in range(4)]
    canvas = c.canvas([c.start(("name", "string"), ("before", "string"), ("after", "string")),
                       message_list_node(), c.end_return(page=c.ref("137000", "messageList", "list"),
                                                         first=c.ref("137000", "firstId"),
                                                         last=c.ref("137000", "lastId"),
                                                         more=c.ref("137000", "hasMore", "boolean"))],
                      [c.edge("100001", "137000"), c.edge("137000", "900001")])
    newest = await run(canvas, services(space), name="paged", before="", after="")
    assert [m["messageId"] for m in newest["page"]] == ids[::-1] and newest["more"] is False
    older = await run(canvas, services(space), name="paged", before="", after=ids[2])
    assert [m["content"] for m in older["page"]] == ["1", "0"] and older["first"] == ids[1]
    newer = await run(canvas, services(space), name="paged", before=ids[1], after="")
    assert [m["content"] for m in newer["page"]] == ["2", "3"] and newer["last"] == ids[3]
    nothing = await run(canvas, services(space), name="unknown", before="", after="")
    assert nothing == {"page": [], "first": "0", "last": "0", "more": False}
    with pytest.raises(NodeError) as error:
        await run(canvas, services(space), name="paged", before=ids[0], after=ids[1])
    assert error.value.internal_code == 720702001


def message_list_node() -> dict[str, Any]:
    item = [{"name": n, "type": "string"} for n in ("messageId", "role", "contentType", "content")]
    inputs = [c.param("conversationName", c.ref("100001", "name")), c.param("beforeId", c.ref("100001", "before")),
              c.param("afterId", c.ref("100001", "after"))]
    outputs = [{"name": "messageList", "type": "list", "schema": {"type": "object", "schema": item}},
               {"name": "firstId", "type": "string"}, {"name": "lastId", "type": "string"},
               {"name": "hasMore", "type": "boolean"}]
    return c.node("137000", "37", "Messages", inputs={"inputParameters": inputs}, outputs=outputs)


async def test_nodes_need_the_conversation_service() -> None:
    canvas = conformance_canvas("conversation_manager/create_conversation.json")
    with pytest.raises(NodeError) as error:
        await run(canvas, RunServices(), input="x")
    assert "conversations" in error.value.message
