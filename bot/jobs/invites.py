"""The invite qualification job: invites whose invitee stayed long enough (and did what the leader
requires) are qualified and rewarded, level 1 and at most level 2, and each rewarded inviter who
can read a private message hears what they earned, once: a run rewards only what it claimed, so a
second run, a late one or one on another worker finds nothing to tell.

Departures need no job: an invitee who leaves before qualifying (flagged when within 72 h) is
settled by the chat_member handler (`invites.member_left`), and the other fraud flags are set when
the join is attributed.
"""

from __future__ import annotations

from datetime import datetime

from bot.jobs.registry import job
from bot.services import invite_rewards
from bot.telegram.context import BotContext
from bot.views.invite_notices import tell_rewarded


@job("qualify_invites", "Qualify invites whose invitees stayed, reward their inviters (two levels at most), tell them",
     trigger="interval", minutes=10, at_start=True)
async def qualify_invites(ctx: BotContext, now: datetime) -> str:
    async with ctx.sessions() as session:
        report = await invite_rewards.qualify_due(session, as_of=now)
        told = await tell_rewarded(session, ctx.sender, report.grants)
    return (f"{report.qualified} qualified, {report.rewarded} rewarded, {report.points} points, "
            f"{report.coupons} coupons, {told} told")
