"""Per-token limits, counted across every process sharing the Redis (or within this one without it):
`KNOTFLOW_REQUESTS_PER_SECOND` open-API requests per second and `KNOTFLOW_MAX_CONCURRENT_RUNS` runs at a time.
Either refused with Coze's rate-limit error, 4013. 0 switches a limit off (the default).

Requests per second are counted by the `limits` library (moving window; its Redis storage, or its memory storage
in one process). Concurrent runs are a counting semaphore with leases, which no well-kept library offers over
redis-py: a Redis sorted set per token whose members are its running runs, each scored with when its hold lapses
— renewed by the process running it every third of `KNOTFLOW_RUN_LEASE`, so a process that dies frees its
token's slots within 1.5 leases. An async run waiting in the queue holds its slot until its time limit.
"""

from __future__ import annotations

import asyncio
import logging
import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from knotflow.config import Settings
from knotflow.errors import RateLimited
from knotflow.service import background

log = logging.getLogger(__name__)


# Atomically: drop lapsed holds, refuse when `limit` remain, else hold `member` until `expires`.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class TokenLimits:
    def __init__(self, settings: Settings, redis: Redis | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.rate = RateLimitItemPerSecond(settings.requests_per_second) if settings.requests_per_second else None
        storage = (RedisStorage(settings.redis_url or "", implementation="redispy", key_prefix="knotflow-limits")
                   if redis is not None and self.rate else MemoryStorage())
        self._limiter = MovingWindowRateLimiter(storage)
        self._held: dict[str, set[str]] = {}  # token id → its runs held by this process
        self._acquire = redis.register_script(_ACQUIRE) if redis is not None else None
        self._task: asyncio.Task[None] | None = None

    @property
    def counts_runs(self) -> bool:
        return self.settings.max_concurrent_runs > 0

    async def hit(self, token_id: str) -> None:
        """Count one request of the token; refused when it makes more than the limit in the last second."""
        if self.rate is not None and not await self._limiter.hit(self.rate, token_id):
            raise RateLimited(f"too many requests: this token may make {self.settings.requests_per_second} per "
                              "second (KNOTFLOW_REQUESTS_PER_SECOND)")

    def _key(self, token_id: str) -> str:
        return f"knotflow:running:{token_id}"

    async def acquire(self, token_id: str, execute_id: str, hold: float | None = None) -> None:
        """Take one of the token's run slots for `execute_id` (for `hold` seconds before it must be renewed;
        default 1.5 leases), or refuse with 4013."""
        limit = self.settings.max_concurrent_runs
        if not limit:
            return
        if self._acquire is None:
            held = self._held.setdefault(token_id, set())
            if len(held) >= limit and execute_id not in held:
                raise self._refusal()
            held.add(execute_id)
            return
        now = time.time()
        expires = now + (hold if hold is not None else 1.5 * self.settings.run_lease)
        ttl = int(max(hold or 0, 1.5 * self.settings.run_lease)) + 1
        if not await self._acquire(keys=[self._key(token_id)], args=[now, expires, limit, execute_id, ttl]):
            raise self._refusal()
        self._held.setdefault(token_id, set()).add(execute_id)

    def _refusal(self) -> RateLimited:
        return RateLimited(f"too many runs at once: this token may run {self.settings.max_concurrent_runs} at a "
                           "time (KNOTFLOW_MAX_CONCURRENT_RUNS)")

    def adopt(self, token_id: str, execute_id: str) -> None:
        """This process now runs `execute_id`, whose slot another process took (an async run from the queue): it
        renews the hold from now on and releases it at the end."""
        if self.counts_runs:
            self._held.setdefault(token_id, set()).add(execute_id)

    async def release(self, token_id: str, execute_id: str) -> None:
        if not self.counts_runs:
            return
        held = self._held.get(token_id)
        if held is not None:
            held.discard(execute_id)
            if not held:
                del self._held[token_id]
        if self.redis is not None:
            try:
                await self.redis.zrem(self._key(token_id), execute_id)
            except Exception as exc:  # the hold lapses by itself
                log.warning("run %s: its run slot could not be released: %s", execute_id, exc)

    def start(self) -> None:
        if self.redis is not None and self.counts_runs:
            self._task = asyncio.create_task(self._renew_forever(), name="knotflow-run-slots")

    async def _renew_forever(self) -> None:
        assert self.redis is not None
        while True:
            await asyncio.sleep(self.settings.run_lease / 3)
            if not self._held:
                continue
            expires = time.time() + 1.5 * self.settings.run_lease
            ttl = int(1.5 * self.settings.run_lease) + 1
            pipe = self.redis.pipeline(transaction=False)
            for token_id, runs in self._held.items():
                pipe.zadd(self._key(token_id), dict.fromkeys(runs, expires), xx=True)
                # The key lives as long as a hold in it: without this a run longer than its first hold lost its
                # slot with the whole key. GT: a longer expiry (an async run's queued hold) is kept.
                pipe.expire(self._key(token_id), ttl, gt=True)
            try:
                await pipe.execute()
            except Exception as exc:  # Redis briefly unreachable: the holds still have time left
                log.warning("renewing run slots failed: %s", exc)

    async def close(self) -> None:
        await background.stop(self._task)
        self._task = None
