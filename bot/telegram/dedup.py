"""Remembers which update ids were already handled, so a redelivered update has no second effect."""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right, insort
from typing import Protocol

from redis.asyncio import Redis


class UpdateLedger(Protocol):
    async def first_time(self, update_id: int) -> bool:
        """True exactly once per update id (atomically, across workers for the Redis ledger)."""

    async def first_times(self, update_ids: list[int]) -> list[bool]:
        """`first_time` for many ids at once, in their order."""


class MemoryLedger:
    """In-process ledger of recent update ids, kept as runs of consecutive ids.

    Telegram numbers a bot's updates one after another, so the ids handled form a few long runs,
    and a run costs the same whether it holds ten ids or a million: a set of single ids grew by
    about 100 bytes per update (50 MB at the 500,000 it was capped at). A run is forgotten `ttl`
    after it last grew; beyond `max_runs` (ids far out of order) the least recently grown go first.
    """

    def __init__(self, *, ttl: float = 6 * 3600, max_runs: int = 10_000, clock=time.monotonic) -> None:
        self._starts: list[int] = []  # sorted first ids of the runs
        self._runs: dict[int, list] = {}  # first id → [last id, when it last grew]
        self._ttl, self._max, self._clock = ttl, max_runs, clock
        self._next_expiry = 0.0

    async def first_time(self, update_id: int) -> bool:
        now = self._clock()
        if now >= self._next_expiry:
            self._expire(now)
        i = bisect_right(self._starts, update_id) - 1
        before = self._runs[self._starts[i]] if i >= 0 else None
        if before is not None and update_id <= before[0]:
            return False
        after = self._starts[i + 1] if i + 1 < len(self._starts) else None
        if before is not None and before[0] == update_id - 1:
            before[0], before[1] = update_id, now
            if after == update_id + 1:  # the gap between two runs is filled: one run
                before[0] = self._runs.pop(after)[0]
                del self._starts[i + 1]
        elif after == update_id + 1:
            self._runs[update_id] = [self._runs.pop(after)[0], now]
            self._starts[i + 1] = update_id
        else:
            self._runs[update_id] = [update_id, now]
            insort(self._starts, update_id)
            if len(self._starts) > self._max:
                self._forget(min(self._runs, key=lambda start: self._runs[start][1]))
        return True

    async def first_times(self, update_ids: list[int]) -> list[bool]:
        return [await self.first_time(update_id) for update_id in update_ids]

    def _expire(self, now: float) -> None:
        for start in [s for s, (_, grew) in self._runs.items() if now - grew >= self._ttl]:
            self._forget(start)
        self._next_expiry = now + self._ttl / 10

    def _forget(self, start: int) -> None:
        del self._runs[start]
        self._starts.pop(bisect_left(self._starts, start))


class RedisLedger:
    """Shared ledger: SET NX with a TTL longer than Telegram keeps undelivered updates (24 h)."""

    def __init__(self, redis: Redis, *, bot_id: int, ttl_seconds: int = 26 * 3600, prefix: str = "ccb:upd") -> None:
        self._redis, self._ttl, self._prefix = redis, ttl_seconds, f"{prefix}:{bot_id}"

    async def first_time(self, update_id: int) -> bool:
        return bool(await self._redis.set(f"{self._prefix}:{update_id}", 1, nx=True, ex=self._ttl))

    async def first_times(self, update_ids: list[int]) -> list[bool]:
        # One round trip for a whole batch of chatter instead of one per message.
        async with self._redis.pipeline(transaction=False) as pipe:
            for update_id in update_ids:
                pipe.set(f"{self._prefix}:{update_id}", 1, nx=True, ex=self._ttl)
            return [bool(r) for r in await pipe.execute()]
