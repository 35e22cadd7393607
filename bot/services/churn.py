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

Reads only the members' rhythm columns (kept by the activity flusher) and one aggregate of orders.
On PostgreSQL the arithmetic runs in SQL and only drifting members leave the database; elsewhere
(SQLite, which may lack math functions) the rows are scored in Python with the same formulas.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Float, and_, case, func, literal, select
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
    drifting: list[AtRisk]          # risk >= threshold, highest risk first
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
    mean_gap = (func.cast(m.last_active_on - m.first_active_on, Float) / (m.active_days - 1))
    where = and_(m.community_id == community_id, m.active_days >= 3, m.first_active_on.is_not(None))
    if session.bind.dialect.name == "postgresql":
        value = (await session.execute(
            select(func.percentile_cont(0.5).within_group(mean_gap)).where(where))).scalar_one()
    else:
        rows = (await session.execute(select(m.first_active_on, m.last_active_on, m.active_days).where(where))).all()
        value = statistics.median((last - first).days / (n - 1) for first, last, n in rows) if rows else None
    # A community where everyone came on consecutive days has a gap of one day, never less.
    return DEFAULT_GAP_DAYS if value is None else max(float(value), 1.0)


def _candidates(*, community_id: int, audience: Audience, policy: RiskPolicy, now: datetime):
    """The audience's members with their rhythm, orders and exclusion class ('new', 'recent', 'scan')."""
    members, users = Member.__table__, User.__table__
    m, u, o = members.c, users.c, Order.__table__.c
    bought = (select(o.user_id, func.count().label("orders"), func.max(o.created_at).label("last_order_at"))
              .where(o.community_id == community_id, o.status != OrderStatus.CANCELLED)
              .group_by(o.user_id).subquery("bought"))
    klass = case((m.joined_at > now - timedelta(days=policy.new_member_days), literal("new")),
                 (and_(bought.c.last_order_at.is_not(None),
                       bought.c.last_order_at > now - timedelta(days=policy.recent_order_days)), literal("recent")),
                 else_=literal("scan")).label("klass")
    query = (select(m.user_id, m.active_days, m.first_active_on, m.last_active_on,
                    func.coalesce(bought.c.orders, 0).label("orders"), klass)
             .select_from(members.join(users, u.id == m.user_id).outerjoin(bought, bought.c.user_id == m.user_id))
             .where(m.community_id == community_id, m.status == MemberStatus.MEMBER, u.erased.is_(False),
                    m.last_active_on.is_not(None), m.active_days >= 1))
    if audience is Audience.BUYERS:
        query = query.where(bought.c.orders.is_not(None))
    return query


async def scan(session: AsyncSession, *, community_id: int, tz: str, audience: Audience, policy: RiskPolicy,
               now: datetime) -> RiskScan:
    """Score the audience's members and list the drifting ones. Never scored: members who are not
    in the group now, erased users, members with no active day, members who joined within
    `new_member_days` and members with an order (not cancelled) placed within `recent_order_days`.
    Bots never become members, so they are never here either."""
    if now.tzinfo is None:
        raise ValueError("naive datetime given for a churn scan")
    today = now.astimezone(ZoneInfo(tz)).date()
    gap = await community_gap(session, community_id=community_id)
    query = _candidates(community_id=community_id, audience=audience, policy=policy, now=now)
    if session.bind.dialect.name == "postgresql":
        return await _scan_in_sql(session, query, today=today, gap=gap, policy=policy)
    return await _scan_in_python(session, query, today=today, gap=gap, policy=policy)


def _at_risk(row, *, risk: float, silent: int, typical: float) -> AtRisk:
    return AtRisk(user_id=row.user_id, risk=risk, days_silent=silent, typical_gap=typical,
                  active_days=row.active_days, last_active_on=row.last_active_on, orders=row.orders)


def _ranked(drifting: list[AtRisk]) -> list[AtRisk]:
    return sorted(drifting, key=lambda a: (-a.risk, -a.days_silent, a.user_id))


async def _scan_in_python(session: AsyncSession, query, *, today: date, gap: float, policy: RiskPolicy) -> RiskScan:
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
            drifting.append(_at_risk(row, risk=risk, silent=silent, typical=typical))
    return RiskScan(drifting=_ranked(drifting), scanned=sum(histogram), excluded_new=excluded["new"],
                    excluded_recent_buyers=excluded["recent"], histogram=histogram, community_gap=gap)


async def _scan_in_sql(session: AsyncSession, query, *, today: date, gap: float, policy: RiskPolicy) -> RiskScan:
    base = query.subquery("candidates")
    c = base.c
    silent = func.greatest(literal(today, Date) - c.last_active_on, 0)
    if policy.rule is RiskRule.FIXED:
        risk = func.least(1.0, func.cast(silent, Float) / policy.fixed_days)
        typical = literal(float(policy.fixed_days), Float)
        flagged = silent >= policy.fixed_days
    else:
        alpha = func.cast(PRIOR_GAPS + func.greatest(c.active_days, 1) - 1, Float)
        beta = PRIOR_GAPS * gap + func.cast(c.last_active_on - func.coalesce(c.first_active_on, c.last_active_on), Float)
        risk = 1.0 - func.power(beta / (beta + silent), alpha)
        typical = beta * (func.power(1.0 - policy.threshold, -1.0 / alpha) - 1.0)
        flagged = risk >= policy.threshold
    scored = (select(c.user_id, c.active_days, c.last_active_on, c.orders, c.klass, silent.label("silent"),
                     risk.label("risk"), typical.label("typical"), flagged.label("flagged"))
              .cte("scored"))
    s = scored.c
    in_band = func.least(BANDS - 1, func.greatest(0, func.floor(s.risk * BANDS))).cast(Float)
    counts = (await session.execute(
        select(s.klass, case((s.klass == "scan", in_band), else_=None).label("band"), func.count())
        .group_by(s.klass, "band"))).all()
    histogram = [0] * BANDS
    excluded = {"new": 0, "recent": 0}
    for klass, index, n in counts:
        if klass == "scan":
            histogram[int(index)] += n
        else:
            excluded[klass] += n
    rows = (await session.execute(select(scored).where(s.klass == "scan", s.flagged))).all()
    drifting = [_at_risk(row, risk=float(row.risk), silent=int(row.silent), typical=float(row.typical)) for row in rows]
    return RiskScan(drifting=_ranked(drifting), scanned=sum(histogram), excluded_new=excluded["new"],
                    excluded_recent_buyers=excluded["recent"], histogram=histogram, community_gap=gap)

