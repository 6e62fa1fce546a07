"""`Idempotency-Key` on run and stream_run: a repeated key (per token) names the run the first request started,
for `KNOTFLOW_IDEMPOTENCY_TTL` seconds, instead of starting another. In Redis (`SET NX`, seen by every process),
or in this process's memory without it.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from knotflow.errors import BadRequest

MAX_KEY_LENGTH = 255


def check_key(key: str) -> str:
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters")
    return key


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class IdempotencyKeys:
    def __init__(self, ttl: float, redis: Redis | None = None) -> None:
        self.ttl = ttl
        self.redis = redis
        self._local: dict[tuple[str, str], tuple[str, float]] = {}

    def _name(self, token_id: str, key: str) -> str:
        return f"knotflow:idempotency:{token_id}:{key}"

    async def claim(self, token_id: str, key: str, execute_id: str) -> str | None:
        """Bind the key to `execute_id` and return None, or return the run it already names."""
        if self.redis is not None:
            name = self._name(token_id, key)
            if await self.redis.set(name, execute_id, nx=True, ex=max(1, int(self.ttl))):
                return None
            existing = await self.redis.get(name)
            if existing is None:  # expired between the two calls: try once more
                return await self.claim(token_id, key, execute_id)
            return _text(existing)
        now = time.monotonic()
        held = self._local.get((token_id, key))
        if held is not None and held[1] > now:
            return held[0]
        if len(self._local) > 100_000:
            self._local = {k: v for k, v in self._local.items() if v[1] > now}
        self._local[(token_id, key)] = (execute_id, now + self.ttl)
        return None

    async def release(self, token_id: str, key: str, execute_id: str) -> None:
        """The run was refused before it started: the key is free again (only if it still names that run)."""
        if self.redis is not None:
            name = self._name(token_id, key)
            existing = await self.redis.get(name)
            if existing is not None and _text(existing) == execute_id:
                await self.redis.delete(name)
            return
        held = self._local.get((token_id, key))
        if held is not None and held[0] == execute_id:
            del self._local[(token_id, key)]
