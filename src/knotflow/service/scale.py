"""What lets several processes and hosts serve one knotflow: with `KNOTFLOW_REDIS_URL`, one Redis connection pool
shared by the run event log (re-attach), the signals (cancel, publish), the limits, the idempotency keys and the
async-run queue; without it, their in-process forms, so one process works alone exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from knotflow.config import Settings
from knotflow.service.idempotency import IdempotencyKeys
from knotflow.service.limits import TokenLimits
from knotflow.service.queue import RunQueue
from knotflow.service.run_log import LocalRunLog, RedisRunLog, RunLog
from knotflow.service.signals import LocalSignals, RedisSignals


@dataclass
class Scale:
    signals: LocalSignals
    run_log: RunLog
    limits: TokenLimits
    idempotency: IdempotencyKeys
    queue: RunQueue | None = None
    redis: Redis | None = None

    @classmethod
    def local(cls, settings: Settings) -> Scale:
        return cls(LocalSignals(), LocalRunLog(settings.run_events_maxlen, settings.run_events_ttl),
                   TokenLimits(settings), IdempotencyKeys(settings.idempotency_ttl))

    @classmethod
    def for_settings(cls, settings: Settings) -> Scale:
        if not settings.redis_url:
            return cls.local(settings)
        redis = Redis.from_url(settings.redis_url, health_check_interval=30)
        return cls(RedisSignals(redis), RedisRunLog(redis, settings.run_events_maxlen, settings.run_events_ttl),
                   TokenLimits(settings, redis), IdempotencyKeys(settings.idempotency_ttl, redis), RunQueue(settings),
                   redis)

    async def start(self, background: bool) -> None:
        """Connect (a wrong URL fails here, not on the first run); with `background`, listen to the signals and
        write the run events, renew run slots."""
        if self.redis is not None:
            await self.redis.ping()
        if self.queue is not None:
            await self.queue.start()
        if background:
            await self.signals.start()
            if isinstance(self.run_log, RedisRunLog):
                self.run_log.start()
            self.limits.start()

    async def close(self) -> None:
        await self.signals.close()
        await self.run_log.close()
        await self.limits.close()
        if self.queue is not None:
            await self.queue.close()
        if self.redis is not None:
            await self.redis.aclose()
