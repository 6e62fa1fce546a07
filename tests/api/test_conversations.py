"""cozepy's conversation and message calls end to end against the live server.

cozepy's own examples (`examples/conversation*.py` in coze-dev/coze-py) are not in its wheel nor in its sdist on
PyPI, and CI reaches only the package registries: `test_cozepy_example_*` make exactly the calls each example
makes, in its order and with its arguments. With KNOTFLOW_COZEPY_EXAMPLES naming a checkout's `examples/`
folder, `test_the_examples_themselves` also runs the unchanged files against the server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cozepy import Coze, CozeAPIError, Message, MessageContentType, MessageRole, TokenAuth

from knotflow.service.owners import create_bot_app
from knotflow.store.records import APP
from tests.api.conftest import LiveServer
from tests.api.test_chat import answer_of, chat, chatflow, history_llm, publish
from tests.api.test_llm_stream import llm_live
from tests.fakes.model_server import FakeModelServer, Reply

__all__ = ["llm_live"]  # the fixture, imported so pytest finds it here

EXAMPLES_ENV = "KNOTFLOW_COZEPY_EXAMPLES"
BOT = "7000000000000000001"


@pytest.fixture()
def coze(live: LiveServer, token: str) -> Coze:
    live.bot(BOT)
    return Coze(auth=TokenAuth(token), base_url=live.base_url)


@pytest.fixture()
def fresh_bot(live: LiveServer) -> Callable[[], str]:
    """Makes a bot no other test uses, so that its conversation list is this test's alone."""
    return live.bot


# --- cozepy's examples, call for call -------------------------------------------------------------------------
def test_cozepy_example_conversation(coze: Coze) -> None:
    conversation = coze.conversations.create()
    assert conversation.id and conversation.meta_data == {} and conversation.last_section_id
    retrieved = coze.conversations.retrieve(conversation_id=conversation.id)
    assert retrieved.id == conversation.id and retrieved.last_section_id == conversation.last_section_id
    message = coze.conversations.messages.create(conversation_id=conversation.id, role=MessageRole.USER,
                                                 content="hi", content_type=MessageContentType.TEXT)
    assert (message.role, message.content, message.content_type, message.type) == ("user", "hi", "text", "question")
    assert message.conversation_id == conversation.id and message.section_id == conversation.last_section_id
    section = coze.conversations.clear(conversation_id=conversation.id)
    assert section.conversation_id == conversation.id and section.id != conversation.last_section_id
    assert coze.conversations.retrieve(conversation_id=conversation.id).last_section_id == section.id


def test_cozepy_example_conversation_list(coze: Coze, fresh_bot: Callable[[], str]) -> None:
    bot = fresh_bot()
    made = [coze.conversations.create(bot_id=bot).id for _ in range(5)]
    conversations = coze.conversations.list(bot_id=bot, page_size=2)
    listed = [conversation.id for conversation in conversations]
    assert listed == made[::-1]  # newest first, every page fetched by page number
    for conversation in conversations:
        assert conversation.created_at and conversation.last_section_id
    pages = [page.items for page in conversations.iter_pages()]
    assert [len(items) for items in pages] == [2, 2, 1]
    assert [c.id for items in pages for c in items] == made[::-1]


def test_cozepy_example_conversation_update(coze: Coze) -> None:
    conversation_id = coze.conversations.create(name="old").id
    updated = coze.conversations.update(conversation_id=conversation_id, name="新的会话名称")
    assert (updated.id, updated.name) == (conversation_id, "新的会话名称")
    assert updated.updated_at is not None and updated.updated_at >= updated.created_at
    assert coze.conversations.retrieve(conversation_id=conversation_id).name == "新的会话名称"


def test_cozepy_example_conversation_delete(coze: Coze) -> None:
    conversation_id = coze.conversations.create(messages=[Message.build_user_question_text("hello")]).id
    resp = coze.conversations.delete(conversation_id=conversation_id)
    assert resp.response.logid
    with pytest.raises(CozeAPIError) as error:
        coze.conversations.retrieve(conversation_id=conversation_id)
    assert error.value.code == 4001
    with pytest.raises(CozeAPIError):
        coze.conversations.messages.list(conversation_id=conversation_id)


