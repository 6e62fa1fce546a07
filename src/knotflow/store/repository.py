"""The one narrow interface to the database. Implemented with SQLAlchemy 2.0 async Core; the same code runs on
SQLite (aiosqlite, WAL) and PostgreSQL (asyncpg). Every method is a short transaction of its own.

The behaviour is pinned by tests/store/test_repository.py, which every backend must pass.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import ColumnElement, Insert, RowMapping, and_, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from knotflow.dsl import jsonutil
from knotflow.errors import BadRequest, KnotflowError, NotFound
from knotflow.ids import new_id
from knotflow.store import tables as t
from knotflow.store.engine import create_engine, writer
from knotflow.store.records import (
    FAIL,
    INTERRUPTED,
    RUNNING,
    ChatMessage,
    Conversation,
    InterruptRecord,
    NodeExecution,
    Run,
    Space,
    StoredFile,
    Token,
    Workflow,
    WorkflowVersion,
)

TOKEN_PREFIX = "pat_"
ORPHAN_ERROR_CODE = 5000
_AUTO_VERSION = re.compile(r"^v0\.0\.(\d+)$")
_PUBLISH_ATTEMPTS = 5
_NAME_ATTEMPTS = 5
_VERSION_MAX = 64  # the column's width

# Record fields map one to one onto columns; `extra` is the one JSON-encoded field.
_RUN_COLUMNS = tuple(f.name for f in fields(Run) if f.name != "extra")
_RUN_FINAL_COLUMNS = (
    "status",
    "output",
    "error_code",
    "error_message",
    "input_tokens",
    "output_tokens",
    "updated_at",
    "extra",
)
_NODE_COLUMNS = tuple(f.name for f in fields(NodeExecution))


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _dumps(value: Any) -> str:
    return jsonutil.dumps(value)


# --- row ↔ record ------------------------------------------------------------------------------------------
def _space(row: RowMapping) -> Space:
    return Space(id=row["id"], name=row["name"], created_at=int(row["created_at"]))


def _token(row: RowMapping) -> Token:
    space_ids = row["space_ids"]
    return Token(
        id=row["id"],
        name=row["name"],
        permissions=list(jsonutil.loads(row["permissions"])),
        space_ids=None if space_ids is None else list(jsonutil.loads(space_ids)),
        created_at=int(row["created_at"]),
    )


def _workflow(row: RowMapping) -> Workflow:
    return Workflow(
        id=row["id"],
        space_id=row["space_id"],
        name=row["name"],
        description=row["description"],
        icon_url=row["icon_url"],
        app_id=row["app_id"],
        requires_bot=bool(row["requires_bot"]),
        mode=row["mode"],
        canvas=jsonutil.loads(row["canvas"]) if "canvas" in row else {},
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
        creator_id=row["creator_id"],
        latest_version=row["latest_version"],
    )


def _version(row: RowMapping) -> WorkflowVersion:
    return WorkflowVersion(
        id=row["id"],
        workflow_id=row["workflow_id"],
        version=row["version"],
        canvas=jsonutil.loads(row["canvas"]),
        description=row["description"],
        created_at=int(row["created_at"]),
        creator_id=row["creator_id"],
    )


def _file(row: RowMapping) -> StoredFile:
    return StoredFile(
        id=row["id"],
        space_id=row["space_id"],
        file_name=row["file_name"],
        bytes=int(row["bytes"]),
        content_type=row["content_type"],
        created_at=int(row["created_at"]),
    )


def _run(row: RowMapping) -> Run:
    values = {name: row[name] for name in _RUN_COLUMNS}
    return Run(**values, extra=jsonutil.loads(row["extra"]))


def _node(row: RowMapping) -> NodeExecution:
    values = {name: row[name] for name in _NODE_COLUMNS}
    values["warnings"] = jsonutil.loads(row["warnings"]) if row["warnings"] else []
    return NodeExecution(**values)


def _run_row(run: Run) -> dict[str, Any]:
    row = {name: getattr(run, name) for name in _RUN_COLUMNS}
    row["extra"] = _dumps(run.extra)
    return row


def _node_row(execution: NodeExecution) -> dict[str, Any]:
    row = {name: getattr(execution, name) for name in _NODE_COLUMNS}
    row["warnings"] = _dumps(execution.warnings) if execution.warnings else None
    return row


def _last_by_key(items: Sequence[Any], key: str) -> list[Any]:
    """Drop earlier duplicates: one statement may not touch a row twice (PostgreSQL's ON CONFLICT refuses)."""
    if len(items) < 2:
        return list(items)
    return list({getattr(item, key): item for item in items}.values())


class Store:
    """Open with `await Store.open(url)`, close with `await store.close()`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._dialect = engine.dialect.name
        if self._dialect not in ("sqlite", "postgresql"):
            raise KnotflowError(f"knotflow stores its data in SQLite or PostgreSQL, not {self._dialect}")
        self._upsert_run = self._build_run_upsert()

    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect (SQLite: create the parent directory, WAL mode, busy timeout). Does not migrate."""
        engine = create_engine(url)
        store = cls(engine)
        # Connect now, so a wrong URL or an unreachable server fails here rather than on the first request.
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def close(self) -> None:
        await self._engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def _insert(self, table: Any) -> Any:
        """An INSERT that supports ON CONFLICT on the current dialect (both spell it the same way)."""
        return postgresql.insert(table) if self._dialect == "postgresql" else sqlite.insert(table)

    def _build_run_upsert(self) -> Insert:
        stmt = self._insert(t.runs)
        return stmt.on_conflict_do_update(
            index_elements=[t.runs.c.execute_id],
            set_={name: stmt.excluded[name] for name in _RUN_FINAL_COLUMNS},
        )

    # spaces ------------------------------------------------------------------------------------------
    async def ensure_space(self, space_id: str | None = None, name: str = "Personal") -> Space:
        """The space with this id, created if absent; with no id, the first space (created if none)."""
        query = select(t.spaces)
        query = (
            query.where(t.spaces.c.id == space_id)
            if space_id is not None
            else query.order_by(t.spaces.c.created_at, t.spaces.c.id).limit(1)
        )
        async with self._writer.begin() as conn:
            row = (await conn.execute(query)).mappings().first()
            if row is not None:
                return _space(row)
            now = time.time()
            space = Space(id=space_id or new_id(), name=name, created_at=int(now))
            await conn.execute(
                self._insert(t.spaces)
                .values(id=space.id, name=space.name, created_at=now)
                .on_conflict_do_nothing(index_elements=[t.spaces.c.id])
            )
        return space

    # tokens ------------------------------------------------------------------------------------------
    async def create_token(
        self, name: str, permissions: list[str], space_ids: list[str] | None
    ) -> tuple[Token, str]:
        """A new token; returns the record and the plaintext (`pat_` + 48 url-safe chars), stored hashed."""
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(36)
        now = time.time()
        token = Token(
            id=new_id(),
            name=name,
            permissions=list(permissions),
            space_ids=None if space_ids is None else list(space_ids),
            created_at=int(now),
        )
        async with self._writer.begin() as conn:
            await conn.execute(
                insert(t.tokens).values(
                    id=token.id,
                    name=name,
                    token_hash=hash_token(plaintext),
                    permissions=_dumps(token.permissions),
                    space_ids=None if token.space_ids is None else _dumps(token.space_ids),
                    created_at=now,
                )
            )
        return token, plaintext

    async def token_by_plaintext(self, plaintext: str) -> Token | None:
        if not plaintext.startswith(TOKEN_PREFIX):
            return None
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(select(t.tokens).where(t.tokens.c.token_hash == hash_token(plaintext))))
                .mappings()
                .first()
            )
        return None if row is None else _token(row)

    async def count_tokens(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(t.tokens))).scalar_one())

    # workflows ---------------------------------------------------------------------------------------
    async def save_workflow_draft(self, workflow: Workflow) -> Workflow:
        """Insert, or update the draft (canvas, name, description, app_id, requires_bot, mode) if the id
        exists.

        The space, icon, creator and creation time of an existing workflow are kept. `updated_at` only moves
        when something actually changed, so that re-saving an identical draft does not mark a published
        workflow as `published_draft`.
        """
        now = time.time()
        canvas = _dumps(workflow.canvas)
        draft = {
            "canvas": canvas,
            "name": workflow.name,
            "description": workflow.description,
            "app_id": workflow.app_id,
            "requires_bot": workflow.requires_bot,
            "mode": workflow.mode,
        }
        async with self._writer.begin() as conn:
            row = (
                (await conn.execute(select(t.workflows).where(t.workflows.c.id == workflow.id)))
                .mappings()
                .first()
            )
            if row is None:
                await conn.execute(
                    insert(t.workflows).values(
                        id=workflow.id,
                        space_id=workflow.space_id,
                        icon_url=workflow.icon_url,
                        creator_id=workflow.creator_id,
                        created_at=now,
                        updated_at=now,
                        latest_version=None,
                        published_at=None,
                        **draft,
                    )
                )
            elif any(row[key] != value for key, value in draft.items()):
                await conn.execute(
                    update(t.workflows).where(t.workflows.c.id == workflow.id).values(updated_at=now, **draft)
                )
            row = (
                (await conn.execute(select(t.workflows).where(t.workflows.c.id == workflow.id)))
                .mappings()
                .one()
            )
        return _workflow(row)

    async def get_workflow(self, workflow_id: str, *, with_canvas: bool = True) -> Workflow | None:
        """With `latest_version` filled from the newest published version. `with_canvas=False` skips reading
        and parsing the draft canvas (an empty dict then), which is all a run needs: it runs a version."""
        w = t.workflows
        columns = list(w.c) if with_canvas else [c for c in w.c if c.name != "canvas"]
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(*columns).where(w.c.id == workflow_id))).mappings().first()
        return None if row is None else _workflow(row)

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
        """A page of workflows (newest first) and whether more exist.

        `published_online`: has a published version; `unpublished_draft`: has none; `published_draft`: has
        one, and the draft changed after the latest version was published. An unknown status: BadRequest.
        """
        w = t.workflows
        conditions: list[ColumnElement[bool]] = []
        if space_ids is not None:
            if not space_ids:
                return [], False
            conditions.append(w.c.space_id.in_(space_ids))
        if mode:
            conditions.append(w.c.mode == mode)
        if app_id:
            conditions.append(w.c.app_id == app_id)
        if publish_status in (None, "", "all"):
            pass
        elif publish_status == "published_online":
            conditions.append(w.c.latest_version.is_not(None))
        elif publish_status == "unpublished_draft":
            conditions.append(w.c.latest_version.is_(None))
        elif publish_status == "published_draft":
            conditions.append(and_(w.c.latest_version.is_not(None), w.c.updated_at > w.c.published_at))
        else:
            raise BadRequest(f"unknown publish_status {publish_status!r}")
        query = (
            select(w)
            .where(*conditions)
            .order_by(w.c.created_at.desc(), w.c.id.desc())
            .offset(max(offset, 0))
            .limit(max(limit, 0) + 1)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_workflow(row) for row in rows[:limit]], len(rows) > limit

    async def publish_version(
        self, workflow_id: str, version: str | None, canvas: dict, description: str = ""
    ) -> WorkflowVersion:
        """Snapshot `canvas` as an immutable version. `version=None` → next `v0.0.N`.

        Unknown workflow → NotFound; an existing version string → BadRequest.
        """
        if version is not None and not (0 < len(version.strip()) == len(version) <= _VERSION_MAX):
            raise BadRequest(f"a version is 1 to {_VERSION_MAX} characters, without surrounding spaces")
        canvas_text = _dumps(canvas)
        for _attempt in range(_PUBLISH_ATTEMPTS):
            try:
                return await self._publish_once(workflow_id, version, canvas_text, description)
            except IntegrityError:
                # A concurrent publish took the same sequence number or version name; look again.
                if version is not None and await self.get_version(workflow_id, version) is not None:
                    raise BadRequest(f"workflow {workflow_id} already has a version {version}") from None
        raise BadRequest(f"workflow {workflow_id} is being published concurrently; try again")

    async def _publish_once(
        self, workflow_id: str, version: str | None, canvas_text: str, description: str
    ) -> WorkflowVersion:
        v = t.workflow_versions
        async with self._writer.begin() as conn:
            # Lock the workflow's row (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) so
            # concurrent publishes of one workflow take turns instead of colliding on the next number.
            creator = (
                await conn.execute(
                    select(t.workflows.c.creator_id).where(t.workflows.c.id == workflow_id).with_for_update()
                )
            ).first()
            if creator is None:
                raise NotFound(f"workflow {workflow_id} does not exist")
            existing = (
                await conn.execute(select(v.c.version, v.c.seq).where(v.c.workflow_id == workflow_id))
            ).all()
            names = {row.version for row in existing}
            if version is None:
                numbers = [int(m.group(1)) for name in names if (m := _AUTO_VERSION.match(name))]
                version = f"v0.0.{max(numbers, default=0) + 1}"
            elif version in names:
                raise BadRequest(f"workflow {workflow_id} already has a version {version}")
            now = time.time()
            record = WorkflowVersion(
                id=new_id(),
                workflow_id=workflow_id,
                version=version,
                canvas=jsonutil.loads(canvas_text),  # a copy: the caller's dict may change, the version not
                description=description,
                created_at=int(now),
                creator_id=creator[0],
            )
            await conn.execute(
                insert(v).values(
                    id=record.id,
                    workflow_id=workflow_id,
                    version=version,
                    seq=max((row.seq for row in existing), default=0) + 1,
                    canvas=canvas_text,
                    description=description,
                    creator_id=record.creator_id,
                    created_at=now,
                )
            )
            await conn.execute(
                update(t.workflows)
                .where(t.workflows.c.id == workflow_id)
                .values(latest_version=version, published_at=now)
            )
        return record

    async def get_version(self, workflow_id: str, version: str | None) -> WorkflowVersion | None:
        """A named version, or the latest published one when `version` is None."""
        v = t.workflow_versions
        query = select(v).where(v.c.workflow_id == workflow_id)
        query = query.where(v.c.version == version) if version else query.order_by(v.c.seq.desc()).limit(1)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _version(row)

    async def list_versions(
        self, workflow_id: str, *, offset: int = 0, limit: int = 10
    ) -> tuple[list[WorkflowVersion], bool]:
        """A page of a workflow's versions, newest first, and whether more exist."""
        v = t.workflow_versions
        query = (
            select(v)
            .where(v.c.workflow_id == workflow_id)
            .order_by(v.c.seq.desc())
            .offset(max(offset, 0))
            .limit(max(limit, 0) + 1)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_version(row) for row in rows[:limit]], len(rows) > limit

    # files -------------------------------------------------------------------------------------------
    async def add_file(
        self, file_id: str, space_id: str, file_name: str, size: int, content_type: str
    ) -> StoredFile:
        """Record an uploaded file whose bytes are already in the file storage under `file_id`."""
        now = time.time()
        async with self._writer.begin() as conn:
            await conn.execute(
                insert(t.files).values(
                    id=file_id,
                    space_id=space_id,
                    file_name=file_name,
                    bytes=size,
                    content_type=content_type,
                    created_at=now,
                )
            )
        return StoredFile(
            id=file_id,
            space_id=space_id,
            file_name=file_name,
            bytes=size,
            content_type=content_type,
            created_at=int(now),
        )

    async def get_file(self, file_id: str) -> StoredFile | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.files).where(t.files.c.id == file_id))).mappings().first()
        return None if row is None else _file(row)

    # runs --------------------------------------------------------------------------------------------
    async def write_runs(
        self, runs: list[Run], finished: list[Run], node_executions: list[NodeExecution]
    ) -> None:
        """One transaction: insert `runs`, upsert the final state of `finished`, insert `node_executions`.

        A run both started and finished in this batch is written once, in its final state.
        """
        final = _last_by_key(finished, "execute_id")
        final_ids = {run.execute_id for run in final}
        started = [run for run in _last_by_key(runs, "execute_id") if run.execute_id not in final_ids]
        async with self._writer.begin() as conn:
            if started:
                await conn.execute(_INSERT_RUN, [_run_row(run) for run in started])
            if final:
                await conn.execute(self._upsert_run, [_run_row(run) for run in final])
            if node_executions:
                await conn.execute(_INSERT_NODE, [_node_row(node) for node in node_executions])

    async def get_run(self, execute_id: str) -> Run | None:
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(select(t.runs).where(t.runs.c.execute_id == execute_id)))
                .mappings()
                .first()
            )
        return None if row is None else _run(row)

    async def get_node_execution(self, execute_id: str, node_execute_uuid: str) -> NodeExecution | None:
        n = t.node_executions
        query = select(n).where(n.c.id == node_execute_uuid, n.c.execute_id == execute_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _node(row)

    async def list_node_executions(self, execute_id: str) -> list[NodeExecution]:
        """A run's node executions in the order they started."""
        n = t.node_executions
        query = (
            select(n).where(n.c.execute_id == execute_id).order_by(n.c.started_at, n.c.finished_at, n.c.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_node(row) for row in rows]

    async def mark_orphaned_runs(self, older_than: float, reason: str, status: str = RUNNING) -> int:
        """Runs still in `status` (Running, or Interrupted for unanswered questions) with updated_at < older_than
        become `Fail` with `reason`; returns how many."""
        r = t.runs
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(r)
                .where(r.c.status == status, r.c.updated_at < older_than)
                .values(
                    status=FAIL, error_code=ORPHAN_ERROR_CODE, error_message=reason, updated_at=time.time()
                )
            )
        return int(result.rowcount)

    # interrupts --------------------------------------------------------------------------------------
    async def save_interrupt(self, run: Run, interrupt: InterruptRecord) -> None:
        """One transaction: the run's Interrupted state and the question with its checkpoint."""
        async with self._writer.begin() as conn:
            await conn.execute(self._upsert_run, [_run_row(run)])
            await conn.execute(insert(t.interrupts), [_interrupt_row(interrupt)])

    async def get_interrupt(self, execute_id: str, event_id: str) -> InterruptRecord | None:
        i = t.interrupts
        query = select(i).where(i.c.execute_id == execute_id, i.c.event_id == event_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else InterruptRecord(**dict(row))

    async def claim_interrupt(self, execute_id: str, event_id: str) -> bool:
        """Compare-and-swap: mark the question answered and the run Running, only if neither happened yet.
        Of concurrent resumes of one event exactly one gets True."""
        i, r = t.interrupts, t.runs
        now = time.time()
        try:
            async with self._writer.begin() as conn:
                claimed = await conn.execute(
                    update(i)
                    .where(i.c.execute_id == execute_id, i.c.event_id == event_id, i.c.resumed_at.is_(None))
                    .values(resumed_at=now)
                )
                moved = await conn.execute(
                    update(r).where(r.c.execute_id == execute_id, r.c.status == INTERRUPTED)
                    .values(status=RUNNING, updated_at=now)
                )
                if claimed.rowcount != 1 or moved.rowcount != 1:
                    raise _LostRace  # leaving the block by an exception rolls both updates back
        except _LostRace:
            return False
        return True


    # conversations -----------------------------------------------------------------------------------
    async def create_conversation(self, space_id: str, connector_id: str, *, name: str = "",
                                  meta_data: dict[str, str] | None = None, creator_id: str = "") -> Conversation:
        conversation = _new_conversation(space_id, connector_id, name, meta_data, creator_id)
        async with self._writer.begin() as conn:
            await conn.execute(insert(t.conversations).values(**_conversation_row(conversation)))
        return conversation

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        c = t.conversations
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(c).where(c.c.id == conversation_id))).mappings().first()
        if row is None:
            return None
        values = dict(row)
        values["meta_data"] = jsonutil.loads(values["meta_data"])
        return Conversation(**values)

    async def set_pending_question(self, conversation_id: str, event_id: str | None, workflow_id: str | None = None,
                                   kind: int | None = None, *, replacing: str | None = None) -> bool:
        """Record the question the conversation waits on (None: none). With `replacing`, only if the pending
        question is still that one (a compare-and-swap); returns whether the row changed."""
        c = t.conversations
        query = update(c).where(c.c.id == conversation_id)
        if replacing is not None:
            query = query.where(c.c.pending_event == replacing)
        async with self._writer.begin() as conn:
            result = await conn.execute(query.values(pending_event=event_id, pending_workflow=workflow_id,
                                                     pending_kind=kind, updated_at=time.time()))
        return int(result.rowcount) == 1

    async def claim_conversation(self, conversation_id: str, chat_id: str, now: float, lease: float) -> bool:
        """Mark a chat as running in the conversation until `now + lease`, unless another chat holds a lease
        that has not run out (a compare-and-set on the row, so it holds across processes)."""
        c = t.conversations
        query = (
            update(c)
            .where(c.c.id == conversation_id, (c.c.running_chat.is_(None)) | (c.c.running_until < now))
            .values(running_chat=chat_id, running_until=now + lease)
        )
        async with self._writer.begin() as conn:
            result = await conn.execute(query)
        return int(result.rowcount) == 1

    async def renew_conversation(self, conversation_id: str, chat_id: str, until: float) -> bool:
        """Extend the chat's lease; False when the chat no longer holds the conversation."""
        c = t.conversations
        query = update(c).where(c.c.id == conversation_id, c.c.running_chat == chat_id).values(running_until=until)
        async with self._writer.begin() as conn:
            result = await conn.execute(query)
        return int(result.rowcount) == 1

    async def release_conversation(self, conversation_id: str, chat_id: str) -> None:
        c = t.conversations
        query = (
            update(c).where(c.c.id == conversation_id, c.c.running_chat == chat_id)
            .values(running_chat=None, running_until=None)
        )
        async with self._writer.begin() as conn:
            await conn.execute(query)

    async def named_conversation(self, scope: ConversationScope, name: str, *, renew: bool = False,
                                 creator_id: str = "") -> Conversation | None:
        """The conversation `name` stands for in `scope` (space, app, connector), created and bound if
        the name is new. With `renew`, a new conversation takes the name's place (Coze Studio's
        UpdateConversation), and a name never bound is None."""
        n = t.conversation_names
        key = and_(n.c.space_id == scope.space_id, n.c.app_id == scope.app_id,
                   n.c.connector_id == scope.connector_id, n.c.name == name)
        for _ in range(_NAME_ATTEMPTS):
            async with self._engine.connect() as conn:
                bound = (await conn.execute(select(n.c.conversation_id).where(key))).scalar()
            if bound is not None and not renew:
                found = await self.get_conversation(bound)
                if found is not None:
                    return found
            if bound is None and renew:
                return None
            conversation = _new_conversation(scope.space_id, scope.connector_id, name, None, creator_id)
            try:
                async with self._writer.begin() as conn:
                    await conn.execute(insert(t.conversations).values(**_conversation_row(conversation)))
                    if bound is None:
                        await conn.execute(insert(n).values(
                            space_id=scope.space_id, app_id=scope.app_id, connector_id=scope.connector_id,
                            name=name, conversation_id=conversation.id, updated_at=conversation.created_at))
                    else:
                        moved = await conn.execute(update(n).where(key, n.c.conversation_id == bound).values(
                            conversation_id=conversation.id, updated_at=conversation.created_at))
                        if moved.rowcount != 1:
                            raise _LostRace
            except (IntegrityError, _LostRace):
                continue  # another process bound or renewed the name just now: read it again
            return conversation
        raise BadRequest(f"conversation name {name!r} is being changed concurrently; try again")

    async def add_messages(self, messages: Sequence[ChatMessage]) -> None:
        if not messages:
            return
        async with self._writer.begin() as conn:
            await conn.execute(insert(t.messages), [{f.name: getattr(m, f.name) for f in fields(m)} for m in messages])

    async def recent_rounds(self, conversation_id: str, rounds: int) -> list[list[ChatMessage]]:
        """The conversation's last `rounds` rounds (chats), oldest first, each its messages in order."""
        m = t.messages
        if rounds <= 0:
            return []
        latest = (
            select(m.c.chat_id).where(m.c.conversation_id == conversation_id).group_by(m.c.chat_id)
            .order_by(func.min(m.c.created_at).desc(), m.c.chat_id.desc()).limit(rounds)
        )
        query = (
            select(m).where(m.c.conversation_id == conversation_id, m.c.chat_id.in_(latest.scalar_subquery()))
            .order_by(m.c.created_at, m.c.id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        grouped: dict[str, list[ChatMessage]] = {}
        for row in rows:
            grouped.setdefault(row["chat_id"], []).append(ChatMessage(**dict(row)))
        return list(grouped.values())


class _LostRace(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ConversationScope:
    """Where a conversation name is looked up: per space, app and connector (see tables.conversation_names)."""

    space_id: str
    app_id: str  # the app's or bot's id, "" for neither
    connector_id: str


def _new_conversation(space_id: str, connector_id: str, name: str, meta_data: dict[str, str] | None,
                      creator_id: str) -> Conversation:
    now = time.time()
    return Conversation(id=new_id(), space_id=space_id, connector_id=connector_id, name=name,
                        meta_data=dict(meta_data or {}), creator_id=creator_id, created_at=now, updated_at=now)


def _conversation_row(conversation: Conversation) -> dict[str, Any]:
    row = {f.name: getattr(conversation, f.name) for f in fields(conversation)}
    row["meta_data"] = _dumps(conversation.meta_data)
    return row


def _interrupt_row(interrupt: InterruptRecord) -> dict[str, Any]:
    return {f.name: getattr(interrupt, f.name) for f in fields(interrupt)}


# Built once: the hot path only binds parameters (SQLAlchemy caches the compiled form per dialect).
_INSERT_RUN = insert(t.runs)
_INSERT_NODE = insert(t.node_executions)
