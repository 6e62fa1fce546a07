"""Bots and apps: who owns variables, tables and conversation templates, each in a space."""

from __future__ import annotations

from sqlalchemy import RowMapping, select

from knotflow.store import tables as t
from knotflow.store.base import Repository
from knotflow.store.records import APP, BOT, BotApp

_TABLES = {BOT: t.bots, APP: t.apps}


def _bot_app(kind: str, row: RowMapping) -> BotApp:
    return BotApp(kind=kind, id=row["id"], space_id=row["space_id"], name=row["name"], created_at=row["created_at"])


class OwnerStore(Repository):
    async def create_bot_app(self, record: BotApp) -> bool:
        """Add a bot or app (its space must exist); False when one of that kind has the id already."""
        table = _TABLES[record.kind]
        statement = (self._insert(table)
                     .values(id=record.id, space_id=record.space_id, name=record.name, created_at=record.created_at)
                     .on_conflict_do_nothing(index_elements=[table.c.id]))
        async with self._writer.begin() as conn:
            return bool((await conn.execute(statement)).rowcount)

    async def get_bot_app(self, kind: str, owner_id: str) -> BotApp | None:
        table = _TABLES[kind]
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(table).where(table.c.id == owner_id))).mappings().first()
        return None if row is None else _bot_app(kind, row)

    async def list_bot_apps(self, kind: str) -> list[BotApp]:
        table = _TABLES[kind]
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(table).order_by(table.c.created_at, table.c.id))).mappings().all()
        return [_bot_app(kind, row) for row in rows]
