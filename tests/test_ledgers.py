"""Update de-duplication ledgers and the per-user throttle, on real parts (Redis when REDIS_URL is set)."""

from __future__ import annotations

import asyncio
import random

import pytest

from bot.telegram.dedup import Claim, MemoryLedger, RedisLedger
from bot.telegram.middlewares.throttle import ThrottleMiddleware
from bot.telegram.presence import Presence


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_ledger_says_first_time_once_and_forgets_after_ttl():
    clock = Clock()
    ledger = MemoryLedger(ttl=60, clock=clock)
    assert await ledger.first_time(1)
    assert not await ledger.first_time(1)
    clock.now += 61
    assert await ledger.first_time(1)


async def test_memory_ledger_keeps_runs_of_ids_in_any_order():
    ledger = MemoryLedger()
    order = [5, 3, 4, 10, 8, 9, 1, 2, 6, 7, 20]
    assert [await ledger.first_time(u) for u in order] == [True] * len(order)
    assert ledger._runs == {1: [10, ledger._runs[1][1]], 20: [20, ledger._runs[20][1]]}
    assert await ledger.first_times(list(range(0, 22))) == [
        u in (0, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21) for u in range(0, 22)]
    assert not any(await ledger.first_times(list(range(0, 22))))


async def test_memory_ledger_stays_small_however_many_updates():
    ledger = MemoryLedger()
    assert all(await ledger.first_times(list(range(100_000, 300_000))))
    assert len(ledger._starts) == 1 and not await ledger.first_time(123_456)


async def test_memory_ledger_forgets_a_run_ttl_after_it_last_grew():
    clock = Clock()
    ledger = MemoryLedger(ttl=60, clock=clock)
    await ledger.first_times([1, 2, 3, 10])
    clock.now += 50
    await ledger.first_time(4)  # run 1-4 grew; run 10 did not
    clock.now += 20
    assert await ledger.first_times([10, 2]) == [True, False]


async def test_memory_ledger_is_bounded_by_runs():
    clock = Clock()
    ledger = MemoryLedger(max_runs=3, clock=clock)
    for update_id in (10, 20, 30, 40):  # four runs of one: the oldest goes
        clock.now += 1
        assert await ledger.first_time(update_id)
    assert sorted(ledger._runs) == [20, 30, 40]
    assert await ledger.first_time(10)
    assert not await ledger.first_time(40)


async def test_redis_ledger_is_shared_and_atomic(redis_url):
    if redis_url is None:
        pytest.skip("REDIS_URL not set: the in-process ledger is covered above")
    from redis.asyncio import Redis

    clients = [Redis.from_url(redis_url) for _ in range(2)]
    try:
        ledgers = [RedisLedger(c, Presence(c, bot_id=42), bot_id=42) for c in clients]
        # Two "workers" race for the same 50 updates: each id is first exactly once overall.
        results = await asyncio.gather(*(ledgers[i % 2].first_time(u) for u in range(50) for i in range(2)))
        assert sum(results) == 50
        ttl = await clients[0].ttl("ccb:upd:42:7")
        assert 24 * 3600 < ttl <= 26 * 3600
        # Another bot's ids do not collide.
        assert await RedisLedger(clients[0], Presence(clients[0], bot_id=43), bot_id=43).first_time(7)
    finally:
        for c in clients:
            await c.aclose()


async def test_memory_ledger_records_completion_not_arrival():
    clock = Clock()
    ledger = MemoryLedger(claim_seconds=120, clock=clock)
    assert await ledger.claim(1) is Claim.NEW
    assert await ledger.claim(1) is Claim.BUSY  # a redelivery while it is being handled
    await ledger.complete(1)
    assert await ledger.claim(1) is Claim.DONE
    assert await ledger.claim(2) is Claim.NEW
    await ledger.release(2)  # its handling failed before any effect: a redelivery handles it
    assert await ledger.claim(2) is Claim.NEW
    clock.now += 121  # the worker holding the claim died; the claim lapsed
    assert await ledger.claim(2) is Claim.NEW
    assert await ledger.claim(2) is Claim.BUSY
    assert await ledger.claim(2, take_over=True) is Claim.NEW  # a poller finds its dead predecessor's claim
    assert not await ledger.first_time(1) and await ledger.first_time(3)
    assert await ledger.claim(3) is Claim.DONE


