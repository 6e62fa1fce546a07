"""Runs and their node executions (the trace), written in batches by the service's run recorder."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import ColumnElement, Insert, RowMapping, and_, insert, or_, select, update

from knotflow.dsl import jsonutil
from knotflow.store import tables as t
from knotflow.store.base import Repository, dumps, last_by_key
from knotflow.store.records import FAIL, QUEUED, RUNNING, NodeExecution, Run, RunSummary

ORPHAN_ERROR_CODE = 5000

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
    "owner",
    "lease_until",
)
_NODE_COLUMNS = tuple(f.name for f in fields(NodeExecution))
# Built once: the hot path only binds parameters (SQLAlchemy caches the compiled form per dialect).
_INSERT_RUN = insert(t.runs)
_INSERT_NODE = insert(t.node_executions)


def _run(row: RowMapping) -> Run:
    values = {name: row[name] for name in _RUN_COLUMNS}
    return Run(**values, extra=jsonutil.loads(row["extra"]))

def _node(row: RowMapping) -> NodeExecution:
    values = {name: row[name] for name in _NODE_COLUMNS}
    values["warnings"] = jsonutil.loads(row["warnings"]) if row["warnings"] else []
    return NodeExecution(**values)

def run_row(run: Run) -> dict[str, Any]:
    row = {name: getattr(run, name) for name in _RUN_COLUMNS}
    row["extra"] = dumps(run.extra)
    return row

def _node_row(execution: NodeExecution) -> dict[str, Any]:
    row = {name: getattr(execution, name) for name in _NODE_COLUMNS}
    row["warnings"] = dumps(execution.warnings) if execution.warnings else None
    return row


@dataclass(slots=True, frozen=True)
class RunFilter:
    """Which runs a listing keeps; None keeps all. `space_ids` None: every space, [] none."""

    space_ids: list[str] | None
    workflow_id: str | None = None
    status: str | None = None
    connector_id: str | None = None
    since: float | None = None  # created at or after
    until: float | None = None  # created before


RunCursor = tuple[float, str]  # (created_at, execute_id) of the last run of the previous page

_SUMMARY_COLUMNS = ("execute_id", "workflow_id", "version", "space_id", "run_mode", "status", "connector_id",
                    "error_code", "error_message", "input_tokens", "output_tokens", "created_at", "updated_at")


class RunStore(Repository):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._upsert_run = self._build_run_upsert()

    def _build_run_upsert(self) -> Insert:
        stmt = self._insert(t.runs)
        return stmt.on_conflict_do_update(
            index_elements=[t.runs.c.execute_id],
            set_={name: stmt.excluded[name] for name in _RUN_FINAL_COLUMNS},
        )

    async def write_runs(
        self, runs: list[Run], finished: list[Run], node_executions: list[NodeExecution]
    ) -> None:
        """One transaction: insert `runs`, upsert the final state of `finished`, insert `node_executions`.

        A run both started and finished in this batch is written once, in its final state.
        """
        final = last_by_key(finished, "execute_id")
        final_ids = {run.execute_id for run in final}
        started = [run for run in last_by_key(runs, "execute_id") if run.execute_id not in final_ids]
        async with self._writer.begin() as conn:
            if started:
                await conn.execute(_INSERT_RUN, [run_row(run) for run in started])
            if final:
                await conn.execute(self._upsert_run, [run_row(run) for run in final])
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

    async def list_runs(self, where: RunFilter, *, after: RunCursor | None = None, limit: int = 50,
                        ) -> tuple[list[RunSummary], bool]:
        """A page of runs, newest first, after the cursor's run; and whether more exist. Keyset paging: runs
        started meanwhile do not shift the later pages."""
        r, w = t.runs, t.workflows
        if where.space_ids is not None and not where.space_ids:
            return [], False
        conditions: list[ColumnElement[bool]] = []
        if where.space_ids is not None:
            conditions.append(r.c.space_id.in_(where.space_ids))
        for column, value in ((r.c.workflow_id, where.workflow_id), (r.c.status, where.status),
                              (r.c.connector_id, where.connector_id)):
            if value is not None:
                conditions.append(column == value)
        if where.since is not None:
            conditions.append(r.c.created_at >= where.since)
        if where.until is not None:
            conditions.append(r.c.created_at < where.until)
        if after is not None:
            conditions.append(or_(r.c.created_at < after[0],
                                  and_(r.c.created_at == after[0], r.c.execute_id < after[1])))
        query = (
            select(*(r.c[name] for name in _SUMMARY_COLUMNS), w.c.name.label("workflow_name"))
            .select_from(r.outerjoin(w, w.c.id == r.c.workflow_id))
            .where(*conditions)
            .order_by(r.c.created_at.desc(), r.c.execute_id.desc())
            .limit(max(limit, 0) + 1)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        summaries = [RunSummary(**{name: row[name] for name in _SUMMARY_COLUMNS},
                                workflow_name=row["workflow_name"] or "") for row in rows[:limit]]
        return summaries, len(rows) > limit

    async def renew_leases(self, owner: str, until: float) -> int:
        """Extend the lease of every run `owner` is running; how many it holds."""
        r = t.runs
        async with self._writer.begin() as conn:
            result = await conn.execute(
                update(r).where(r.c.owner == owner, r.c.status == RUNNING).values(lease_until=until))
        return int(result.rowcount)

    async def lapsed_runs(self, now: float, limit: int = 500) -> list[str]:
        """Runs still Running whose owner stopped renewing their lease before `now`: their process is gone."""
        r = t.runs
        query = (select(r.c.execute_id).where(r.c.status == RUNNING, r.c.lease_until < now)
                 .order_by(r.c.lease_until).limit(limit))
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).scalars().all())

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

    async def claim_queued_run(self, execute_id: str, owner: str, lease_until: float, now: float) -> bool:
        """Compare-and-swap: a Queued run becomes Running, held by `owner`. Of several deliveries of one queued
        run exactly one gets True."""
        r = t.runs
        async with self._writer.begin() as conn:
            moved = await conn.execute(update(r).where(r.c.execute_id == execute_id, r.c.status == QUEUED)
                                       .values(status=RUNNING, owner=owner, lease_until=lease_until, updated_at=now))
        return int(moved.rowcount) == 1

    async def end_waiting_run(self, execute_id: str, status: str, reason: str, now: float) -> bool:
        """Compare-and-swap: a run still in `status` (Queued or Interrupted: nobody runs it) fails with `reason`."""
        r = t.runs
        async with self._writer.begin() as conn:
            ended = await conn.execute(update(r).where(r.c.execute_id == execute_id, r.c.status == status).values(
                status=FAIL, error_code=ORPHAN_ERROR_CODE, error_message=reason, owner=None, lease_until=None,
                updated_at=now))
        return int(ended.rowcount) == 1
