"""Who may own conversations, templates and tables: a bot or an app, named by its id.

knotflow has no registry of bots and apps yet; until it does, every id names one (`AnyOwner`), as run records
and conversation names already take `bot_id` / `app_id` as plain strings. A registry plugs in here: the
composition root hands the conversation and database services another `Owners`, and a conversation created for,
or a table defined on, an unknown bot or app is refused with 4200.
"""

from __future__ import annotations

from typing import Protocol

from knotflow.errors import BadRequest, NotFound

BOT, APP = "bot", "app"


class Owners(Protocol):
    async def exists(self, kind: str, owner_id: str) -> bool:
        """Whether the bot (`kind` "bot") or app ("app") exists."""
        ...


class AnyOwner:
    async def exists(self, kind: str, owner_id: str) -> bool:
        return bool(owner_id)


MAX_ID = 32  # the id columns' width


def check_owner_id(kind: str, owner_id: str) -> str:
    owner_id = owner_id.strip()
    if not owner_id or len(owner_id) > MAX_ID:
        raise BadRequest(f"a {kind} id must be 1 to {MAX_ID} characters, got {owner_id!r}")
    return owner_id


async def require_owner(owners: Owners, kind: str, owner_id: str) -> str:
    owner_id = check_owner_id(kind, owner_id)
    if not await owners.exists(kind, owner_id):
        raise NotFound(f"{kind} {owner_id} does not exist")
    return owner_id