def test_cozepy_example_conversation_create(coze: Coze) -> None:
    simple = coze.conversations.create()
    assert simple.name == "" and simple.meta_data == {}
    assert coze.conversations.create(name="我的测试会话").name == "我的测试会话"
    with_bot = coze.conversations.create(bot_id=BOT, name="绑定Bot的会话")
    assert with_bot.name == "绑定Bot的会话" and with_bot.id in {c.id for c in coze.conversations.list(bot_id=BOT)}
    messages = [Message.build_user_question_text("你好，这是一个测试消息"),
                Message.build_assistant_answer("你好！很高兴收到你的消息。")]
    with_messages = coze.conversations.create(messages=messages, name="带初始消息的会话")
    listed = coze.conversations.messages.list(conversation_id=with_messages.id, order="asc")
    assert [(m.role, m.type, m.content) for m in listed.items] == [
        ("user", "question", "你好，这是一个测试消息"), ("assistant", "answer", "你好！很高兴收到你的消息。")]
    assert listed.items[0].chat_id == listed.items[1].chat_id  # one round
    meta_data = {"source": "example_script", "user_type": "developer", "environment": "testing"}
    assert coze.conversations.create(name="带元数据的会话", meta_data=meta_data).meta_data == meta_data
    assert coze.conversations.create(name="API渠道会话", connector_id="1024").connector_id == "1024"


@pytest.mark.skipif(not os.environ.get(EXAMPLES_ENV), reason=f"{EXAMPLES_ENV} names no coze-py examples folder")
@pytest.mark.parametrize("example", ["conversation.py", "conversation_create.py", "conversation_list.py",
                                     "conversation_update.py", "conversation_delete.py"])
def test_the_examples_themselves(live: LiveServer, token: str, coze: Coze, example: str) -> None:
    conversation = coze.conversations.create(bot_id=BOT)
    env = {**os.environ, "COZE_API_TOKEN": token, "COZE_API_BASE": live.base_url, "COZE_BOT_ID": BOT,
           "COZE_CONVERSATION_ID": conversation.id}
    script = Path(os.environ[EXAMPLES_ENV]) / example
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr


# --- conversations ---------------------------------------------------------------------------------------------
def test_update_without_a_name_keeps_it_and_unknown_ids_are_4001(coze: Coze) -> None:
    conversation = coze.conversations.create(name="kept")
    assert coze.conversations.update(conversation_id=conversation.id).name == "kept"
    for call in (lambda: coze.conversations.retrieve(conversation_id="123"),
                 lambda: coze.conversations.update(conversation_id="123", name="x"),
                 lambda: coze.conversations.delete(conversation_id="123"),
                 lambda: coze.conversations.clear(conversation_id="123")):
        with pytest.raises(CozeAPIError) as error:
            call()
        assert error.value.code == 4001


def test_conversations_of_a_space_the_token_cannot_use_are_absent(live: LiveServer) -> None:
    mine = Coze(auth=TokenAuth(live.token(spaces=[live.space("8101")])), base_url=live.base_url)
    theirs = Coze(auth=TokenAuth(live.token(spaces=[live.space("8102")])), base_url=live.base_url)
    bot = live.bot(space="8102")
    their_conversation = theirs.conversations.create(bot_id=bot)
    mine.conversations.create()
    for call in (lambda: mine.conversations.retrieve(conversation_id=their_conversation.id),
                 lambda: mine.conversations.delete(conversation_id=their_conversation.id),
                 lambda: mine.conversations.messages.list(conversation_id=their_conversation.id),
                 lambda: mine.conversations.messages.create(conversation_id=their_conversation.id, role="user",
                                                            content="x", content_type="text")):
        with pytest.raises(CozeAPIError) as error:
            call()
        assert error.value.code == 4001
    # Their bot is absent for my token, as an unknown bot is.
    for call in (lambda: mine.conversations.list(bot_id=bot), lambda: mine.conversations.create(bot_id=bot)):
        with pytest.raises(CozeAPIError) as error:
            call()
        assert error.value.code == 4200 and f"bot {bot} does not exist" in error.value.msg
    assert [c.id for c in theirs.conversations.list(bot_id=bot)] == [their_conversation.id]


