"""Interrupts: the questions runs wait on, each with the checkpoint its run resumes from."""

from __future__ import annotations

import time
from dataclasses import fields
from typing import Any

from sqlalchemy import and_, insert, select, update

from knotflow.store import tables as t
from knotflow.store.base import LostRace
from knotflow.store.records import FAIL, INTERRUPTED, RUNNING, InterruptRecord, Run
from knotflow.store.runs import ORPHAN_ERROR_CODE, RunStore, run_row


def _interrupt_row(interrupt: InterruptRecord) -> dict[str, Any]:
    return {f.name: getattr(interrupt, f.name) for f in fields(interrupt)}


# Built once: the hot path only binds parameters (SQLAlchemy caches the compiled form per dialect).
class InterruptStore(RunStore):
    async def save_interrupt(self, run: Run, interrupt: InterruptRecord) -> None:
        """One transaction: the run's Interrupted state and the question with its checkpoint."""
        async with self._writer.begin() as conn:
            await conn.execute(self._upsert_run, [run_row(run)])
            await conn.execute(insert(t.interrupts), [_interrupt_row(interrupt)])

    async def get_interrupt(self, execute_id: str, event_id: str) -> InterruptRecord | None:
        i = t.interrupts
        query = select(i).where(i.c.execute_id == execute_id, i.c.event_id == event_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else InterruptRecord(**dict(row))

    async def answered_interrupt(self, execute_id: str) -> InterruptRecord | None:
        """The run's latest answered question: its resume is the run's latest stream."""
        i = t.interrupts
        query = (select(i).where(i.c.execute_id == execute_id, i.c.resumed_at.is_not(None))
                 .order_by(i.c.created_at.desc(), i.c.event_id.desc()).limit(1))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else InterruptRecord(**dict(row))

    async def pending_interrupt(self, execute_id: str) -> InterruptRecord | None:
        """The question the run waits on: its latest one not yet answered."""
        i = t.interrupts
        query = (select(i).where(i.c.execute_id == execute_id, i.c.resumed_at.is_(None))
                 .order_by(i.c.created_at.desc()).limit(1))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else InterruptRecord(**dict(row))

    async def claim_interrupt(self, execute_id: str, event_id: str, owner: str, lease_until: float) -> bool:
        """Compare-and-swap: mark the question answered and the run Running (held by `owner`), only if neither
        happened yet. Of concurrent resumes of one event exactly one gets True."""
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
                    .values(status=RUNNING, updated_at=now, owner=owner, lease_until=lease_until)
                )
                if claimed.rowcount != 1 or moved.rowcount != 1:
                    raise LostRace  # leaving the block by an exception rolls both updates back
        except LostRace:
            return False
        return True

    async def end_lapsed_run(self, execute_id: str, now: float, reason: str) -> str | None:
        """End a run whose lease lapsed before `now` (its process is gone), in one transaction: if it was
        running because its latest question had been answered, the question is handed back (the run waits for
        it again, its checkpoint unchanged) and INTERRUPTED is returned; otherwise it fails with `reason` and FAIL
        is returned. None when the run is no longer a lapsed Running run (its owner renewed it, or another
        server ended it first)."""
        i, r = t.interrupts, t.runs
        lapsed = and_(r.c.execute_id == execute_id, r.c.status == RUNNING, r.c.lease_until < now)
        async with self._writer.begin() as conn:
            latest = (await conn.execute(
                select(i.c.event_id, i.c.resumed_at).where(i.c.execute_id == execute_id)
                .order_by(i.c.created_at.desc(), i.c.event_id.desc()).limit(1)
            )).first()
            if latest is not None and latest.resumed_at is not None:
                moved = await conn.execute(update(r).where(lapsed).values(
                    status=INTERRUPTED, owner=None, lease_until=None, updated_at=now))
                if moved.rowcount != 1:
                    return None
                await conn.execute(update(i).where(i.c.execute_id == execute_id, i.c.event_id == latest.event_id)
                                   .values(resumed_at=None))
                return INTERRUPTED
            failed = await conn.execute(update(r).where(lapsed).values(
                status=FAIL, error_code=ORPHAN_ERROR_CODE, error_message=reason, owner=None, lease_until=None,
                updated_at=now))
            return FAIL if failed.rowcount == 1 else None
