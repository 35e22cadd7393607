"""Group-buy deadlines and the Stars refunds they owe.

`groupbuy_deadlines` closes whatever is due (teams past their deadline, thresholds at their
cut-off, team campaigns past their window) and announces every close nobody has announced yet.
Each close and each announcement is claimed in the database first, so a second run, a second
worker or the run at start-up (`catch_up`, which closes what fell due while the bot was down)
changes nothing and tells nobody twice.

`groupbuy_refunds` retries Stars refunds that Telegram refused when a close was announced.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot import refunds
from bot.groupbuy_announce import announce_pending
from bot.jobs import job
from bot.order_notify import notify_member
from bot.services import groupbuy_close, groupbuy_report
from models.types import utcnow

if TYPE_CHECKING:
    from bot.app import App

BATCH = 500
# An announcement refunds its Stars orders right after the close: the retry leaves them that long.
REFUND_GRACE = timedelta(minutes=2)


@job("groupbuy_deadlines", "Close group-buy teams and thresholds whose time has come; tell participants and leaders",
     trigger="interval", seconds=5)
async def groupbuy_deadlines(app: App, now: datetime) -> str:
    failed = thresholds = windows = finished = 0
    async with app.sessions() as session:
        while True:
            done = await groupbuy_close.sweep(session, now=now, limit=BATCH)
            failed, thresholds = failed + len(done.teams_failed), thresholds + len(done.thresholds_closed)
            windows, finished = windows + len(done.windows_ended), finished + len(done.campaigns_finished)
            if max(len(done.teams_failed), len(done.thresholds_closed), len(done.windows_ended)) < BATCH:
                break
    teams, campaigns = await announce_pending(app, now=now)
    return (f"{failed} teams failed, {thresholds} thresholds closed, {windows} windows ended, {finished} campaigns "
            f"finished; {teams} teams and {campaigns} campaigns announced")


async def catch_up(app: App) -> str | None:
    """The start-up run: deadlines that passed while the bot was down are closed now, not at the
    scheduler's first tick. A failure is logged (by run_job); the scheduler's runs try again."""
    from bot.scheduler import run_job

    try:
        return await run_job(app, "groupbuy_deadlines", utcnow())
    except Exception:
        return None


@job("groupbuy_refunds", "Retry Stars refunds of cancelled group-buy orders that Telegram refused; tell the buyers",
     trigger="interval", minutes=5)
async def groupbuy_refunds(app: App, now: datetime) -> str:
    refunded = left = 0
    async with app.sessions() as session:
        for order in await groupbuy_report.stars_refunds_due(session, cancelled_before=now - REFUND_GRACE):
            if await refunds.refund(app.bot, session, order, None, now):
                refunded += 1
                await notify_member(app.sender, session, order)
            else:
                left += 1
    return f"{refunded} refunded, {left} still due"
