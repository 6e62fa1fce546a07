"""Questions, their checkpoints, and run leases: the store's part of pausing, resuming and ending runs whose
process died. Every test runs on every backend."""

from __future__ import annotations

import asyncio
import time

from knotflow.ids import new_id
from knotflow.store.records import FAIL, INTERRUPTED, RUNNING, InterruptRecord
from knotflow.store.repository import Store
from tests.store.test_repository import run

OWNER, OTHER = "host:1:aaaa", "host:2:bbbb"


def question(execute_id: str, created_at: float | None = None) -> InterruptRecord:
    return InterruptRecord(execute_id=execute_id, event_id=new_id(), node_id="140000", node_title="Q",
                           node_type="Question", kind=2, data="{}", checkpoint='{"version": 2}',
                           created_at=time.time() if created_at is None else created_at)


async def paused_run(store: Store) -> tuple[str, InterruptRecord]:
    record = run()
    await store.write_runs([record], [], [])
    record.status = INTERRUPTED
    asked = question(record.execute_id)
    await store.save_interrupt(record, asked)
    return record.execute_id, asked


async def test_a_question_is_stored_with_the_interrupted_state_and_claimed_once(store: Store) -> None:
    execute_id, asked = await paused_run(store)
    stored = await store.get_run(execute_id)
    assert stored is not None and stored.status == INTERRUPTED and stored.owner is None
    assert await store.get_interrupt(execute_id, asked.event_id) == asked
    claims = await asyncio.gather(*(store.claim_interrupt(execute_id, asked.event_id, OWNER, time.time() + 30)
                                    for _ in range(5)))
    assert claims.count(True) == 1
    resumed = await store.get_run(execute_id)
    assert resumed is not None and resumed.status == RUNNING and resumed.owner == OWNER


async def test_leases_are_renewed_by_their_owner_only(store: Store) -> None:
    mine, theirs = run(), run()
    mine.owner, mine.lease_until = OWNER, time.time() - 1
    theirs.owner, theirs.lease_until = OTHER, time.time() - 1
    await store.write_runs([mine, theirs], [], [])
    assert set(await store.lapsed_runs(time.time())) == {mine.execute_id, theirs.execute_id}
    assert await store.renew_leases(OWNER, time.time() + 30) == 1
    assert await store.lapsed_runs(time.time()) == [theirs.execute_id]


async def test_a_lapsed_run_fails_with_the_reason(store: Store) -> None:
    lapsed = run()
    lapsed.owner, lapsed.lease_until = OTHER, time.time() - 1
    await store.write_runs([lapsed], [], [])
    assert await store.end_lapsed_run(lapsed.execute_id, time.time(), "gone") == FAIL
    ended = await store.get_run(lapsed.execute_id)
    assert ended is not None and (ended.status, ended.error_message, ended.owner) == (FAIL, "gone", None)
    assert await store.end_lapsed_run(lapsed.execute_id, time.time(), "gone") is None  # only once


async def test_a_run_lapsed_while_resuming_gets_its_question_back(store: Store) -> None:
    execute_id, asked = await paused_run(store)
    assert await store.claim_interrupt(execute_id, asked.event_id, OTHER, time.time() - 1)
    assert await store.lapsed_runs(time.time()) == [execute_id]
    assert await store.end_lapsed_run(execute_id, time.time(), "gone") == INTERRUPTED
    waiting = await store.get_run(execute_id)
    assert waiting is not None and waiting.status == INTERRUPTED and waiting.owner is None
    again = await store.get_interrupt(execute_id, asked.event_id)
    assert again is not None and again.resumed_at is None
    # ... and it can be answered again.
    assert await store.claim_interrupt(execute_id, asked.event_id, OWNER, time.time() + 30)


async def test_a_run_whose_owner_renewed_in_time_is_not_ended(store: Store) -> None:
    alive = run()
    alive.owner, alive.lease_until = OWNER, time.time() + 30
    await store.write_runs([alive], [], [])
    assert await store.end_lapsed_run(alive.execute_id, time.time(), "gone") is None
    still = await store.get_run(alive.execute_id)
    assert still is not None and still.status == RUNNING


async def test_concurrent_sweepers_end_a_lapsed_run_once(store: Store) -> None:
    lapsed = run()
    lapsed.owner, lapsed.lease_until = OTHER, time.time() - 1
    await store.write_runs([lapsed], [], [])
    ended = await asyncio.gather(*(store.end_lapsed_run(lapsed.execute_id, time.time(), "gone") for _ in range(4)))
    assert ended.count(FAIL) == 1 and ended.count(None) == 3