def test_list_needs_a_bot_and_keeps_to_the_connector(coze: Coze, http: httpx.Client,
                                                     fresh_bot: Callable[[], str]) -> None:
    bot = fresh_bot()
    api = coze.conversations.create(bot_id=bot)
    web = coze.conversations.create(bot_id=bot, connector_id="999")
    assert [c.id for c in coze.conversations.list(bot_id=bot)] == [api.id]
    body = http.get("/v1/conversations", params={"bot_id": bot, "connector_id": "999"}).json()
    assert [c["id"] for c in body["data"]["conversations"]] == [web.id]
    assert http.get("/v1/conversations", params={"bot_id": fresh_bot()}).json()["data"] == {
        "conversations": [], "has_more": False}
    assert http.get("/v1/conversations").json()["code"] == 4000
    assert http.get("/v1/conversations", params={"bot_id": bot, "page_size": "51"}).json()["code"] == 4000
    body = http.get("/v1/conversations", params={"bot_id": bot, "sort_order": "asc"}).json()
    assert body["data"]["has_more"] is False
    # A conversation of another connector is absent by id too, unless the request names that connector.
    assert http.get("/v1/conversation/retrieve", params={"conversation_id": web.id}).json()["code"] == 4001
    got = http.get("/v1/conversation/retrieve", params={"conversation_id": web.id, "connector_id": "999"}).json()
    assert got["data"]["id"] == web.id


def test_create_checks_its_limits(coze: Coze) -> None:
    cases = [({"meta_data": {str(i): "v" for i in range(17)}}, 4003), ({"meta_data": {"k": ""}}, 4003),
             ({"messages": [Message.build_user_question_text(str(i)) for i in range(17)]}, 4004)]
    for arguments, code in cases:
        with pytest.raises(CozeAPIError) as error:
            coze.conversations.create(**arguments)  # type: ignore[arg-type]
        assert error.value.code == code


# --- messages --------------------------------------------------------------------------------------------------
def test_message_retrieve_update_delete(coze: Coze) -> None:
    conversation = coze.conversations.create()
    question = coze.conversations.messages.create(conversation_id=conversation.id, role=MessageRole.USER,
                                                  content="q", content_type=MessageContentType.TEXT,
                                                  meta_data={"a": "1"})
    answer = coze.conversations.messages.create(conversation_id=conversation.id, role=MessageRole.ASSISTANT,
                                                content="a", content_type=MessageContentType.TEXT)
    assert answer.type == "answer" and answer.chat_id == question.chat_id  # it answers the open round
    got = coze.conversations.messages.retrieve(conversation_id=conversation.id, message_id=question.id)
    assert (got.id, got.content, got.meta_data) == (question.id, "q", {"a": "1"})
    edited = coze.conversations.messages.update(conversation_id=conversation.id, message_id=question.id,
                                                content="q2", meta_data={"b": "2"})
    assert (edited.content, edited.content_type, edited.meta_data) == ("q2", "text", {"a": "1", "b": "2"})
    deleted = coze.conversations.messages.delete(conversation_id=conversation.id, message_id=answer.id)
    assert deleted.id == answer.id
    assert [m.id for m in coze.conversations.messages.list(conversation_id=conversation.id).items] == [question.id]
    for call in (lambda: coze.conversations.messages.retrieve(conversation_id=conversation.id, message_id=answer.id),
                 lambda: coze.conversations.messages.delete(conversation_id=conversation.id, message_id=answer.id),
                 lambda: coze.conversations.messages.update(conversation_id=conversation.id, message_id="9",
                                                            content="x")):
        with pytest.raises(CozeAPIError) as error:
            call()
        assert error.value.code == 4005
    other = coze.conversations.create()
    with pytest.raises(CozeAPIError) as error:  # a message is reached through its own conversation only
        coze.conversations.messages.retrieve(conversation_id=other.id, message_id=question.id)
    assert error.value.code == 4005


