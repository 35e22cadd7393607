"""Drops an update whose id was already handled (webhook retries, restarts, double delivery)."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Update

from bot.telegram.dedup import UpdateLedger

log = logging.getLogger(__name__)


class DedupMiddleware(BaseMiddleware):
    def __init__(self, ledger: UpdateLedger) -> None:
        self.ledger = ledger
        self.dropped = 0

    async def __call__(self, handler, event: Update, data: dict[str, Any]) -> Any:
        if not await self.ledger.first_time(event.update_id):
            self.dropped += 1
            log.info("update %s delivered again; ignored", event.update_id)
            return None
        return await handler(event, data)

    async def fresh(self, updates: list[Update]) -> list[Update]:
        """The updates not handled before, asking the ledger once for all of them."""
        firsts = await self.ledger.first_times([u.update_id for u in updates])
        for update, first in zip(updates, firsts):
            if not first:
                self.dropped += 1
                log.info("update %s delivered again; ignored", update.update_id)
        return [u for u, first in zip(updates, firsts) if first]
