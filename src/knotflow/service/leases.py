"""This process's hold on the runs it runs.

Every run that starts or resumes here is recorded with this process as its `owner` and a `lease_until`; a task
renews the leases of all of them together every third of `KNOTFLOW_RUN_LEASE` seconds. A process that dies
(SIGKILL, power loss) stops renewing, its leases lapse, and the sweeper of any server sharing the database ends
its runs (see `Sweeper.end_lapsed`): within `1.5 × KNOTFLOW_RUN_LEASE` of the death, whichever server notices.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time

from knotflow.service import background
from knotflow.store.repository import Store

log = logging.getLogger(__name__)


class RunLeases:
    def __init__(self, store: Store, seconds: float) -> None:
        self.store = store
        self.seconds = seconds
        # Unique per process start, so a restarted server never mistakes its previous life's runs for its own.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._task: asyncio.Task[None] | None = None

    def until(self) -> float:
        """When a lease taken now lapses unless renewed."""
        return time.time() + self.seconds

    def start(self) -> None:
        self._task = asyncio.create_task(self._renew_periodically(), name="knotflow-run-leases")

    async def close(self) -> None:
        await background.stop(self._task)
        self._task = None

    async def _renew_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                await self.store.renew_leases(self.owner, self.until())
            except Exception as exc:  # the database is briefly unreachable: the leases still have time left
                log.warning("renewing this process's run leases failed: %s", exc)
