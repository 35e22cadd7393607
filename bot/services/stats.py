"""Statistics for leaders: one function per /admin → Stats screen, each a few SQL aggregates (one
statement where the screen allows) over one community, returning plain data for its chart, its
caption and its CSV.

Days are the community's local days (`Community.timezone`): "today" is the local date of `now`,
and a UTC time is placed in its local day by comparing it with the UTC instants at which the local
days begin (the same SQL on SQLite and PostgreSQL, exact across daylight-saving changes). Money is
in minor units of the community's currency.

Where the numbers come from:
- members now: `members` rows with status member; joins and leaves: `membership_events` (recorded
  from what Telegram reports, rejoins included, each change once; members.on_member_status);
- active members: `activity_days` (a member is active on a day with any row: a message, a button
  pressed in the group, a check-in or an order);
- messages, and messages and orders per local hour: `community_hours` (the same counts as the
  members' days, summed per hour); Buy presses and checkouts started:
  `funnel_days` (both written by the activity flusher, bot/services/stats_counters.py);
- orders, revenue: `orders`. An order counts as a sale unless cancelled or refunded (or due a
  refund); revenue is the sales' totals, by the local day the order was placed;
- check-ins: `checkins` of kind check-in (make-ups and freezes are not a member showing up);
- streaks: `points_accounts`; invites: `referrals`; group-buys: `group_buy_teams`, `group_buys`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, and_, case, cast, distinct, func, literal, or_, select, true
from sqlalchemy.sql import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import campaigns
from bot.services.activity_days import zone
from models import (
    ActivityDay,
    CheckIn,
    CheckInKind,
    Community,
    CommunityHour,
    FunnelDay,
    FunnelStep,
    GroupBuy,
    GroupBuyKind,
    GroupBuyStatus,
    GroupBuyTeam,
    Member,
    MembershipChange,
    MembershipEvent,
    MemberStatus,
    Order,
    OrderStatus,
    PointsAccount,
    PostStatus,
    Product,
    ProductPost,
    Referral,
    ReferralState,
    TeamStatus,
    Via,
)
from models.types import UTCDateTime

# Orders that are not sales (anything else counts, paid or not yet).
NOT_SALES = (OrderStatus.CANCELLED, OrderStatus.REFUND_DUE, OrderStatus.REFUNDED)
SOURCES = tuple(v.value for v in Via)
FUNNEL_STEPS = ("posted", FunnelStep.BUY_PRESSED.value, FunnelStep.CHECKOUT_STARTED.value, "confirmed", "paid",
                "fulfilled")
# Live streaks by length: (label, shortest, longest or None).
STREAK_BUCKETS = (("1", 1, 1), ("2-3", 2, 3), ("4-6", 4, 6), ("7-13", 7, 13), ("14-29", 14, 29), ("30+", 30, None))
TOP_PRODUCTS = 5
INVITE_DAYS = 30
_EPOCH_DAY = date(1970, 1, 1)


# ----- results ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Figure:
    """A number and the previous period's."""

    value: int | float
    previous: int | float

    @property
    def change(self) -> int | float:
        return self.value - self.previous

    @property
    def change_ratio(self) -> float | None:
        return (self.value - self.previous) / self.previous if self.previous else None


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True, slots=True)
class Overview:
    """This week = the 7 local days ending today (today so far); the previous week the 7 before.

    `dau`: members active yesterday (the last complete local day) against the day before; `wau`,
    `mau`: distinct members active in the 7 / 30 local days ending today against the 7 / 30 before;
    `stickiness`: dau / mau (both figures). `members`: present now against a week ago (now, less
    this week's joins, plus its leaves). `checkin_participation`: members who checked in this week
    over the members at the week's end (now), against the same for the previous week."""

    today: date
    week_start: date
    currency: str
    members: Figure
    joins: Figure
    leaves: Figure
    dau: Figure
    wau: Figure
    mau: Figure
    stickiness: Figure
    messages: Figure
    orders: Figure
    revenue: Figure
    checkin_participation: Figure
    checkins: Figure

    def csv_rows(self) -> list[list]:
        rows: list[list] = [["metric", "value", "previous", "change"]]
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Figure):
                rows.append([f.name, _plain(value.value), _plain(value.previous), _plain(value.change)])
        return rows


