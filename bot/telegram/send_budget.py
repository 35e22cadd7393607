"""Telegram's sending limits as one budget shared by every worker process.

Telegram answers 429 past about 30 messages a second overall, 20 a minute into one group and
about one a second into one private chat. Each limit is kept as a sliding-window log (the
grant times within the last window): unlike a token bucket or GCRA with a burst, a log never
lets more than `count` grants into any window of `window` seconds, which is exactly the rule
Telegram enforces, and the wait it reports is exact, so callers sleep once instead of polling.

A paid broadcast (`allow_paid_broadcast`: 0.1 Star a message) is exempt from the 30 a second
but has its own overall limit of 1,000 a second; the per-chat limits and pauses still hold, so
`acquire(chat_id, paid=True)` checks the paid overall log in place of the free one.

`MemoryBudget` serves one process; `RedisBudget` keeps the same logs in Redis and checks and
consumes them in one Lua script on the server's clock, so any number of processes share them.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Protocol

from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `count` sends in any `window` seconds."""

    count: int
    window: float


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits that apply to a send (`paid_overall` instead of `overall` for a paid broadcast).
    Tests shrink them to keep runs short.

    The windows are wider than Telegram's: a grant is counted when given, Telegram counts the
    request when it arrives, and a burst's first requests can arrive late (new connections). The
    bot-wide ones by 3 % (30 ms a second of such lateness), which a broadcast spends as rate: a
    5 % margin held a win-back run to 0.943 of what Telegram allows (bench/winback.py).
    """

    overall: Limit = field(default_factory=lambda: Limit(30, 1.03))
    group: Limit = field(default_factory=lambda: Limit(20, 63.0))
    private: Limit = field(default_factory=lambda: Limit(1, 1.05))
    paid_overall: Limit = field(default_factory=lambda: Limit(1000, 1.03))

    def for_chat(self, chat_id: int) -> Limit:
        # Groups, supergroups and channels have negative ids; users positive ones.
        return self.group if chat_id < 0 else self.private


TELEGRAM_LIMITS = Limits()


class Wait(float):
    """Seconds until a send may go (0.0: it was granted), plus how much of it holds back everyone.

    `overall` is the part caused by the bot-wide limit or a bot-wide pause. A sender with many
    chats queued uses it to hold all of them at once rather than asking again for each chat,
    which during a broadcast would cost one refused call per chat per window.
    """

    __slots__ = ("overall",)

    def __new__(cls, seconds: float = 0.0, overall: float = 0.0) -> Wait:
        wait = super().__new__(cls, seconds)
        wait.overall = overall
        return wait

    def __repr__(self) -> str:
        return f"Wait({float(self)!r}, overall={self.overall!r})"


class SendBudget(Protocol):
    """Where a sender asks before every attempt (sends and edits alike)."""

    async def acquire(self, chat_id: int, *, paid: bool = False) -> float:
        """0.0 and the send is counted against both the overall and the chat's limit, atomically;
        otherwise the seconds to wait, and nothing is counted. `paid`: a paid broadcast, counted
        against the paid overall limit instead of the free one."""

    async def pause(self, chat_id: int | None, seconds: float) -> None:
        """After a 429: hold the chat (None: every chat) for `seconds`; never shortens a pause."""


class MemoryBudget:
    """The budget of a single process.

    `clock` is a monotonic clock in seconds, injected by tests to step through windows.
    """

    def __init__(self, limits: Limits = TELEGRAM_LIMITS, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._overall: deque[float] = deque()
        self._paid_overall: deque[float] = deque()
        self._chats: dict[int, deque[float]] = {}
        self._paused_until: dict[int | None, float] = {}
        self._swept_at = clock()

    async def acquire(self, chat_id: int, *, paid: bool = False) -> Wait:
        now = self._clock()
        self._sweep(now)
        chat_limit = self._limits.for_chat(chat_id)
        chat_log = self._chats.setdefault(chat_id, deque())
        overall_log, overall_limit = (
            (self._paid_overall, self._limits.paid_overall) if paid else (self._overall, self._limits.overall)
        )
        overall = max(self._pause_left(None, now), _log_wait(overall_log, overall_limit, now))
        chat = max(self._pause_left(chat_id, now), _log_wait(chat_log, chat_limit, now))
        if overall > 0 or chat > 0:
            return Wait(max(overall, chat), overall)
        overall_log.append(now)
        chat_log.append(now)
        return Wait()

    async def pause(self, chat_id: int | None, seconds: float) -> None:
        until = self._clock() + seconds
        self._paused_until[chat_id] = max(until, self._paused_until.get(chat_id, until))

    def _pause_left(self, key: int | None, now: float) -> float:
        return max(0.0, self._paused_until.get(key, now) - now)

    def _sweep(self, now: float) -> None:
        """Forget chats and pauses that no longer matter, so a long-running bot does not grow."""
        longest = max(self._limits.group.window, self._limits.private.window)
        if now - self._swept_at < longest:
            return
        self._swept_at = now
        self._chats = {chat: log for chat, log in self._chats.items() if log and log[-1] > now - longest}
        self._paused_until = {key: until for key, until in self._paused_until.items() if until > now}


def _log_wait(log: deque[float], limit: Limit, now: float) -> float:
    """Drop grants older than the window; the wait until one more grant fits in it."""
    while log and log[0] <= now - limit.window:
        log.popleft()
    if len(log) < limit.count:
        return 0.0
    return log[len(log) - limit.count] + limit.window - now


# KEYS: overall log (the free or the paid one), chat log, overall pause, chat pause.
# ARGV: overall count, overall window (µs), chat count, chat window (µs), a unique member name.
# Returns {overall wait, chat wait} in µs; both 0 means granted and recorded.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local function pause_left(key)
  local ttl = redis.call('PTTL', key)
  if ttl > 0 then return ttl * 1000 end
  return 0
end

local function log_wait(key, limit, window)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n < limit then return 0 end
  local oldest = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
  return tonumber(oldest[2]) + window - now
end

local overall_count, overall_window = tonumber(ARGV[1]), tonumber(ARGV[2])
local chat_count, chat_window = tonumber(ARGV[3]), tonumber(ARGV[4])
local overall = math.max(pause_left(KEYS[3]), log_wait(KEYS[1], overall_count, overall_window))
local chat = math.max(pause_left(KEYS[4]), log_wait(KEYS[2], chat_count, chat_window))
if overall > 0 or chat > 0 then
  return {overall, chat}
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], math.ceil(overall_window / 1000))
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('PEXPIRE', KEYS[2], math.ceil(chat_window / 1000))
return {0, 0}
"""

