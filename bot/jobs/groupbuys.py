"""Group-buy deadlines and the Stars refunds they owe.

`groupbuy_deadlines` closes whatever is due (teams past their deadline, thresholds at their
cut-off, team campaigns past their window) and announces every close nobody has announced yet.
Each close and each announcement is claimed in the database first, so a second run, a second
worker or the run at start-up (which closes what fell due while the bot was down)
changes nothing and tells nobody twice.

`groupbuy_refunds` retries Stars refunds that Telegram refused when a close was announced.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.jobs.registry import job
from bot.services import groupbuy_close, groupbuy_report
from bot.telegram import refunds
from bot.telegram.context import BotContext
from bot.views.groupbuy_announce import announce_pending
from bot.views.order_notify import notify_member

BATCH = 500
# An announcement refunds its Stars orders right after the close: the retry leaves them that long.
REFUND_GRACE = timedelta(minutes=2)


@job("groupbuy_deadlines", "Close group-buy teams and thresholds whose time has come; tell participants and leaders",
     at_start=True, trigger="interval", seconds=5)
async def groupbuy_deadlines(ctx: BotContext, now: datetime) -> str:
    failed = thresholds = windows = finished = 0
    async with ctx.sessions() as session:
        while True:
            done = await groupbuy_close.sweep(session, now=now, limit=BATCH)
            failed, thresholds = failed + len(done.teams_failed), thresholds + len(done.thresholds_closed)
            windows, finished = windows + len(done.windows_ended), finished + len(done.campaigns_finished)
            if max(len(done.teams_failed), len(done.thresholds_closed), len(done.windows_ended)) < BATCH:
                break
    teams, campaigns = await announce_pending(ctx, now=now)
    return (f"{failed} teams failed, {thresholds} thresholds closed, {windows} windows ended, {finished} campaigns "
            f"finished; {teams} teams and {campaigns} campaigns announced")


@job("groupbuy_refunds", "Retry Stars refunds of cancelled group-buy orders that Telegram refused; tell the buyers",
     trigger="interval", minutes=5)
async def groupbuy_refunds(ctx: BotContext, now: datetime) -> str:
    refunded = left = 0
    async with ctx.sessions() as session:
        for order in await groupbuy_report.stars_refunds_due(session, cancelled_before=now - REFUND_GRACE):
            if await refunds.refund(ctx.bot, session, order, None, now):
                refunded += 1
                await notify_member(ctx.sender, session, order)
            else:
                left += 1
    return f"{refunded} refunded, {left} still due"
