"""`knotflow worker`: a process that runs async runs from the queue (queue.py) until SIGINT or SIGTERM. It is a
whole knotflow process otherwise (composition root, leases, sweeper, signals): a cancel reaches its runs, its
runs' events can be re-attached from any server. Stopping it cancels the runs it holds, each recorded `Fail`
with "the server stopped"."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from knotflow.config import Settings
from knotflow.service.container import Container

log = logging.getLogger(__name__)


async def work(settings: Settings, concurrency: int) -> None:
    async with Container(settings) as app:
        queue = app.scale.queue
        assert queue is not None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        receiving = asyncio.create_task(queue.work(app.runs.run_queued, concurrency), name="knotflow-worker")
        stopping = asyncio.create_task(stop.wait())
        log.info("worker %s takes async runs, %d at a time", app.leases.owner, concurrency)
        await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (receiving, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
