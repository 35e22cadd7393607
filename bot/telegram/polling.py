"""Which updates polling may confirm to Telegram.

getUpdates confirms every update below the offset it is called with, and Telegram never sends a
confirmed update again. aiogram moves the offset past an update as soon as it hands it to a task,
so a process that dies with updates in hand loses them. Here the offset stays at the oldest update
not handled yet: a crash, a kill or a lost connection at any moment leaves every unhandled update
with Telegram, which delivers it again; the ledger (bot/telegram/dedup.py) keeps what was handled
from being handled twice.

Telegram returns at most 100 updates from the offset, so updates already being handled, or handled
while an older one still runs, come back in later answers; they are recognised here by id and
passed over without being parsed or routed again. When an answer brings nothing new, polling waits
for a handler to finish instead of asking again at once.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

# An update whose handling fails outside every handler (the database or Redis gone for a moment) is
# fetched and tried again; after this many attempts it is given up, logged, so that one cannot stall
# polling.
MAX_ATTEMPTS = 3


class PollingWindow:
    def __init__(self) -> None:
        self._running: set[int] = set()  # handed to a handler or the chatter lane, not finished
        self._finished: set[int] = set()  # finished while an older update was still running
        self._retry: dict[int, int] = {}  # failed outside every handler: id → attempts so far
        self._next = 0  # one past the newest update handed out
        self._asked: int | None = None  # the offset of the last getUpdates
        self._progress = asyncio.Event()

    @property
    def offset(self) -> int | None:
        """What getUpdates may confirm: everything below the oldest update not handled yet."""
        pending = self._running | self._retry.keys()
        if pending:
            return min(pending)
        return self._next or None

    def next_offset(self) -> int | None:
        """The offset for the next getUpdates. The answer to the last one has been read by now, so
        what that one confirmed never comes back and need not be recognised any more; an update
        finished while that request was out may still be in its answer, so it is kept until then."""
        if self._asked is not None and self._finished:
            self._finished = {u for u in self._finished if u >= self._asked}
        self._asked = self.offset
        return self._asked

    def known(self, update_id: int) -> bool:
        """Being handled, or handled already: not to be handed out again."""
        return update_id in self._running or update_id in self._finished

    def started(self, update_id: int) -> None:
        self._running.add(update_id)
        self._next = max(self._next, update_id + 1)

    def finished(self, update_id: int) -> None:
        self._running.discard(update_id)
        self._retry.pop(update_id, None)
        self._finished.add(update_id)
        self._progress.set()

    def failed(self, update_id: int) -> None:
        attempts = self._retry.get(update_id, 0) + 1
        if attempts >= MAX_ATTEMPTS:
            log.error("update %s failed %s times outside every handler; given up", update_id, attempts)
            self.finished(update_id)
            return
        self._running.discard(update_id)
        self._retry[update_id] = attempts
        self._progress.set()

    async def wait_for_progress(self) -> None:
        """Until a handler finishes or fails (called when an answer brought nothing new)."""
        if self._running:
            self._progress.clear()
            await self._progress.wait()
