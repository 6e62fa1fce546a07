"""The one narrow interface to the database. Implemented with SQLAlchemy 2.0 async; the same code runs on SQLite
(aiosqlite, WAL) and PostgreSQL (asyncpg). Every method is a short transaction of its own.

INTERFACE CONTRACT (implementation pending — see tests/store/test_repository.py once written).
"""

from __future__ import annotations

from knotflow.store.records import NodeExecution, Run, Space, Token, Workflow, WorkflowVersion


class Store:
    """Open with `await Store.open(url)`, close with `await store.close()`."""

    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect (SQLite: create the parent directory, WAL mode, busy timeout). Does not migrate."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # spaces ------------------------------------------------------------------------------------------
    async def ensure_space(self, space_id: str | None = None, name: str = "Personal") -> Space:
        """The space with this id, created if absent; with no id, the first space (created if none)."""
        raise NotImplementedError

    # tokens ------------------------------------------------------------------------------------------
    async def create_token(self, name: str, permissions: list[str], space_ids: list[str] | None) -> tuple[Token, str]:
        """A new token; returns the record and the plaintext (`pat_` + 48 url-safe chars), stored only hashed."""
        raise NotImplementedError

    async def token_by_plaintext(self, plaintext: str) -> Token | None:
        raise NotImplementedError

    async def count_tokens(self) -> int:
        raise NotImplementedError

    # workflows ---------------------------------------------------------------------------------------
    async def save_workflow_draft(self, workflow: Workflow) -> Workflow:
        """Insert, or update the draft (canvas, name, description, app_id, requires_bot) if the id exists."""
        raise NotImplementedError

    async def get_workflow(self, workflow_id: str) -> Workflow | None:
        """With `latest_version` filled from the newest published version."""
        raise NotImplementedError

    async def list_workflows(
        self,
        *,
        space_ids: list[str] | None,
        mode: str | None = None,
        app_id: str | None = None,
        publish_status: str | None = None,  # all | published_online | published_draft | unpublished_draft
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[Workflow], bool]:
        """A page of workflows (newest first) and whether more exist."""
        raise NotImplementedError

    async def publish_version(
        self, workflow_id: str, version: str | None, canvas: dict, description: str = ""
    ) -> WorkflowVersion:
        """Snapshot `canvas` as an immutable version. `version=None` → next `v0.0.N`. Existing version → error."""
        raise NotImplementedError

    async def get_version(self, workflow_id: str, version: str | None) -> WorkflowVersion | None:
        """A named version, or the latest published one when `version` is None."""
        raise NotImplementedError

    async def list_versions(
        self, workflow_id: str, *, offset: int = 0, limit: int = 10
    ) -> tuple[list[WorkflowVersion], bool]:
        raise NotImplementedError

    # runs --------------------------------------------------------------------------------------------
    async def write_runs(
        self, runs: list[Run], finished: list[Run], node_executions: list[NodeExecution]
    ) -> None:
        """One transaction: insert `runs`, upsert the final state of `finished`, insert `node_executions`."""
        raise NotImplementedError

    async def get_run(self, execute_id: str) -> Run | None:
        raise NotImplementedError

    async def get_node_execution(self, execute_id: str, node_execute_uuid: str) -> NodeExecution | None:
        raise NotImplementedError

    async def list_node_executions(self, execute_id: str) -> list[NodeExecution]:
        raise NotImplementedError

    async def mark_orphaned_runs(self, older_than: float, reason: str) -> int:
        """Runs still `Running` whose updated_at < older_than become `Fail` with `reason`. Returns how many."""
        raise NotImplementedError
