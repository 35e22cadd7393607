"""A member's place in a community's invite chains, for the leaders' chain view: the person a leader
names, how they came, and who stands above them (their downline is `invite_stats.downline`).

Erased people are never named: `hidden` marks them, and an erased inviter ends the chain (erasure
cut their invites loose, `invite_privacy.erase`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, not_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.numbers import whole_number
from bot.services.errors import DomainError
from models import Member, Referral, User

UPLINE_MAX_DEPTH = 10


@dataclass(frozen=True, slots=True)
class UplinePerson:
    level: int  # 1: who invited the member; 2: who invited that person; ...
    user: User
    hidden: bool  # erased since the invite was recorded: show no name


@dataclass(frozen=True, slots=True)
class Upline:
    referral: Referral | None  # how the member came; None: before invites were tracked here
    people: list[UplinePerson]
    more: bool  # the chain goes on above the last person listed


async def find_person(session: AsyncSession, *, community_id: int, raw: str) -> User:
    """Someone who is or was a member of the community (people who left have chains too), named by
    @username (any case) or numeric Telegram id. Refusal: `invite_member_unknown` (value)."""
    text = raw.strip()
    query = (select(User).join(Member, Member.user_id == User.id)
             .where(Member.community_id == community_id, not_(col(User.erased))))
    # Telegram ids fit in 52 bits; a longer number names nobody (and would not fit the column).
    if (user_id := whole_number(text.removeprefix("-"))) is not None and user_id < 2**52:
        query = query.where(User.id == (-user_id if text.startswith("-") else user_id))
    elif name := text.removeprefix("@"):
        query = query.where(func.lower(User.username) == name.lower())
    else:
        raise DomainError("invite_member_unknown", value=text[:64])
    user = (await session.exec(query)).first()
    if user is None:
        raise DomainError("invite_member_unknown", value=text[:64])
    return user


async def _referral(session: AsyncSession, community_id: int, user_id: int) -> Referral | None:
    found = await session.exec(select(Referral).where(Referral.community_id == community_id,
                                                      Referral.invitee_id == user_id))
    return found.first()


async def upline(session: AsyncSession, *, community_id: int, user_id: int,
                 max_depth: int = 5) -> Upline:
    """How the member came and their inviters upwards, at most `max_depth` (≤ 10) of them, one
    query a level. Attribution never makes a cycle; a corrupt one still ends the walk."""
    own = current = await _referral(session, community_id, user_id)
    people: list[UplinePerson] = []
    seen = {user_id}
    depth = min(max_depth, UPLINE_MAX_DEPTH)
    while current is not None and current.inviter_id is not None and current.inviter_id not in seen:
        if len(people) == depth:
            return Upline(own, people, True)
        inviter = await session.get(User, current.inviter_id)
        people.append(UplinePerson(len(people) + 1, inviter, inviter.hidden_at(current.joined_at)))
        seen.add(inviter.id)
        current = await _referral(session, community_id, inviter.id)
    return Upline(own, people, False)
