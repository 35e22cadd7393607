"""Telegram's sending limits as one budget shared by every worker process.

Telegram answers 429 past about 30 messages a second overall, 20 a minute into one group and
about one a second into one private chat. Each limit is kept as a sliding-window log (the
grant times within the last window): unlike a token bucket or GCRA with a burst, a log never
lets more than `count` grants into any window of `window` seconds, which is exactly the rule
Telegram enforces, and the wait it reports is exact, so callers sleep once instead of polling.

A paid broadcast (`allow_paid_broadcast`: 0.1 Star a message) is exempt from the 30 a second
but has its own overall limit of 1,000 a second; the per-chat limits and pauses still hold, so
`acquire(chat_id, paid=True)` checks the paid overall log in place of the free one.

A grant counts from the moment it is given until `window` after Telegram's answer to the call
it was for (`answered`), not only `window` after the grant. Telegram counts a request when it
arrives, which is after the grant and before the answer, however late a busy event loop or the
network makes it; so a run at the limit is not refused for requests that were granted in time
but arrived bunched, and the windows need no margin for that lateness. A grant that is never
answered (a call made some other way, a process that died) counts `window` after the grant.

`MemoryBudget` serves one process; `RedisBudget` keeps the same logs in Redis and checks and
consumes them in one Lua script on the server's clock, so any number of processes share them.
Each log holds its grants by the time they stop counting.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Protocol

from redis.asyncio import Redis

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `count` sends in any `window` seconds."""

    count: int
    window: float


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits that apply to a send (`paid_overall` instead of `overall` for a paid broadcast).
    Tests shrink them to keep runs short.

    The bot-wide windows are Telegram's second and 1 %: a grant counts until a window after its
    answer (lateness on the way is covered), and the 1 % is slack for the clocks involved (Redis's
    and each sender's). A broadcast spends any margin as rate: 3 % (counted from the grant)
    held a win-back run to 0.94 of what Telegram allows, with a few 429s all the same
    (bench/winback.py). The per-chat windows keep their older margins, which cost a broadcast nothing.
    """

    overall: Limit = field(default_factory=lambda: Limit(30, 1.01))
    group: Limit = field(default_factory=lambda: Limit(20, 63.0))
    private: Limit = field(default_factory=lambda: Limit(1, 1.05))
    paid_overall: Limit = field(default_factory=lambda: Limit(1000, 1.01))

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

    __slots__ = ("overall", "grant")

    def __new__(cls, seconds: float = 0.0, overall: float = 0.0, grant: object = None) -> Wait:
        wait = super().__new__(cls, seconds)
        wait.overall = overall
        wait.grant = grant  # a granted send's handle, for `answered`
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

    def answered(self, granted: float) -> None:
        """Telegram answered the call `granted` (what `acquire` returned) was for, or it was not
        made: from now, the send counts one window more in each of its logs."""


class MemoryBudget:
    """The budget of a single process.

    `clock` is a monotonic clock in seconds, injected by tests to step through windows.
    """

    def __init__(self, limits: Limits = TELEGRAM_LIMITS, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._overall = _Log()
        self._paid_overall = _Log()
        self._chats: dict[int, _Log] = {}
        self._paused_until: dict[int | None, float] = {}
        self._swept_at = clock()
        self._grants = count()

    async def acquire(self, chat_id: int, *, paid: bool = False) -> Wait:
        now = self._clock()
        self._sweep(now)
        chat_limit = self._limits.for_chat(chat_id)
        chat_log = self._chats.get(chat_id)
        if chat_log is None:
            chat_log = self._chats[chat_id] = _Log()
        overall_log, overall_limit = (
            (self._paid_overall, self._limits.paid_overall) if paid else (self._overall, self._limits.overall)
        )
        overall = max(self._pause_left(None, now), overall_log.wait(overall_limit.count, now))
        chat = max(self._pause_left(chat_id, now), chat_log.wait(chat_limit.count, now))
        if overall > 0 or chat > 0:
            return Wait(max(overall, chat), overall)
        grant = next(self._grants)
        overall_log.add(grant, now + overall_limit.window)
        chat_log.add(grant, now + chat_limit.window)
        return Wait(grant=(grant, overall_log, overall_limit.window, chat_log, chat_limit.window))

    async def pause(self, chat_id: int | None, seconds: float) -> None:
        until = self._clock() + seconds
        self._paused_until[chat_id] = max(until, self._paused_until.get(chat_id, until))

    def answered(self, granted: float) -> None:
        handle = getattr(granted, "grant", None)
        if handle is None:
            return
        grant, overall_log, overall_window, chat_log, chat_window = handle
        now = self._clock()
        overall_log.extend(grant, now, now + overall_window)
        chat_log.extend(grant, now, now + chat_window)

    def _pause_left(self, key: int | None, now: float) -> float:
        return max(0.0, self._paused_until.get(key, now) - now)

    def _sweep(self, now: float) -> None:
        """Forget chats and pauses that no longer matter, so a long-running bot does not grow."""
        longest = max(self._limits.group.window, self._limits.private.window)
        if now - self._swept_at < longest:
            return
        self._swept_at = now
        self._chats = {chat: log for chat, log in self._chats.items() if log.counting(now)}
        self._paused_until = {key: until for key, until in self._paused_until.items() if until > now}


class _Log:
    """Grants by the time they stop counting; `extend` moves that time later (an answer)."""

    __slots__ = ("_heap", "_until")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []  # (until, grant), with superseded entries left in
        self._until: dict[int, float] = {}

    def add(self, grant: int, until: float) -> None:
        self._until[grant] = until
        heapq.heappush(self._heap, (until, grant))

    def extend(self, grant: int, now: float, until: float) -> None:
        """Only a grant that still counts: one past its window is not taken up again."""
        current = self._until.get(grant)
        if current is not None and now < current < until:
            self.add(grant, until)

    def wait(self, count: int, now: float) -> float:
        """The wait until one more grant fits (grants never exceed `count`)."""
        if self.counting(now) < count:
            return 0.0
        return self._heap[0][0] - now

    def counting(self, now: float) -> int:
        """How many grants still count, once those that stopped are dropped."""
        heap, live = self._heap, self._until
        while heap and (heap[0][0] <= now or live.get(heap[0][1]) != heap[0][0]):
            until, grant = heapq.heappop(heap)
            if live.get(grant) == until:
                del live[grant]
        return len(live)


# KEYS: overall log (the free or the paid one), chat log, overall pause, chat pause.
# ARGV: overall count, overall window (µs), chat count, chat window (µs), a unique member name.
# Returns {overall wait, chat wait} in µs; both 0 means granted and recorded. A log's scores are
# the times its grants stop counting.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local function pause_left(key)
  local ttl = redis.call('PTTL', key)
  if ttl > 0 then return ttl * 1000 end
  return 0
end

local function log_wait(key, limit)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local n = redis.call('ZCARD', key)
  if n < limit then return 0 end
  local first = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
  return tonumber(first[2]) - now
end

local overall_count, overall_window = tonumber(ARGV[1]), tonumber(ARGV[2])
local chat_count, chat_window = tonumber(ARGV[3]), tonumber(ARGV[4])
local overall = math.max(pause_left(KEYS[3]), log_wait(KEYS[1], overall_count))
local chat = math.max(pause_left(KEYS[4]), log_wait(KEYS[2], chat_count))
if overall > 0 or chat > 0 then
  return {overall, chat}
end
redis.call('ZADD', KEYS[1], now + overall_window, ARGV[5])
redis.call('PEXPIRE', KEYS[1], math.ceil(overall_window / 1000))
redis.call('ZADD', KEYS[2], now + chat_window, ARGV[5])
redis.call('PEXPIRE', KEYS[2], math.ceil(chat_window / 1000))
return {0, 0}
"""

# KEYS: per answered grant, its overall log and its chat log. ARGV: per grant, its member name, the
# two windows and how long ago the answer came (µs). Each grant still in its logs counts until a
# window after its answer; the logs live at least that long.
_ANSWERED_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 0, #ARGV / 4 - 1 do
  local member, answered = ARGV[i * 4 + 1], now - tonumber(ARGV[i * 4 + 4])
  for j = 1, 2 do
    local key, window = KEYS[i * 2 + j], tonumber(ARGV[i * 4 + 1 + j])
    if redis.call('ZADD', key, 'XX', 'GT', 'CH', answered + window, member) == 1 then
      local ms = math.ceil(window / 1000)
      if redis.call('PTTL', key) < ms then
        redis.call('PEXPIRE', key, ms)
      end
    end
  end
end
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
        self._answered = redis.register_script(_ANSWERED_LUA)
        self._pause = redis.register_script(_PAUSE_LUA)
        # Grants from all processes share one log; each member name must be unique among them.
        self._member_prefix = uuid.uuid4().hex
        self._members = count()
        # Answers not yet told to Redis, with when they came: all that came in meanwhile go in one call.
        self._answers: list[tuple[tuple[str, str, str, int, int], float]] = []
        self._telling: asyncio.Task[None] | None = None

    async def acquire(self, chat_id: int, *, paid: bool = False) -> Wait:
        chat_limit = self._limits.for_chat(chat_id)
        overall_limit = self._limits.paid_overall if paid else self._limits.overall
        # Logs hold when their grants stop counting ("until"), not when they were given: a log
        # written by an older version of the bot (grant times) is not read as this one.
        overall_key = f"{self._prefix}:paid-until" if paid else f"{self._prefix}:until"
        chat_key = f"{self._prefix}:until:{chat_id}"
        member = f"{self._member_prefix}:{next(self._members)}"
        overall_window, chat_window = _micros(overall_limit.window), _micros(chat_limit.window)
        overall, chat = await self._acquire(
            keys=[overall_key, chat_key, f"{self._prefix}:pause", f"{self._prefix}:pause:{chat_id}"],
            args=[overall_limit.count, overall_window, chat_limit.count, chat_window, member],
        )
        if overall == 0 and chat == 0:
            return Wait(grant=(overall_key, chat_key, member, overall_window, chat_window))
        return Wait(max(overall, chat) / 1e6, overall / 1e6)

    def answered(self, granted: float) -> None:
        handle = getattr(granted, "grant", None)
        if handle is None:
            return
        self._answers.append((handle, time.monotonic()))
        if self._telling is None:
            self._telling = asyncio.get_running_loop().create_task(self._tell(), name="send-budget-answers")

    async def _tell(self) -> None:
        try:
            while self._answers:
                batch, self._answers = self._answers, []
                keys: list[str] = []
                args: list[str | int] = []
                now = time.monotonic()
                for (overall_key, chat_key, member, overall_window, chat_window), at in batch:
                    keys += (overall_key, chat_key)
                    args += (member, overall_window, chat_window, _micros(now - at))
                try:
                    await self._answered(keys=keys, args=args)
                except Exception as exc:  # noqa: BLE001 - those grants count from when they were given
                    log.warning("send budget: could not record %d answer(s): %r", len(batch), exc)
        finally:
            self._telling = None

    async def pause(self, chat_id: int | None, seconds: float) -> None:
        key = f"{self._prefix}:pause" if chat_id is None else f"{self._prefix}:pause:{chat_id}"
        await self._pause(keys=[key], args=[max(1, math.ceil(seconds * 1000))])


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def create_budget(redis: Redis | None, *, limits: Limits = TELEGRAM_LIMITS) -> SendBudget:
    """The shared budget when the bot has Redis (several processes may send), else an in-process one."""
    return MemoryBudget(limits) if redis is None else RedisBudget(redis, limits=limits)
