"""What every aggregate's store shares: the engine, its writer and the SQL dialect's spelling of an upsert.

Each aggregate (workflows, runs, interrupts, conversations, tokens and spaces, files, bots and apps, variables)
has a store of its own in this package; `knotflow.store.repository.Store` embeds them all into the one facade the
services use, as Coze Studio's `repo/*_store.go` are embedded into one `Repository` interface. Every method is a
short transaction of its own. The same code runs on SQLite (aiosqlite, WAL) and PostgreSQL (asyncpg).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from knotflow.dsl import jsonutil
from knotflow.errors import KnotflowError
from knotflow.store.engine import writer


class Repository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._dialect = engine.dialect.name
        if self._dialect not in ("sqlite", "postgresql"):
            raise KnotflowError(f"knotflow stores its data in SQLite or PostgreSQL, not {self._dialect}")

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def _insert(self, table: Any) -> Any:
        """An INSERT that supports ON CONFLICT on the current dialect (both spell it the same way)."""
        return postgresql.insert(table) if self._dialect == "postgresql" else sqlite.insert(table)


class LostRace(Exception):
    """Raised inside a transaction to roll it back when a compare-and-swap found the row changed."""


def dumps(value: Any) -> str:
    return jsonutil.dumps(value)


def last_by_key(items: Sequence[Any], key: str) -> list[Any]:
    """Drop earlier duplicates: one statement may not touch a row twice (PostgreSQL's ON CONFLICT refuses)."""
    if len(items) < 2:
        return list(items)
    return list({getattr(item, key): item for item in items}.values())
