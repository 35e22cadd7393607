"""Telling the leaders that members want invite links and which right the bot lacks to make them:
once a week at most per community, in each leader's language, durable (the member's /invite that
caused it is acknowledged before it leaves); and telling inviters what their rewarded invites
earned, whether the qualification job or a leader's approval rewarded them."""

from __future__ import annotations

from datetime import datetime
from html import escape

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import translate
from bot.core.locales import resolve_locale
from bot.services import invite_notices, job_marks, order_reports
from bot.services.invite_rewards import Grant
from bot.telegram.sender import Sender
from bot.views.invite_member import reward_notice
from models import Community

MARK = "invite_right"


def right_text(community: Community, locale: str) -> str:
    """The onboarding's words for a missing right, after what it stops."""
    return "\n".join([
        translate("Members of {title} asked for their invite links, and I cannot make them.", locale,
                  title=escape(community.title)),
        translate("I am an administrator here but I am missing these rights:", locale)
        if community.bot_status == "administrator" else
        translate("To work fully I need to be an administrator of this group with these rights:", locale),
        "• " + translate("Invite users via link", locale),
        translate("A group admin can grant them in the group's settings → Administrators → this bot. I will check "
                  "again when they change.", locale),
    ])


async def tell_leaders_right(session: AsyncSession, sender: Sender, community: Community, *, now: datetime) -> bool:
    """Tell the community's reachable leaders, unless they were told this ISO week. Commits."""
    year, week, _day = now.isocalendar()
    claimed = await job_marks.claim(session, job=MARK, key=f"{community.id}:{year}-{week}", now=now)
    await session.commit()
    if not claimed:
        return False
    for leader in await order_reports.summary_recipients(session, community_id=community.id):
        locale = resolve_locale(leader, community, community.default_locale)
        sender.send_message(leader.id, right_text(community, locale), durable=True)
    return True


async def tell_rewarded(session: AsyncSession, sender: Sender, grants: list[Grant]) -> int:
    """One private message per rewarded inviter and group, to those the bot may write to; how many."""
    notices = await invite_notices.reward_notices(session, grants=grants)
    for notice in notices:
        locale = resolve_locale(notice.user, notice.community, notice.community.default_locale)
        sender.send_message(notice.user.id, reward_notice(notice, locale), durable=True)
    return len(notices)
