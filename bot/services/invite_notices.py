"""What the qualification job tells the inviters it rewarded: its grants, one notice per person and
community, for the people the bot may write to.

A reward is what the member earned, not a promotion: a member who used /stop still hears of it.
Erased people and people who never started the bot (or blocked it) are not written to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.invite_rewards import Grant
from models import Community, Coupon, Referral, User

_IN_CHUNK = 5000  # ids per IN list: SQLite binds at most 32,766 parameters


@dataclass(frozen=True, slots=True)
class RewardLine:
    level: int  # 1: the recipient invited `friend`; 2: `friend` is the recipient's invitee who invited someone
    points: int
    coupon: Coupon | None
    friend: User | None  # None or hidden: not to be named
    friend_hidden: bool


@dataclass(slots=True)
class RewardNotice:
    user: User
    community: Community
    lines: list[RewardLine] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(line.points for line in self.lines)


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    unique = sorted(set(ids))
    return [unique[i:i + _IN_CHUNK] for i in range(0, len(unique), _IN_CHUNK)]


async def _by_id(session: AsyncSession, model, ids: Sequence[int]) -> dict:
    found = {}
    for chunk in _chunks(ids):
        for row in await session.exec(select(model).where(col(model.id).in_(chunk))):
            found[row.id] = row
    return found


async def reward_notices(session: AsyncSession, *, grants: Sequence[Grant]) -> list[RewardNotice]:
    """The grants of one qualification run, grouped by recipient and community (in the order the
    grants came), keeping only recipients who can read a private message from the bot."""
    if not grants:
        return []
    referrals = await _by_id(session, Referral, [g.referral_id for g in grants])
    people = await _by_id(session, User, [g.user_id for g in grants]
                          + [r.invitee_id for r in referrals.values()]
                          + [r.inviter_id for r in referrals.values() if r.inviter_id is not None])
    communities = await _by_id(session, Community, [r.community_id for r in referrals.values()])
    coupons = await _by_id(session, Coupon, [g.coupon_id for g in grants if g.coupon_id is not None])
    notices: dict[tuple[int, int], RewardNotice] = {}
    for grant in grants:
        referral, user = referrals.get(grant.referral_id), people.get(grant.user_id)
        if referral is None or user is None or not user.can_dm or user.erased:
            continue
        friend_id = referral.invitee_id if grant.level == 1 else referral.inviter_id
        friend = people.get(friend_id) if friend_id is not None else None
        key = (user.id, referral.community_id)
        if key not in notices:
            notices[key] = RewardNotice(user, communities[referral.community_id])
        notices[key].lines.append(RewardLine(
            grant.level, grant.points, coupons.get(grant.coupon_id) if grant.coupon_id is not None else None,
            friend, friend is None or friend.hidden_at(referral.joined_at)))
    return list(notices.values())
