"""Alembic environment for knotflow, configured in code by `knotflow.store.migrate` (no alembic.ini).

The database URL comes from `config.attributes["url"]` (not the ini option, which would need `%` escaped).
Online migrations run on knotflow's own async engine factory, so SQLite gets the same WAL / busy-timeout /
BEGIN handling as the store, in one transaction that also serialises concurrent upgrades (a CLI command and a
server starting on the same fresh database).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection

from knotflow.store.engine import create_engine, writer
from knotflow.store.tables import metadata

config = context.config

# Any constant shared by every knotflow process: the key of the PostgreSQL advisory lock held while migrating.
_PG_LOCK_KEY = 0x6B6E6F74666C6F77 & 0x7FFFFFFFFFFFFFFF  # "knotflow"


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set config.attributes['url']")
    return str(url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def _run_online(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Held until the transaction ends: a second process waits, then finds the schema already at head.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_online(url: str) -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        # One writer transaction for the whole upgrade (on SQLite: BEGIN IMMEDIATE), committed at the end.
        async with writer(engine).begin() as connection:
            await connection.run_sync(_run_online)
    finally:
        await engine.dispose()


def _migrate_offline(url: str) -> None:
    context.configure(
        url=url, target_metadata=metadata, literal_binds=True, dialect_opts={"paramstyle": "named"}
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _migrate_offline(_url())
else:
    # `knotflow.store.migrate` calls Alembic on a thread of its own, so no event loop is running here.
    asyncio.run(_migrate_online(_url()))
