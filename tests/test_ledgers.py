"""Update de-duplication ledgers and the per-user throttle, on real parts (Redis when REDIS_URL is set)."""

from __future__ import annotations

import asyncio

import pytest

from bot.dedup import MemoryLedger, RedisLedger
from bot.middlewares.throttle import ThrottleMiddleware


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_ledger_says_first_time_once_and_forgets_after_ttl():
    clock = Clock()
    ledger = MemoryLedger(ttl=60, max_size=3, clock=clock)
    assert await ledger.first_time(1)
    assert not await ledger.first_time(1)
    clock.now += 61
    assert await ledger.first_time(1)


async def test_memory_ledger_is_bounded():
    ledger = MemoryLedger(max_size=3)
    for update_id in range(5):
        assert await ledger.first_time(update_id)
    assert await ledger.first_time(0)  # evicted: the oldest ids go first
    assert not await ledger.first_time(4)


async def test_redis_ledger_is_shared_and_atomic(redis_url):
    if redis_url is None:
        pytest.skip("REDIS_URL not set: the in-process ledger is covered above")
    from redis.asyncio import Redis

    clients = [Redis.from_url(redis_url) for _ in range(2)]
    try:
        ledgers = [RedisLedger(c, bot_id=42) for c in clients]
        # Two "workers" race for the same 50 updates: each id is first exactly once overall.
        results = await asyncio.gather(*(ledgers[i % 2].first_time(u) for u in range(50) for i in range(2)))
        assert sum(results) == 50
        ttl = await clients[0].ttl("ccb:upd:42:7")
        assert 24 * 3600 < ttl <= 26 * 3600
        # Another bot's ids do not collide.
        assert await RedisLedger(clients[0], bot_id=43).first_time(7)
    finally:
        for c in clients:
            await c.aclose()


def test_throttle_allows_a_burst_then_refills():
    clock = Clock()
    throttle = ThrottleMiddleware(rate=2.0, burst=3, clock=clock)
    assert [throttle._take(1) for _ in range(3)] == [(True, False)] * 3
    assert throttle._take(1) == (False, True)  # told once...
    assert throttle._take(1) == (False, False)  # ...not on every refused update
    assert throttle._take(2) == (True, False)  # other users unaffected
    clock.now += 0.5
    assert throttle._take(1) == (True, False)
