"""The leaders' weekly stats digest: the overview chart with its key numbers and their changes,
one private message per leader a week, at the community-local weekday and time set in Settings.

Runs every minute. The (community, ISO week) pair is claimed in `job_marks` and committed before
anything is sent, so restarts, late runs and several workers send it once a week.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiogram.types import BufferedInputFile

from bot.core.i18n import get_i18n
from bot.core.locales import resolve_locale
from bot.jobs.registry import job
from bot.services import job_marks, order_reports, stats, stats_digest
from bot.telegram.context import BotContext
from bot.telegram.sender import Delivery
from bot.views.stats_charts import render_async, render_overview
from bot.views.stats_text import digest_caption
from models import Community


async def send_digest(ctx: BotContext, community: Community, now: datetime, key: str) -> list[Delivery] | None:
    """Claim this week's digest for the community and send it to its reachable leaders; None if
    another run already claimed it."""
    async with ctx.sessions() as session:
        if not await job_marks.claim(session, job="stats_digest", key=key, now=now):
            await session.rollback()
            return None
        await session.commit()
        data = await stats.overview(session, community=community, now=now)
        leaders = await order_reports.summary_recipients(session, community_id=community.id)
    charts: dict[str, bytes] = {}
    sends = []
    i18n = get_i18n()
    for user in leaders:
        locale = resolve_locale(user, community, community.default_locale)
        if locale not in charts:
            charts[locale] = await render_async(render_overview, data, locale)
        with i18n.use_locale(locale):
            text = digest_caption(data, community.title or str(community.chat_id), locale)
        photo = BufferedInputFile(charts[locale], filename=f"digest-{community.id}.png")
        sends.append(ctx.sender.send_photo(user.id, photo, caption=text))
    return list(await asyncio.gather(*sends))


@job("stats_digest", "Send leaders their community's weekly stats digest at the local weekday and time they chose",
     trigger="interval", minutes=1)
async def weekly_stats_digest(ctx: BotContext, now: datetime) -> str:
    async with ctx.sessions() as session:
        due = await stats_digest.digests_due(session, now=now)
    communities_sent = messages = 0
    for community, key in due:
        deliveries = await send_digest(ctx, community, now, key)
        if deliveries is not None:
            communities_sent += 1
            messages += sum(1 for d in deliveries if d.ok)
    return f"{communities_sent} communities, {messages} messages"
