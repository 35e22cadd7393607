"""Every scheduled job, by name: what the scheduler, `jobs list` and `jobs run` read.

A feature adds its job here, in one line, like a router in handlers/__init__.py.
"""

from __future__ import annotations

from datetime import datetime

from bot.jobs import (
    campaigns,
    checkins,
    groupbuy_cards,
    groupbuys,
    invites,
    leaders,
    orders,
    posts,
    stats_digest,
    summary,
)
from bot.jobs.registry import Job
from bot.telegram.context import BotContext

JOBS: dict[str, Job] = {job.name: job for job in (
    leaders.refresh_leaders,
    posts.send_due_posts,
    posts.refresh_cards,
    orders.expire_orders,
    summary.daily_summary,
    stats_digest.weekly_stats_digest,
    groupbuys.groupbuy_deadlines,
    groupbuys.groupbuy_refunds,
    groupbuy_cards.refresh_groupbuy_cards,
    groupbuy_cards.tick_groupbuy_cards,
    checkins.post_checkin_cards,
    checkins.refresh_checkin_cards,
    checkins.checkin_digest,
    checkins.checkin_reminders,
    checkins.expire_points,
    invites.qualify_invites,
    campaigns.winback_campaigns,
)}



async def run_job(ctx: BotContext, name: str, now: datetime) -> str:
    """Run the job called `name` as of `now`."""
    return await JOBS[name].run(ctx, now)
