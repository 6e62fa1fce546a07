"""Conversations and their messages in the repository, on every backend."""

from __future__ import annotations

from knotflow.ids import new_id
from knotflow.store.records import ChatMessage
from knotflow.store.repository import ConversationScope, Store


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


async def test_one_chat_at_a_time_and_a_lapsed_lease_frees_the_conversation(store: Store) -> None:
    space = await store.ensure_space("14")
    conversation = await store.create_conversation(space.id, "1024")
    assert await store.claim_conversation(conversation.id, "c1", now=100.0, lease=30.0)
    assert not await store.claim_conversation(conversation.id, "c2", now=110.0, lease=30.0)  # occupied
    assert await store.renew_conversation(conversation.id, "c1", until=160.0)
    assert not await store.claim_conversation(conversation.id, "c2", now=150.0, lease=30.0)
    # c1's process died: nobody renews, and after its lease the conversation is free again.
    assert await store.claim_conversation(conversation.id, "c2", now=161.0, lease=30.0)
    assert not await store.renew_conversation(conversation.id, "c1", until=999.0)  # c1 lost it
    await store.release_conversation(conversation.id, "c1")  # not c1's any more: no effect
    assert not await store.claim_conversation(conversation.id, "c3", now=170.0, lease=30.0)
    await store.release_conversation(conversation.id, "c2")
    assert await store.claim_conversation(conversation.id, "c3", now=170.0, lease=30.0)


async def test_conversation_names_get_or_create_and_renew(store: Store) -> None:
    space = await store.ensure_space("15")
    scope = ConversationScope(space.id, "app1", "1024")
    assert await store.named_conversation(scope, "support", renew=True) is None  # a name never bound
    first = await store.named_conversation(scope, "support")
    assert first is not None and first.name == "support" and first.connector_id == "1024"
    again = await store.named_conversation(scope, "support")
    assert again is not None and again.id == first.id
    for other in (ConversationScope(space.id, "app2", "1024"), ConversationScope(space.id, "app1", "999")):
        elsewhere = await store.named_conversation(other, "support")
        assert elsewhere is not None and elsewhere.id != first.id
    renewed = await store.named_conversation(scope, "support", renew=True)
    assert renewed is not None and renewed.id != first.id
    latest = await store.named_conversation(scope, "support")
    assert latest is not None and latest.id == renewed.id


async def test_an_incomplete_answer_is_kept_as_such(store: Store) -> None:
    space = await store.ensure_space("16")
    conversation = await store.create_conversation(space.id, "1024")
    chat = new_id()
    cut = message(conversation.id, chat, "assistant", "half an ans", 2.0)
    cut.incomplete = True
    await store.add_messages([message(conversation.id, chat, "user", "q", 1.0), cut])
    [round_] = await store.recent_rounds(conversation.id, 1)
    assert [(m.content, m.incomplete) for m in round_] == [("q", False), ("half an ans", True)]