@dataclass(frozen=True, slots=True)
class Growth:
    """Joins by source (models.Via) and leaves per local day, the last `days` days ending today."""

    days: tuple[date, ...]
    sources: tuple[str, ...]
    joins: dict[str, tuple[int, ...]]
    leaves: tuple[int, ...]
    total_joins: int
    total_leaves: int
    net: int

    def csv_rows(self) -> list[list]:
        rows: list[list] = [["day", *(f"joins_{s}" for s in self.sources), "joins", "leaves"]]
        for i, day in enumerate(self.days):
            by_source = [self.joins[s][i] for s in self.sources]
            rows.append([day.isoformat(), *by_source, sum(by_source), self.leaves[i]])
        return rows


@dataclass(frozen=True, slots=True)
class Cohort:
    """The people whose first join fell in the local week starting on Monday `start`; `active[k-1]`
    the share of them active in week k after joining (None while that week is not over for all)."""

    start: date
    size: int
    active: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class Rate:
    active: int
    eligible: int

    @property
    def share(self) -> float | None:
        return self.active / self.eligible if self.eligible else None


@dataclass(frozen=True, slots=True)
class Retention:
    """Cohorts by the local week of a person's first join (a rejoin starts no cohort; those who
    left and came back count as active whenever they are).

    A member's day J is the local day of their first join. Week k (1..weeks) after joining is the
    local days J+7(k-1)+1 .. J+7k; active in it = any activity_days row on one of those days. D1,
    D7, D30: among the cohorts' members whose day J+N is over (J+N < today), the share with an
    activity_days row on day J+N."""

    weeks: int
    cohorts: tuple[Cohort, ...]
    d1: Rate
    d7: Rate
    d30: Rate

    def csv_rows(self) -> list[list]:
        rows: list[list] = [["cohort_week", "size", *(f"week_{k}" for k in range(1, self.weeks + 1))]]
        for c in self.cohorts:
            rows.append([c.start.isoformat(), c.size, *("" if a is None else round(a, 4) for a in c.active)])
        for name in ("d1", "d7", "d30"):
            rate = getattr(self, name)
            rows.append([name, rate.eligible, rate.active, "" if rate.share is None else round(rate.share, 4)])
        return rows


@dataclass(frozen=True, slots=True)
class Activity:
    """Group messages and orders placed by local weekday (0 = Monday) and hour, over the local days
    `start`..`end` (today)."""

    start: date
    end: date
    messages: tuple[tuple[int, ...], ...]
    orders: tuple[tuple[int, ...], ...]
    total_messages: int
    total_orders: int
    peak: tuple[int, int] | None

    def csv_rows(self) -> list[list]:
        rows: list[list] = [["weekday", "hour", "messages", "orders"]]
        for wd in range(7):
            for hour in range(24):
                rows.append([wd, hour, self.messages[wd][hour], self.orders[wd][hour]])
        return rows


@dataclass(frozen=True, slots=True)
class TopProduct:
    product_id: int
    title: str
    units: int
    revenue: int


@dataclass(frozen=True, slots=True)
class Sales:
    """Sales per local day over the last `days` days ending today, against the `days` before.
    Group-buys: teams and threshold campaigns that closed in the period."""

    currency: str
    days: tuple[date, ...]
    revenue: tuple[int, ...]
    orders: tuple[int, ...]
    total_revenue: Figure
    total_orders: Figure
    average_order: Figure
    top_products: tuple[TopProduct, ...]
    group_buys_succeeded: int
    group_buys_failed: int

    @property
    def group_buy_success_rate(self) -> float | None:
        closed = self.group_buys_succeeded + self.group_buys_failed
        return self.group_buys_succeeded / closed if closed else None

    def csv_rows(self) -> list[list]:
        rows: list[list] = [["day", "orders", "revenue_minor_units", "currency"]]
        rows += [[d.isoformat(), n, r, self.currency] for d, n, r in zip(self.days, self.orders, self.revenue, strict=True)]
        rows.append([])
        rows.append(["product_id", "product", "units", "revenue_minor_units"])
        rows += [[p.product_id, p.title, p.units, p.revenue] for p in self.top_products]
        return rows


@dataclass(frozen=True, slots=True)
class Funnel:
    """Over the local days `start`..`end` (today): product cards posted, Buy presses (the card's
    button or /buy), checkouts opened, orders placed (whatever became of them), and of those placed
    the ones paid and the ones fulfilled or picked up."""

    start: date
    end: date
    steps: tuple[str, ...]
    counts: tuple[int, ...]

    def csv_rows(self) -> list[list]:
        return [["step", "count"], *([s, n] for s, n in zip(self.steps, self.counts, strict=True))]


