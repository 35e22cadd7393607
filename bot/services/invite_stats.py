"""What invitations add up to: a member's counts (as the Discord trackers show them), the inviters'
leaderboard, a member's downline by level, a community's totals, and the CSV export.

Erased people are never named: lists carry `hidden` (or no name and no id in the export), and the
leaderboard leaves them out. Counts stay, anonymous.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import case, func
from sqlalchemy.orm import aliased
from sqlmodel import col, not_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Member, MemberStatus, Referral, ReferralState, User

_QUALIFIED = (ReferralState.QUALIFIED.value, ReferralState.REWARDED.value)
_FAKE = (ReferralState.FLAGGED.value, ReferralState.REJECTED.value)
DOWNLINE_MAX_DEPTH = 10
_IN_CHUNK = 5000  # ids per IN list: SQLite binds at most 32,766 parameters


def _count(condition) -> object:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


@dataclass(frozen=True, slots=True)
class InviteCounts:
    """One member's invitations in one community.

    regular: invites that qualified (rewarded or not), still counted if the invitee left later;
    left: invitees who left, whenever (before qualifying, or after, when they are in `regular` too);
    fake: held for review or rejected; bonus: second-level rewards (an invitee of theirs invited
    someone who qualified); pending: waiting to qualify.
    """

    regular: int
    left: int
    fake: int
    bonus: int
    pending: int

    @property
    def total(self) -> int:
        return self.regular + self.bonus


async def counts_for(session: AsyncSession, *, community_id: int, user_id: int) -> InviteCounts:
    r = Referral.__table__.c
    bonus = (select(func.count()).where(r.community_id == community_id, r.bonus_to == user_id,
                                        r.state == ReferralState.REWARDED.value).scalar_subquery())
    row = (await session.execute(select(
        _count(r.state.in_(_QUALIFIED)), _count(r.left_at.is_not(None)), _count(r.state.in_(_FAKE)), bonus,
        _count(r.state == ReferralState.PENDING.value))
        .where(r.community_id == community_id, r.inviter_id == user_id))).one()
    return InviteCounts(*(int(value) for value in row))


@dataclass(frozen=True, slots=True)
class InviterStanding:
    rank: int  # competition ranking: equal counts share a rank
    user: User
    invites: int  # qualified invites


async def top_inviters(session: AsyncSession, *, community_id: int, since: datetime | None = None,
                       limit: int = 10) -> list[InviterStanding]:
    """Members with the most qualified invites (joined since `since`, if given); erased people left out."""
    invites = func.count(Referral.id).label("invites")
    query = (select(User, invites).join(Referral, Referral.inviter_id == User.id)
             .where(Referral.community_id == community_id, col(Referral.state).in_(_QUALIFIED), not_(col(User.erased))))
    if since is not None:
        query = query.where(Referral.joined_at >= since)
    rows = await session.execute(query.group_by(User.id).order_by(invites.desc(), User.id).limit(limit))
    standings: list[InviterStanding] = []
    for n, (user, count) in enumerate(rows):
        rank = standings[-1].rank if standings and standings[-1].invites == count else n + 1
        standings.append(InviterStanding(rank, user, int(count)))
    return standings


@dataclass(frozen=True, slots=True)
class DownlinePerson:
    user: User
    hidden: bool  # erased since they joined: show no name
    state: str
    joined_at: datetime
    left: bool


@dataclass(frozen=True, slots=True)
class DownlineLevel:
    level: int  # 1: people the member invited; 2: people they invited; ...
    count: int
    people: list[DownlinePerson]  # the first `per_level` of them, earliest first


async def downline(session: AsyncSession, *, community_id: int, user_id: int, max_depth: int = 3,
                   per_level: int = 20) -> list[DownlineLevel]:
    """Who the member brought in, level by level (one query a level), at most `max_depth` (≤ 10)
    levels deep. Levels past 2 are shown for analytics; they are never rewarded."""
    levels: list[DownlineLevel] = []
    frontier = [user_id]
    seen = {user_id}
    for level in range(1, min(max_depth, DOWNLINE_MAX_DEPTH) + 1):
        people: list[DownlinePerson] = []
        for start in range(0, len(frontier), _IN_CHUNK):
            rows = await session.execute(
                select(User, Referral.state, Referral.joined_at, Referral.left_at)
                .join(Referral, Referral.invitee_id == User.id)
                .where(Referral.community_id == community_id,
                       col(Referral.inviter_id).in_(frontier[start:start + _IN_CHUNK])))
            people.extend(DownlinePerson(user, user.hidden_at(joined_at), state, joined_at, left_at is not None)
                          for user, state, joined_at, left_at in rows if user.id not in seen)
        if not people:
            break
        people.sort(key=lambda p: (p.joined_at, p.user.id))
        levels.append(DownlineLevel(level, len(people), people[:per_level]))
        frontier = [p.user.id for p in people]
        seen.update(frontier)
    return levels


@dataclass(frozen=True, slots=True)
class InviteTotals:
    """A community's invitations: by state and by source, and invites per present member."""

    by_state: dict[str, int]
    by_via: dict[str, int]
    inviters: int  # members with at least one qualified invite
    members: int  # present members
    qualified: int

    @property
    def k_factor(self) -> float:
        """Qualified invites per present member (the viral coefficient, over the community's life)."""
        return self.qualified / self.members if self.members else 0.0


