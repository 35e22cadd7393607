"""Per-user throttling of commands and button presses (a token bucket per user).

Chatter is never throttled: only updates that reach a handler pass through here. A throttled user
is told once per burst, never silently ignored.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message

from bot.core.i18n import translate

log = logging.getLogger(__name__)


class ThrottleMiddleware(BaseMiddleware):
    def __init__(self, *, rate: float, burst: int = 8, clock=time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[int, tuple[float, float, bool]] = {}  # user → (tokens, updated, warned)
        self._next_prune = 0.0

    def _take(self, user_id: int) -> tuple[bool, bool]:
        """(allowed, should_warn)."""
        now = self.clock()
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
