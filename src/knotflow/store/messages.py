"""A conversation's messages: written by chats, the open API and the message nodes; read as pages, by id and
as rounds (a round, `chat_id`, is a user's message and the answers to it).

Only live messages (not deleted) of live conversations are read. Pages are ordered by (created_at, id): ids
are time-ordered, so messages written in the same instant keep the order they were written in.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update

from knotflow.dsl import jsonutil
from knotflow.store import tables as t
from knotflow.store.base import Repository, dumps
from knotflow.store.records import ChatMessage, MessagePage

QUESTION_AND_ANSWER = ("question", "answer")


def _live(message_id: str) -> Any:
    m = t.messages
    return and_(m.c.id == message_id, m.c.deleted_at.is_(None))


def _message(row: Any) -> ChatMessage:
    values = dict(row)
    values["meta_data"] = jsonutil.loads(values["meta_data"] or "{}")
    return ChatMessage(**values)


class MessageStore(Repository):
    async def add_messages(self, messages: Sequence[ChatMessage]) -> None:
        """Append messages; an empty section or bot is the conversation's current one, an unset `updated_at`
        the creation time."""
        if not messages:
            return
        c = t.conversations
        async with self._writer.begin() as conn:
            wanted = {m.conversation_id for m in messages if not m.section_id or not m.bot_id}
            current: dict[str, tuple[str, str]] = {}
            if wanted:
                rows = await conn.execute(select(c.c.id, c.c.section_id, c.c.bot_id).where(c.c.id.in_(wanted)))
                current = {row.id: (row.section_id, row.bot_id) for row in rows}
            values = []
            for message in messages:
                row = {f.name: getattr(message, f.name) for f in fields(message)}
                section_id, bot_id = current.get(message.conversation_id, ("", ""))
                row["section_id"] = message.section_id or section_id
                row["bot_id"] = message.bot_id or bot_id
                row["meta_data"] = dumps(message.meta_data)
                row["updated_at"] = message.updated_at or message.created_at
                values.append(row)
            await conn.execute(insert(t.messages), values)

    async def get_message(self, message_id: str) -> ChatMessage | None:
        m = t.messages
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(m).where(_live(message_id)))).mappings().first()
        return None if row is None else _message(row)

    async def edit_message(self, message_id: str, *, content: str | None = None, content_type: str | None = None,
                           meta_data: dict[str, str] | None = None) -> ChatMessage | None:
        """Change what is given (None: keep); meta_data's keys are added to the message's, replacing equal keys.
        None when the message does not exist (or was deleted)."""
        m = t.messages
        async with self._writer.begin() as conn:
            row = (await conn.execute(select(m).where(_live(message_id)))).mappings().first()
            if row is None:
                return None
            message = _message(row)
            values: dict[str, Any] = {"updated_at": time.time()}
            if content is not None:
                values["content"] = message.content = content
            if content_type is not None:
                values["content_type"] = message.content_type = content_type
            if meta_data is not None:
                message.meta_data = {**message.meta_data, **meta_data}
                values["meta_data"] = dumps(message.meta_data)
            message.updated_at = values["updated_at"]
            await conn.execute(update(m).where(m.c.id == message_id).values(**values))
        return message

    async def delete_message(self, conversation_id: str, message_id: str) -> ChatMessage | None:
        """Delete one message of the conversation; None when it has no such live message."""
        m = t.messages
        now = time.time()
        async with self._writer.begin() as conn:
            row = (await conn.execute(select(m).where(m.c.id == message_id, m.c.conversation_id == conversation_id,
                                                      m.c.deleted_at.is_(None)))).mappings().first()
            if row is None:
                return None
            await conn.execute(update(m).where(m.c.id == message_id).values(deleted_at=now))
        deleted = _message(row)
        deleted.deleted_at = now
        return deleted

    async def page_messages(self, conversation_id: str, *, limit: int, older: bool, cursor: str | None = None,
                            chat_id: str | None = None,
                            types: Collection[str] = QUESTION_AND_ANSWER) -> MessagePage | None:
        """Up to `limit` messages, walking from `cursor` (excluded) towards older ones (newest first) or newer
        ones (oldest first); without a cursor from the newest (older) or the oldest (newer) end. None when the
        cursor is no live message of the conversation."""
        m = t.messages
        query = select(m).where(m.c.conversation_id == conversation_id, m.c.deleted_at.is_(None),
                                m.c.type.in_(list(types)))
        if chat_id is not None:
            query = query.where(m.c.chat_id == chat_id)
        async with self._engine.connect() as conn:
            if cursor is not None:
                at = (await conn.execute(select(m.c.created_at).where(
                    m.c.id == cursor, m.c.conversation_id == conversation_id, m.c.deleted_at.is_(None)))).scalar()
                if at is None:
                    return None
                if older:
                    query = query.where(or_(m.c.created_at < at, and_(m.c.created_at == at, m.c.id < cursor)))
                else:
                    query = query.where(or_(m.c.created_at > at, and_(m.c.created_at == at, m.c.id > cursor)))
            order = (m.c.created_at.desc(), m.c.id.desc()) if older else (m.c.created_at.asc(), m.c.id.asc())
            rows = (await conn.execute(query.order_by(*order).limit(limit + 1))).mappings().all()
        return MessagePage([_message(row) for row in rows[:limit]], len(rows) > limit)

    async def latest_round(self, conversation_id: str, section_id: str) -> str | None:
        """The round (chat_id) of the section's newest message, if any."""
        m = t.messages
        query = (
            select(m.c.chat_id)
            .where(m.c.conversation_id == conversation_id, m.c.section_id == section_id, m.c.deleted_at.is_(None),
                   m.c.type.in_(QUESTION_AND_ANSWER))
            .order_by(m.c.created_at.desc(), m.c.id.desc()).limit(1)
        )
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).scalar()

    async def recent_rounds(self, conversation_id: str, rounds: int | None, *, section_id: str | None = None,
                            before_round: str | None = None) -> list[list[ChatMessage]]:
        """The last `rounds` rounds (None: all) of a section (default: the conversation's current one), oldest
        first, each its messages in order. `before_round` leaves out that round and every later one (rounds
        are time-ordered ids: a chat's own round, and those its run started, are not its history)."""
        m, c = t.messages, t.conversations
        if rounds is not None and rounds <= 0:
            return []
        section = (section_id if section_id is not None
                   else select(c.c.section_id).where(c.c.id == conversation_id).scalar_subquery())
        live = and_(m.c.conversation_id == conversation_id, m.c.section_id == section, m.c.deleted_at.is_(None),
                    m.c.type.in_(QUESTION_AND_ANSWER))
        if before_round is not None:
            # Round ids are new_id()s, time-ordered numbers as text: compare them as numbers.
            length = func.length(m.c.chat_id)
            live = and_(live, or_(length < len(before_round),
                                  and_(length == len(before_round), m.c.chat_id < before_round)))
        latest = (
            select(m.c.chat_id).where(live).group_by(m.c.chat_id)
            .order_by(func.min(m.c.created_at).desc(), m.c.chat_id.desc())
        )
        if rounds is not None:
            latest = latest.limit(rounds)
        query = select(m).where(live, m.c.chat_id.in_(latest.scalar_subquery())).order_by(m.c.created_at, m.c.id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        grouped: dict[str, list[ChatMessage]] = {}
        for row in rows:
            grouped.setdefault(row["chat_id"], []).append(_message(row))
        return list(grouped.values())
