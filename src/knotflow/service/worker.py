"""`knotflow worker`: a process that runs async runs from the queue (queue.py) until SIGINT or SIGTERM. It is a
whole knotflow process otherwise (composition root, leases, sweeper, signals): a cancel reaches its runs, its
runs' events can be re-attached from any server.

Stopping drains: on the first signal the worker takes no new message and lets the runs it holds finish for up to
`KNOTFLOW_WORKER_DRAIN_SECONDS`; a second signal, or the end of that time, cancels the rest, each recorded `Fail`
with "the server stopped". The messages of runs it holds are acknowledged only when their runs end, so one left
unacknowledged by the stop is claimed by another worker, which finds its run started and does nothing."""

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
        signalled = asyncio.Queue[int]()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, signalled.put_nowait, sig)
        receiving = asyncio.create_task(queue.work(app.runs.run_queued, concurrency), name="knotflow-worker")
        first = asyncio.create_task(signalled.get())
        log.info("worker %s takes async runs, %d at a time", app.leases.owner, concurrency)
        await asyncio.wait({receiving, first}, return_when=asyncio.FIRST_COMPLETED)
        receiving.cancel()  # no new message; the runs it started go on in the background
        with contextlib.suppress(asyncio.CancelledError):
            await receiving
        if first.done():
            await _drain(app, settings.worker_drain_seconds, signalled)
        first.cancel()


async def _drain(app: Container, seconds: float, signalled: asyncio.Queue[int]) -> None:
    """Let the runs this worker holds finish, for `seconds` at most or until a second signal."""
    log.info("worker %s stops: it takes no new run and lets its runs finish for up to %g s (a second signal "
             "cancels them)", app.leases.owner, seconds)
    draining = asyncio.create_task(app.runs.drain(seconds))
    second = asyncio.create_task(signalled.get())
    await asyncio.wait({draining, second}, return_when=asyncio.FIRST_COMPLETED)
    second.cancel()
    left = draining.result() if draining.done() else None
    draining.cancel()
    if left != 0:
        log.warning("worker %s stops with runs unfinished: they are cancelled", app.leases.owner)