@dataclass(frozen=True, slots=True)
class StreakBucket:
    label: str
    low: int
    high: int | None
    members: int


@dataclass(frozen=True, slots=True)
class WinbackLift:
    """Members who came back among those sent a win-back offer and among the held-out ones."""

    treated: int
    treated_back: int
    holdout: int
    holdout_back: int

    @property
    def lift(self) -> float | None:
        if not self.treated or not self.holdout:
            return None
        return self.treated_back / self.treated - self.holdout_back / self.holdout


@dataclass(frozen=True, slots=True)
class Engagement:
    """Live check-in streaks (the last check-in today or yesterday) by length. Invites: referrals
    that qualified in the last 30 local days and name an inviter; `k_factor` = those invites per
    present member (new members each member brought in 30 days); `invites_per_inviter` among the
    members who brought any. `winback`: the win-back campaigns whose results are in."""

    streaks: tuple[StreakBucket, ...]
    members_with_streak: int
    invites: int
    inviters: int
    members: int
    k_factor: float
    invites_per_inviter: float | None
    winback: WinbackLift | None = None

    def csv_rows(self) -> list[list]:
        rows: list[list] = [["streak_days", "members"], *([b.label, b.members] for b in self.streaks), []]
        rows += [["metric", "value"], ["members", self.members], ["invites_30d", self.invites],
                 ["inviters_30d", self.inviters], ["k_factor", round(self.k_factor, 4)],
                 ["invites_per_inviter", "" if self.invites_per_inviter is None else round(self.invites_per_inviter, 4)]]
        if self.winback is not None:
            w = self.winback
            rows += [["winback_treated", w.treated], ["winback_treated_back", w.treated_back],
                     ["winback_holdout", w.holdout], ["winback_holdout_back", w.holdout_back]]
        return rows


Screen = Overview | Growth | Retention | Activity | Sales | Funnel | Engagement


def to_csv_rows(screen: Screen) -> list[list]:
    """The CSV of a screen: a header row, then data rows of plain values."""
    return screen.csv_rows()


def _plain(value: int | float) -> int | float:
    return round(value, 4) if isinstance(value, float) else value


# ----- local days in SQL ------------------------------------------------------------------------

def _today(community: Community, now: datetime) -> tuple[ZoneInfo, date]:
    tz = zone(community.timezone)
    return tz, now.astimezone(tz).date()


def _begins(tz: ZoneInfo, day: date) -> datetime:
    """The UTC instant at which local `day` begins."""
    return datetime.combine(day, time(), tz).astimezone(timezone.utc)


def _at(value: datetime) -> ColumnElement:
    return literal(value, UTCDateTime)


def _day_index(column: ColumnElement, tz: ZoneInfo, first: date, days: int) -> ColumnElement:
    """The local day of a UTC time `column` as 0 (`first`) .. days-1; rows must be within those days."""
    return case(*((column < _at(_begins(tz, first + timedelta(days=i))), i - 1) for i in range(1, days)),
                else_=days - 1)


def _day_number(session: AsyncSession, column: ColumnElement) -> ColumnElement:
    """A DATE column as days since 1970-01-01."""
    if session.get_bind().dialect.name == "postgresql":
        return column - literal(_EPOCH_DAY, Date)
    return cast(func.julianday(column) - 2440587.5, Integer)  # julianday('1970-01-01')


def _number(day: date) -> int:
    return (day - _EPOCH_DAY).days


def _distinct_if(condition: ColumnElement, column: ColumnElement) -> ColumnElement:
    return func.count(distinct(case((condition, column))))


def _sum_if(condition: ColumnElement, column: ColumnElement | int = 1) -> ColumnElement:
    return func.coalesce(func.sum(case((condition, column), else_=0)), 0)


def _is_sale() -> ColumnElement:
    return Order.status.not_in([s.value for s in NOT_SALES])


# ----- screens ----------------------------------------------------------------------------------

