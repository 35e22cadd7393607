"""Jobs that keep group-buy cards in the group current.

`refresh_groupbuy_cards` edits the cards of campaigns that changed (joins, teams closing, edits by
the leader). Every change marks the card stale; each run claims the stale cards once and draws
each once, so any number of joins between two runs make one edit. It edits only when the drawing
differs from what the card shows, so Telegram never answers "message is not modified", and it goes
through the sender, whose budget keeps the group under 20 messages (edits included) a minute.

`tick_groupbuy_cards` marks the cards of live campaigns stale once a minute, for their time left;
the time left is rounded on the card, so most of those re-draws change nothing and send nothing.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.jobs.registry import job
from bot.services import groupbuy_board
from bot.telegram.context import BotContext
from bot.views.card_edits import edit_card
from bot.views.groupbuy_cards import render_board


async def _refresh(ctx: BotContext, group_buy_id: int, now: datetime) -> str:
    async with ctx.sessions() as session:
        board = await groupbuy_board.board(session, group_buy_id=group_buy_id, now=now)
    if board is None or board.campaign.message_id is None:
        return "skipped"
    if not board.community.active:
        return "skipped"
    text, markup = render_board(board, now, ctx.bot_username)

    async def record(session: AsyncSession, drawn: str | None) -> None:
        if drawn is None:
            await groupbuy_board.mark_stale(session, group_buy_id=group_buy_id)
        else:
            await groupbuy_board.set_rendered(session, group_buy_id=group_buy_id, rendered=drawn)

    return await edit_card(ctx, chat_id=board.campaign.chat_id, message_id=board.campaign.message_id, text=text,
                           markup=markup, shown=board.campaign.rendered, record=record,
                           label=f"card of group-buy {group_buy_id}")


@job("refresh_groupbuy_cards", "Edit group-buy cards whose progress or state changed, at most once per card per run",
     trigger="interval", seconds=3)
async def refresh_groupbuy_cards(ctx: BotContext, now: datetime) -> str:
    async with ctx.sessions() as session:
        stale = await groupbuy_board.claim_stale(session)
    results = await asyncio.gather(*(_refresh(ctx, group_buy_id, now) for group_buy_id in stale))
    return ", ".join(f"{results.count(kind)} {kind}" for kind in ("edited", "unchanged", "failed", "skipped"))


@job("tick_groupbuy_cards", "Re-draw the cards of live group-buys for their time left (edited only when it changed)",
     trigger="interval", seconds=60)
async def tick_groupbuy_cards(ctx: BotContext, now: datetime) -> str:
    async with ctx.sessions() as session:
        marked = await groupbuy_board.mark_live_stale(session)
    return f"{marked} marked"
