"""Conversations, their messages, their names and the lease a running chat holds on one."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from knotflow.dsl import jsonutil
from knotflow.errors import BadRequest
from knotflow.ids import new_id
from knotflow.store import tables as t
from knotflow.store.base import LostRace, Repository, dumps
from knotflow.store.records import ChatMessage, Conversation

_NAME_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class ConversationScope:
    """Where a conversation name is looked up: per space, app and connector (see tables.conversation_names)."""

    space_id: str
    app_id: str  # the app's or bot's id, "" for neither
    connector_id: str


def _new_conversation(space_id: str, connector_id: str, name: str, meta_data: dict[str, str] | None,
                      creator_id: str) -> Conversation:
    now = time.time()
    return Conversation(id=new_id(), space_id=space_id, connector_id=connector_id, name=name,
                        meta_data=dict(meta_data or {}), creator_id=creator_id, created_at=now, updated_at=now)

def _conversation_row(conversation: Conversation) -> dict[str, Any]:
    row = {f.name: getattr(conversation, f.name) for f in fields(conversation)}
    row["meta_data"] = dumps(conversation.meta_data)
    return row


class ConversationStore(Repository):
    async def create_conversation(self, space_id: str, connector_id: str, *, name: str = "",
                                  meta_data: dict[str, str] | None = None, creator_id: str = "") -> Conversation:
        conversation = _new_conversation(space_id, connector_id, name, meta_data, creator_id)
        async with self._writer.begin() as conn:
            await conn.execute(insert(t.conversations).values(**_conversation_row(conversation)))
        return conversation

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        c = t.conversations
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(c).where(c.c.id == conversation_id))).mappings().first()
        if row is None:
            return None
        values = dict(row)
        values["meta_data"] = jsonutil.loads(values["meta_data"])
        return Conversation(**values)

    async def set_pending_question(self, conversation_id: str, event_id: str | None, workflow_id: str | None = None,
                                   kind: int | None = None, *, replacing: str | None = None) -> bool:
        """Record the question the conversation waits on (None: none). With `replacing`, only if the pending
        question is still that one (a compare-and-swap); returns whether the row changed."""
        c = t.conversations
        query = update(c).where(c.c.id == conversation_id)
        if replacing is not None:
            query = query.where(c.c.pending_event == replacing)
        async with self._writer.begin() as conn:
            result = await conn.execute(query.values(pending_event=event_id, pending_workflow=workflow_id,
                                                     pending_kind=kind, updated_at=time.time()))
        return int(result.rowcount) == 1

    async def claim_conversation(self, conversation_id: str, chat_id: str, now: float, lease: float) -> bool:
        """Mark a chat as running in the conversation until `now + lease`, unless another chat holds a lease
        that has not run out (a compare-and-set on the row, so it holds across processes)."""
        c = t.conversations
        query = (
            update(c)
            .where(c.c.id == conversation_id, (c.c.running_chat.is_(None)) | (c.c.running_until < now))
            .values(running_chat=chat_id, running_until=now + lease)
        )
        async with self._writer.begin() as conn:
            result = await conn.execute(query)
        return int(result.rowcount) == 1

    async def renew_conversation(self, conversation_id: str, chat_id: str, until: float) -> bool:
        """Extend the chat's lease; False when the chat no longer holds the conversation."""
        c = t.conversations
        query = update(c).where(c.c.id == conversation_id, c.c.running_chat == chat_id).values(running_until=until)
        async with self._writer.begin() as conn:
            result = await conn.execute(query)
        return int(result.rowcount) == 1

    async def release_conversation(self, conversation_id: str, chat_id: str) -> None:
        c = t.conversations
        query = (
            update(c).where(c.c.id == conversation_id, c.c.running_chat == chat_id)
            .values(running_chat=None, running_until=None)
        )
        async with self._writer.begin() as conn:
            await conn.execute(query)

    async def named_conversation(self, scope: ConversationScope, name: str, *, renew: bool = False,
                                 creator_id: str = "") -> Conversation | None:
        """The conversation `name` stands for in `scope` (space, app, connector), created and bound if
        the name is new. With `renew`, a new conversation takes the name's place (Coze Studio's
        UpdateConversation), and a name never bound is None."""
        n = t.conversation_names
        key = and_(n.c.space_id == scope.space_id, n.c.app_id == scope.app_id,
                   n.c.connector_id == scope.connector_id, n.c.name == name)
        for _ in range(_NAME_ATTEMPTS):
            async with self._engine.connect() as conn:
                bound = (await conn.execute(select(n.c.conversation_id).where(key))).scalar()
            if bound is not None and not renew:
                found = await self.get_conversation(bound)
                if found is not None:
                    return found
            if bound is None and renew:
                return None
            conversation = _new_conversation(scope.space_id, scope.connector_id, name, None, creator_id)
            try:
                async with self._writer.begin() as conn:
                    await conn.execute(insert(t.conversations).values(**_conversation_row(conversation)))
                    if bound is None:
                        await conn.execute(insert(n).values(
                            space_id=scope.space_id, app_id=scope.app_id, connector_id=scope.connector_id,
                            name=name, conversation_id=conversation.id, updated_at=conversation.created_at))
                    else:
                        moved = await conn.execute(update(n).where(key, n.c.conversation_id == bound).values(
                            conversation_id=conversation.id, updated_at=conversation.created_at))
                        if moved.rowcount != 1:
                            raise LostRace
            except (IntegrityError, LostRace):
                continue  # another process bound or renewed the name just now: read it again
            return conversation
        raise BadRequest(f"conversation name {name!r} is being changed concurrently; try again")

    async def add_messages(self, messages: Sequence[ChatMessage]) -> None:
        if not messages:
            return
        async with self._writer.begin() as conn:
            await conn.execute(insert(t.messages), [{f.name: getattr(m, f.name) for f in fields(m)} for m in messages])

    async def recent_rounds(self, conversation_id: str, rounds: int) -> list[list[ChatMessage]]:
        """The conversation's last `rounds` rounds (chats), oldest first, each its messages in order."""
        m = t.messages
        if rounds <= 0:
            return []
        latest = (
            select(m.c.chat_id).where(m.c.conversation_id == conversation_id).group_by(m.c.chat_id)
            .order_by(func.min(m.c.created_at).desc(), m.c.chat_id.desc()).limit(rounds)
        )
        query = (
            select(m).where(m.c.conversation_id == conversation_id, m.c.chat_id.in_(latest.scalar_subquery()))
            .order_by(m.c.created_at, m.c.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        grouped: dict[str, list[ChatMessage]] = {}
        for row in rows:
            grouped.setdefault(row["chat_id"], []).append(ChatMessage(**dict(row)))
        return list(grouped.values())
