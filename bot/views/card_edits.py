"""Editing a card the bot posted in a group, when what it shows has changed.

Product cards and group-buy cards keep what they show as a fingerprint (`bot.cards.fingerprint`)
next to their message; the refresh jobs draw the card again and come here. Nothing is sent when
the drawing is unchanged, so Telegram never answers "message is not modified"; the edit goes
through the sender, whose budget keeps the group under its limit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiogram.methods import EditMessageCaption
from aiogram.types import InlineKeyboardMarkup
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.telegram.context import BotContext
from bot.views.cards import fingerprint

log = logging.getLogger(__name__)

Record = Callable[[AsyncSession, str | None], Awaitable[None]]


async def edit_card(ctx: BotContext, *, chat_id: int, message_id: int, text: str, markup: InlineKeyboardMarkup | None,
                    shown: str | None, record: Record, label: str, caption: bool = False) -> str:
    """"unchanged", "edited" or "failed". `record(session, fingerprint)` stores what the card shows
    after an edit; `record(session, None)` marks the card stale again when the sender gave up, so
    the next run retries. A card deleted by someone, or an edit refused, stays as it is."""
    drawn = fingerprint(text, markup)
    if drawn == shown:
        return "unchanged"
    # Not durable (bot/telegram/outbox.py): the edit is awaited to record what the card shows, which
    # a replay from the outbox could not do; a card left unrecorded stays stale and the job edits it again.
    if caption:
        delivery = await ctx.sender.submit(EditMessageCaption(chat_id=chat_id, message_id=message_id, caption=text,
                                                              reply_markup=markup, parse_mode="HTML"))
    else:
        delivery = await ctx.sender.edit_message_text(chat_id, message_id, text, reply_markup=markup)
    if delivery.ok or delivery.error == "gave_up":
        async with ctx.sessions() as session:
            await record(session, drawn if delivery.ok else None)
        if delivery.ok:
            return "edited"
    log.info("%s not edited: %s %s", label, delivery.error, delivery.description)
    return "failed"