def test_message_create_refuses_what_cozepy_cannot_send_back(coze: Coze) -> None:
    conversation = coze.conversations.create()
    for role, content, content_type in [("system", "x", "text"), ("user", "x", "card"),
                                        ("user", "not json", "object_string"),
                                        ("user", '[{"type": "image"}]', "object_string")]:
        with pytest.raises(CozeAPIError) as error:
            coze.conversations.messages.create(conversation_id=conversation.id, role=role,  # type: ignore[arg-type]
                                               content=content, content_type=content_type)  # type: ignore[arg-type]
        assert error.value.code == 4000
    with pytest.raises(CozeAPIError) as error:
        coze.conversations.messages.create(conversation_id="404", role=MessageRole.USER, content="x",
                                           content_type=MessageContentType.TEXT)
    assert error.value.code == 4001
    multimodal = '[{"type": "text", "text": "look"}, {"type": "image", "file_url": "https://example.com/a.png"}]'
    stored = coze.conversations.messages.create(conversation_id=conversation.id, role=MessageRole.USER,
                                                content=multimodal, content_type=MessageContentType.OBJECT_STRING)
    assert (stored.content, stored.content_type) == (multimodal, "object_string")


def test_message_list_pages_as_cozepy_iterates(coze: Coze) -> None:
    conversation = coze.conversations.create()
    ids = [coze.conversations.messages.create(conversation_id=conversation.id, role=MessageRole.USER,
                                              content=str(i), content_type=MessageContentType.TEXT).id
           for i in range(5)]
    newest_first = coze.conversations.messages.list(conversation_id=conversation.id, limit=2)
    assert [m.id for m in newest_first] == ids[::-1]  # cozepy follows after_id = last_id page by page
    assert [[m.id for m in page.items] for page in newest_first.iter_pages()] == [ids[4:2:-1], ids[2:0:-1],
                                                                                   ids[:1]]
    oldest_first = coze.conversations.messages.list(conversation_id=conversation.id, order="asc", limit=2)
    assert [m.id for m in oldest_first] == ids
    page = coze.conversations.messages.list(conversation_id=conversation.id, after_id=ids[3], limit=2)
    assert ([m.id for m in page.items], page.has_more) == ([ids[2], ids[1]], True)
    page = coze.conversations.messages.list(conversation_id=conversation.id, before_id=ids[1], limit=2)
    assert ([m.id for m in page.items], page.has_more) == ([ids[3], ids[2]], True)  # just before it, newest first
    page = coze.conversations.messages.list(conversation_id=conversation.id, order="asc", before_id=ids[1])
    assert ([m.id for m in page.items], page.has_more) == ([ids[0]], False)
    first = coze.conversations.messages.list(conversation_id=conversation.id, chat_id=ids and
                                             coze.conversations.messages.retrieve(
                                                 conversation_id=conversation.id, message_id=ids[2]).chat_id)
    assert [m.id for m in first.items] == [ids[2]]
    for arguments in ({"before_id": ids[0], "after_id": ids[1]}, {"limit": 51}, {"order": "sideways"}):
        with pytest.raises(CozeAPIError) as error:
            coze.conversations.messages.list(conversation_id=conversation.id, **arguments)  # type: ignore[arg-type]
        assert error.value.code == 4000


def test_an_empty_list_still_has_its_cursors(http: httpx.Client, coze: Coze) -> None:
    conversation = coze.conversations.create()
    body = http.post("/v1/conversation/message/list", params={"conversation_id": conversation.id},
                     json={"order": "desc", "chat_id": None, "before_id": None, "after_id": None, "limit": 50}).json()
    assert (body["code"], body["data"], body["first_id"], body["last_id"], body["has_more"]) == (0, [], "0", "0",
                                                                                                 False)
    assert not list(coze.conversations.messages.list(conversation_id=conversation.id))