async def overview(session: AsyncSession, *, community: Community, now: datetime) -> Overview:
    """The key numbers and their change (see `Overview`), in one statement."""
    tz, today = _today(community, now)
    cid = community.id
    week, prev_week = today - timedelta(days=6), today - timedelta(days=13)
    month, prev_month = today - timedelta(days=29), today - timedelta(days=59)
    yesterday, before = today - timedelta(days=1), today - timedelta(days=2)
    week_at, prev_week_at = _at(_begins(tz, week)), _at(_begins(tz, prev_week))

    a = ActivityDay.__table__.c
    in_range = (a.community_id == cid, a.day >= prev_month, a.day <= today)
    # One row per member and day: a day's rows are its active members. The ranges' distinct members
    # come from each member's first and last day in the 60 days (one pass over the index, no
    # DISTINCT sort per range); only the previous week needs a flag of its own.
    per_member = select(func.min(a.day).label("lo"), func.max(a.day).label("hi"),
                        func.max(case((and_(a.day >= prev_week, a.day < week), 1), else_=0)).label("w0"),
                        ).where(*in_range).group_by(a.user_id).subquery()
    act = select(
        select(func.count()).where(a.community_id == cid, a.day == yesterday).scalar_subquery().label("d"),
        select(func.count()).where(a.community_id == cid, a.day == before).scalar_subquery().label("d0"),
        _sum_if(per_member.c.hi >= week).label("w"), func.coalesce(func.sum(per_member.c.w0), 0).label("w0"),
        _sum_if(per_member.c.hi >= month).label("m"), _sum_if(per_member.c.lo < month).label("m0"),
    ).subquery()
    # Messages per local hour hold the same counts as the members' days, in a few hundred rows.
    h = CommunityHour.__table__.c
    chatter = select(_sum_if(h.day >= week, h.messages).label("msg"), _sum_if(h.day < week, h.messages).label("msg0"),
                     ).where(h.community_id == cid, h.day >= prev_week, h.day <= today).subquery()

    o = Order.__table__.c
    sales = select(
        _sum_if(o.created_at >= week_at).label("orders"), _sum_if(o.created_at < week_at).label("orders0"),
        _sum_if(o.created_at >= week_at, o.total).label("revenue"), _sum_if(o.created_at < week_at, o.total).label("revenue0"),
    ).where(o.community_id == cid, o.created_at >= prev_week_at, o.created_at <= _at(now), _is_sale()).subquery()

    e = MembershipEvent.__table__.c
    joining, leaving = e.change == MembershipChange.JOIN.value, e.change == MembershipChange.LEAVE.value
    events = select(
        _sum_if(and_(joining, e.at >= week_at)).label("joins"), _sum_if(and_(joining, e.at < week_at)).label("joins0"),
        _sum_if(and_(leaving, e.at >= week_at)).label("leaves"), _sum_if(and_(leaving, e.at < week_at)).label("leaves0"),
    ).where(e.community_id == cid, e.at >= prev_week_at, e.at <= _at(now)).subquery()

    c = CheckIn.__table__.c
    checkins = select(_distinct_if(c.day >= week, c.user_id).label("checkins"),
                      _distinct_if(c.day < week, c.user_id).label("checkins0"),
                      ).where(c.community_id == cid, c.day >= prev_week, c.day <= today,
                              c.kind == CheckInKind.CHECKIN.value).subquery()

    m = Member.__table__.c
    members = select(func.count().label("members")).where(m.community_id == cid,
                                                          m.status == MemberStatus.MEMBER.value).subquery()
    row = (await session.execute(
        select(act, chatter, sales, events, checkins, members).select_from(
            act.join(chatter, true()).join(sales, true()).join(events, true()).join(checkins, true())
            .join(members, true())))).one()

    n = {k: int(v or 0) for k, v in row._mapping.items()}
    members_then = n["members"] - n["joins"] + n["leaves"]
    return Overview(
        today=today, week_start=week, currency=community.currency,
        members=Figure(n["members"], members_then),
        joins=Figure(n["joins"], n["joins0"]), leaves=Figure(n["leaves"], n["leaves0"]),
        dau=Figure(n["d"], n["d0"]), wau=Figure(n["w"], n["w0"]), mau=Figure(n["m"], n["m0"]),
        stickiness=Figure(_share(n["d"], n["m"]), _share(n["d0"], n["m0"])),
        messages=Figure(n["msg"], n["msg0"]), orders=Figure(n["orders"], n["orders0"]),
        revenue=Figure(n["revenue"], n["revenue0"]),
        checkin_participation=Figure(_share(n["checkins"], n["members"]), _share(n["checkins0"], members_then)),
        checkins=Figure(n["checkins"], n["checkins0"]),
    )


