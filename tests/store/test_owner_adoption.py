"""Migration 0011 turns the bot and app ids in use before it into bots and apps, so that what ran keeps running."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from knotflow.store.migrate import downgrade, upgrade
from knotflow.store.repository import Store
from tests.store.backends import POSTGRES_ENV, sqlite_url

ROWS = [
    "INSERT INTO spaces (id, name, created_at) VALUES ('s1', 'first', 1), ('s2', 'second', 2)",
    "INSERT INTO workflows (id, space_id, name, description, icon_url, app_id, requires_bot, mode, canvas, "
    "creator_id, created_at, updated_at) VALUES ('w1', 's2', 'w', '', '', 'app-w', false, 'workflow', '{}', '', 1, 1)",
    "INSERT INTO runs (execute_id, workflow_id, version, space_id, run_mode, status, connector_id, connector_uid, "
    "bot_id, app_id, inputs, output, error_code, error_message, input_tokens, output_tokens, logid, created_at, "
    "updated_at, extra) VALUES ('r1', 'w1', 'v', 's2', 0, 'Success', '1024', '', 'bot-r', '', '{}', '', 0, '', 0, "
    "0, '', 1, 1, '{}')",
    "INSERT INTO conversations (id, space_id, connector_id, name, meta_data, creator_id, created_at, updated_at, "
    "bot_id, section_id) VALUES ('c1', 's1', '1024', '', '{}', '', 1, 1, 'bot-c', 'c1')",
    "INSERT INTO conversation_templates (id, app_id, name, created_at) VALUES ('t1', 'app-t', 'support', 1)",
    "INSERT INTO database_tables (id, owner_kind, owner_id, name, description, rw_mode, fields, physical_name, "
    "created_at) VALUES ('1', 'bot', 'bot-r', 'notes', '', 1, '[]', 'kfdb_1', 1)",
    "CREATE TABLE kfdb_1 (bstudio_id BIGINT PRIMARY KEY)",  # the table's rows (a downgrade drops them)
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(
    not os.environ.get(POSTGRES_ENV), reason=f"{POSTGRES_ENV} is not set"))])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = sqlite_url(tmp_path) if request.param == "sqlite" else os.environ[POSTGRES_ENV]
    if request.param == "postgres":
        downgrade(url, "base")
    upgrade(url, "0009")
    return url


async def test_ids_in_use_become_bots_and_apps(old_database: str) -> None:
    store = await Store.open(old_database)
    try:
        async with store.engine.begin() as conn:
            for statement in ROWS:
                await conn.execute(sa.text(statement))
    finally:
        await store.close()
    upgrade(old_database)
    store = await Store.open(old_database)
    try:
        bots = {b.id: (b.space_id, b.name) for b in await store.list_bot_apps("bot")}
        apps = {a.id: (a.space_id, a.name) for a in await store.list_bot_apps("app")}
    finally:
        await store.close()
    assert bots == {"bot-r": ("s2", "bot-r"), "bot-c": ("s1", "bot-c")}
    assert apps == {"app-w": ("s2", "app-w"), "app-t": ("s1", "app-t")}  # no space known: the first one
