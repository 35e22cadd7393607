"""The leaders' daily order summary, at the community-local time they chose.

Runs every minute. A community is due once its summary time has passed in its local day; the
(community, local date) pair is claimed in `job_marks` and committed before anything is sent, so
restarts, late runs and several workers send it at most once a day, and the first run after the
time sends it.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from html import escape

from bot.core.db import SessionFactory
from bot.core.i18n import translate
from bot.core.locales import resolve_locale
from bot.jobs.registry import job
from bot.services import job_marks, order_reports
from bot.services.money import format_money
from bot.services.order_reports import DailyFigures
from bot.telegram.context import BotContext
from bot.telegram.sender import Delivery, Sender
from models import Community


def summary_text(community: Community, figures: DailyFigures, locale: str) -> str:
    def money(amount: int) -> str:
        return format_money(amount, community.currency, locale)

    lines = [
        translate("<b>Daily summary · {title} · {day}</b>", locale, title=escape(community.title), day=figures.day.isoformat()),
        translate("Orders placed: {orders} ({units} units)", locale, orders=figures.placed, units=figures.units),
        translate("Paid: {amount}", locale, amount=money(figures.revenue)),
        translate("Unpaid, to collect at pickup: {orders} orders, {amount}", locale, orders=figures.unpaid_count,
                  amount=money(figures.unpaid_amount)),
        translate("Cancelled: {orders}", locale, orders=figures.cancelled),
    ]
    if figures.by_place:
        lines.append(translate("By place:", locale))
        delivery = translate("Delivery", locale)
        lines.extend(f"  {escape(name) if name is not None else delivery}: {count}" for name, count in figures.by_place)
    return "\n".join(lines)


async def send_summary(sessions: SessionFactory, sender: Sender, community: Community, now: datetime,
                       day: date) -> list[Delivery] | None:
    """Claim today's summary for this community and send it to its reachable leaders; None if
    another run already claimed it."""
    async with sessions() as session:
        if not await job_marks.claim(session, job="daily_summary", key=f"{community.id}:{day.isoformat()}", now=now):
            await session.rollback()
            return None
        await session.commit()
        figures = await order_reports.daily_figures(session, community=community, day=day)
        leaders = await order_reports.summary_recipients(session, community_id=community.id)
    sends = [sender.send_message(user.id, summary_text(community, figures, resolve_locale(user, community, community.default_locale)))
             for user in leaders]
    return list(await asyncio.gather(*sends))


@job("daily_summary", "Send leaders their community's daily order summary at the local time they chose",
     trigger="interval", minutes=1)
async def daily_summary(ctx: BotContext, now: datetime) -> str:
    async with ctx.sessions() as session:
        due = await order_reports.summaries_due(session, now=now)
    communities_sent = messages = 0
    for community, day in due:
        deliveries = await send_summary(ctx.sessions, ctx.sender, community, now, day)
        if deliveries is not None:
            communities_sent += 1
            messages += sum(1 for d in deliveries if d.ok)
    return f"{communities_sent} communities, {messages} messages"
