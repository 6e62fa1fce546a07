"""Bring a database to the current schema with Alembic, configured in code (no alembic.ini).

Alembic's env.py drives an async engine with `asyncio.run`, which cannot run inside an event loop that is
already running (a server's lifespan, a test). So every Alembic command here runs on a short-lived thread of
its own: the functions are plain blocking calls, safe to call with or without a running loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from knotflow.store.engine import create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

T = TypeVar("T")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


def _on_own_thread(work: Callable[[], T]) -> T:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="knotflow-migrate") as pool_:
        return pool_.submit(work).result()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision` (default: head). Blocking; a no-op when already there."""
    _on_own_thread(lambda: command.upgrade(alembic_config(url), revision))


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at `url` back to `revision` ("base": drop every knotflow table)."""
    _on_own_thread(lambda: command.downgrade(alembic_config(url), revision))


async def upgrade_async(url: str, revision: str = "head") -> None:
    """`upgrade` without blocking the running event loop."""
    await asyncio.to_thread(upgrade, url, revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def current_revision(url: str) -> str | None:
    """The revision the database at `url` is at (None: not migrated yet)."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async def work() -> str | None:
        engine = create_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return _on_own_thread(lambda: asyncio.run(work()))
