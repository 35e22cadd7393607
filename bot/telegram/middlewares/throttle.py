"""Per-user throttling of commands and button presses (a token bucket per user).

Chatter is never throttled: only updates that reach a handler pass through here. A throttled user
is told once per burst, never silently ignored.

With REDIS_URL set the buckets live in Redis, beside the FSM state (whose storage the dispatcher
hands every handler), so a user has one budget however many workers their updates reach; without
it they live in this process, the only one there is.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiogram import BaseMiddleware
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import CallbackQuery, Message
from redis.asyncio import Redis

from bot.core.i18n import translate

log = logging.getLogger(__name__)

BUCKET_KEY = "ccb:throttle:{}"
# The shared bucket: Redis's own clock, so that workers' clocks need not agree, unless the caller
# runs on a clock of its own (ARGV[3]: the demo's and the tests' simulated people). Returns
# {allowed, warn}; the key expires once the bucket would be full again (what a new user gets).
_TAKE = """
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'warned')
local tokens = math.min(burst, (tonumber(b[1]) or burst) + (now - (tonumber(b[2]) or now)) * rate)
local allowed, warn, warned = 0, 0, 1
if tokens >= 1 then
  tokens, allowed, warned = tokens - 1, 1, 0
elseif b[3] ~= '1' then
  warn = 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now, 'warned', warned)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, warn}
"""


class ThrottleMiddleware(BaseMiddleware):
    def __init__(self, *, rate: float, burst: int = 8, clock=None) -> None:
        # None: this process's monotonic clock, and Redis's for the shared buckets.
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[int, tuple[float, float, bool]] = {}  # user → (tokens, updated, warned)
        self._next_prune = 0.0
        self._shared: tuple[Redis, object] | None = None

    async def _take_shared(self, redis: Redis, user_id: int) -> tuple[bool, bool]:
        if self._shared is None or self._shared[0] is not redis:
            self._shared = (redis, redis.register_script(_TAKE))
        args = [self.rate, self.burst] + ([self.clock()] if self.clock is not None else [])
        allowed, warn = await self._shared[1](keys=[BUCKET_KEY.format(user_id)], args=args)
        return bool(allowed), bool(warn)

    def _take(self, user_id: int) -> tuple[bool, bool]:
        """(allowed, should_warn)."""
        now = (self.clock or time.monotonic)()
        if now >= self._next_prune:
            self._prune(now)
        tokens, updated, warned = self._buckets.get(user_id, (float(self.burst), now, False))
        tokens = min(float(self.burst), tokens + (now - updated) * self.rate)
        if tokens >= 1:
            self._buckets[user_id] = (tokens - 1, now, False)
            return True, False
        self._buckets[user_id] = (tokens, now, True)
        return False, not warned

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled: a full bucket is what a user without one gets, and
        keeping them would grow the process with everyone who ever pressed a button."""
        full = float(self.burst)
        self._buckets = {user: bucket for user, bucket in self._buckets.items()
                         if bucket[0] + (now - bucket[1]) * self.rate < full}
        self._next_prune = now + full / self.rate

    async def __call__(self, handler, event, data: dict[str, Any]) -> Any:
        user = data.get("event_from_user")
        if user is None or not isinstance(event, (Message, CallbackQuery)):
            return await handler(event, data)
        storage = data.get("fsm_storage")
        if isinstance(storage, RedisStorage):
            allowed, warn = await self._take_shared(storage.redis, user.id)
        else:
            allowed, warn = self._take(user.id)
        if allowed:
            return await handler(event, data)
        log.info("throttled user %s", user.id)
        actor = data.get("actor")
        text = translate("You're going too fast. Wait a few seconds and try again.", actor.locale if actor else "en")
        if isinstance(event, CallbackQuery):
            await event.answer(text)
        elif warn and event.chat.type == "private":
            await event.answer(text)
        return None
