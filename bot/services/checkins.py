"""Daily check-ins: one per member and community-local day, streaks with make-ups and freezes, the
reward curve and milestones, leaderboards, leaders' figures for today, and who to remind.

- The day is the community-local date of the member's action (`at`: the update's own date, or
  when a button press arrived), so a press at 23:59:59 counts for that day however late it is
  handled.
- A check-in locks the member's points account first (bot/services/points.py), so two of the
  same member's check-ins at once queue there: one writes the day's row and its ledger entry, the
  other answers "already". The row's unique (community, member, day) backs that up.
- `checkins.streak` is the streak ending on that day; a freeze row covers a missed day and keeps
  the streak without adding to it. The account caches the last day, its streak, the best streak
  and the freezes held. A make-up, or a press handled after a later day's, recomputes the streaks
  of the days after it (their points are never rewritten: a new curve is for new days).
- Milestones are given once, when a streak reaches them: the ledger entry's reference is the day
  the streak reached it and the milestone ("2026-12-06/7"), and a make-up that joins two streaks
  gives only the milestones the joined streak newly passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from functools import cache
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, bindparam, case, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import members, points
from bot.services.checkin_settings import CheckinSettings, CouponTerms, checkin_settings, local_day
from bot.services.errors import DomainError
from bot.services.points import AccountState
from bot.services.upsert import insert_in
from models import (
    CheckIn,
    CheckInKind,
    Community,
    Coupon,
    Member,
    MemberStatus,
    PointsAccount,
    PointsEntry,
    PointsReason,
    User,
)

FREEZE_EVERY = 7  # streak days that earn one freeze
FREEZES_MAX = 2
REMIND_FROM_STREAK = 3
# Lower bounds of the streak-length buckets leaders see (0: not on a streak).
STREAK_BUCKETS = (0, 1, 3, 7, 14, 30)
T = TypeVar("T")

_checkins, _accounts = CheckIn.__table__, PointsAccount.__table__


class CheckInStatus(StrEnum):
    DONE = "done"
    ALREADY = "already"  # this member already checked in this local day
    NOT_MEMBER = "not_member"  # not a present member (never joined, left, removed)
    DISABLED = "disabled"  # check-ins are off in this community


@dataclass(frozen=True, slots=True)
class NextMilestone:
    streak: int  # the streak length that reaches it
    in_days: int  # check-ins from now
    points: int  # bonus points (0 when it is a coupon)
    coupon: CouponTerms | None


@dataclass(frozen=True, slots=True)
class MilestoneGrant:
    streak: int
    day: date  # the day the streak reached it
    points: int
    coupon: Coupon | None


@dataclass(frozen=True, slots=True)
class CheckInResult:
    status: CheckInStatus
    day: date  # the community-local day the action counts for
    points: int  # earned by this day's check-in (also for ALREADY: what it earned then)
    streak: int  # current streak (0 for NOT_MEMBER / DISABLED)
    best_streak: int
    balance: int
    freezes: int  # held now
    next_milestone: NextMilestone | None
    milestones: tuple[MilestoneGrant, ...] = ()  # granted by this check-in
    freeze_used: bool = False  # a freeze covered the day before
    freezes_earned: int = 0


@dataclass(frozen=True, slots=True)
class MakeUpResult:
    day: date
    cost: int
    balance: int
    streak: int  # the member's current streak after the make-up
    best_streak: int
    makeups_left: int  # this community-local month
    milestones: tuple[MilestoneGrant, ...] = ()
    freezes_earned: int = 0


# --- the streak arithmetic ------------------------------------------------------------------------

def current_streak(settings: CheckinSettings, state: AccountState | PointsAccount, today: date) -> int:
    """The streak as it stands on `today`: alive if the last day is today or yesterday, or the day
    before yesterday when a freeze will cover yesterday at the next check-in."""
    if state.last_day is None:
        return 0
    gap = (today - state.last_day).days
    if gap <= 1 or (gap == 2 and settings.freeze_enabled and state.freezes > 0):
        return state.streak
    return 0


def _alive_sql(settings: CheckinSettings, today: date) -> ColumnElement:
    alive = col(PointsAccount.last_day) >= today - timedelta(days=1)
    if settings.freeze_enabled:
        alive = alive | ((col(PointsAccount.last_day) == today - timedelta(days=2)) & (col(PointsAccount.freezes) > 0))
    return alive


def _current_sql(settings: CheckinSettings, today: date) -> ColumnElement:
    return case((_alive_sql(settings, today), col(PointsAccount.streak)), else_=0)


def next_milestone(settings: CheckinSettings, streak: int) -> NextMilestone | None:
    """The first milestone a streak of `streak` days has still to reach."""
    for day, reward in settings.milestones.items():
        if day > streak:
            if isinstance(reward, CouponTerms):
                return NextMilestone(day, day - streak, 0, reward)
            return NextMilestone(day, day - streak, reward, None)
    return None


def _chain(rows: list[tuple[date, str]]) -> list[int]:
    """The streak ending on each of these days (sorted): consecutive days continue a streak, a
    freeze keeps it without adding to it."""
    streaks: list[int] = []
    for n, (day, kind) in enumerate(rows):
        linked = n > 0 and (day - rows[n - 1][0]).days == 1
        streaks.append((streaks[-1] if linked else 0) + (kind != CheckInKind.FREEZE))
    return streaks


def _crossed(settings: CheckinSettings, before: int, after: int) -> list[int]:
    return [day for day in settings.milestones if before < day <= after]


def _freezes_earned(settings: CheckinSettings, before: int, after: int, held: int) -> int:
    if not settings.freeze_enabled or after <= before:
        return 0
    return min(after // FREEZE_EVERY - before // FREEZE_EVERY, FREEZES_MAX - held) if held < FREEZES_MAX else 0


# --- checking in ----------------------------------------------------------------------------------

@cache
def _insert_day(dialect: str):
    return (insert_in(dialect, _checkins)
            .on_conflict_do_nothing(index_elements=["community_id", "user_id", "day"]).returning(_checkins.c.id))


_SAVE_ACCOUNT = (
    update(_accounts)
    .where(_accounts.c.community_id == bindparam("s_community"), _accounts.c.user_id == bindparam("s_user"))
    .values(balance=_accounts.c.balance + bindparam("s_delta"), streak=bindparam("s_streak"),
            best_streak=bindparam("s_best"), last_day=bindparam("s_last"), freezes=bindparam("s_freezes"),
            updated_at=bindparam("s_now")))
_SET_STREAK = update(_checkins).where(_checkins.c.id == bindparam("r_id")).values(streak=bindparam("r_streak"))


async def _is_present(session: AsyncSession, community_id: int, user_id: int) -> bool:
    status = await session.execute(select(Member.status).where(Member.community_id == community_id,
                                                               Member.user_id == user_id))
    return status.scalar() == MemberStatus.MEMBER


def _row(community_id: int, user_id: int, day: date, kind: CheckInKind, streak: int, earned: int, at: datetime,
         now: datetime) -> dict:
    return {"community_id": community_id, "user_id": user_id, "day": day, "kind": kind.value, "streak": streak,
            "points": earned, "at": at, "created_at": now}


async def check_in(session: AsyncSession, *, community: Community, user_id: int, at: datetime,
                   now: datetime | None = None) -> CheckInResult:
    """Check the member in for the community-local day of `at`, and commit.

    `at` is when the member acted (the update's date; for a button press, when it arrived);
    `now` is when this runs (defaults to `at`). Earns the curve's points for the day of the streak
    it makes, a milestone's bonus when the streak reaches one, and uses a freeze for a single missed
    day (when the leader turned freezes on and the member holds one). Not a DomainError but a
    status for the ordinary refusals: ALREADY (with today's figures), NOT_MEMBER, DISABLED.
    """
    now = now or at
    settings = checkin_settings(community)
    day = local_day(community, at)
    if not settings.enabled:
        return _nothing(CheckInStatus.DISABLED, day)
    state = await points.lock_member_account(session, community_id=community.id, user_id=user_id, now=now)
    if state is None:
        return _nothing(CheckInStatus.NOT_MEMBER, day)
    if state.last_day is not None and state.last_day >= day:
        return await _late_or_already(session, community, settings, user_id, day, state, at, now)
    gap = (day - state.last_day).days if state.last_day is not None else None
    freeze_used = gap == 2 and settings.freeze_enabled and state.freezes > 0
    streak = state.streak + 1 if gap == 1 or freeze_used else 1
    earned = settings.points_for(streak)
    dialect = session.get_bind().dialect.name
    inserted = (await session.execute(_insert_day(dialect), _row(
        community.id, user_id, day, CheckInKind.CHECKIN, streak, earned, at, now))).scalar()
    if inserted is None:  # a row the account did not know of; the lock makes this unreachable in practice
        await session.commit()
        return await _already(session, community, settings, user_id, day, state)
    if freeze_used:
        await session.execute(_insert_day(dialect), _row(community.id, user_id, day - timedelta(days=1),
                                                         CheckInKind.FREEZE, state.streak, 0, at, now))
    await points.write_entry(session, community_id=community.id, user_id=user_id, delta=earned,
                             reason=PointsReason.CHECKIN, reference=day.isoformat(), now=at)
    grants, bonus = await _grant(session, community, settings, user_id, [(m, day) for m in _crossed(
        settings, streak - 1, streak)], at, now)
    held = state.freezes - freeze_used
    new_freezes = _freezes_earned(settings, streak - 1, streak, held)
    best = max(state.best_streak, streak)
    await session.execute(_SAVE_ACCOUNT, {"s_community": community.id, "s_user": user_id, "s_delta": earned + bonus,
                                          "s_streak": streak, "s_best": best, "s_last": day,
                                          "s_freezes": held + new_freezes, "s_now": now})
    await session.commit()
    return CheckInResult(CheckInStatus.DONE, day, earned, streak, best, state.balance + earned + bonus,
                         held + new_freezes, next_milestone(settings, streak), tuple(grants), freeze_used,
                         new_freezes)


def _nothing(status: CheckInStatus, day: date) -> CheckInResult:
    return CheckInResult(status, day, 0, 0, 0, 0, 0, None)


async def _already(session: AsyncSession, community: Community, settings: CheckinSettings, user_id: int, day: date,
                   state: AccountState) -> CheckInResult:
    earned = (await session.execute(select(CheckIn.points).where(
        CheckIn.community_id == community.id, CheckIn.user_id == user_id, CheckIn.day == day))).scalar() or 0
    streak = current_streak(settings, state, day)
    return CheckInResult(CheckInStatus.ALREADY, day, earned, streak, state.best_streak, state.balance, state.freezes,
                         next_milestone(settings, streak))


@dataclass(slots=True)
class _Day:
    id: int | None
    day: date
    kind: str
    streak: int  # as stored (0 for a day not written yet)


async def _days(session: AsyncSession, community_id: int, user_id: int) -> list[_Day]:
    rows = await session.execute(select(CheckIn.id, CheckIn.day, CheckIn.kind, CheckIn.streak).where(
        CheckIn.community_id == community_id, CheckIn.user_id == user_id).order_by(CheckIn.day))
    return [_Day(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class _Rebuilt:
    streak_of_new: int
    last_day: date
    final: int  # the streak ending on the last day
    best: int
    reached: dict[int, date]  # streak length → the day the final streak reached it


async def _rebuild(session: AsyncSession, days: list[_Day], new: _Day) -> _Rebuilt:
    """Place `new` among the member's days, recompute every streak, and store the ones that changed
    (not `new`'s, which the caller writes)."""
    ordered = sorted([*days, new], key=lambda d: d.day)
    streaks = _chain([(d.day, d.kind) for d in ordered])
    changed = [{"r_id": d.id, "r_streak": s} for d, s in zip(ordered, streaks, strict=True)
               if d is not new and d.streak != s]
    if changed:
        await session.execute(_SET_STREAK, changed)
    reached: dict[int, date] = {}
    for n in range(len(ordered) - 1, -1, -1):  # the final streak, from its last day back to its first
        if ordered[n].kind != CheckInKind.FREEZE:
            reached[streaks[n]] = ordered[n].day
        if n == 0 or (ordered[n].day - ordered[n - 1].day).days != 1:
            break
    return _Rebuilt(streaks[ordered.index(new)], ordered[-1].day, streaks[-1], max(streaks), reached)


async def _late_or_already(session: AsyncSession, community: Community, settings: CheckinSettings, user_id: int,
                           day: date, state: AccountState, at: datetime, now: datetime) -> CheckInResult:
    """A day at or before the last one recorded: already checked in, or a press handled after a
    later day's (a redelivery after a restart, say), which is recorded and the streaks after it
    recomputed. A freeze that covered the day gives way to the check-in and is held again."""
    days = await _days(session, community.id, user_id)
    existing = next((d for d in days if d.day == day), None)
    if existing is not None and existing.kind != CheckInKind.FREEZE:
        await session.commit()
        return await _already(session, community, settings, user_id, day, state)
    freezes = state.freezes
    if existing is not None:
        await session.execute(CheckIn.__table__.delete().where(CheckIn.__table__.c.id == existing.id))
        days.remove(existing)
        freezes = min(freezes + 1, FREEZES_MAX)
    new = _Day(None, day, CheckInKind.CHECKIN, 0)
    rebuilt = await _rebuild(session, days, new)
    earned = settings.points_for(rebuilt.streak_of_new)
    await session.execute(_insert_day(session.get_bind().dialect.name), _row(
        community.id, user_id, day, CheckInKind.CHECKIN, rebuilt.streak_of_new, earned, at, now))
    await points.write_entry(session, community_id=community.id, user_id=user_id, delta=earned,
                             reason=PointsReason.CHECKIN, reference=day.isoformat(), now=at)
    today = max(local_day(community, now), rebuilt.last_day)
    return await _settle(session, community, settings, user_id, state, rebuilt, freezes, earned, at, now,
                         lambda result: CheckInResult(
                             CheckInStatus.DONE, day, earned, current_streak(settings, result, today),
                             result.best_streak, result.balance, result.freezes,
                             next_milestone(settings, current_streak(settings, result, today)), result.grants,
                             False, result.freezes_earned))


@dataclass(frozen=True, slots=True)
class _Settled:
    balance: int
    streak: int
    best_streak: int
    last_day: date
    freezes: int
    freezes_earned: int
    grants: tuple[MilestoneGrant, ...]


async def _settle(session: AsyncSession, community: Community, settings: CheckinSettings, user_id: int,
                  state: AccountState, rebuilt: _Rebuilt, freezes: int, delta: int, at: datetime, now: datetime,
                  result: Callable[[_Settled], T]) -> T:
    """After a rebuild: the milestones and freezes the final streak newly passes, the account, commit."""
    before = state.streak if rebuilt.last_day == state.last_day or rebuilt.final > 1 else 0
    before = min(before, rebuilt.final)
    crossed = [(m, rebuilt.reached[m]) for m in _crossed(settings, before, rebuilt.final) if m in rebuilt.reached]
    grants, bonus = await _grant(session, community, settings, user_id, crossed, at, now)
    earned_freezes = _freezes_earned(settings, before, rebuilt.final, freezes)
    settled = _Settled(state.balance + delta + bonus, rebuilt.final, max(state.best_streak, rebuilt.best),
                       rebuilt.last_day, freezes + earned_freezes, earned_freezes, tuple(grants))
    await session.execute(_SAVE_ACCOUNT, {"s_community": community.id, "s_user": user_id, "s_delta": delta + bonus,
                                          "s_streak": settled.streak, "s_best": settled.best_streak,
                                          "s_last": settled.last_day, "s_freezes": settled.freezes, "s_now": now})
    await session.commit()
    return result(settled)


async def _grant(session: AsyncSession, community: Community, settings: CheckinSettings, user_id: int,
                 reached: list[tuple[int, date]], at: datetime, now: datetime) -> tuple[list[MilestoneGrant], int]:
    """Give each milestone reached, once (its ledger entry is the guard); the grants and their points."""
    grants, total = [], 0
    for streak, day in reached:
        reward = settings.milestones[streak]
        bonus = reward if isinstance(reward, int) else 0
        entry_id = await points.write_entry(session, community_id=community.id, user_id=user_id, delta=bonus,
                                            reason=PointsReason.MILESTONE, reference=f"{day.isoformat()}/{streak}",
                                            now=at)
        if entry_id is None:
            continue
        coupon = None
        if isinstance(reward, CouponTerms):
            coupon = await points.issue_coupon(session, community=community, terms=reward, owner_id=user_id,
                                               now=now, source="checkin")
            # Written in the same transaction as the entry itself, before anyone can read it.
            await session.execute(update(PointsEntry.__table__).where(PointsEntry.__table__.c.id == entry_id)
                                  .values(coupon_id=coupon.id))
        grants.append(MilestoneGrant(streak, day, bonus, coupon))
        total += bonus
    return grants, total


# --- make-ups -------------------------------------------------------------------------------------

def _month_bounds(community: Community, at: datetime) -> tuple[datetime, datetime]:
    """The community-local calendar month of `at`, as UTC instants [start, end)."""
    zone = ZoneInfo(community.timezone)
    local = at.astimezone(zone)
    first = date(local.year, local.month, 1)
    following = date(local.year + (local.month == 12), local.month % 12 + 1, 1)
    return (datetime.combine(first, time(0), zone).astimezone(timezone.utc),
            datetime.combine(following, time(0), zone).astimezone(timezone.utc))


async def makeups_this_month(session: AsyncSession, *, community: Community, user_id: int, at: datetime) -> int:
    """Make-ups the member made in the community-local month of `at`."""
    start, end = _month_bounds(community, at)
    found = await session.execute(select(func.count()).select_from(CheckIn).where(
        CheckIn.community_id == community.id, CheckIn.user_id == user_id, CheckIn.kind == CheckInKind.MAKEUP,
        col(CheckIn.at) >= start, col(CheckIn.at) < end))
    return int(found.scalar_one())


async def make_up(session: AsyncSession, *, community: Community, user_id: int, day: date, at: datetime,
                  now: datetime | None = None) -> MakeUpResult:
    """Make up a missed `day` (补签) for the leader's cost in points, and commit.

    Allowed within the last K days before today (community-local, `at` being the member's
    action), at most M times per community-local month (counted by when they were made). The
    made-up day earns no points of its own; the streaks after it are recomputed, and the
    milestones and freezes the joined streak newly passes are given.
    Refusals (nothing written): `checkin_disabled`, `checkin_makeup_off`, `checkin_makeup_today`,
    `checkin_makeup_future`, `checkin_makeup_too_old` (days), `checkin_not_member`,
    `checkin_makeup_already` (day), `checkin_makeup_limit` (limit), `points_insufficient`
    (balance, needed).
    """
    now = now or at
    settings = checkin_settings(community)
    today = local_day(community, at)
    if not settings.enabled:
        raise DomainError("checkin_disabled")
    if settings.makeup_days == 0 or settings.makeups_per_month == 0:
        raise DomainError("checkin_makeup_off")
    if day == today:
        raise DomainError("checkin_makeup_today")
    if day > today:
        raise DomainError("checkin_makeup_future")
    if (today - day).days > settings.makeup_days:
        raise DomainError("checkin_makeup_too_old", days=settings.makeup_days)
    if not await _is_present(session, community.id, user_id):
        raise DomainError("checkin_not_member")
    state = await points.lock_account(session, community_id=community.id, user_id=user_id, now=now)
    days = await _days(session, community.id, user_id)
    refusal = None
    if any(d.day == day for d in days):
        refusal = DomainError("checkin_makeup_already", day=day.isoformat())
    elif (made := await makeups_this_month(session, community=community, user_id=user_id, at=at)) \
            >= settings.makeups_per_month:
        refusal = DomainError("checkin_makeup_limit", limit=settings.makeups_per_month)
    elif state.balance < settings.makeup_cost:
        refusal = DomainError("points_insufficient", balance=state.balance, needed=settings.makeup_cost)
    if refusal is not None:
        await session.commit()  # only the lock was taken
        raise refusal
    cost = settings.makeup_cost
    new = _Day(None, day, CheckInKind.MAKEUP, 0)
    rebuilt = await _rebuild(session, days, new)
    await session.execute(_insert_day(session.get_bind().dialect.name), _row(
        community.id, user_id, day, CheckInKind.MAKEUP, rebuilt.streak_of_new, 0, at, now))
    await points.write_entry(session, community_id=community.id, user_id=user_id, delta=-cost,
                             reason=PointsReason.MAKEUP, reference=day.isoformat(), now=at)
    return await _settle(session, community, settings, user_id, state, rebuilt, state.freezes, -cost, at, now,
                         lambda result: MakeUpResult(
                             day, cost, result.balance, current_streak(settings, result, today), result.best_streak,
                             settings.makeups_per_month - made - 1, result.grants, result.freezes_earned))


# --- leaderboards ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Standing:
    rank: int  # competition ranking: equal values share a rank
    user: User
    value: int


def _present(community_id: int) -> ColumnElement:
    return and_(Member.community_id == community_id, Member.status == MemberStatus.MEMBER)


async def top_streaks(session: AsyncSession, *, community: Community, now: datetime,
                      limit: int = 10) -> list[Standing]:
    """Present members with the longest current streaks (longest first; ties by best streak)."""
    settings = checkin_settings(community)
    current = _current_sql(settings, local_day(community, now)).label("current")
    rows = await session.execute(
        select(User, current)
        .join(PointsAccount, PointsAccount.user_id == User.id)
        .join(Member, and_(Member.user_id == User.id, Member.community_id == PointsAccount.community_id))
        .where(PointsAccount.community_id == community.id, _present(community.id), current > 0)
        .order_by(current.desc(), col(PointsAccount.best_streak).desc(), User.id).limit(limit))
    return _ranked(list(rows))


def _month_points_query(community: Community, now: datetime):
    start, end = _month_bounds(community, now)
    earned = func.sum(PointsEntry.delta).label("earned")
    return earned, (
        select(PointsEntry.user_id, earned)
        .where(PointsEntry.community_id == community.id, col(PointsEntry.reason).in_([r.value for r in points.EARNING]),
               col(PointsEntry.created_at) >= start, col(PointsEntry.created_at) < end)
        .group_by(PointsEntry.user_id))


async def top_points_month(session: AsyncSession, *, community: Community, now: datetime,
                           limit: int = 10) -> list[Standing]:
    """Present members who earned the most points this community-local month (check-ins,
    milestones, purchases net of reversals, invites; spending does not lower it)."""
    earned, per_user = _month_points_query(community, now)
    totals = per_user.having(earned > 0).subquery()
    rows = await session.execute(
        select(User, totals.c.earned)
        .join(totals, totals.c.user_id == User.id)
        .join(Member, Member.user_id == User.id)
        .where(_present(community.id))
        .order_by(totals.c.earned.desc(), User.id).limit(limit))
    return _ranked(list(rows))


def _ranked(rows: list) -> list[Standing]:
    standings: list[Standing] = []
    for n, (user, value) in enumerate(rows):
        rank = standings[-1].rank if standings and standings[-1].value == value else n + 1
        standings.append(Standing(rank, user, int(value)))
    return standings


@dataclass(frozen=True, slots=True)
class Rank:
    community: Community
    streak: int  # current
    best_streak: int
    streak_rank: int | None  # None: no current streak
    month_points: int
    points_rank: int | None  # None: nothing earned this month
    balance: int
    members: int  # present members


async def rank(session: AsyncSession, *, community: Community, user_id: int, now: datetime) -> Rank:
    """The member's own standing in one community: current streak and points earned this month,
    each with its rank among present members (1 + how many have more)."""
    settings = checkin_settings(community)
    today = local_day(community, now)
    mine = await points.account(session, community_id=community.id, user_id=user_id)
    streak = current_streak(settings, mine, today) if mine is not None else 0
    current = _current_sql(settings, today)
    present_accounts = (select(func.count()).select_from(PointsAccount)
                        .join(Member, and_(Member.user_id == PointsAccount.user_id,
                                           Member.community_id == PointsAccount.community_id))
                        .where(PointsAccount.community_id == community.id, _present(community.id)))
    streak_rank = None
    if streak > 0:
        streak_rank = 1 + int((await session.execute(present_accounts.where(current > streak))).scalar_one())
    earned, per_user = _month_points_query(community, now)
    month = await _month_points(session, per_user, user_id)
    points_rank = None
    if month > 0:
        ahead = per_user.join(Member, and_(Member.user_id == PointsEntry.user_id,
                                           Member.community_id == PointsEntry.community_id)) \
            .where(Member.status == MemberStatus.MEMBER).having(earned > month).subquery()
        points_rank = 1 + int((await session.execute(select(func.count()).select_from(ahead))).scalar_one())
    count = await session.execute(select(func.count()).select_from(Member).where(_present(community.id)))
    return Rank(community, streak, mine.best_streak if mine else 0, streak_rank, month, points_rank,
                mine.balance if mine else 0, int(count.scalar_one()))


async def _month_points(session: AsyncSession, per_user, user_id: int) -> int:
    row = (await session.execute(per_user.where(PointsEntry.user_id == user_id))).first()
    return int(row[1]) if row is not None else 0


async def my_ranks(session: AsyncSession, *, user_id: int, now: datetime) -> list[Rank]:
    """`rank` in each of the member's active communities (private /top), by title."""
    return [await rank(session, community=community, user_id=user_id, now=now)
            for community in await members.communities_of(session, user_id=user_id, active_only=True)]


# --- leaders' figures for today -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StreakBucket:
    low: int
    high: int | None  # inclusive; None: and above
    members: int


@dataclass(frozen=True, slots=True)
class TodayStats:
    day: date
    checked_in: int  # check-ins this community-local day
    members: int  # present members
    buckets: tuple[StreakBucket, ...]  # present members by current streak (STREAK_BUCKETS)


async def today_stats(session: AsyncSession, *, community: Community, now: datetime) -> TodayStats:
    settings = checkin_settings(community)
    today = local_day(community, now)
    checked = await session.execute(select(func.count()).select_from(CheckIn).where(
        CheckIn.community_id == community.id, CheckIn.day == today, CheckIn.kind == CheckInKind.CHECKIN))
    present = await session.execute(
        select(func.coalesce(_current_sql(settings, today), 0))
        .select_from(Member)
        .join(PointsAccount, and_(PointsAccount.user_id == Member.user_id,
                                  PointsAccount.community_id == Member.community_id), isouter=True)
        .where(_present(community.id)))
    streaks = [int(s) for s in present.scalars()]
    bounds = [*STREAK_BUCKETS[1:], None]
    buckets = tuple(
        StreakBucket(low, None if high is None else high - 1,
                     sum(1 for s in streaks if s >= low and (high is None or s < high)))
        for low, high in zip(STREAK_BUCKETS, bounds, strict=True))
    return TodayStats(today, int(checked.scalar_one()), len(streaks), buckets)


# --- reminders ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Reminder:
    user_id: int
    community_id: int
    day: date  # the community-local day the reminder is for (one per member and day: the job marks it)
    streak: int
    locale: str | None  # the user's own choice
    language_code: str | None  # Telegram's


async def reminder_candidates(session: AsyncSession, *, community: Community, now: datetime) -> list[Reminder]:
    """Members to remind now that their streak is about to break: a current streak of at least 3,
    no check-in yet today, reachable in private (started the bot, not blocked it), not opted out
    with /stop, not erased; only once the community-local time is past the reminder hour and
    outside the quiet hours. The job sends through the sender and marks each (member, day) sent."""
    settings = checkin_settings(community)
    if not settings.enabled or settings.reminder_hour is None:
        return []
    local = now.astimezone(ZoneInfo(community.timezone))
    if local.hour < settings.reminder_hour or settings.is_quiet(local.time()):
        return []
    today = local.date()
    rows = await session.execute(
        select(User.id, PointsAccount.streak, User.locale, User.language_code)
        .join(PointsAccount, PointsAccount.user_id == User.id)
        .join(Member, and_(Member.user_id == User.id, Member.community_id == PointsAccount.community_id))
        .where(PointsAccount.community_id == community.id, _present(community.id),
               _alive_sql(settings, today), col(PointsAccount.last_day) < today,
               col(PointsAccount.streak) >= REMIND_FROM_STREAK,
               col(User.can_dm), ~col(User.marketing_opt_out), ~col(User.erased))
        .order_by(User.id))
    return [Reminder(user_id, community.id, today, streak, locale, code) for user_id, streak, locale, code in rows]
