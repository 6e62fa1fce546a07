"""Ends runs nobody will finish: runs whose process died (their lease lapsed, see `service/leases.py`), runs
that outlived their time limit, and questions left unanswered past `KNOTFLOW_INTERRUPT_TTL`. Runs once at
start, then periodically: lapsed leases every half lease, the rest every tenth of the question TTL (≤ 1 h)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from knotflow.config import Settings
from knotflow.store.records import INTERRUPTED, QUEUED
from knotflow.store.repository import Store

EndLapsed = Callable[[str, float, str], Awaitable[str | None]]

log = logging.getLogger(__name__)


LEASE_LAPSED = "the process running it stopped (its lease lapsed)"


class Sweeper:
    def __init__(self, store: Store, settings: Settings, end_lapsed_run: EndLapsed | None = None) -> None:
        self.store = store
        self.settings = settings
        # Ends one lapsed run and tells its attached clients (RunControl.end_lapsed); the store's alone without.
        self._end_lapsed_run: EndLapsed = end_lapsed_run or store.end_lapsed_run
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.end_lapsed()
        await self.sweep()
        self._tasks = [
            asyncio.create_task(self._every(max(0.25, self.settings.run_lease / 2), self.end_lapsed),
                                name="knotflow-lease-sweeper"),
            asyncio.create_task(self._every(max(1.0, min(3600.0, self.settings.interrupt_ttl / 10)), self.sweep),
                                name="knotflow-sweeper"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def end_lapsed(self) -> None:
        """End the runs whose process stopped renewing their lease: a run resumed from a question gets its
        question back (answer it again), any other fails with the reason."""
        now = time.time()
        for execute_id in await self.store.lapsed_runs(now):
            ended = await self._end_lapsed_run(execute_id, now, LEASE_LAPSED)
            if ended == INTERRUPTED:
                log.warning("run %s lost its process while resuming: its question can be answered again", execute_id)
            elif ended is not None:
                log.warning("run %s lost its process: recorded as failed", execute_id)

    async def sweep(self) -> None:
        now = time.time()
        orphaned = await self.store.mark_orphaned_runs(now - self.settings.async_run_timeout,
                                                      "the run outlived its time limit")
        orphaned += await self.store.mark_orphaned_runs(now - self.settings.async_run_timeout,
                                                        "no worker took the run within its time limit",
                                                        status=QUEUED)
        expired = await self.store.mark_orphaned_runs(
            now - self.settings.interrupt_ttl,
            f"the question was not answered within {self.settings.interrupt_ttl:g} s",
            status=INTERRUPTED,
        )
        if orphaned or expired:
            log.info("marked %d orphaned and %d expired runs as failed", orphaned, expired)

    @staticmethod
    async def _every(interval: float, sweep: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await sweep()
            except Exception:  # a database hiccup must not end the sweeper
                log.exception("sweeping runs failed")