def test_a_cleared_conversation_lists_every_message_in_its_sections(coze: Coze) -> None:
    conversation = coze.conversations.create(messages=[Message.build_user_question_text("before")])
    section = coze.conversations.clear(conversation_id=conversation.id)
    after = coze.conversations.messages.create(conversation_id=conversation.id, role=MessageRole.USER,
                                               content="after", content_type=MessageContentType.TEXT)
    listed = coze.conversations.messages.list(conversation_id=conversation.id, order="asc").items
    assert [(m.content, m.section_id) for m in listed] == [("before", conversation.last_section_id),
                                                           ("after", section.id)]
    assert after.section_id == section.id


# --- with chats ---------------------------------------------------------------------------------------------------
def test_chats_read_the_current_section_and_the_api_sees_their_messages(llm_live: LiveServer,
                                                                        fake_model: FakeModelServer) -> None:
    coze = Coze(auth=TokenAuth(llm_live.token()), base_url=llm_live.base_url)
    workflow_id = publish(llm_live, chatflow(history_llm()))
    conversation = coze.conversations.create()
    coze.conversations.messages.create(conversation_id=conversation.id, role=MessageRole.USER, content="I am Ann",
                                       content_type=MessageContentType.TEXT)
    coze.conversations.messages.create(conversation_id=conversation.id, role=MessageRole.ASSISTANT,
                                       content="Hi Ann", content_type=MessageContentType.TEXT)
    fake_model.script(Reply(content="Ann."))
    events = chat(coze, workflow_id, "Who am I?", conversation.id)
    assert answer_of(events) == "Ann."
    assert fake_model.requests[-1]["messages"][1:] == [{"role": "user", "content": "I am Ann"},
                                                       {"role": "assistant", "content": "Hi Ann"},
                                                       {"role": "user", "content": "Q: Who am I?"}]
    listed = coze.conversations.messages.list(conversation_id=conversation.id, order="asc").items
    assert [(m.role, m.content) for m in listed] == [("user", "I am Ann"), ("assistant", "Hi Ann"),
                                                     ("user", "Who am I?"), ("assistant", "Ann.")]
    assert listed[2].chat_id == listed[3].chat_id == events[-1].chat.id
    assert {m.section_id for m in listed} == {conversation.last_section_id}

    section = coze.conversations.clear(conversation_id=conversation.id)
    fake_model.script(Reply(content="No idea."))
    chat(coze, workflow_id, "Who am I?", conversation.id)
    assert fake_model.requests[-1]["messages"][1:] == [{"role": "user", "content": "Q: Who am I?"}]
    listed = coze.conversations.messages.list(conversation_id=conversation.id).items
    assert len(listed) == 6 and listed[0].section_id == section.id  # nothing lost, the new chat in the new section

    coze.conversations.delete(conversation_id=conversation.id)
    with pytest.raises(CozeAPIError) as error:
        chat(coze, workflow_id, "still there?", conversation.id)
    assert error.value.code == 4200  # a chat's unknown conversation, as before


def test_a_template_name_is_known_before_its_first_use(live: LiveServer, http: httpx.Client) -> None:
    body = http.post("/v1/workflow/conversation/create", json={"app_id": "7500000000000000001",
                                                              "conversation_name": "Default"}).json()
    assert body["code"] == 4000 and "app_id 7500000000000000001" in body["msg"]  # no such app yet

    async def define(store: Any) -> None:
        await create_bot_app(store, APP, "support desk", owner_id="7500000000000000001")
        await store.add_template("7500000000000000001", "support")

    live.call(define)
    for name in ("support", "Default"):
        body = http.post("/v1/workflow/conversation/create", json={"app_id": "7500000000000000001",
                                                                  "conversation_name": name}).json()
        assert body["code"] == 0 and body["data"]["id"]
    body = http.post("/v1/workflow/conversation/create", json={"app_id": "7500000000000000001",
                                                              "conversation_name": "never used"}).json()
    assert body["code"] == 4200
