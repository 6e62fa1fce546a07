"""Bots and apps: the registry (`knotflow bot create`, `knotflow app create`) and who may name one.

A bot or an app lives in a space and owns conversation templates, tables and variables. A caller with a token
reaches only those of the spaces the token may use; any other is absent, exactly as an unknown id is (see
`knotflow.service.access`). A run request naming a bot or app it cannot reach is refused with 4000 naming it.
"""

from __future__ import annotations

import re
import time
from typing import Protocol

from knotflow.errors import BadRequest, NotFound
from knotflow.ids import new_id
from knotflow.service.access import visible_bot_app
from knotflow.store.records import APP, BOT, BotApp, Token
from knotflow.store.repository import Store

__all__ = ["APP", "BOT", "Owners", "Registry", "check_owner_id", "ensure_app", "require_owner", "run_owner"]

MAX_ID = 32  # the id columns' width
MAX_NAME = 255
_ID = re.compile(r"[A-Za-z0-9_.-]+")


class Owners(Protocol):
    async def find(self, kind: str, owner_id: str) -> BotApp | None:
        """The bot (`kind` "bot") or app ("app") with this id, or None."""
        ...


class Registry:
    """The bots and apps in the store. A bot or app found is remembered: they are never deleted or moved to
    another space, so a run's check costs no query after the first."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._known: dict[tuple[str, str], BotApp] = {}

    async def find(self, kind: str, owner_id: str) -> BotApp | None:
        found = self._known.get((kind, owner_id))
        if found is None:
            found = await self.store.get_bot_app(kind, owner_id)
            if found is not None:
                if len(self._known) >= 4096:
                    self._known.clear()
                self._known[(kind, owner_id)] = found
        return found

    async def create(self, kind: str, name: str, *, owner_id: str | None = None,
                     space_id: str | None = None) -> BotApp:
        """A new bot or app in `space_id` (created if it does not exist yet, as `workflow import --space` does;
        default: the first space), with `owner_id` or a new id."""
        return await create_bot_app(self.store, kind, name, owner_id=owner_id, space_id=space_id)

    async def list(self, kind: str) -> list[BotApp]:
        return await self.store.list_bot_apps(kind)


def check_owner_id(kind: str, owner_id: str) -> str:
    owner_id = owner_id.strip()
    if not owner_id or len(owner_id) > MAX_ID:
        raise BadRequest(f"a {kind} id must be 1 to {MAX_ID} characters, got {owner_id!r}")
    return owner_id


async def create_bot_app(store: Store, kind: str, name: str, *, owner_id: str | None = None,
                         space_id: str | None = None) -> BotApp:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise BadRequest(f"a {kind} name is 1 to {MAX_NAME} characters")
    if owner_id is not None and not (_ID.fullmatch(owner_id) and len(owner_id) <= MAX_ID):
        raise BadRequest(f"a {kind} id is 1 to {MAX_ID} letters, digits, '_', '-' or '.', got {owner_id!r}")
    if space_id is not None and not 0 < len(space_id.strip()) == len(space_id) <= MAX_ID:
        raise BadRequest(f"a space id is 1 to {MAX_ID} characters, without surrounding spaces")
    space = await store.ensure_space(space_id)
    record = BotApp(kind=kind, id=owner_id or new_id(), space_id=space.id, name=name, created_at=time.time())
    if not await store.create_bot_app(record):
        raise BadRequest(f"{kind} {record.id} already exists")
    return record


async def require_owner(owners: Owners, kind: str, owner_id: str, token: Token | None = None) -> str:
    """The id of an existing bot or app; with a token, one of a space the token may use (else absent, 4200)."""
    owner_id = check_owner_id(kind, owner_id)
    found = await owners.find(kind, owner_id)
    if token is None:
        if found is None:
            raise NotFound(f"{kind} {owner_id} does not exist")
        return owner_id
    return visible_bot_app(token, found, kind, owner_id).id


async def run_owner(owners: Owners, token: Token, bot_id: str | None, app_id: str | None) -> None:
    """A run request's bot or app must exist in a space the token may use: else the request is refused (4000)
    naming it, before anything runs."""
    for kind, owner_id in ((BOT, bot_id), (APP, app_id)):
        if owner_id:
            try:
                await require_owner(owners, kind, owner_id, token)
            except NotFound as absent:
                raise BadRequest(f"{kind}_id {owner_id}: {absent.message} (create it with `knotflow {kind} "
                                 f"create --id {owner_id} --name NAME`)") from None


async def ensure_app(store: Store, app_id: str, space_id: str) -> tuple[BotApp, bool]:
    """The app a workflow imported with `--app-id` belongs to, created (named after its id) in the workflow's
    space when it does not exist yet; and whether it was created. An app of another space is refused."""
    app_id = check_owner_id(APP, app_id)
    found = await store.get_bot_app(APP, app_id)
    if found is None:
        try:
            return await create_bot_app(store, APP, app_id, owner_id=app_id, space_id=space_id), True
        except BadRequest:  # created meanwhile by another import
            found = await store.get_bot_app(APP, app_id)
            if found is None:
                raise
    if found.space_id != space_id:
        raise BadRequest(f"app {app_id} belongs to space {found.space_id}, not to the workflow's space {space_id}")
    return found, False
