"""Remembers which update ids were already handled, so a redelivered update has no second effect."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from redis.asyncio import Redis


class UpdateLedger(Protocol):
    async def first_time(self, update_id: int) -> bool:
        """True exactly once per update id (atomically, across workers for the Redis ledger)."""

    async def first_times(self, update_ids: list[int]) -> list[bool]:
        """`first_time` for many ids at once, in their order."""


class MemoryLedger:
    """In-process ledger: a bounded, time-limited set of recent update ids."""

    def __init__(self, *, ttl: float = 6 * 3600, max_size: int = 500_000, clock=time.monotonic) -> None:
        self._seen: OrderedDict[int, float] = OrderedDict()
        self._ttl, self._max, self._clock = ttl, max_size, clock

    async def first_time(self, update_id: int) -> bool:
        now = self._clock()
        seen_at = self._seen.get(update_id)
        if seen_at is not None and now - seen_at < self._ttl:
            return False
        self._seen[update_id] = now
        self._seen.move_to_end(update_id)
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        return True

    async def first_times(self, update_ids: list[int]) -> list[bool]:
        return [await self.first_time(update_id) for update_id in update_ids]


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
