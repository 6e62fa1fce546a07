"""Creating the async engine the same way for the store and for migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

# Execution option that marks a transaction as a writer. On SQLite it turns the transaction's BEGIN into
# BEGIN IMMEDIATE, so a writer takes the write lock up front and waits for it (busy timeout) instead of
# failing with "database is locked" when it upgrades a read lock that another process is also upgrading.
WRITE_OPTION = "knotflow_write"
SQLITE_BUSY_TIMEOUT_MS = 15_000


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _prepare_sqlite_path(url: URL) -> None:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 driver (its legacy mode skips BEGIN before SELECT and DDL); the
    # "begin" listener below emits it, so reads see one snapshot and migrations are transactional.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL itself needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL survives an application crash; only a power loss may drop the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# A URL without a driver gets the async one knotflow ships with ("postgresql://…" is what people paste).
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}


def normalize_url(url: str | URL) -> URL:
    parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def create_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url`; on SQLite: data directory created, WAL, busy timeout, explicit BEGIN."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, **kwargs)
    _prepare_sqlite_path(parsed)
    # Enough pooled connections for a server's concurrent requests: opening one costs a thread, a connect and
    # the PRAGMAs, which under load showed up as a large share of each request.
    if "poolclass" not in kwargs:  # aiosqlite's default is NullPool: a new connection for every use
        kwargs.update(poolclass=AsyncAdaptedQueuePool, pool_size=32, max_overflow=8)
    engine = create_async_engine(parsed, **kwargs)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) whose transactions are marked as writers."""
    return engine.execution_options(**{WRITE_OPTION: True})
