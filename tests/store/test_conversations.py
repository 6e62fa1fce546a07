"""Conversations and their messages in the repository, on every backend."""

from __future__ import annotations

from knotflow.ids import new_id
from knotflow.store.records import ChatMessage
from knotflow.store.repository import Store


def message(conversation_id: str, chat_id: str, role: str, content: str, at: float) -> ChatMessage:
    return ChatMessage(id=new_id(), conversation_id=conversation_id, chat_id=chat_id, role=role,
                       type="question" if role == "user" else "answer", content=content, content_type="text",
                       created_at=at)


async def test_create_and_read_a_conversation(store: Store) -> None:
    space = await store.ensure_space("11")
    created = await store.create_conversation(space.id, "999", name="support", meta_data={"k": "v"},
                                              creator_id="t1")
    read = await store.get_conversation(created.id)
    assert read == created
    assert await store.get_conversation("404") is None


async def test_recent_rounds_are_the_last_chats_oldest_first(store: Store) -> None:
    space = await store.ensure_space("12")
    conversation = await store.create_conversation(space.id, "1024")
    other = await store.create_conversation(space.id, "1024")
    chats = [new_id() for _ in range(3)]
    script = [(0, "user", "q0"), (0, "assistant", "a0"), (1, "user", "q1"), (1, "assistant", "a1"),
              (1, "assistant", "a1b"), (2, "user", "q2")]
    await store.add_messages([message(conversation.id, chats[chat], role, content, float(at))
                              for at, (chat, role, content) in enumerate(script)])
    await store.add_messages([message(other.id, new_id(), "user", "elsewhere", 9.0)])
    rounds = await store.recent_rounds(conversation.id, 2)
    assert [[m.content for m in r] for r in rounds] == [["q1", "a1", "a1b"], ["q2"]]
    assert [[m.content for m in r] for r in await store.recent_rounds(conversation.id, 10)] == [
        ["q0", "a0"], ["q1", "a1", "a1b"], ["q2"]]
    assert await store.recent_rounds(conversation.id, 0) == []


async def test_pending_question_is_replaced_only_if_unchanged(store: Store) -> None:
    space = await store.ensure_space("13")
    conversation = await store.create_conversation(space.id, "1024")
    assert await store.set_pending_question(conversation.id, "1/2", "7", 2)
    read = await store.get_conversation(conversation.id)
    assert read is not None and (read.pending_event, read.pending_workflow, read.pending_kind) == ("1/2", "7", 2)
    assert not await store.set_pending_question(conversation.id, None, replacing="9/9")
    assert await store.set_pending_question(conversation.id, None, replacing="1/2")
    read = await store.get_conversation(conversation.id)
    assert read is not None and read.pending_event is None