async def totals(session: AsyncSession, *, community_id: int) -> InviteTotals:
    r = Referral.__table__.c
    by_state = dict((await session.execute(select(r.state, func.count()).where(r.community_id == community_id)
                                           .group_by(r.state))).all())
    by_via = dict((await session.execute(select(r.via, func.count()).where(r.community_id == community_id)
                                         .group_by(r.via))).all())
    inviters = (await session.execute(select(func.count(func.distinct(r.inviter_id))).where(
        r.community_id == community_id, r.state.in_(_QUALIFIED)))).scalar_one()
    present = (await session.execute(select(func.count()).select_from(Member).where(
        Member.community_id == community_id, Member.status == MemberStatus.MEMBER))).scalar_one()
    qualified = sum(by_state.get(state, 0) for state in _QUALIFIED)
    return InviteTotals(by_state, by_via, int(inviters), int(present), qualified)


# --- export ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ExportRow:
    """One referral for the leaders' export; ids and names are None for erased people."""

    joined_at: datetime
    invitee_id: int | None
    invitee_name: str | None
    inviter_id: int | None
    inviter_name: str | None
    via: str
    state: str
    depth: int
    flags: list[str]
    qualified_at: datetime | None
    rewarded_at: datetime | None
    left_at: datetime | None


def _person(user: User | None, at: datetime) -> tuple[int | None, str | None]:
    if user is None or user.hidden_at(at):
        return None, None
    return user.id, user.display_name


async def export_rows(session: AsyncSession, *, community_id: int, batch: int = 1000) -> AsyncIterator[ExportRow]:
    """Every referral of the community, oldest first, read `batch` at a time."""
    invitee, inviter = aliased(User), aliased(User)
    cursor = 0
    while True:
        rows = list(await session.execute(
            select(Referral, invitee, inviter).join(invitee, invitee.id == Referral.invitee_id)
            .outerjoin(inviter, inviter.id == Referral.inviter_id)
            .where(Referral.community_id == community_id, Referral.id > cursor).order_by(Referral.id).limit(batch)))
        for referral, person, by in rows:
            invitee_id, invitee_name = _person(person, referral.joined_at)
            inviter_id, inviter_name = _person(by, referral.joined_at)
            yield ExportRow(referral.joined_at, invitee_id, invitee_name, inviter_id, inviter_name, referral.via,
                            referral.state, referral.depth, list(referral.flags), referral.qualified_at,
                            referral.rewarded_at, referral.left_at)
        if len(rows) < batch:
            return
        cursor = rows[-1][0].id


def to_csv(rows: Iterable[ExportRow], *, tz: str, header: list[str], erased_name: str,
           label: Callable[[str], str]) -> bytes:
    """The export as CSV in UTF-8 with a BOM (Excel reads Chinese otherwise as mojibake): joined,
    invitee id, invitee, inviter id, inviter, source, state, depth, flags, qualified, rewarded,
    left. Times community-local; `label` words a source, state or flag; erased people are
    `erased_name` with no id."""
    zone = ZoneInfo(tz)

    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([
            local(row.joined_at), row.invitee_id or "", row.invitee_name if row.invitee_id else erased_name,
            row.inviter_id or "", row.inviter_name or (erased_name if row.depth else ""),
            label(row.via), label(row.state), row.depth, " ".join(label(f) for f in row.flags),
            local(row.qualified_at), local(row.rewarded_at), local(row.left_at),
        ])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
