"""Workflows (their drafts) and their published, immutable versions."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from knotflow.dsl import jsonutil
from knotflow.errors import NotFound
from knotflow.ids import new_id
from knotflow.store import tables as t
from knotflow.store.base import Repository, dumps
from knotflow.store.records import Workflow, WorkflowVersion


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
        published_at=row["published_at"],
        draft_changed=row["published_at"] is not None and row["updated_at"] > row["published_at"],
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


VersionNamer = Callable[[Collection[str]], str]  # existing version names → the new version's name


class PublishStatus(StrEnum):
    """Which workflows a listing keeps, by what their drafts and versions say (Coze's publish_status)."""

    ALL = "all"
    PUBLISHED_ONLINE = "published_online"  # has a published version
    PUBLISHED_DRAFT = "published_draft"  # has one, and the draft changed after the latest was published
    UNPUBLISHED_DRAFT = "unpublished_draft"  # has none


class WorkflowStore(Repository):
    async def save_workflow_draft(self, workflow: Workflow) -> Workflow:
        """Insert, or update the draft (canvas, name, description, app_id, requires_bot, mode) if the id
        exists.

        The space, icon, creator and creation time of an existing workflow are kept. `updated_at` only moves
        when something actually changed, so that re-saving an identical draft does not mark a published
        workflow as `published_draft`.
        """
        now = time.time()
        canvas = dumps(workflow.canvas)
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
        publish_status: PublishStatus = PublishStatus.ALL,
        search: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[Workflow], bool]:
        """A page of workflows (newest first) and whether more exist; `search`: names containing it, in any
        case."""
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
        if search:
            conditions.append(func.lower(w.c.name).contains(search.lower(), autoescape=True))
        if publish_status == PublishStatus.PUBLISHED_ONLINE:
            conditions.append(w.c.latest_version.is_not(None))
        elif publish_status == PublishStatus.UNPUBLISHED_DRAFT:
            conditions.append(w.c.latest_version.is_(None))
        elif publish_status == PublishStatus.PUBLISHED_DRAFT:
            conditions.append(and_(w.c.latest_version.is_not(None), w.c.updated_at > w.c.published_at))
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

    async def add_version(
        self, workflow_id: str, name: VersionNamer, canvas: dict[str, Any], description: str = ""
    ) -> WorkflowVersion | None:
        """Snapshot `canvas` as an immutable version of the workflow, named by `name(existing version names)`
        (which raises when it refuses them), and make it the latest. None when a concurrent publish took the
        name or sequence number first: the caller decides whether to try again. Unknown workflow: NotFound."""
        v = t.workflow_versions
        canvas_text = dumps(canvas)
        try:
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
                version = name({row.version for row in existing})
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
        except IntegrityError:
            return None
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