async def growth(session: AsyncSession, *, community: Community, now: datetime, days: int = 28) -> Growth:
    """Joins by source and leaves per local day, the last `days` days ending today; one statement."""
    tz, today = _today(community, now)
    first = today - timedelta(days=days - 1)
    e = MembershipEvent.__table__.c
    day = _day_index(e.at, tz, first, days).label("i")
    rows = await session.execute(
        select(day, e.change, e.via, func.count()).where(
            e.community_id == community.id, e.at >= _at(_begins(tz, first)), e.at <= _at(now))
        .group_by(day, e.change, e.via))
    joins = {s: [0] * days for s in SOURCES}
    leaves = [0] * days
    for i, change, via, count in rows:
        if change == MembershipChange.LEAVE.value:
            leaves[i] += count
        else:
            joins[via if via in joins else Via.UNKNOWN.value][i] += count
    total_joins, total_leaves = sum(map(sum, joins.values())), sum(leaves)
    return Growth(days=tuple(first + timedelta(days=i) for i in range(days)), sources=SOURCES,
                  joins={s: tuple(v) for s, v in joins.items()}, leaves=tuple(leaves), total_joins=total_joins,
                  total_leaves=total_leaves, net=total_joins - total_leaves)


async def retention(session: AsyncSession, *, community: Community, now: datetime, weeks: int = 8) -> Retention:
    """Cohorts of the last `weeks` local weeks (Monday to Sunday, the last one this week) and D1,
    D7, D30 among their members (see `Retention`); one statement."""
    tz, today = _today(community, now)
    first = today - timedelta(days=today.weekday() + 7 * (weeks - 1))
    span = (today - first).days + 1
    e = MembershipEvent.__table__.c
    first_join = func.min(e.at)
    joined = (select(e.user_id.label("user_id"), _day_index(first_join, tz, first, span).label("jd"))
              .where(e.community_id == community.id, e.change == MembershipChange.JOIN.value)
              .group_by(e.user_id)
              .having(first_join >= _at(_begins(tz, first)), first_join <= _at(now)).subquery())
    a = ActivityDay.__table__.c
    # Days after the join day: week k is offsets 7(k-1)+1 .. 7k.
    offset = _day_number(session, a.day) - (joined.c.jd + _number(first))
    columns = [func.count(distinct(joined.c.user_id)).label("size")]
    columns += [_distinct_if(and_(offset >= 7 * (k - 1) + 1, offset <= 7 * k), a.user_id) for k in range(1, weeks + 1)]
    columns += [_distinct_if(offset == n, a.user_id) for n in (1, 7, 30)]
    rows = await session.execute(
        select(joined.c.jd, *columns)
        .select_from(joined.outerjoin(ActivityDay.__table__, and_(
            a.community_id == community.id, a.user_id == joined.c.user_id, a.day > first, a.day <= today)))
        .group_by(joined.c.jd))

    sizes, active = [0] * weeks, [[0] * weeks for _ in range(weeks)]
    d_active, d_eligible = [0, 0, 0], [0, 0, 0]
    for jd, size, *counts in rows:
        cohort = jd // 7
        sizes[cohort] += size
        for k in range(weeks):
            active[cohort][k] += counts[k]
        join_day = first + timedelta(days=jd)
        for i, n in enumerate((1, 7, 30)):
            if join_day + timedelta(days=n) < today:
                d_eligible[i] += size
                d_active[i] += counts[weeks + i]
    cohorts = []
    for c in range(weeks):
        start = first + timedelta(weeks=c)
        last_join = min(start + timedelta(days=6), today)
        cells = tuple(active[c][k] / sizes[c] if sizes[c] and last_join + timedelta(days=7 * (k + 1)) < today else None
                      for k in range(weeks))
        cohorts.append(Cohort(start=start, size=sizes[c], active=cells))
    return Retention(weeks=weeks, cohorts=tuple(cohorts), d1=Rate(d_active[0], d_eligible[0]),
                     d7=Rate(d_active[1], d_eligible[1]), d30=Rate(d_active[2], d_eligible[2]))


