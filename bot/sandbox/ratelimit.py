"""Telegram-style flood control: sliding windows per chat and overall.

Telegram answers 429 with `retry_after` once a bot sends too fast (about 30
messages per second overall, 20 per minute into one group, roughly one per
second into one private chat with short bursts tolerated). The windows are
plain attributes so tests can tighten or loosen them.

A paid broadcast (`allow_paid_broadcast`) is not counted against the free
overall window but against its own, of 1,000 messages a second; the per-chat
windows apply to it all the same.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable

from .errors import too_many_requests


class RateLimiter:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.overall: tuple[int, float] = (30, 1.0)  # (max sends, window seconds)
        self.paid_overall: tuple[int, float] = (1000, 1.0)
        self.per_group: tuple[int, float] = (20, 60.0)
        self.per_private: tuple[int, float] = (3, 1.0)
        self._windows: dict[Hashable, deque[float]] = {}

    def _wait(self, key: Hashable, rule: tuple[int, float], now: float) -> float:
        limit, window = rule
        stamps = self._windows.setdefault(key, deque())
        while stamps and stamps[0] <= now - window:
            stamps.popleft()
        return stamps[-limit] + window - now if len(stamps) >= limit else 0.0

    def acquire(self, chat_id: int, is_group: bool, now: float, *, paid: bool = False) -> None:
        """Count one send into `chat_id`, or raise 429 if a window is full."""
        if not self.enabled:
            return
        chat_rule = self.per_group if is_group else self.per_private
        overall_key, overall_rule = ("paid", self.paid_overall) if paid else ("overall", self.overall)
        wait = max(self._wait(overall_key, overall_rule, now), self._wait(chat_id, chat_rule, now))
        if wait > 0:
            raise too_many_requests(max(1, math.ceil(wait)))
        self._windows[overall_key].append(now)
        self._windows[chat_id].append(now)
