"""Ends runs nobody will finish: runs that outlived their time limit (their process died) and questions left
unanswered past `KNOTFLOW_INTERRUPT_TTL`. Runs once at start, then periodically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from knotflow.config import Settings
from knotflow.store.records import INTERRUPTED
from knotflow.store.repository import Store

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.sweep()
        self._task = asyncio.create_task(self._sweep_periodically(), name="knotflow-sweeper")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sweep(self) -> None:
        now = time.time()
        orphaned = await self.store.mark_orphaned_runs(now - self.settings.async_run_timeout,
                                                      "the run outlived its time limit")
        expired = await self.store.mark_orphaned_runs(
            now - self.settings.interrupt_ttl,
            f"the question was not answered within {self.settings.interrupt_ttl:g} s",
            status=INTERRUPTED,
        )
        if orphaned or expired:
            log.info("marked %d orphaned and %d expired runs as failed", orphaned, expired)

    async def _sweep_periodically(self) -> None:
        interval = max(1.0, min(3600.0, self.settings.interrupt_ttl / 10))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:  # a database hiccup must not end the sweeper
                log.exception("sweeping expired runs failed")
