"""Per-token run slots on Redis: a process that dies without releasing its slots (its holds stop being renewed)
frees them within 1.5 run leases, as the README says; a live process keeps its slots by renewing them."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from knotflow.config import Settings
from knotflow.errors import RateLimited
from knotflow.service.limits import TokenLimits

LEASE = 0.6  # seconds: 1.5 leases = 0.9 s


async def test_a_dead_processs_run_slots_free_themselves_within_one_and_a_half_leases(redis_url: str) -> None:
    settings = Settings(redis_url=redis_url, max_concurrent_runs=1, run_lease=LEASE)
    redis = Redis.from_url(redis_url)
    dead, live = TokenLimits(settings, redis), TokenLimits(settings, redis)
    live.start()  # renews what it holds; `dead` never does, as a killed process
    try:
        await dead.acquire("token", "run-1")
        with pytest.raises(RateLimited):
            await live.acquire("token", "run-2")
        await asyncio.sleep(1.5 * LEASE + 0.2)
        await live.acquire("token", "run-2")  # the dead process's hold lapsed
        # The live process renews its own hold: two leases later the slot is still taken.
        await asyncio.sleep(2 * LEASE)
        with pytest.raises(RateLimited):
            await dead.acquire("token", "run-3")
        await live.release("token", "run-2")
        await dead.acquire("token", "run-3")
    finally:
        await live.close()
        await redis.aclose()
