"""Churn risk (bot/services/churn.py) on a real database: exact small cases (rhythms, exclusions,
audiences, the community's calendar), and a simulated community with known truth where the
personal rule is compared with the best single fixed threshold at the same number of messages."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from shop_builders import buy, make_product, make_shop
from sqlalchemy import insert, update

from bot.services import churn
from bot.services.churn import Audience, RiskPolicy, RiskRule
from models import Member, Order, OrderStatus, User

NOW = datetime(2025, 9, 1, 12, 0, tzinfo=timezone.utc)
TODAY = NOW.date()
LONG_AGO = NOW - timedelta(days=400)
FIGURES = Path("/tmp/helpers/churn_figures.md")


@dataclass(frozen=True, slots=True)
class Rhythm:
    user_id: int
    first: date
    last: date
    days: int
    joined_at: datetime = LONG_AGO
    status: str = "member"
    erased: bool = False


def every(user_id: int, *, gap: int, days: int, last: date) -> Rhythm:
    """A member active every `gap` days, `days` times, the last on `last`."""
    return Rhythm(user_id, last - timedelta(days=gap * (days - 1)), last, days)


async def seed(session, community_id: int, rhythms: list[Rhythm]) -> None:
    """Users and members with their rhythm columns written directly, as the activity flusher keeps them."""
    existing = set((await session.execute(User.__table__.select().with_only_columns(User.id))).scalars())
    users = [{"id": r.user_id, "first_name": f"U{r.user_id}", "erased": r.erased}
             for r in rhythms if r.user_id not in existing]
    if users:
        await session.execute(insert(User.__table__), users)
    await session.execute(insert(Member.__table__), [
        {"community_id": community_id, "user_id": r.user_id, "status": r.status, "joined_at": r.joined_at,
         "first_active_on": r.first, "last_active_on": r.last, "active_days": r.days,
         "last_active_at": datetime.combine(r.last, datetime.min.time(), timezone.utc)} for r in rhythms])
    await session.commit()


async def run(session, community, *, audience: Audience = Audience.ACTIVE, **policy: object) -> churn.RiskScan:
    return await churn.scan(session, community_id=community.id, tz=community.timezone, audience=audience,
                            policy=RiskPolicy(**policy), now=NOW)


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


async def test_weekly_member_silent_three_weeks_drifts_monthly_member_does_not(session):
    shop = await make_shop(session, now=NOW)
    weekly, monthly = 101, 102
    regulars = [every(110 + i, gap=7, days=5, last=ago(0)) for i in range(5)]  # a weekly community
    await seed(session, shop.id, regulars + [every(weekly, gap=7, days=20, last=ago(21)),
                                             every(monthly, gap=30, days=10, last=ago(21))])

    result = await run(session, shop.community)

    assert result.community_gap == pytest.approx(7.0)
    assert [a.user_id for a in result.drifting] == [weekly]
    flagged = result.drifting[0]
    assert (flagged.days_silent, flagged.active_days, flagged.last_active_on, flagged.orders) == (21, 20, ago(21), 0)
    # alpha = 3 + 19 gaps, beta = 3 * 7 + 133 days: silent beyond ~17 days is past their 90 % gap.
    assert flagged.typical_gap == pytest.approx(154 * (10 ** (1 / 22) - 1))
    assert flagged.risk == pytest.approx(1 - (154 / 175) ** 22)
    assert result.scanned == 7 and result.histogram[0] == 5 and result.histogram[9] == 1
    # The monthly member's own 90 % gap (alpha = 3 + 9, beta = 21 + 270) is two months.
    monthly_gap = churn.personal_gap(active_days=10, span_days=270, community_gap=7.0, threshold=0.9)
    assert monthly_gap == pytest.approx(291 * (10 ** (1 / 12) - 1)) and monthly_gap > 60

    fixed = await run(session, shop.community, rule=RiskRule.FIXED, fixed_days=30)
    assert fixed.drifting == [] and fixed.histogram[7] == 2  # 21 / 30 in [.7, .8)


async def test_short_history_leans_on_the_community_gap(session):
    shop = await make_shop(session, now=NOW)
    # Ten members coming every 3 days set the community's gap. A member seen on one day only is
    # judged on that gap with the doubt of one observation; a long-standing every-3-days member on their own.
    newcomer, regular = 301, 302
    await seed(session, shop.id, [every(200 + i, gap=3, days=30, last=ago(0)) for i in range(10)]
               + [Rhythm(newcomer, ago(9), ago(9), 1), every(regular, gap=3, days=60, last=ago(9))])

    result = await run(session, shop.community)

    assert result.community_gap == pytest.approx(3.0)
    assert [(a.user_id, round(a.typical_gap, 2)) for a in result.drifting] == [
        (regular, round(186 * (10 ** (1 / 62) - 1), 2))]  # ~7 days
    newcomer_gap = churn.personal_gap(active_days=1, span_days=0, community_gap=3.0, threshold=0.9)
    assert newcomer_gap == pytest.approx(9 * (10 ** (1 / 3) - 1))  # ~10 days: not yet


async def test_new_members_recent_buyers_leavers_and_erased_are_never_targeted(session):
    shop = await make_shop(session, now=NOW)
    product = await make_product(session, shop, now=NOW - timedelta(days=90))
    newcomer, buyer, cancelled, gone, erased, drifter = 401, 402, 403, 404, 405, 406
    await seed(session, shop.id, [
        Rhythm(newcomer, ago(10), ago(10), 1, joined_at=NOW - timedelta(days=10)),
        Rhythm(buyer, ago(200), ago(5), 20), Rhythm(cancelled, ago(200), ago(5), 20),
        Rhythm(gone, ago(200), ago(60), 20, status="left"), Rhythm(erased, ago(200), ago(60), 20, erased=True),
        Rhythm(drifter, ago(200), ago(60), 20)])
    await buy(session, shop, user_id=buyer, product=product, now=NOW - timedelta(days=5))
    placed = await buy(session, shop, user_id=cancelled, product=product, now=NOW - timedelta(days=5))
    await session.execute(update(Order).where(Order.id == placed.order.id).values(status=OrderStatus.CANCELLED))
    await session.commit()

    # A fixed rule of 3 days would flag everyone silent since: only the exclusions keep them out.
    result = await run(session, shop.community, rule=RiskRule.FIXED, fixed_days=3)

    assert sorted(a.user_id for a in result.drifting) == [cancelled, drifter]
    assert (result.excluded_new, result.excluded_recent_buyers, result.scanned) == (1, 1, 2)
    assert all(a.orders == 0 for a in result.drifting)  # a cancelled order does not make a buyer

    later = await run(session, shop.community, rule=RiskRule.FIXED, fixed_days=3, new_member_days=7,
                      recent_order_days=4)
    assert sorted(a.user_id for a in later.drifting) == [newcomer, buyer, cancelled, drifter]


async def test_audience_buyers_or_anyone_active(session):
    shop = await make_shop(session, now=NOW)
    product = await make_product(session, shop, now=NOW - timedelta(days=200))
    buyer, chatter, cancelled = 501, 502, 503
    await seed(session, shop.id, [Rhythm(uid, ago(150), ago(60), 20) for uid in (buyer, chatter, cancelled)])
    for when in (100, 70):
        await buy(session, shop, user_id=buyer, product=product, now=NOW - timedelta(days=when))
    placed = await buy(session, shop, user_id=cancelled, product=product, now=NOW - timedelta(days=70))
    await session.execute(update(Order).where(Order.id == placed.order.id).values(status=OrderStatus.CANCELLED))
    await session.commit()

    buyers = await run(session, shop.community, audience=Audience.BUYERS)
    active = await run(session, shop.community, audience=Audience.ACTIVE)

    assert [(a.user_id, a.orders) for a in buyers.drifting] == [(buyer, 2)]
    assert buyers.scanned == 1
    assert sorted((a.user_id, a.orders) for a in active.drifting) == [(buyer, 2), (chatter, 0), (cancelled, 0)]


async def test_days_silent_count_in_the_community_calendar(session):
    shop = await make_shop(session, now=NOW)
    shop.community.timezone = "Asia/Shanghai"
    await session.commit()
    late = datetime(2025, 9, 1, 17, 0, tzinfo=timezone.utc)  # already 2 September, 01:00 in Shanghai
    member = 601
    await seed(session, shop.id, [Rhythm(member, date(2025, 6, 1), date(2025, 8, 3), 10)])

    local = await churn.scan(session, community_id=shop.id, tz="Asia/Shanghai", audience=Audience.ACTIVE,
                             policy=RiskPolicy(rule=RiskRule.FIXED, fixed_days=30), now=late)
    in_utc = await churn.scan(session, community_id=shop.id, tz="UTC", audience=Audience.ACTIVE,
                              policy=RiskPolicy(rule=RiskRule.FIXED, fixed_days=30), now=late)

    assert [(a.user_id, a.days_silent, a.risk) for a in local.drifting] == [(member, 30, 1.0)]
    assert in_utc.drifting == [] and in_utc.histogram[9] == 1  # 29 days: risk 29/30


# ----- a simulated community with known truth ------------------------------------------------------

HISTORY_DAYS = 365
# (name, share, mean gap in days): exponential gaps around the mean. "Irregular" members' gaps are
# lognormal instead, a heavier tail than the model assumes: mean 10 days, a tenth of them over 3 weeks.
KINDS = (("daily", 0.25, 1.5), ("weekly", 0.3, 7.0), ("monthly", 0.25, 30.0), ("irregular", 0.2, None))
IRREGULAR_SIGMA = 1.0
IRREGULAR_MU = math.log(10.0) - IRREGULAR_SIGMA ** 2 / 2
STOPPED_SHARE = 0.35


def simulate(rng: random.Random, count: int, *, first_id: int) -> tuple[list[Rhythm], dict[int, bool], dict[int, str]]:
    """Members with known rhythms; some stopped for good at a random moment of their history."""
    rhythms, stopped, kinds = [], {}, {}
    for i in range(count):
        uid = first_id + i
        kind = rng.choices([k[0] for k in KINDS], weights=[k[1] for k in KINDS])[0]
        mean = dict((k[0], k[2]) for k in KINDS)[kind]
        start = rng.uniform(30, HISTORY_DAYS)  # days before now
        end = rng.uniform(0, start) if rng.random() < STOPPED_SHARE else 0.0
        days, t = set(), start - rng.expovariate(1 / (mean or 10.0))
        while t > end:
            days.add(int(t))
            t -= rng.expovariate(1 / mean) if mean is not None else rng.lognormvariate(IRREGULAR_MU, IRREGULAR_SIGMA)
        if not days:
            continue
        rhythms.append(Rhythm(uid, ago(max(days)), ago(min(days)), len(days),
                              joined_at=NOW - timedelta(days=start + 1)))
        stopped[uid], kinds[uid] = end > 0, kind
    return rhythms, stopped, kinds


def best_fixed(rhythms: list[Rhythm], stopped: dict[int, bool], n: int) -> int:
    """Truly stopped members among the `n` longest silent: the best a single threshold can do with
    `n` messages (ties at the cut broken in the threshold's favour)."""
    ranked = sorted(rhythms, key=lambda r: (-(TODAY - r.last).days, not stopped[r.user_id]))
    return sum(stopped[r.user_id] for r in ranked[:n])


async def test_personal_rule_finds_more_truly_drifting_members_than_any_fixed_threshold(session):
    lines = []
    for number, seed_value in enumerate((20251206, 1, 2)):
        shop = await make_shop(session, now=NOW, chat_id=-1000 - number)
        rhythms, stopped, kinds = simulate(random.Random(seed_value), 3000, first_id=100_000 * (number + 1))
        await seed(session, shop.id, rhythms)

        result = await run(session, shop.community)

        n = len(result.drifting)
        personal = sum(stopped[a.user_id] for a in result.drifting)
        fixed = best_fixed(rhythms, stopped, n)
        by_kind = {kind: sum(1 for a in result.drifting if kinds[a.user_id] == kind) for kind, _, _ in KINDS}
        lines.append(f"| {seed_value} | {len(rhythms):,} | {sum(stopped.values()):,} | {result.community_gap:.1f} | "
                     f"{n:,} | {personal:,} ({personal / n:.1%}) | {fixed:,} ({fixed / n:.1%}) | "
                     f"{' · '.join(f'{k} {v}' for k, v in by_kind.items())} |")
        assert result.scanned == len(rhythms)
        assert n > 500
        assert personal > fixed, lines[-1]
    report = ("Simulated communities (seeded): members with daily, weekly, monthly (exponential gaps) and irregular "
              "(lognormal gaps) rhythms over a year, about a third of whom stopped for good at a random moment. "
              "The personal rule at threshold 0.9 flags n members; the best single fixed threshold is given the "
              "same n messages (the n longest silent, ties in its favour).\n\n"
              "| seed | members | truly stopped | community gap (days) | n flagged | personal rule: truly drifting "
              "| best fixed threshold: truly drifting | flagged by rhythm |\n|---|---|---|---|---|---|---|---|\n"
              + "\n".join(lines) + "\n")
    print("\n" + report)
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text("# Churn risk: the personal rule against the best fixed threshold\n\n" + report)
