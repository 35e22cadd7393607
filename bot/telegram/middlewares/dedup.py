"""Drops an update whose id was already handled (webhook retries, restarts, double delivery), and
records an update as handled only once its handler has finished and the messages it queued for
later are in the outbox (bot/telegram/outbox.py)."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Update

from bot.telegram.dedup import Claim, UpdateLedger

log = logging.getLogger(__name__)


class Busy:
    """What feeding an update returns when another delivery of it is being handled right now: the
    webhook answers it with a retry, since that other handling may yet be cut off."""

    def __repr__(self) -> str:
        return "BUSY"


BUSY = Busy()


class DedupMiddleware(BaseMiddleware):
    def __init__(self, ledger: UpdateLedger) -> None:
        self.ledger = ledger
        self.dropped = 0

    async def __call__(self, handler, event: Update, data: dict[str, Any]) -> Any:
        claim = await self.ledger.claim(event.update_id, take_over=data.get("polling", False))
        if claim is not Claim.NEW:
            self.dropped += 1
            log.info("update %s delivered again (%s); ignored", event.update_id, claim)
            return BUSY if claim is Claim.BUSY else None
        try:
            result = await handler(event, data)
            sender = data.get("sender")
            if sender is not None and sender.persisting:
                # What the handler (or the errors middleware's apology) queued and nobody awaits
                # must be in the outbox before the update counts as handled and is acknowledged.
                await sender.persisted()
        except BaseException:
            # Nothing below handled it (the errors middleware answers what handlers raise), or
            # its messages could not be made durable: a redelivery must find it unhandled.
            # Cancelled at shutdown counts too.
            await self.ledger.release(event.update_id)
            raise
        await self.ledger.complete(event.update_id)
        return result

    async def fresh(self, updates: list[Update]) -> list[Update]:
        """The updates not handled before, asking the ledger once for all of them."""
        firsts = await self.ledger.first_times([u.update_id for u in updates])
        for update, first in zip(updates, firsts):
            if not first:
                self.dropped += 1
                log.info("update %s delivered again; ignored", update.update_id)
        return [u for u, first in zip(updates, firsts) if first]
