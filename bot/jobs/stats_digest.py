"""The leaders' weekly stats digest: the overview chart with its key numbers and their changes,
one private message per leader a week, at the community-local weekday and time each leader chose
in Settings.

Runs every minute. Each (community, leader, ISO week) is claimed in `job_marks` and committed before
anything is sent, so restarts, late runs and several workers send each leader's digest once a week.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from itertools import groupby

from aiogram.types import BufferedInputFile

from bot.core.i18n import get_i18n
from bot.core.locales import resolve_locale
from bot.jobs.registry import job
from bot.services import job_marks, stats, stats_digest
from bot.services.stats_digest import DueDigest
from bot.telegram.context import BotContext
from bot.telegram.sender import Delivery
from bot.views.stats_charts import render_async, render_overview
from bot.views.stats_text import digest_caption
from models import Community


async def send_digests(ctx: BotContext, community: Community, due: list[DueDigest], now: datetime) -> list[Delivery]:
    """Claim this week's digest of the community for each due leader and send it to those whose claim
    this run won; an empty list if other runs claimed them all."""
    async with ctx.sessions() as session:
        leaders = [d.leader for d in due if await job_marks.claim(session, job=stats_digest.JOB, key=d.key, now=now)]
        await session.commit()
        if not leaders:
            return []
        data = await stats.overview(session, community=community, now=now)
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


@job("stats_digest", "Send each leader their community's weekly stats digest at the local weekday and time they chose",
     trigger="interval", minutes=1)
async def weekly_stats_digest(ctx: BotContext, now: datetime) -> str:
    async with ctx.sessions() as session:
        due = await stats_digest.digests_due(session, now=now)
    communities_sent = messages = 0
    for _, group in groupby(due, key=lambda d: d.community.id):
        batch = list(group)
        deliveries = await send_digests(ctx, batch[0].community, batch, now)
        if deliveries:
            communities_sent += 1
            messages += sum(1 for d in deliveries if d.ok)
    return f"{communities_sent} communities, {messages} messages"
