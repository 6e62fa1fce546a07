"""The one facade the services use: every aggregate's store embedded into `Store` (Coze Studio's repo package
does the same with Go's interface embedding). Open with `await Store.open(url)`, close with `await
store.close()`.

The behaviour is pinned by tests/store/, which every backend (SQLite, PostgreSQL) must pass.
"""

from __future__ import annotations

from knotflow.store.conversations import ConversationScope, ConversationStore
from knotflow.store.databases import DatabaseStore
from knotflow.store.engine import create_engine
from knotflow.store.files import FileStore
from knotflow.store.interrupts import InterruptStore
from knotflow.store.messages import MessageStore
from knotflow.store.owners import OwnerStore
from knotflow.store.runs import RunCursor, RunFilter, RunStore
from knotflow.store.sessions import SessionStore
from knotflow.store.tokens import TokenStore
from knotflow.store.variables import VariableStore
from knotflow.store.workflows import PublishStatus, VersionNamer, WorkflowStore


class Store(WorkflowStore, InterruptStore, RunStore, ConversationStore, MessageStore, DatabaseStore, TokenStore,
            FileStore, SessionStore, OwnerStore, VariableStore):
    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect (SQLite: create the parent directory, WAL mode, busy timeout). Does not migrate."""
        engine = create_engine(url)
        try:
            store = cls(engine)
            # Connect now, so a wrong URL or an unreachable server fails here rather than on the first request.
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def close(self) -> None:
        await self._engine.dispose()


__all__ = ["ConversationScope", "PublishStatus", "RunCursor", "RunFilter", "Store", "VersionNamer"]
