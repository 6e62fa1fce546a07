"""Conversations, their names and templates, their sections, and the lease a running chat holds on one."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from knotflow.dsl import jsonutil
from knotflow.errors import BadRequest
from knotflow.ids import new_id
from knotflow.store import tables as t
from knotflow.store.base import LostRace, Repository, dumps
from knotflow.store.records import Conversation, ConversationTemplate

_NAME_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class ConversationScope:
    """Where a conversation name is looked up: per space, app and connector (see tables.conversation_names)."""

    space_id: str
    app_id: str  # the app's or bot's id, "" for neither
    connector_id: str


def _new_conversation(space_id: str, connector_id: str, name: str, meta_data: dict[str, str] | None,
                      creator_id: str, bot_id: str) -> Conversation:
    now = time.time()
    # As Coze Studio, a new conversation's first section gets an id of its own.
    return Conversation(id=new_id(), space_id=space_id, connector_id=connector_id, name=name,
                        meta_data=dict(meta_data or {}), creator_id=creator_id, created_at=now, updated_at=now,
                        bot_id=bot_id, section_id=new_id())


def _conversation_row(conversation: Conversation) -> dict[str, Any]:
    row = {f.name: getattr(conversation, f.name) for f in fields(conversation)}
    row["meta_data"] = dumps(conversation.meta_data)
    return row


def _conversation(row: Any) -> Conversation:
    values = dict(row)
    values["meta_data"] = jsonutil.loads(values["meta_data"])
    return Conversation(**values)


class ConversationStore(Repository):
    async def create_conversation(self, space_id: str, connector_id: str, *, name: str = "",
                                  meta_data: dict[str, str] | None = None, creator_id: str = "",
                                  bot_id: str = "") -> Conversation:
        conversation = _new_conversation(space_id, connector_id, name, meta_data, creator_id, bot_id)
        async with self._writer.begin() as conn:
            await conn.execute(insert(t.conversations).values(**_conversation_row(conversation)))
        return conversation

    async def get_conversation(self, conversation_id: str, *, deleted: bool = False) -> Conversation | None:
        """The conversation; a deleted one only with `deleted` (it is gone for every other purpose)."""
        c = t.conversations
        query = select(c).where(c.c.id == conversation_id)
        if not deleted:
            query = query.where(c.c.deleted_at.is_(None))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _conversation(row)

    async def list_conversations(self, space_ids: list[str] | None, bot_id: str, connector_id: str, *,
                                 offset: int, limit: int, ascending: bool = False) -> tuple[list[Conversation], bool]:
        """A page of the bot's live conversations in these spaces (None: every space) and connector, by creation
        time, newest first unless `ascending`; and whether more follow."""
        c = t.conversations
        query = select(c).where(c.c.bot_id == bot_id, c.c.connector_id == connector_id, c.c.deleted_at.is_(None))
        if space_ids is not None:
            query = query.where(c.c.space_id.in_(space_ids))
        order = (c.c.created_at.asc(), c.c.id.asc()) if ascending else (c.c.created_at.desc(), c.c.id.desc())
        query = query.order_by(*order).offset(offset).limit(limit + 1)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_conversation(row) for row in rows[:limit]], len(rows) > limit

    async def rename_conversation(self, conversation_id: str, name: str) -> Conversation | None:
        c = t.conversations
        async with self._writer.begin() as conn:
            await conn.execute(update(c).where(c.c.id == conversation_id, c.c.deleted_at.is_(None))
                               .values(name=name, updated_at=time.time()))
        return await self.get_conversation(conversation_id)

    async def delete_conversation(self, conversation_id: str) -> bool:
        """Delete the conversation and its messages (kept as rows, marked deleted, never shown again)."""
        c, m = t.conversations, t.messages
        now = time.time()
        async with self._writer.begin() as conn:
            result = await conn.execute(update(c).where(c.c.id == conversation_id, c.c.deleted_at.is_(None))
                                        .values(deleted_at=now, updated_at=now))
            if int(result.rowcount) != 1:
                return False
            await conn.execute(update(m).where(m.c.conversation_id == conversation_id, m.c.deleted_at.is_(None))
                               .values(deleted_at=now))
        return True

    async def new_section(self, conversation_id: str) -> str | None:
        """Start a new section (a clear): later messages go there, and history reads only it. None: no such
        live conversation."""
        c = t.conversations
        section_id = new_id()
        async with self._writer.begin() as conn:
            result = await conn.execute(update(c).where(c.c.id == conversation_id, c.c.deleted_at.is_(None))
                                        .values(section_id=section_id, updated_at=time.time()))
        return section_id if int(result.rowcount) == 1 else None

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

    # --- names --------------------------------------------------------------------------------------------
    @staticmethod
    def _name_key(scope: ConversationScope, name: str) -> Any:
        n = t.conversation_names
        return and_(n.c.space_id == scope.space_id, n.c.app_id == scope.app_id,
                    n.c.connector_id == scope.connector_id, n.c.name == name)

    async def named_conversation(self, scope: ConversationScope, name: str, *, renew: bool = False,
                                 creator_id: str = "") -> Conversation | None:
        """The conversation `name` stands for in `scope` (space, app, connector), created and bound if
        the name is new (or its conversation was deleted). With `renew`, a new conversation takes the name's
        place (Coze Studio's UpdateConversation), and a name never bound is None."""
        return (await self.name_conversation(scope, name, renew=renew, creator_id=creator_id))[0]

    async def name_conversation(self, scope: ConversationScope, name: str, *, renew: bool = False,
                                creator_id: str = "") -> tuple[Conversation | None, bool]:
        """`named_conversation`, and whether the name already stood for that (live) conversation."""
        n = t.conversation_names
        key = self._name_key(scope, name)
        for _ in range(_NAME_ATTEMPTS):
            async with self._engine.connect() as conn:
                bound = (await conn.execute(select(n.c.conversation_id).where(key))).scalar()
            if bound is not None and not renew:
                found = await self.get_conversation(bound)
                if found is not None:
                    return found, True
            if bound is None and renew:
                return None, False
            conversation = _new_conversation(scope.space_id, scope.connector_id, name, None, creator_id,
                                             scope.app_id)
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
            return conversation, False
        raise BadRequest(f"conversation name {name!r} is being changed concurrently; try again")

    async def conversation_for_name(self, scope: ConversationScope, name: str) -> Conversation | None:
        """The live conversation `name` stands for in `scope`, without creating one."""
        n = t.conversation_names
        async with self._engine.connect() as conn:
            bound = (await conn.execute(select(n.c.conversation_id).where(self._name_key(scope, name)))).scalar()
        return None if bound is None else await self.get_conversation(bound)

    async def rename_name(self, scope: ConversationScope, name: str, new_name: str) -> tuple[str, str | None]:
        """Give `name`'s conversation the name `new_name`: ("renamed", its id); ("taken", the id `new_name`
        already stands for); ("missing", None) when `name` stands for no live conversation."""
        n = t.conversation_names
        taken = await self.conversation_for_name(scope, new_name)
        if taken is not None:
            return "taken", taken.id
        current = await self.conversation_for_name(scope, name)
        if current is None:
            return "missing", None
        try:
            async with self._writer.begin() as conn:
                # A binding of `new_name` to a deleted conversation is stale: the name is free.
                await conn.execute(n.delete().where(self._name_key(scope, new_name)))
                moved = await conn.execute(update(n).where(self._name_key(scope, name),
                                                           n.c.conversation_id == current.id)
                                           .values(name=new_name, updated_at=time.time()))
                if int(moved.rowcount) != 1:
                    raise LostRace
                c = t.conversations
                await conn.execute(update(c).where(c.c.id == current.id).values(name=new_name,
                                                                                updated_at=time.time()))
        except (IntegrityError, LostRace):
            raise BadRequest(f"conversation name {name!r} is being changed concurrently; try again") from None
        return "renamed", current.id

    async def forget_name(self, scope: ConversationScope, name: str) -> bool:
        """Unbind `name` (its conversation and messages stay); False when it stood for no live conversation."""
        if await self.conversation_for_name(scope, name) is None:
            return False
        n = t.conversation_names
        async with self._writer.begin() as conn:
            await conn.execute(n.delete().where(self._name_key(scope, name)))
        return True

    async def names(self, scope: ConversationScope) -> list[tuple[str, str]]:
        """Every name bound in `scope` to a live conversation, with its conversation's id, oldest binding first."""
        n, c = t.conversation_names, t.conversations
        query = (
            select(n.c.name, n.c.conversation_id)
            .join(c, c.c.id == n.c.conversation_id)
            .where(n.c.space_id == scope.space_id, n.c.app_id == scope.app_id, n.c.connector_id == scope.connector_id,
                   c.c.deleted_at.is_(None))
            .order_by(n.c.updated_at, n.c.name)
        )
        async with self._engine.connect() as conn:
            return [(row.name, row.conversation_id) for row in (await conn.execute(query)).all()]

    # --- templates ----------------------------------------------------------------------------------------
    async def add_template(self, app_id: str, name: str) -> ConversationTemplate | None:
        """A new template; None when the app already has one of that name."""
        template = ConversationTemplate(id=new_id(), app_id=app_id, name=name, created_at=time.time())
        try:
            async with self._writer.begin() as conn:
                await conn.execute(insert(t.conversation_templates).values(
                    id=template.id, app_id=app_id, name=name, created_at=template.created_at))
        except IntegrityError:
            return None
        return template

    async def templates(self, app_id: str) -> list[ConversationTemplate]:
        tt = t.conversation_templates
        query = select(tt).where(tt.c.app_id == app_id).order_by(tt.c.created_at, tt.c.id)
        async with self._engine.connect() as conn:
            return [ConversationTemplate(**dict(row)) for row in (await conn.execute(query)).mappings().all()]
