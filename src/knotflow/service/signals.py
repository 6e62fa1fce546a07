"""Announcements every process hears at once: cancel this run, this workflow was published, this token was revoked.

`LocalSignals` calls the handlers of this process; `RedisSignals` publishes on one Redis pub/sub channel
(`knotflow:signals`) to which every process subscribes, and each calls its own handlers. A handler never
raises and never waits (it starts work, if any, as a task).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError

from knotflow.service import background

log = logging.getLogger(__name__)

CANCEL = "cancel"  # value: an execute_id
PUBLISHED = "published"  # value: a workflow id
REVOKED = "token_revoked"  # value: a token id
CHANNEL = "knotflow:signals"

Handler = Callable[[str], object]


class LocalSignals:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def on(self, topic: str, handler: Handler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    def dispatch(self, topic: str, value: str) -> None:
        for handler in self._handlers.get(topic, ()):
            try:
                handler(value)
            except Exception:
                log.exception("signal %s %s: its handler failed", topic, value)

    async def announce(self, topic: str, value: str) -> None:
        self.dispatch(topic, value)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisSignals(LocalSignals):
    def __init__(self, redis: Redis) -> None:
        super().__init__()
        self.redis = redis
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(CHANNEL)  # subscribed before start() returns: no announcement after it is missed
        self._task = asyncio.create_task(self._listen(pubsub), name="knotflow-signals")

    async def _listen(self, pubsub: PubSub) -> None:
        try:
            while True:
                try:
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        topic, _, value = message["data"].decode().partition(" ")
                        self.dispatch(topic, value)
                except (RedisConnectionError, OSError) as exc:  # Redis restarted: subscribe again
                    log.warning("signals: Redis connection lost (%s); subscribing again", exc)
                    await asyncio.sleep(1)
                    await pubsub.subscribe(CHANNEL)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def announce(self, topic: str, value: str) -> None:
        await self.redis.publish(CHANNEL, f"{topic} {value}")

    async def close(self) -> None:
        await background.stop(self._task)
        self._task = None
