"""Remembers which update ids were handled, so a redelivered update has no second effect, and which
are being handled, so that one cut off by a crash is handled when it comes again.

A routed update is claimed before its handler runs and recorded as done after it. A claim lasts
while its worker is alive (`claim_seconds` at most), so a redelivery after a worker died
mid-handler is handled once the worker's heartbeat lapsed, while a redelivery during the handling
is told "busy" (webhook mode answers it with a retry). Plain chatter, whose whole effect is a counter in memory, is recorded as done on
arrival (`first_times`), a batch at a time.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right, insort
from enum import StrEnum
from typing import Protocol

from redis.asyncio import Redis

from bot.telegram.presence import Presence

# Longer than any handler takes (flood waits included). Only a claim whose worker still beats lasts
# that long: a dead worker's claims give way within its heartbeat (bot/telegram/presence.py).
CLAIM_SECONDS = 120


class Claim(StrEnum):
    NEW = "new"  # claimed now: handle it, then `complete` (or `release` if it could not be handled)
    DONE = "done"  # handled before
    BUSY = "busy"  # being handled right now, here or by another worker


class UpdateLedger(Protocol):
    async def claim(self, update_id: int, *, take_over: bool = False) -> Claim:
        """NEW for exactly one caller at a time (atomically, across workers for the Redis ledger).
        `take_over`: a claim still held is someone else's that was cut off (only one process polls,
        so whatever a poller finds busy was left by its dead predecessor): claim it anew."""

    async def complete(self, update_id: int) -> None:
        """The claimed update was handled: every later delivery is DONE."""

    async def release(self, update_id: int) -> None:
        """The claimed update was not handled: the next delivery is NEW again."""

    async def first_time(self, update_id: int) -> bool:
        """Claimed and completed at once: True exactly once per update id."""

    async def first_times(self, update_ids: list[int]) -> list[bool]:
        """`first_time` for many ids at once, in their order."""


class MemoryLedger:
    """In-process ledger of recent update ids, kept as runs of consecutive ids.

    Telegram numbers a bot's updates one after another, so the ids handled form a few long runs,
    and a run costs the same whether it holds ten ids or a million: a set of single ids grew by
    about 100 bytes per update (50 MB at the 500,000 it was capped at). A run is forgotten `ttl`
    after it last grew; beyond `max_runs` (ids far out of order) the least recently grown go first.
    """

    def __init__(self, *, ttl: float = 6 * 3600, max_runs: int = 10_000, claim_seconds: float = CLAIM_SECONDS,
                 clock=time.monotonic) -> None:
        self._starts: list[int] = []  # sorted first ids of the runs
        self._runs: dict[int, list] = {}  # first id → [last id, when it last grew]
        self._claims: dict[int, float] = {}  # update id → when its claim lapses
        self._ttl, self._max, self._claim_seconds, self._clock = ttl, max_runs, claim_seconds, clock
        self._next_expiry = 0.0

    async def claim(self, update_id: int, *, take_over: bool = False) -> Claim:
        if self._done(update_id):
            return Claim.DONE
        now = self._clock()
        if self._claims.get(update_id, now) > now and not take_over:
            return Claim.BUSY
        self._claims[update_id] = now + self._claim_seconds
        return Claim.NEW

    async def complete(self, update_id: int) -> None:
        self._claims.pop(update_id, None)
        await self.first_time(update_id)

    async def release(self, update_id: int) -> None:
        self._claims.pop(update_id, None)

    def _done(self, update_id: int) -> bool:
        i = bisect_right(self._starts, update_id) - 1
        return i >= 0 and update_id <= self._runs[self._starts[i]][0]

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
        for update_id in [u for u, lapses in self._claims.items() if lapses <= now]:
            del self._claims[update_id]
        self._next_expiry = now + self._ttl / 10

    def _forget(self, start: int) -> None:
        del self._runs[start]
        self._starts.pop(bisect_left(self._starts, start))


# One round trip: "done" stays (as does "1", what earlier versions wrote for a handled update); a
# claim stays while the worker named in it is alive (bot/telegram/presence.py) or, for a claim
# without a name, until it expires; otherwise the caller's claim is set.
_CLAIM = """
local held = redis.call('GET', KEYS[1])
if held == 'done' or held == '1' then return 'done' end
if held and ARGV[2] ~= '1' then
  local owner = string.match(held, '^busy:(.+)$')
  if owner == nil or redis.call('EXISTS', ARGV[4] .. owner) == 1 then return 'busy' end
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[1])
return 'new'
"""

# Many ids in one command: a pipeline of SETs cost about 25 µs of client CPU per id, a quarter of
# everything the bot spends on a chatter message.
_FIRST_TIMES = """
local fresh = {}
for i, key in ipairs(KEYS) do
  fresh[i] = redis.call('SET', key, 'done', 'NX', 'EX', ARGV[1]) and '1' or '0'
end
return table.concat(fresh)
"""


class RedisLedger:
    """Shared ledger: a key per update, "busy:<worker>" while that worker is alive (at most
    `claim_seconds`), then "done" for longer than Telegram keeps undelivered updates (24 h)."""

    def __init__(self, redis: Redis, presence: Presence, *, bot_id: int, ttl_seconds: int = 26 * 3600,
                 claim_seconds: int = CLAIM_SECONDS, prefix: str = "ccb:upd") -> None:
        self._redis, self._ttl, self._claim_seconds, self._prefix = redis, ttl_seconds, claim_seconds, f"{prefix}:{bot_id}"
        self._holder, self._alive_prefix = f"busy:{presence.name}", presence.key_prefix
        self._claim = redis.register_script(_CLAIM)
        self._first_times = redis.register_script(_FIRST_TIMES)

    async def claim(self, update_id: int, *, take_over: bool = False) -> Claim:
        held = await self._claim(keys=[f"{self._prefix}:{update_id}"],
                                 args=[self._claim_seconds, int(take_over), self._holder, self._alive_prefix])
        return Claim(held.decode() if isinstance(held, bytes) else held)

    async def complete(self, update_id: int) -> None:
        await self._redis.set(f"{self._prefix}:{update_id}", "done", ex=self._ttl)

    async def release(self, update_id: int) -> None:
        await self._redis.delete(f"{self._prefix}:{update_id}")

    async def first_time(self, update_id: int) -> bool:
        return bool(await self._redis.set(f"{self._prefix}:{update_id}", "done", nx=True, ex=self._ttl))

    async def first_times(self, update_ids: list[int]) -> list[bool]:
        if not update_ids:
            return []
        fresh = await self._first_times(keys=[f"{self._prefix}:{u}" for u in update_ids], args=[self._ttl])
        return [flag == ord("1") for flag in (fresh if isinstance(fresh, bytes) else fresh.encode())]