async def activity(session: AsyncSession, *, community: Community, now: datetime, days: int = 28) -> Activity:
    """Messages and orders by local weekday and hour over the last `days` days; one statement."""
    _tz, today = _today(community, now)
    first = today - timedelta(days=days - 1)
    h = CommunityHour.__table__.c
    rows = await session.execute(select(h.day, h.hour, h.messages, h.orders).where(
        h.community_id == community.id, h.day >= first, h.day <= today))
    messages = [[0] * 24 for _ in range(7)]
    orders = [[0] * 24 for _ in range(7)]
    for day, hour, n_messages, n_orders in rows:
        messages[day.weekday()][hour] += n_messages
        orders[day.weekday()][hour] += n_orders
    total_messages = sum(map(sum, messages))
    peak = max(((wd, hr) for wd in range(7) for hr in range(24)), key=lambda c: messages[c[0]][c[1]]) \
        if total_messages else None
    return Activity(start=first, end=today, messages=tuple(map(tuple, messages)), orders=tuple(map(tuple, orders)),
                    total_messages=total_messages, total_orders=sum(map(sum, orders)), peak=peak)


async def sales(session: AsyncSession, *, community: Community, now: datetime, days: int = 28) -> Sales:
    """Sales per local day, top products, average order and group-buy success over the last `days`
    days against the `days` before; three statements (per day, per product, group-buys)."""
    tz, today = _today(community, now)
    first, prev_first = today - timedelta(days=days - 1), today - timedelta(days=2 * days - 1)
    start_at = _at(_begins(tz, first))
    o = Order.__table__.c
    day = _day_index(o.created_at, tz, prev_first, 2 * days).label("i")
    per_day = [[0, 0] for _ in range(2 * days)]
    for i, count, total in await session.execute(
            select(day, func.count(), func.sum(o.total)).where(
                o.community_id == community.id, o.created_at >= _at(_begins(tz, prev_first)), o.created_at <= _at(now),
                _is_sale()).group_by(day)):
        per_day[i] = [int(count), int(total or 0)]
    current, previous = per_day[days:], per_day[:days]

    p = Product.__table__.c
    revenue = func.sum(o.total).label("revenue")
    top = await session.execute(
        select(o.product_id, p.title, func.sum(o.quantity), revenue)
        .join(Product.__table__, p.id == o.product_id)
        .where(o.community_id == community.id, o.created_at >= start_at, o.created_at <= _at(now), _is_sale())
        .group_by(o.product_id, p.title).order_by(revenue.desc(), o.product_id).limit(TOP_PRODUCTS))
    top_products = tuple(TopProduct(product_id=pid, title=title, units=int(units), revenue=int(rev))
                         for pid, title, units, rev in top)

    t, g = GroupBuyTeam.__table__.c, GroupBuy.__table__.c
    closed_teams = select(t.status.label("status")).where(
        t.community_id == community.id, t.closed_at >= start_at, t.closed_at <= _at(now),
        t.status.in_([TeamStatus.SUCCEEDED.value, TeamStatus.FAILED.value]))
    closed_campaigns = select(g.status.label("status")).where(
        g.community_id == community.id, g.kind == GroupBuyKind.THRESHOLD.value, g.closed_at >= start_at,
        g.closed_at <= _at(now), g.status.in_([GroupBuyStatus.SUCCEEDED.value, GroupBuyStatus.FAILED.value]))
    closed = closed_teams.union_all(closed_campaigns).subquery()
    succeeded, failed = (await session.execute(select(
        _sum_if(closed.c.status == TeamStatus.SUCCEEDED.value), _sum_if(closed.c.status == TeamStatus.FAILED.value),
    ))).one()

    orders_now, orders_before = sum(n for n, _ in current), sum(n for n, _ in previous)
    revenue_now, revenue_before = sum(r for _, r in current), sum(r for _, r in previous)
    return Sales(
        currency=community.currency, days=tuple(first + timedelta(days=i) for i in range(days)),
        revenue=tuple(r for _, r in current), orders=tuple(n for n, _ in current),
        total_revenue=Figure(revenue_now, revenue_before), total_orders=Figure(orders_now, orders_before),
        average_order=Figure(revenue_now // orders_now if orders_now else 0,
                             revenue_before // orders_before if orders_before else 0),
        top_products=top_products, group_buys_succeeded=int(succeeded or 0), group_buys_failed=int(failed or 0))


async def funnel(session: AsyncSession, *, community: Community, now: datetime, days: int = 28) -> Funnel:
    """The funnel's six counts over the last `days` local days (see `Funnel`); one statement."""
    tz, today = _today(community, now)
    first = today - timedelta(days=days - 1)
    start_at, end_at = _at(_begins(tz, first)), _at(now)
    cid = community.id
    pp = ProductPost.__table__.c
    posted = select(func.count()).where(pp.community_id == cid, pp.status == PostStatus.POSTED.value,
                                        pp.posted_at >= start_at, pp.posted_at <= end_at).scalar_subquery()
    f = FunnelDay.__table__.c

    def step(name: FunnelStep) -> ColumnElement:
        return select(func.coalesce(func.sum(f["count"]), 0)).where(
            f.community_id == cid, f.day >= first, f.day <= today, f.step == name.value).scalar_subquery()

    o = Order.__table__.c
    placed = select(func.count().label("confirmed"), _sum_if(o.paid_at.is_not(None)).label("paid"),
                    _sum_if(or_(o.fulfilled_at.is_not(None), o.picked_up_at.is_not(None))).label("fulfilled"),
                    ).where(o.community_id == cid, o.created_at >= start_at, o.created_at <= end_at).subquery()
    row = (await session.execute(select(posted, step(FunnelStep.BUY_PRESSED), step(FunnelStep.CHECKOUT_STARTED),
                                        placed.c.confirmed, placed.c.paid, placed.c.fulfilled))).one()
    return Funnel(start=first, end=today, steps=FUNNEL_STEPS, counts=tuple(int(v or 0) for v in row))


async def engagement(session: AsyncSession, *, community: Community, now: datetime) -> Engagement:
    """Live streaks by length, invites per member (see `Engagement`); one statement."""
    tz, today = _today(community, now)
    cid = community.id
    pa = PointsAccount.__table__.c
    live = and_(pa.community_id == cid, pa.streak > 0, pa.last_day >= today - timedelta(days=1), pa.last_day <= today)
    buckets = [select(func.count()).where(live, pa.streak >= low, *(() if high is None else (pa.streak <= high,)))
               .scalar_subquery() for _label, low, high in STREAK_BUCKETS]
    r = Referral.__table__.c
    since = _at(_begins(tz, today - timedelta(days=INVITE_DAYS - 1)))
    qualified = and_(r.community_id == cid, r.inviter_id.is_not(None), r.qualified_at >= since,
                     r.qualified_at <= _at(now), r.state.in_([ReferralState.QUALIFIED.value, ReferralState.REWARDED.value]))
    invites = select(func.count()).where(qualified).scalar_subquery()
    inviters = select(func.count(distinct(r.inviter_id))).where(qualified).scalar_subquery()
    m = Member.__table__.c
    members = select(func.count()).where(m.community_id == cid, m.status == MemberStatus.MEMBER.value).scalar_subquery()
    *counts, n_invites, n_inviters, n_members = (await session.execute(
        select(*buckets, invites, inviters, members))).one()
    streaks = tuple(StreakBucket(label=label, low=low, high=high, members=int(n))
                    for (label, low, high), n in zip(STREAK_BUCKETS, counts, strict=True))
    return Engagement(streaks=streaks, members_with_streak=sum(b.members for b in streaks), invites=int(n_invites),
                      inviters=int(n_inviters), members=int(n_members), k_factor=_share(n_invites, n_members),
                      invites_per_inviter=n_invites / n_inviters if n_inviters else None,
                      winback=await _winback(session, community_id=cid, now=now))


async def _winback(session: AsyncSession, *, community_id: int, now: datetime) -> WinbackLift | None:
    """Both arms of the community's win-back campaigns whose results are in (every window closed,
    both arms big enough: bot/services/campaigns.outcome); None before any is."""
    measured = [result for campaign in await campaigns.campaigns_of(session, community_id=community_id)
                if (result := await campaigns.outcome(session, campaign=campaign, now=now)).lift is not None]
    if not measured:
        return None
    return WinbackLift(treated=sum(r.treatment.members for r in measured),
                       treated_back=sum(r.treatment.returned for r in measured),
                       holdout=sum(r.holdout.members for r in measured),
                       holdout_back=sum(r.holdout.returned for r in measured))


ScreenFunction = Callable[..., Awaitable[Screen]]
SCREENS: dict[str, ScreenFunction] = {
    "overview": overview, "growth": growth, "retention": retention, "activity": activity, "sales": sales,
    "funnel": funnel, "engagement": engagement,
}
