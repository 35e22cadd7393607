"""Helpers for the members' invite end-to-end tests: invite options, what /invite hands a member,
the referrals and links the bot recorded, and running the qualification job as of a moment."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html import unescape

from e2e_harness import E2E, Group, en
from sqlmodel import select

from bot.sandbox import SimChat, SimUser
from bot.services import invite_settings
from models import Community, InviteLink, PointsEntry, Referral

_TAG = re.compile(r"<[^>]+>")
MEMBER_LINK = re.compile(r"https://t\.me/\+[A-Za-z0-9_-]+")
DEEP_LINK = re.compile(r"https://t\.me/\w+\?start=inv-[A-Z0-9]+")


def see(msgid: str, **kwargs: object) -> str:
    """What a reader sees of an English message: tags gone, entities decoded."""
    return unescape(_TAG.sub("", en(msgid, **kwargs)))


def now() -> datetime:
    return datetime.now(timezone.utc)


async def options(e2e: E2E, group: Group, **changes: object) -> None:
    """Invite options, set through the service as the leader's menu does."""
    async with e2e.db() as s:
        community = await s.get(Community, group.community_id)
        await invite_settings.update_invite_settings(s, community=community, actor_id=group.leader.id, now=now(),
                                                     **changes)


async def invite(e2e: E2E, user: SimUser) -> str:
    """`user` sends /invite in private (starting the bot if needed); the text they get."""
    await e2e.say(user, "/invite")
    return e2e.last(user)


def member_link_in(text: str) -> str:
    found = MEMBER_LINK.findall(text)
    assert found, f"no invite link in {text!r}"
    return found[0]


def deep_link_in(text: str) -> str:
    found = DEEP_LINK.findall(text)
    assert found, f"no deep link in {text!r}"
    return found[0]


def payload_of(deep_link: str) -> str:
    return deep_link.split("?start=", 1)[1]


async def link_of(e2e: E2E, user: SimUser) -> str:
    """The member's own link, from /invite."""
    return member_link_in(await invite(e2e, user))


async def joins(e2e: E2E, chat: SimChat, user: SimUser, link: str | None = None) -> None:
    await e2e.act(lambda: e2e.emu.join(chat, user, invite_link=link))


async def referral(e2e: E2E, group: Group, user: SimUser) -> Referral | None:
    async with e2e.db() as s:
        return (await s.exec(select(Referral).where(Referral.community_id == group.community_id,
                                                    Referral.invitee_id == user.id))).first()


async def referrals(e2e: E2E, group: Group) -> list[Referral]:
    async with e2e.db() as s:
        return list(await s.exec(select(Referral).where(Referral.community_id == group.community_id)
                                 .order_by(Referral.id)))


async def links(e2e: E2E, group: Group, user: SimUser) -> list[InviteLink]:
    async with e2e.db() as s:
        return list(await s.exec(select(InviteLink).where(InviteLink.community_id == group.community_id,
                                                          InviteLink.owner_id == user.id).order_by(InviteLink.id)))


async def invite_entries(e2e: E2E, group: Group) -> list[tuple[int, str, int]]:
    """(user id, reference, points) of every invite reward in the ledger."""
    async with e2e.db() as s:
        rows = await s.exec(select(PointsEntry).where(PointsEntry.community_id == group.community_id,
                                                      PointsEntry.reason == "invite").order_by(PointsEntry.id))
        return [(e.user_id, e.reference, e.delta) for e in rows]


async def qualify(e2e: E2E, at: datetime) -> str:
    summary = await e2e.app.run_job("qualify_invites", at)
    await e2e.settle()
    return summary


def days_later(days: float, joined: datetime | None = None) -> datetime:
    return (joined or now()) + timedelta(days=days, minutes=1)


def group_sends(e2e: E2E, chat: SimChat) -> list:
    return [c for c in e2e.emu.requests if c.ok and c.method == "sendMessage"
            and str(c.params.get("chat_id")) == str(chat.id)]


def calls(e2e: E2E, method: str) -> list:
    return [c for c in e2e.emu.requests if c.ok and c.method == method]
