"""Builders for the invitation service tests: a community with invite options, people arriving and
leaving the way the handlers will call the services (attribution first, then the membership
change), member links, and what the database holds read back in a session of its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.db import SessionFactory
from bot.services import communities, invite_links, invites, members
from bot.services.invites import Attribution
from bot.services.users import Profile
from models import Community, InviteLink, Member, PointsAccount, PointsEntry, Referral, Via

ALL_RIGHTS = {"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True, "can_manage_chat": True}


def profile(uid: int) -> Profile:
    return Profile(id=uid, first_name=f"U{uid}")


async def make_group(session: AsyncSession, *, now: datetime, chat_id: int = -700, **options: object) -> Community:
    """A community the bot administers with every right, `options` as its invite settings (stored
    as given, so a test can store what validation would refuse)."""
    result = await communities.on_bot_status(
        session, chat_id=chat_id, title=f"Group {chat_id}", status="administrator", rights=ALL_RIGHTS,
        default_locale="en", default_timezone="UTC", now=now)
    return await with_options(session, result.community, **options)


async def with_options(session: AsyncSession, community: Community, **options: object) -> Community:
    community.settings = {**community.settings, "invites": {**community.settings.get("invites", {}), **options}}
    await session.commit()
    return community


async def seat(session: AsyncSession, community: Community, *uids: int, now: datetime) -> None:
    """Members who were there before invitations were tracked (no referral)."""
    for uid in uids:
        await members.on_member_status(session, community=community, profile=profile(uid), old_status="left",
                                       new_status="member", now=now)


async def link_of(session: AsyncSession, community: Community, owner: int, *, now: datetime,
                  join_request: bool = False) -> InviteLink:
    """The owner's member link, as the handler saves it after createChatInviteLink."""
    url = f"https://t.me/+{'R' if join_request else 'L'}{owner}x{community.id}"
    return await invite_links.save_link(session, community_id=community.id, user_id=owner, url=url,
                                        name=f"U{owner}", creates_join_request=join_request, now=now)


async def arrive(session: AsyncSession, community: Community, uid: int, *, now: datetime, via: Via = Via.UNKNOWN,
                 link: InviteLink | str | None = None, hint: int | None = None,
                 is_bot: bool = False) -> Attribution | None:
    """A join as the chat_member handler will record it: attribution, then the membership change."""
    url = link.url if isinstance(link, InviteLink) else link
    if url is not None and via == Via.UNKNOWN:
        via = Via.MEMBER_LINK
    found = await invites.attribute_join(session, community=community, profile=profile(uid), is_bot=is_bot, via=via,
                                         link_url=url, inviter_hint=hint, joined_at=now)
    if not is_bot:
        await members.on_member_status(session, community=community, profile=profile(uid), old_status="left",
                                       new_status="member", now=now)
    return found


async def depart(session: AsyncSession, community: Community, uid: int, *, now: datetime) -> Referral | None:
    referral = await invites.member_left(session, community_id=community.id, user_id=uid, at=now)
    await members.on_member_status(session, community=community, profile=profile(uid), old_status="member",
                                   new_status="left", now=now)
    return referral


async def referral_of(fresh: SessionFactory, community_id: int, uid: int) -> Referral | None:
    async with fresh() as s:
        return (await s.exec(select(Referral).where(Referral.community_id == community_id,
                                                    Referral.invitee_id == uid))).first()


async def member_of(fresh: SessionFactory, community_id: int, uid: int) -> Member | None:
    async with fresh() as s:
        return (await s.exec(select(Member).where(Member.community_id == community_id, Member.user_id == uid))).first()


@dataclass(frozen=True, slots=True)
class Ledger:
    entries: list[tuple[str, int, int | None]]  # (reference, delta, coupon_id), in order written
    balance: int

    @property
    def total(self) -> int:
        return sum(delta for _, delta, _ in self.entries)


async def ledger(fresh: SessionFactory, community_id: int, uid: int) -> Ledger:
    async with fresh() as s:
        entries = [(e.reference, e.delta, e.coupon_id) for e in await s.exec(
            select(PointsEntry).where(PointsEntry.community_id == community_id, PointsEntry.user_id == uid)
            .order_by(PointsEntry.id))]
        account = (await s.exec(select(PointsAccount).where(PointsAccount.community_id == community_id,
                                                            PointsAccount.user_id == uid))).first()
    return Ledger(entries, account.balance if account else 0)
