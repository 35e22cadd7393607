"""Keeping each group's leaders current: Telegram's creator and administrators, re-read hourly."""

from __future__ import annotations

from datetime import datetime

from bot.jobs.registry import job
from bot.services import communities
from bot.telegram import leaders
from bot.telegram.context import BotContext


@job("refresh_leaders", "Re-read creator and administrators of groups not refreshed in the last hour",
     trigger="interval", minutes=10)
async def refresh_leaders(ctx: BotContext, now: datetime) -> str:
    refreshed = failed = 0
    async with ctx.sessions() as session:
        for community in await communities.stale_leader_communities(session, now=now):
            if await leaders.refresh(ctx.bot, session, community, now=now):
                refreshed += 1
            else:
                failed += 1
    return f"{refreshed} refreshed, {failed} unavailable"
