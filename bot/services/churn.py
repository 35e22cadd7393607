"""Churn risk: which members are drifting away, each measured on their own clock.

Each member's gaps between active days (community-local days with a message, check-in or order)
are modelled as exponential with an unknown rate. The rate has a Gamma prior worth `PRIOR_GAPS`
gaps of the community's typical length, updated with the member's own history:

    alpha = PRIOR_GAPS + (active_days - 1)
    beta  = PRIOR_GAPS * community_gap + (last_active_on - first_active_on) in days

The chance that the member is still silent after s days (s = today - last_active_on, local days)
is then the Lomax survival (beta / (beta + s)) ** alpha, and risk = 1 - that. A member drifts when
risk >= threshold; their "typical gap" is the silence at which that happens:
beta * ((1 - threshold) ** (-1 / alpha) - 1). Short histories lean on the community's gap.

The fixed rule instead flags s >= fixed_days (risk shown as s / fixed_days, at most 1).

Reads only the members' rhythm columns (kept by the activity flusher), erased users, and orders
(who bought recently; how many orders each drifting member has).
On PostgreSQL the arithmetic runs in SQL and only drifting members leave the database; elsewhere
(SQLite, which may lack math functions) the rows are scored in Python with the same formulas.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Date,
    Float,
    Integer,
    and_,
    case,
    func,
    literal,
    select,
    text,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Member, MemberStatus, Order, OrderStatus, User

# Pseudo-gaps of the community's typical length a member's own gaps are weighed against: with
# fewer real gaps than this, the community's rhythm counts for more than the member's.
PRIOR_GAPS = 3.0
# The community's gap when too few members have a rhythm to measure (at least 3 active days).
DEFAULT_GAP_DAYS = 7.0
BANDS = 10


class Audience(StrEnum):
    BUYERS = "buyers"
    ACTIVE = "active"


class RiskRule(StrEnum):
    PERSONAL = "personal"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class RiskPolicy:
    rule: RiskRule = RiskRule.PERSONAL
    fixed_days: int = 30
    threshold: float = 0.9
    new_member_days: int = 14
    recent_order_days: int = 14

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ValueError("threshold must be strictly between 0 and 1")
        if self.fixed_days < 1 or self.new_member_days < 0 or self.recent_order_days < 0:
            raise ValueError("day counts must not be negative (fixed_days at least 1)")


@dataclass(frozen=True, slots=True)
class AtRisk:
    user_id: int
    risk: float            # 0..1
    days_silent: int       # community-local days since the last active day
    typical_gap: float     # days: the silence at which they count as drifting (personal) or fixed_days
    active_days: int
    last_active_on: date
    orders: int            # orders in this community, cancelled ones left out


@dataclass(frozen=True, slots=True)
class RiskScan:
    drifting: list[AtRisk]          # personal: risk >= threshold; fixed: silent >= fixed_days. Highest risk first
    scanned: int                    # members scored (after the audience, new and recent-buyer exclusions)
    excluded_new: int
    excluded_recent_buyers: int
    histogram: list[int]            # scanned members by risk band [0, .1), [.1, .2), ..., [.9, 1]
    community_gap: float            # days


def personal_risk(*, active_days: int, span_days: int, days_silent: int, community_gap: float,
                  prior_gaps: float = PRIOR_GAPS) -> float:
    """1 - P(still silent after `days_silent` | the member's gaps), the Lomax survival."""
    alpha = prior_gaps + max(active_days, 1) - 1
    beta = prior_gaps * community_gap + span_days
    return 1.0 - (beta / (beta + max(days_silent, 0))) ** alpha


def personal_gap(*, active_days: int, span_days: int, community_gap: float, threshold: float,
                 prior_gaps: float = PRIOR_GAPS) -> float:
    """The silence, in days, at which `personal_risk` reaches `threshold`."""
    alpha = prior_gaps + max(active_days, 1) - 1
    beta = prior_gaps * community_gap + span_days
    return beta * ((1.0 - threshold) ** (-1.0 / alpha) - 1.0)


def band(risk: float) -> int:
    return min(BANDS - 1, max(0, int(risk * BANDS)))


async def community_gap(session: AsyncSession, *, community_id: int) -> float:
    """The median over the community's members with at least 3 active days of their mean gap."""
    m = Member.__table__.c
    mean_gap = func.cast(m.last_active_on - m.first_active_on, Float) / func.cast(m.active_days - 1, Float)
    where = and_(m.community_id == community_id, m.active_days >= 3, m.first_active_on.is_not(None))
    if session.bind.dialect.name == "postgresql":
        value = (await session.execute(
            select(func.percentile_cont(0.5).within_group(mean_gap)).where(where))).scalar_one()
    else:
        rows = (await session.execute(select(m.first_active_on, m.last_active_on, m.active_days).where(where))).all()
        value = statistics.median((last - first).days / (n - 1) for first, last, n in rows) if rows else None
    # A community where everyone came on consecutive days has a gap of one day, never less.
    return DEFAULT_GAP_DAYS if value is None else max(float(value), 1.0)


def _bought(community_id: int):
    o = Order.__table__.c
    return o.community_id == community_id, o.status != OrderStatus.CANCELLED


def _orders_per_member(community_id: int):
    o = Order.__table__.c
    return (select(o.user_id, func.count().label("n")).where(*_bought(community_id))
            .group_by(o.user_id).subquery("bought"))


def _candidates(*, community_id: int, audience: Audience, policy: RiskPolicy, now: datetime):
    """The audience's members with their rhythm and exclusion class ('new', 'recent', 'scan').

    Erased users and recent orders are small sets: written as IN lists, PostgreSQL hashes them once
    instead of joining a million users or aggregating every order for every member."""
    m, u, o = Member.__table__.c, User.__table__.c, Order.__table__.c
    recent = select(o.user_id).where(*_bought(community_id),
                                     o.created_at > now - timedelta(days=policy.recent_order_days))
    klass = case((m.joined_at > now - timedelta(days=policy.new_member_days), literal("new")),
                 (m.user_id.in_(recent), literal("recent")), else_=literal("scan")).label("klass")
    query = (select(m.user_id, m.active_days, m.first_active_on, m.last_active_on, klass)
             .where(m.community_id == community_id, m.status == MemberStatus.MEMBER,
                    m.user_id.not_in(select(u.id).where(u.erased.is_(True))),
                    m.last_active_on.is_not(None), m.active_days >= 1))
    if audience is Audience.BUYERS:
        query = query.where(m.user_id.in_(select(o.user_id).where(*_bought(community_id))))
    return query


def _rank(member: AtRisk) -> tuple:
    return -member.risk, -member.days_silent, member.user_id


async def scan(session: AsyncSession, *, community_id: int, tz: str, audience: Audience, policy: RiskPolicy,
               now: datetime) -> RiskScan:
    """Score the audience's members and list the drifting ones. Never scored: members who are not
    in the group now, erased users, members with no active day, members who joined within
    `new_member_days` and members with an order (not cancelled) placed within `recent_order_days`.
    Bots never become members, so they are never here either."""
    if now.tzinfo is None:
        raise ValueError("naive datetime given for a churn scan")
    today = now.astimezone(ZoneInfo(tz)).date()
    postgresql = session.bind.dialect.name == "postgresql"
    if postgresql:
        # For this transaction only: the median's sort, every buyer's orders hashed and a third of a
        # million members sorted fit in memory (at the default 4 MB they spill to disk); and no JIT,
        # whose compilation costs more here than it saves.
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
        await session.execute(text("SET LOCAL jit = off"))
    gap = await community_gap(session, community_id=community_id)
    query = _candidates(community_id=community_id, audience=audience, policy=policy, now=now)
    if postgresql:
        return await _scan_in_sql(session, query, community_id=community_id, today=today, gap=gap, policy=policy)
    return await _scan_in_python(session, query, community_id=community_id, today=today, gap=gap, policy=policy)


async def _scan_in_python(session: AsyncSession, query, *, community_id: int, today: date, gap: float,
                          policy: RiskPolicy) -> RiskScan:
    bought = _orders_per_member(community_id)
    orders = dict((await session.execute(select(bought.c.user_id, bought.c.n))).all())
    histogram = [0] * BANDS
    drifting: list[AtRisk] = []
    excluded = {"new": 0, "recent": 0}
    for row in (await session.execute(query)).all():
        if row.klass != "scan":
            excluded[row.klass] += 1
            continue
        silent = max((today - row.last_active_on).days, 0)
        if policy.rule is RiskRule.FIXED:
            risk, typical = min(1.0, silent / policy.fixed_days), float(policy.fixed_days)
            flagged = silent >= policy.fixed_days
        else:
            span = (row.last_active_on - (row.first_active_on or row.last_active_on)).days
            risk = personal_risk(active_days=row.active_days, span_days=span, days_silent=silent, community_gap=gap)
            typical = personal_gap(active_days=row.active_days, span_days=span, community_gap=gap,
                                   threshold=policy.threshold)
            flagged = risk >= policy.threshold
        histogram[band(risk)] += 1
        if flagged:
            drifting.append(AtRisk(row.user_id, risk, silent, typical, row.active_days, row.last_active_on,
                                   orders.get(row.user_id, 0)))
    drifting.sort(key=_rank)
    return RiskScan(drifting=drifting, scanned=sum(histogram), excluded_new=excluded["new"],
                    excluded_recent_buyers=excluded["recent"], histogram=histogram, community_gap=gap)


async def _scan_in_sql(session: AsyncSession, query, *, community_id: int, today: date, gap: float,
                       policy: RiskPolicy) -> RiskScan:
    """Two statements over the candidates: counts by class and risk band, then the drifting, ranked,
    with their orders. Scoring twice is cheaper than keeping a million scored rows between the two
    (a CTE read twice is materialised, and then scanned by one process, not in parallel)."""
    candidates = query.subquery("candidates")
    c = candidates.c
    silent = func.greatest(literal(today, Date) - c.last_active_on, 0)
    alpha = func.cast(PRIOR_GAPS + func.greatest(c.active_days, 1) - 1, Float)
    beta = PRIOR_GAPS * gap + func.cast(c.last_active_on - func.coalesce(c.first_active_on, c.last_active_on), Float)
    if policy.rule is RiskRule.FIXED:
        risk = func.least(1.0, func.cast(silent, Float) / policy.fixed_days)
        flagged, typical = silent >= policy.fixed_days, literal(float(policy.fixed_days), Float)
    else:
        risk = 1.0 - func.power(beta / (beta + silent), alpha)
        flagged = risk >= policy.threshold
        typical = beta * (func.power(1.0 - policy.threshold, -1.0 / alpha) - 1.0)
    # The class is named once: the candidates' subquery is flattened into this one, and each mention
    # would test every member against the recent buyers again. Excluded classes' bands are ignored.
    banded = select(c.klass, func.least(BANDS - 1, func.floor(risk * BANDS)).cast(Integer).label("band")
                    ).subquery("banded")
    histogram = [0] * BANDS
    excluded = {"new": 0, "recent": 0}
    for klass, index, n in await session.execute(
            select(banded.c.klass, banded.c.band, func.count()).group_by(banded.c.klass, banded.c.band)):
        if klass == "scan":
            histogram[max(0, index)] += n
        else:
            excluded[klass] += n
    bought = _orders_per_member(community_id)
    ranked = (select(c.user_id, risk.label("risk"), silent.label("silent"), typical.label("typical"), c.active_days,
                     c.last_active_on, func.coalesce(bought.c.n, 0).label("orders"))
              .select_from(candidates.outerjoin(bought, bought.c.user_id == c.user_id))
              .where(c.klass == "scan", flagged)
              .order_by(risk.desc(), silent.desc(), c.user_id)).subquery("ranked")
    # A column each rather than a row each: hundreds of thousands of rows cost the bot about three
    # times the CPU to decode. The arrays usually keep the subquery's order; the sort below makes
    # sure, at the price of one pass when they do.
    columns = (await session.execute(select(*(func.array_agg(column) for column in ranked.c)))).one()
    drifting = [AtRisk(*member) for member in zip(*(column or () for column in columns))]
    drifting.sort(key=_rank)
    return RiskScan(drifting=drifting, scanned=sum(histogram), excluded_new=excluded["new"],
                    excluded_recent_buyers=excluded["recent"], histogram=histogram, community_gap=gap)
