"""Write run records behind the hot path, in group commits.

Starting a run and each node's trace are queued without waiting. Finishing a run waits until its record is
committed (together with whatever else is queued), because the client is about to be told the run ended and may
read the history at once. One writer task per process turns the queue into one transaction per batch. A node's
trace is written at most `NODE_DELAY` seconds after the node finished, so a run's console page shows it while the
run goes on; a short run's traces still go in one batch with its end.
"""

from __future__ import annotations

import asyncio
import logging

from knotflow.store.records import NodeExecution, Run
from knotflow.store.repository import Store

log = logging.getLogger(__name__)

NODE_DELAY = 0.25  # a node's trace is written at most this long after the node finished
WRITE_AFTER_BYTES = 1024 * 1024  # queued node traces are written once they hold this much text


class RunRecorder:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._new: list[Run] = []
        self._finished: list[Run] = []
        self._nodes: list[NodeExecution] = []
        self._node_bytes = 0  # the inputs and outputs text of `_nodes`
        self._waiters: list[asyncio.Future[None]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._node_timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._write_loop(), name="knotflow-run-recorder")

    async def close(self) -> None:
        if self._node_timer is not None:
            self._node_timer.cancel()
            self._node_timer = None
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    def run_started(self, run: Run) -> None:
        self._new.append(run)
        self._wakeup.set()

    def node_finished(self, execution: NodeExecution) -> None:
        self._nodes.append(execution)
        self._node_bytes += len(execution.inputs) + len(execution.outputs)
        if self._node_bytes > WRITE_AFTER_BYTES:
            # Big traces are written now rather than with the run's end: a run that waits (for its reader, for
            # a slow node) must not hold them all in memory.
            self._wakeup.set()
        elif self._node_timer is None:
            self._node_timer = asyncio.get_running_loop().call_later(NODE_DELAY, self._nodes_due)

    def _nodes_due(self) -> None:
        self._node_timer = None
        self._wakeup.set()

    async def run_finished(self, run: Run) -> None:
        """Queue the run's final state and wait until it is committed."""
        self._finished.append(run)
        await self.flush()

    async def flush(self) -> None:
        if self._task is None or self._task.done():
            await self._write_batch()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._wakeup.set()
        await waiter

    async def _write_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self._write_batch()
            if self._closing and not (self._new or self._finished or self._nodes):
                return

    async def _write_batch(self) -> None:
        new, finished, nodes, waiters = self._new, self._finished, self._nodes, self._waiters
        self._new, self._finished, self._nodes, self._waiters = [], [], [], []
        self._node_bytes = 0
        error: BaseException | None = None
        if new or finished or nodes:
            try:
                await self._store.write_runs(new, finished, nodes)
            except Exception as exc:  # the writer must survive a failed batch; its waiters get the error
                log.exception("writing %d run records failed", len(new) + len(finished))
                error = exc
        for waiter in waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)
