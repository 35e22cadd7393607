"""The bot's update queue with getUpdates semantics.

Mirrors Telegram: updates wait until confirmed by an `offset` above their id,
a negative offset keeps only the newest updates, `allowed_updates` persists
between calls and only filters updates created after it was set, a second
concurrent getUpdates terminates the first with 409, and an empty queue holds
the request open (long polling) until an update arrives or `timeout` passes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from .errors import ApiError

UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
DEFAULT_ALLOWED = UPDATE_TYPES - {"chat_member", "message_reaction", "message_reaction_count"}
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"


class _Entry:
    __slots__ = ("delivered", "forced", "update")

    def __init__(self, update: dict[str, Any], forced: bool):
        self.update = update
        self.forced = forced  # a redelivered copy: served once regardless of offset
        self.delivered = False


class UpdateQueue:
    def __init__(self, first_update_id: int = 100_000_001):
        self.allowed: frozenset[str] = DEFAULT_ALLOWED
        self.undelivered = 0
        self._next_id = first_update_id
        self._entries: deque[_Entry] = deque()
        self._history: dict[int, dict[str, Any]] = {}
        self._confirmed_below = 0
        self._poller: asyncio.Future[str] | None = None
        self._closed = False

    def set_allowed(self, types: list[str]) -> None:
        """An empty list restores Telegram's default set."""
        self.allowed = frozenset(types) & UPDATE_TYPES if types else DEFAULT_ALLOWED

    def push(self, kind: str, payload: dict[str, Any]) -> int | None:
        """Create an update; return its id, or None if the bot does not receive this type."""
        if kind not in self.allowed:
            return None
        update_id = self._next_id
        self._next_id += 1
        update = {"update_id": update_id, kind: payload}
        self._history[update_id] = update
        self._append(_Entry(update, forced=False))
        return update_id

    def redeliver(self, update_id: int) -> None:
        self._append(_Entry(self._history[update_id], forced=True))

    def get(self, update_id: int) -> dict[str, Any]:
        return self._history[update_id]

    def drop_pending(self) -> None:
        self._entries.clear()
        self.undelivered = 0
        self._confirmed_below = self._next_id

    @property
    def pending(self) -> int:
        return len(self._entries)

    def _append(self, entry: _Entry) -> None:
        self._entries.append(entry)
        self.undelivered += 1
        self._wake("update")

    def _wake(self, reason: str) -> None:
        if self._poller is not None and not self._poller.done():
            self._poller.set_result(reason)

    def _drop_left(self) -> None:
        entry = self._entries.popleft()
        if not entry.delivered:
            self.undelivered -= 1

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            while len(self._entries) > -offset:
                self._drop_left()
            if self._entries:
                self._confirmed_below = max(self._confirmed_below, self._entries[0].update["update_id"])
            return
        self._confirmed_below = max(self._confirmed_below, offset)
        while self._entries and not self._servable(self._entries[0]):
            self._drop_left()

    def _servable(self, entry: _Entry) -> bool:
        if entry.forced:
            return not entry.delivered
        return entry.update["update_id"] >= self._confirmed_below

    def _take(self, limit: int) -> list[dict[str, Any]]:
        batch = []
        for entry in self._entries:
            if len(batch) >= limit:
                break
            if self._servable(entry):
                batch.append(entry.update)
                if not entry.delivered:
                    entry.delivered = True
                    self.undelivered -= 1
        return batch

    async def poll(
        self, offset: int, limit: int, timeout: float, connected: Callable[[], bool] = lambda: True
    ) -> list[dict[str, Any]]:
        """Serve one getUpdates call; a caller that hung up while waiting gets nothing."""
        self._wake("conflict")
        if offset:
            self._confirm(offset)
        batch = self._take(limit)
        if batch or timeout <= 0 or self._closed:
            return batch
        waiter = asyncio.get_running_loop().create_future()
        self._poller = waiter
        try:
            await asyncio.wait([waiter], timeout=timeout)
        finally:
            if self._poller is waiter:
                self._poller = None
        if waiter.done() and waiter.result() == "conflict":
            raise ApiError(409, CONFLICT)
        return self._take(limit) if connected() else []

    def close(self) -> None:
        """Release a held long poll (emulator shutdown)."""
        self._closed = True
        self._wake("closed")
