"""Async runs (`is_async`) with Redis go through a taskiq queue, consumed by `knotflow worker` processes.

Why taskiq (with taskiq-redis's `RedisStreamBroker`): it is asyncio-native (knotflow's runs are coroutines; dramatiq
and celery run tasks on threads or processes), and the stream broker gives at-least-once delivery — a message is
read through a Redis consumer group and acknowledged only after its task returned (`WHEN_EXECUTED`); one that a
killed worker never acknowledged is claimed again by another worker after `KNOTFLOW_QUEUE_REDELIVERY` seconds
(taskiq-redis's XAUTOCLAIM, done when a worker next reads the queue). arq is asyncio-native too, but re-delivers
a dead worker's job only when the job's whole timeout (for a run: a day) has passed.

At-least-once means a run may be delivered twice: the start is idempotent. The server records the run as `Queued`
before sending the message; a worker starts it only by moving it from `Queued` to `Running` in one compare-and-
swap, with itself as the lease owner. A second delivery finds it Running (or finished) and does nothing, so a run
never completes twice. A run whose worker was killed mid-run is ended by the sweeper of any process when its
lease lapses (`Fail`, "the process running it stopped"): it is not started again from the beginning, since its
nodes may already have had effects (HTTP requests, table writes) that must not happen twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from taskiq import Context, TaskiqDepends
from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task
from taskiq_redis import RedisStreamBroker

from knotflow.config import Settings

log = logging.getLogger(__name__)

TASK_NAME = "knotflow.run_async"
QUEUE = "knotflow:async-runs"
GROUP = "knotflow-workers"

# What a worker does with a message: start the queued run (execute_id, its parameters as resolved when it was
# accepted, the undeclared parameter names, the token's id for its run slot) and return when it ended.
Runner = Callable[[str, dict[str, Any], list[str], str], Awaitable[None]]


async def _run_async(execute_id: str, parameters: dict[str, Any], undeclared: list[str], token_id: str,
                     context: Context = TaskiqDepends()) -> None:
    runner: Runner = context.state.knotflow_runner
    await runner(execute_id, parameters, undeclared, token_id)


class RunQueue:
    def __init__(self, settings: Settings) -> None:
        assert settings.redis_url
        self.broker = RedisStreamBroker(
            settings.redis_url, queue_name=QUEUE, consumer_group_name=GROUP,
            idle_timeout=int(settings.queue_redelivery * 1000),
            xread_count=1,  # a worker takes a message only when it can run it: the rest stay for the others
            xread_block=1000,
            unacknowledged_lock_timeout=5.0,  # a worker killed while holding the claim lock frees it
        )
        self._task = self.broker.register_task(_run_async, task_name=TASK_NAME)

    async def start(self) -> None:
        await self.broker.startup()

    async def enqueue(self, execute_id: str, parameters: dict[str, Any], undeclared: list[str],
                      token_id: str) -> None:
        await self._task.kiq(execute_id, parameters, undeclared, token_id)

    async def work(self, runner: Runner, concurrency: int) -> None:
        """Run queued runs, `concurrency` at a time, until cancelled."""
        self.broker.state.knotflow_runner = runner
        await run_receiver_task(self.broker, max_async_tasks=concurrency, max_prefetch=0,
                                ack_time=AcknowledgeType.WHEN_EXECUTED, run_startup=False)

    async def close(self) -> None:
        await self.broker.shutdown()