# KEYS: the pause key. ARGV: its length in ms. A pause only ever grows.
_PAUSE_LUA = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
"""


class RedisBudget:
    """The budget shared through Redis by every process that uses the same `prefix`.

    Check and consume happen in one script, on Redis's own clock, so processes on machines whose
    clocks disagree still count the same windows. Every key expires with its window or pause.
    """

    def __init__(self, redis: Redis, *, prefix: str = "ccb:budget", limits: Limits = TELEGRAM_LIMITS) -> None:
        self._limits = limits
        self._prefix = prefix
        self._acquire = redis.register_script(_ACQUIRE_LUA)
        self._pause = redis.register_script(_PAUSE_LUA)
        # Grants from all processes share one log; each member name must be unique among them.
        self._member_prefix = uuid.uuid4().hex
        self._members = count()

    async def acquire(self, chat_id: int, *, paid: bool = False) -> Wait:
        chat_limit = self._limits.for_chat(chat_id)
        overall_limit = self._limits.paid_overall if paid else self._limits.overall
        overall, chat = await self._acquire(
            keys=[
                f"{self._prefix}:paid-log" if paid else f"{self._prefix}:log",
                f"{self._prefix}:log:{chat_id}",
                f"{self._prefix}:pause",
                f"{self._prefix}:pause:{chat_id}",
            ],
            args=[
                overall_limit.count,
                _micros(overall_limit.window),
                chat_limit.count,
                _micros(chat_limit.window),
                f"{self._member_prefix}:{next(self._members)}",
            ],
        )
        if overall == 0 and chat == 0:
            return Wait()
        return Wait(max(overall, chat) / 1e6, overall / 1e6)

    async def pause(self, chat_id: int | None, seconds: float) -> None:
        key = f"{self._prefix}:pause" if chat_id is None else f"{self._prefix}:pause:{chat_id}"
        await self._pause(keys=[key], args=[max(1, math.ceil(seconds * 1000))])


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def create_budget(redis: Redis | None, *, limits: Limits = TELEGRAM_LIMITS) -> SendBudget:
    """The shared budget when the bot has Redis (several processes may send), else an in-process one."""
    return MemoryBudget(limits) if redis is None else RedisBudget(redis, limits=limits)