async def test_redis_ledger_claims_are_shared_and_completion_is_kept(redis_url):
    if redis_url is None:
        pytest.skip("REDIS_URL not set: the in-process ledger is covered above")
    from redis.asyncio import Redis

    clients = [Redis.from_url(redis_url) for _ in range(2)]
    workers = [Presence(c, bot_id=44) for c in clients]
    try:
        for worker in workers:
            await worker.start()
        ledgers = [RedisLedger(c, w, bot_id=44, claim_seconds=120) for c, w in zip(clients, workers)]
        claims = await asyncio.gather(*(ledgers[i % 2].claim(u) for u in range(50) for i in range(2)))
        assert claims.count(Claim.NEW) == 50 and claims.count(Claim.BUSY) == 50
        assert 0 < await clients[0].ttl("ccb:upd:44:7") <= 120
        await ledgers[0].complete(7)
        assert await ledgers[1].claim(7) is Claim.DONE
        assert 24 * 3600 < await clients[0].ttl("ccb:upd:44:7") <= 26 * 3600
        await ledgers[1].release(8)
        assert await ledgers[0].claim(8) is Claim.NEW
        assert await ledgers[1].claim(8, take_over=True) is Claim.NEW
        assert await ledgers[1].claim(7, take_over=True) is Claim.DONE
        await clients[0].set("ccb:upd:44:9", 1)  # what earlier versions wrote for a handled update
        assert await ledgers[0].claim(9) is Claim.DONE
        assert not await ledgers[0].first_time(7) and await ledgers[0].first_time(60)
        assert await ledgers[1].claim(60) is Claim.DONE
    finally:
        for worker in workers:
            await worker.stop()
        for c in clients:
            await c.aclose()


async def test_a_dead_workers_claims_give_way_when_its_heartbeat_lapses(redis_url):
    if redis_url is None:
        pytest.skip("REDIS_URL not set: one process holds every claim")
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    first, second = Presence(client, bot_id=45), Presence(client, bot_id=45)
    try:
        await first.start()
        await second.start()
        await client.delete("ccb:upd:45:1", "ccb:upd:45:2")
        dying, taking_over = RedisLedger(client, first, bot_id=45), RedisLedger(client, second, bot_id=45)
        assert await dying.claim(1) is Claim.NEW and await dying.claim(2) is Claim.NEW
        await dying.complete(2)
        assert await taking_over.claim(1) is Claim.BUSY
        assert 0 < await client.ttl(first.key_prefix + first.name) <= first.seconds
        # Killed: its beats stop, and the heartbeat lapses (Redis's clock cannot be moved: the key goes).
        first._task.cancel()
        await client.delete(first.key_prefix + first.name)
        assert await taking_over.claim(1) is Claim.NEW
        assert await dying.claim(1) is Claim.BUSY  # now the live worker's claim
        assert await taking_over.claim(2) is Claim.DONE
        await second.stop()  # a worker that stops withdraws its name: its claims give way at once
        assert await RedisLedger(client, first, bot_id=45).claim(1) is Claim.NEW
    finally:
        await first.stop()
        await second.stop()
        await client.aclose()


def test_throttle_allows_a_burst_then_refills():
    clock = Clock()
    throttle = ThrottleMiddleware(rate=2.0, burst=3, clock=clock)
    assert [throttle._take(1) for _ in range(3)] == [(True, False)] * 3
    assert throttle._take(1) == (False, True)  # told once...
    assert throttle._take(1) == (False, False)  # ...not on every refused update
    assert throttle._take(2) == (True, False)  # other users unaffected
    clock.now += 0.5
    assert throttle._take(1) == (True, False)


def test_throttle_forgets_users_whose_bucket_refilled():
    clock = Clock()
    throttle = ThrottleMiddleware(rate=2.0, burst=3, clock=clock)
    for user in range(1000):
        throttle._take(user)
    clock.now += 1.4
    assert [throttle._take(5000) for _ in range(4)][-1] == (False, True)
    clock.now += 0.2  # users 0-999 are full again; user 5000 has 0.4 of a token
    throttle._take(1)
    assert set(throttle._buckets) == {1, 5000}
    assert throttle._take(5000) == (False, False), "a pruned table still remembers who is going too fast"
    clock.now += 0.3
    assert throttle._take(5000) == (True, False)


async def test_memory_ledger_answers_as_a_plain_set_would():
    rng = random.Random(7)
    ledger, seen = MemoryLedger(), set()
    ids = [rng.randrange(1_000, 1_400) for _ in range(3_000)]
    for update_id in ids:
        assert await ledger.first_time(update_id) == (update_id not in seen), update_id
        seen.add(update_id)
    starts = ledger._starts
    assert starts == sorted(ledger._runs) and all(ledger._runs[a][0] + 1 < b for a, b in zip(starts, starts[1:]))
