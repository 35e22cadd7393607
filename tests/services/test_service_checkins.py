"""bot.services.checkins on a real database: the community-local day (Asia/Shanghai, and
America/New_York across both DST changes), one check-in per member and day under double taps and
concurrency, who may check in, streaks, freezes, make-ups, the reward curve and milestones,
leaderboards, leaders' figures and reminder candidates. Every test reads back what was committed."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from checkin_builders import held, join, leave, local, make_group
from sqlmodel import select

from bot.services import checkins, points
from bot.services.checkin_settings import CouponTerms, checkin_settings, parse_milestones, update_checkin_settings
from bot.services.checkins import CheckInStatus
from bot.services.errors import DomainError
from bot.services.users import set_marketing_opt_out
from models import CheckIn, Community, Coupon, CouponKind, PointsEntry, User

SH, NY = "Asia/Shanghai", "America/New_York"
A, B, C, D = 101, 102, 103, 104
LEADER = 1
CURVE = {"base_points": 5, "daily_increment": 1, "increment_cap_days": 7, "milestones": {}}


def noon(tz: str, day: date):
    return local(tz, day.year, day.month, day.day, 12, 0, 0)


async def run(session, group, uid, at, now=None):
    return await checkins.check_in(session, community=group, user_id=uid, at=at, now=now)


async def streak_days(session, group, uid, first: date, count: int, tz: str = "UTC"):
    results = []
    for n in range(count):
        results.append(await run(session, group, uid, noon(tz, first + timedelta(days=n))))
    return results


async def codes_of(coro) -> str:
    try:
        await coro
    except DomainError as err:
        return err.code
    return "ok"


# ----- the community-local day ----------------------------------------------------------------------

async def test_shanghai_day_boundary_and_a_late_handled_press(session, fresh, t0):
    g = await make_group(session, now=t0, tz=SH, **CURVE)
    await join(session, g, A, now=t0)
    last_second = local(SH, 2026, 3, 7, 23, 59, 59)  # 15:59:59 UTC
    assert last_second.hour == 15
    # Handled four minutes after local midnight: still the 7th, the day of the press.
    first = await run(session, g, A, last_second, now=last_second + timedelta(minutes=4))
    assert (first.status, first.day, first.streak, first.points) == (CheckInStatus.DONE, date(2026, 3, 7), 1, 5)
    second = await run(session, g, A, local(SH, 2026, 3, 8, 0, 0, 0))
    assert (second.status, second.day, second.streak, second.points) == (CheckInStatus.DONE, date(2026, 3, 8), 2, 6)
    again = await run(session, g, A, local(SH, 2026, 3, 8, 23, 59, 59))
    assert (again.status, again.day) == (CheckInStatus.ALREADY, date(2026, 3, 8))

    mine = await held(fresh, g.id, A)
    assert [(d, k, s) for d, k, s, _ in mine.days] == [(date(2026, 3, 7), "checkin", 1), (date(2026, 3, 8), "checkin", 2)]
    assert mine.entries == [("checkin", "2026-03-07", 5), ("checkin", "2026-03-08", 6)]
    async with fresh() as s:
        ats = [c.at for c in await s.exec(select(CheckIn).order_by(CheckIn.day))]
    assert ats[0] == last_second  # the action's time, not when it was handled


@pytest.mark.parametrize("presses, days", [
    # Spring forward on 2026-03-08: midnight is 05:00 UTC before the change and 04:00 UTC after it.
    ([(2026, 3, 8, 4, 59, 59), (2026, 3, 8, 5, 0, 0), (2026, 3, 9, 3, 59, 59), (2026, 3, 9, 4, 0, 0)],
     [date(2026, 3, 7), date(2026, 3, 8), None, date(2026, 3, 9)]),
    # Fall back on 2026-11-01: midnight is 04:00 UTC before the change and 05:00 UTC after it.
    ([(2026, 11, 1, 3, 59, 59), (2026, 11, 1, 4, 0, 0), (2026, 11, 2, 4, 59, 59), (2026, 11, 2, 5, 0, 0)],
     [date(2026, 10, 31), date(2026, 11, 1), None, date(2026, 11, 2)]),
])
async def test_new_york_days_across_dst(session, fresh, t0, presses, days):
    """Each press given in UTC; None: the same local day as the press before it (already)."""
    from datetime import datetime, timezone

    g = await make_group(session, now=t0, tz=NY, **CURVE)
    await join(session, g, A, now=t0)
    expected_days = []
    for parts, day in zip(presses, days, strict=True):
        result = await run(session, g, A, datetime(*parts, tzinfo=timezone.utc))
        if day is None:
            assert result.status == CheckInStatus.ALREADY
        else:
            assert (result.status, result.day) == (CheckInStatus.DONE, day)
            expected_days.append(day)
    mine = await held(fresh, g.id, A)
    assert [d for d, *_ in mine.days] == expected_days
    assert [s for _, _, s, _ in mine.days] == [1, 2, 3]
    assert (mine.account.streak, mine.account.last_day) == (3, expected_days[-1])


# ----- one per member and day -------------------------------------------------------------------------

async def test_double_check_in_writes_once(session, fresh, t0):
    g = await make_group(session, now=t0, **CURVE)
    await join(session, g, A, now=t0)
    at = noon("UTC", date(2026, 5, 1))
    first = await run(session, g, A, at)
    second = await run(session, g, A, at + timedelta(seconds=1))
    assert first.status == CheckInStatus.DONE
    assert (second.status, second.points, second.streak, second.balance) == (CheckInStatus.ALREADY, 5, 1, 5)
    mine = await held(fresh, g.id, A)
    assert len(mine.days) == 1 and mine.entries == [("checkin", "2026-05-01", 5)]
    assert mine.account.balance == mine.ledger_total == 5


async def test_concurrent_check_ins_make_one_row_and_one_entry(session, fresh, t0):
    g = await make_group(session, now=t0, **CURVE)
    await join(session, g, A, B, now=t0)
    at = noon("UTC", date(2026, 5, 1))

    async def press(uid: int) -> str:
        async with fresh() as s:
            community = await s.get(Community, g.id)
            return (await checkins.check_in(s, community=community, user_id=uid, at=at)).status.value

    statuses = await asyncio.gather(*(press(A) for _ in range(6)), *(press(B) for _ in range(3)))
    assert sorted(statuses) == ["already"] * 7 + ["done"] * 2
    for uid in (A, B):
        mine = await held(fresh, g.id, uid)
        assert len(mine.days) == 1 and len(mine.entries) == 1
        assert mine.account.balance == mine.ledger_total == 5


async def test_only_present_members_check_in(session, fresh, t0, count):
    g = await make_group(session, now=t0, **CURVE)
    await join(session, g, A, B, C, now=t0)
    await leave(session, g, A, now=t0)
    await leave(session, g, B, now=t0, status="kicked")
    at = noon("UTC", date(2026, 5, 1))
    assert (await run(session, g, A, at)).status == CheckInStatus.NOT_MEMBER
    assert (await run(session, g, B, at)).status == CheckInStatus.NOT_MEMBER
    assert (await run(session, g, D, at)).status == CheckInStatus.NOT_MEMBER  # never seen in the group
    assert (await run(session, g, C, at)).status == CheckInStatus.DONE
    assert await count(CheckIn) == 1 and await count(PointsEntry) == 1
    assert await codes_of(checkins.make_up(session, community=g, user_id=A, day=date(2026, 4, 30), at=at)) \
        == "checkin_not_member"


async def test_disabled_community_records_nothing(session, t0, count):
    g = await make_group(session, now=t0, enabled=False, **CURVE)
    await join(session, g, A, now=t0)
    assert (await run(session, g, A, noon("UTC", date(2026, 5, 1)))).status == CheckInStatus.DISABLED
    assert await count(CheckIn) == 0


# ----- streaks and the reward curve ---------------------------------------------------------------------

async def test_streak_continues_and_breaks(session, fresh, t0):
    g = await make_group(session, now=t0, **CURVE)
    await join(session, g, A, now=t0)
    start = date(2026, 5, 1)
    results = await streak_days(session, g, A, start, 3)
    assert [(r.streak, r.points) for r in results] == [(1, 5), (2, 6), (3, 7)]
    after_gap = await run(session, g, A, noon("UTC", start + timedelta(days=4)))  # the 4th day missed
    assert (after_gap.streak, after_gap.best_streak, after_gap.points) == (1, 3, 5)
    mine = await held(fresh, g.id, A)
    assert [(k, s, p) for _, k, s, p in mine.days] == [("checkin", 1, 5), ("checkin", 2, 6), ("checkin", 3, 7),
                                                        ("checkin", 1, 5)]
    assert (mine.account.streak, mine.account.best_streak, mine.account.balance) == (1, 3, 23)
    assert mine.ledger_total == 23


async def test_the_increment_stops_after_the_cap(session, t0):
    g = await make_group(session, now=t0, base_points=10, daily_increment=5, increment_cap_days=3, milestones={})
    await join(session, g, A, now=t0)
    results = await streak_days(session, g, A, date(2026, 5, 1), 5)
    assert [r.points for r in results] == [10, 15, 20, 20, 20]


async def test_a_new_curve_never_rewrites_past_days(session, fresh, t0, audit_rows):
    g = await make_group(session, now=t0, **CURVE)
    await join(session, g, A, now=t0)
    await streak_days(session, g, A, date(2026, 5, 1), 2)
    await update_checkin_settings(session, community=g, actor_id=LEADER, now=t0, base_points=100, daily_increment=0)
    third = await run(session, g, A, noon("UTC", date(2026, 5, 3)))
    assert (third.streak, third.points) == (3, 100)
    mine = await held(fresh, g.id, A)
    assert [p for *_, p in mine.days] == [5, 6, 100]
    assert [d for *_, d in mine.entries] == [5, 6, 100]
    assert [(a.action, a.details) for a in await audit_rows()][-2:] == [
        ("checkin.base_points", {"from": 5, "to": 100}), ("checkin.daily_increment", {"from": 1, "to": 0})]


async def test_milestone_given_once_per_streak_that_reaches_it(session, fresh, t0):
    g = await make_group(session, now=t0, **{**CURVE, "milestones": {3: 50, 5: 80}})
    await join(session, g, A, now=t0)
    start = date(2026, 5, 1)
    results = await streak_days(session, g, A, start, 3)
    assert [(m.streak, m.points) for m in results[2].milestones] == [(3, 50)]
    assert results[1].next_milestone == checkins.NextMilestone(3, 1, 50, None)
    assert results[2].next_milestone == checkins.NextMilestone(5, 2, 80, None)
    again = await run(session, g, A, noon("UTC", start + timedelta(days=2)))
    assert again.status == CheckInStatus.ALREADY and again.milestones == ()
    fourth = await run(session, g, A, noon("UTC", start + timedelta(days=3)))
    assert fourth.milestones == ()
    # Broken, then a new streak reaches 3 again: that streak earns it too.
    await streak_days(session, g, A, start + timedelta(days=10), 3)
    mine = await held(fresh, g.id, A)
    assert [e for e in mine.entries if e[0] == "milestone"] == [
        ("milestone", "2026-05-03/3", 50), ("milestone", "2026-05-13/3", 50)]
    assert mine.account.balance == mine.ledger_total == 5 + 6 + 7 + 8 + 50 + 5 + 6 + 7 + 50


async def test_milestone_coupon_is_owner_bound_and_recorded(session, fresh, t0):
    terms = CouponTerms(kind=CouponKind.FIXED, value=500, min_spend=2000, valid_days=7)
    g = await make_group(session, now=t0, tz=SH, **{**CURVE, "milestones": {2: terms.model_dump(mode="json")}})
    await join(session, g, A, now=t0)
    results = await streak_days(session, g, A, date(2026, 5, 1), 2, tz=SH)
    [grant] = results[1].milestones
    assert grant.points == 0 and grant.coupon is not None
    async with fresh() as s:
        coupon = await s.get(Coupon, grant.coupon.id)
        entry = (await s.exec(select(PointsEntry).where(PointsEntry.reason == "milestone"))).one()
    assert (coupon.owner_id, coupon.value, coupon.min_spend, coupon.source) == (A, 500, 2000, "checkin")
    assert coupon.expires_at == local(SH, 2026, 5, 10, 0, 0, 0) - timedelta(microseconds=1)
    assert (entry.delta, entry.coupon_id, entry.reference) == (0, coupon.id, "2026-05-02/2")


# ----- freezes ----------------------------------------------------------------------------------------

async def test_freeze_covers_one_missed_day_and_at_most_two_are_held(session, fresh, t0):
    g = await make_group(session, now=t0, freeze_enabled=True, **CURVE)
    await join(session, g, A, now=t0)
    start = date(2026, 6, 1)
    week = await streak_days(session, g, A, start, 7)
    assert (week[-1].freezes_earned, week[-1].freezes) == (1, 1)
    assert [r.freezes for r in week[:-1]] == [0] * 6
    # The 8th is missed; on the 9th the freeze covers it and the streak goes on.
    ninth = await run(session, g, A, noon("UTC", start + timedelta(days=8)))
    assert (ninth.freeze_used, ninth.streak, ninth.freezes) == (True, 8, 0)
    mine = await held(fresh, g.id, A)
    assert mine.days[-2:] == [(start + timedelta(days=7), "freeze", 7, 0), (start + timedelta(days=8), "checkin", 8, 11)]
    assert ("checkin", (start + timedelta(days=7)).isoformat(), 0) not in mine.entries
    # Streak 14, 21 and 28 each earn one; a third is not held.
    more = await streak_days(session, g, A, start + timedelta(days=9), 20)
    assert more[-1].streak == 28
    assert [r.streak for r in more if r.freezes_earned] == [14, 21]
    assert more[-1].freezes == 2
    # Two missed days in a row: a freeze covers a single missed day only, so the streak breaks.
    broken = await run(session, g, A, noon("UTC", start + timedelta(days=31)))
    assert (broken.freeze_used, broken.streak, broken.freezes, broken.best_streak) == (False, 1, 2, 28)


async def test_without_freezes_a_missed_day_breaks_the_streak(session, t0):
    g = await make_group(session, now=t0, freeze_enabled=False, **CURVE)
    await join(session, g, A, now=t0)
    start = date(2026, 6, 1)
    await streak_days(session, g, A, start, 7)
    after = await run(session, g, A, noon("UTC", start + timedelta(days=8)))
    assert (after.streak, after.freeze_used, after.freezes) == (1, False, 0)


async def test_freezes_held_are_not_used_once_the_leader_turns_them_off(session, fresh, t0):
    g = await make_group(session, now=t0, freeze_enabled=True, **CURVE)
    await join(session, g, A, now=t0)
    start = date(2026, 6, 1)
    assert (await streak_days(session, g, A, start, 7))[-1].freezes == 1
    await update_checkin_settings(session, community=g, actor_id=LEADER, now=t0, freeze_enabled=False)
    after = await run(session, g, A, noon("UTC", start + timedelta(days=8)))
    assert (after.streak, after.freeze_used, after.freezes) == (1, False, 1)
    assert [k for _, k, _, _ in (await held(fresh, g.id, A)).days] == ["checkin"] * 8


async def test_a_press_handled_after_a_later_days_recomputes_the_streak(session, fresh, t0):
    """A redelivered press from the 2nd arrives after the 3rd was recorded (or after a freeze
    covered the 2nd): the day is recorded and the streaks after it recomputed."""
    g = await make_group(session, now=t0, freeze_enabled=True, **CURVE)
    await join(session, g, A, now=t0)
    start = date(2026, 7, 1)
    await streak_days(session, g, A, start, 7)
    ninth = await run(session, g, A, noon("UTC", start + timedelta(days=8)))
    assert ninth.freeze_used
    late = await run(session, g, A, noon("UTC", start + timedelta(days=7)), now=noon("UTC", start + timedelta(days=8)))
    assert (late.status, late.points, late.streak, late.freezes) == (CheckInStatus.DONE, 11, 9, 1)
    mine = await held(fresh, g.id, A)
    assert [(k, s) for _, k, s, _ in mine.days][-3:] == [("checkin", 7), ("checkin", 8), ("checkin", 9)]
    assert (mine.account.streak, mine.account.best_streak, mine.account.freezes) == (9, 9, 1)
    assert mine.account.balance == mine.ledger_total


# ----- make-ups ---------------------------------------------------------------------------------------

async def test_make_up_bridges_a_gap_and_recomputes_the_streak(session, fresh, t0):
    g = await make_group(session, now=t0, makeup_days=3, makeup_cost=20, makeups_per_month=2,
                         **{**CURVE, "milestones": {7: 40}})
    await join(session, g, A, now=t0)
    start = date(2026, 8, 1)
    await streak_days(session, g, A, start, 3)  # 1st-3rd
    await streak_days(session, g, A, start + timedelta(days=4), 3)  # 5th-7th, the 4th missed
    before = await held(fresh, g.id, A)
    assert (before.account.streak, before.account.best_streak) == (3, 3)

    result = await checkins.make_up(session, community=g, user_id=A, day=start + timedelta(days=3),
                                    at=noon("UTC", start + timedelta(days=6)) + timedelta(hours=1))
    assert (result.streak, result.best_streak, result.cost, result.makeups_left) == (7, 7, 20, 1)
    assert [(m.streak, m.day, m.points) for m in result.milestones] == [(7, start + timedelta(days=6), 40)]
    mine = await held(fresh, g.id, A)
    assert [(k, s, p) for _, k, s, p in mine.days] == [
        ("checkin", 1, 5), ("checkin", 2, 6), ("checkin", 3, 7), ("makeup", 4, 0),
        ("checkin", 5, 5), ("checkin", 6, 6), ("checkin", 7, 7)]  # past points stay as earned
    assert mine.entries[-2:] == [("makeup", "2026-08-04", -20), ("milestone", "2026-08-07/7", 40)]
    assert (mine.account.streak, mine.account.best_streak) == (7, 7)
    assert mine.account.balance == mine.ledger_total == 36 - 20 + 40
    # The next check-in continues the joined streak; the milestone is not given again.
    eighth = await run(session, g, A, noon("UTC", start + timedelta(days=7)))
    assert (eighth.streak, eighth.points, eighth.milestones) == (8, 11, ())


async def test_make_up_refusals_write_nothing(session, fresh, t0, count):
    g = await make_group(session, now=t0, makeup_days=3, makeup_cost=20, makeups_per_month=5, **CURVE)
    await join(session, g, A, now=t0)
    today = date(2026, 8, 10)
    at = noon("UTC", today)
    await streak_days(session, g, A, today - timedelta(days=2), 2)  # the 8th and 9th: 11 points
    state = await held(fresh, g.id, A)

    async def attempt(day: date) -> tuple[str, dict]:
        try:
            await checkins.make_up(session, community=g, user_id=A, day=day, at=at)
        except DomainError as err:
            return err.code, err.params
        return "ok", {}

    assert await attempt(today) == ("checkin_makeup_today", {})
    assert await attempt(today + timedelta(days=1)) == ("checkin_makeup_future", {})
    assert await attempt(today - timedelta(days=4)) == ("checkin_makeup_too_old", {"days": 3})
    assert await attempt(today - timedelta(days=1)) == ("checkin_makeup_already", {"day": "2026-08-09"})
    assert await attempt(today - timedelta(days=3)) == ("points_insufficient", {"balance": 11, "needed": 20})
    assert await held(fresh, g.id, A) == state
    assert await count(CheckIn, CheckIn.kind == "makeup") == 0

    off = await make_group(session, now=t0, chat_id=-501, makeup_days=0, **CURVE)
    await join(session, off, A, now=t0)
    assert await codes_of(checkins.make_up(session, community=off, user_id=A, day=today - timedelta(days=1), at=at)) \
        == "checkin_makeup_off"


async def test_make_ups_are_limited_per_local_month(session, fresh, t0):
    g = await make_group(session, now=t0, tz=SH, makeup_days=10, makeup_cost=0, makeups_per_month=2, **CURVE)
    await join(session, g, A, now=t0)
    # Made on 31 August, Shanghai time: two allowed, the third refused.
    august = local(SH, 2026, 8, 31, 23, 0, 0)
    for day in (date(2026, 8, 25), date(2026, 8, 27)):
        await checkins.make_up(session, community=g, user_id=A, day=day, at=august)
    assert await codes_of(checkins.make_up(session, community=g, user_id=A, day=date(2026, 8, 29), at=august)) \
        == "checkin_makeup_limit"
    # Two hours later it is September in Shanghai (still August in UTC): a new month's allowance.
    september = local(SH, 2026, 9, 1, 1, 0, 0)
    assert september.month == 8
    result = await checkins.make_up(session, community=g, user_id=A, day=date(2026, 8, 29), at=september)
    assert result.makeups_left == 1
    mine = await held(fresh, g.id, A)
    assert [(d, k) for d, k, _, _ in mine.days] == [(date(2026, 8, 25), "makeup"), (date(2026, 8, 27), "makeup"),
                                                    (date(2026, 8, 29), "makeup")]


async def test_concurrent_make_ups_respect_the_balance(session, fresh, t0):
    g = await make_group(session, now=t0, makeup_days=5, makeup_cost=20, makeups_per_month=5, **CURVE)
    await join(session, g, A, now=t0)
    await points.credit(session, community_id=g.id, user_id=A, amount=30, reason=points.PointsReason.INVITE,
                        reference="invite:1", now=t0)
    at = noon("UTC", date(2026, 8, 10))

    async def attempt(day: date) -> str:
        async with fresh() as s:
            community = await s.get(Community, g.id)
            return await codes_of(checkins.make_up(s, community=community, user_id=A, day=day, at=at))

    results = await asyncio.gather(*(attempt(date(2026, 8, d)) for d in (6, 7, 8, 9)))
    assert sorted(results) == ["ok"] + ["points_insufficient"] * 3
    mine = await held(fresh, g.id, A)
    assert mine.account.balance == mine.ledger_total == 10
    assert len(mine.days) == 1


# ----- leaderboards, today's figures, reminders ----------------------------------------------------------

async def _board(session, t0):
    g = await make_group(session, now=t0, tz=SH, **CURVE)
    await join(session, g, A, B, C, D, now=t0)
    today = date(2026, 9, 10)
    await streak_days(session, g, A, today - timedelta(days=4), 5, tz=SH)  # 5, through today
    await streak_days(session, g, B, today - timedelta(days=3), 3, tz=SH)  # 3, through yesterday
    await streak_days(session, g, C, today - timedelta(days=2), 3, tz=SH)  # 3, through today
    await streak_days(session, g, D, today - timedelta(days=9), 4, tz=SH)  # 4, broken since
    return g, today


async def test_leaderboards_and_ranks(session, t0):
    g, today = await _board(session, t0)
    now = noon(SH, today)
    assert [(s.rank, s.user.id, s.value) for s in await checkins.top_streaks(session, community=g, now=now)] == [
        (1, A, 5), (2, B, 3), (2, C, 3)]
    # September, Shanghai time: D's 1st-4th count; points from August would not.
    assert [(s.rank, s.user.id, s.value) for s in await checkins.top_points_month(session, community=g, now=now)] == [
        (1, A, 35), (2, D, 26), (3, B, 18), (3, C, 18)]
    mine = await checkins.rank(session, community=g, user_id=C, now=now)
    assert (mine.streak, mine.streak_rank, mine.month_points, mine.points_rank, mine.members, mine.balance) == (
        3, 2, 18, 3, 4, 18)
    broken = await checkins.rank(session, community=g, user_id=D, now=now)
    assert (broken.streak, broken.streak_rank, broken.best_streak, broken.points_rank) == (0, None, 4, 2)
    # Someone who left drops off both boards; the others' ranks close up.
    await leave(session, g, A, now=now)
    assert [s.user.id for s in await checkins.top_streaks(session, community=g, now=now)] == [B, C]
    assert (await checkins.rank(session, community=g, user_id=D, now=now)).points_rank == 1
    assert [r.community.id for r in await checkins.my_ranks(session, user_id=C, now=now)] == [g.id]


async def test_points_this_month_follow_the_local_calendar(session, t0):
    g = await make_group(session, now=t0, tz=SH, **CURVE)
    await join(session, g, A, now=t0)
    await run(session, g, A, local(SH, 2026, 9, 30, 23, 59, 59))  # 15:59 UTC on the 30th
    await run(session, g, A, local(SH, 2026, 10, 1, 0, 0, 1))
    board = await checkins.top_points_month(session, community=g, now=local(SH, 2026, 10, 1, 8, 0, 0))
    assert [(s.user.id, s.value) for s in board] == [(A, 6)]


async def test_today_stats(session, t0):
    g, today = await _board(session, t0)
    stats = await checkins.today_stats(session, community=g, now=noon(SH, today))
    assert (stats.day, stats.checked_in, stats.members) == (today, 2, 4)
    assert [(b.low, b.high, b.members) for b in stats.buckets] == [
        (0, 0, 1), (1, 2, 0), (3, 6, 3), (7, 13, 0), (14, 29, 0), (30, None, 0)]


async def test_reminder_candidates(session, fresh, t0):
    g = await make_group(session, now=t0, tz=SH, reminder_hour=20, quiet_start="22:30", quiet_end="08:00", **CURVE)
    await join(session, g, A, B, C, D, now=t0)
    today = date(2026, 9, 10)
    for uid, days in ((A, 3), (B, 2), (C, 4), (D, 5)):
        await streak_days(session, g, uid, today - timedelta(days=days), days, tz=SH)
    await run(session, g, C, noon(SH, today))  # C already checked in today
    async with fresh() as s:
        for user in await s.exec(select(User)):
            user.can_dm = user.id != D  # D never started the bot
        await s.commit()

    async def candidates(*parts):
        return [(r.user_id, r.streak) for r in await checkins.reminder_candidates(
            session, community=g, now=local(SH, *parts))]

    assert await candidates(2026, 9, 10, 19, 59, 0) == []  # before the reminder hour
    assert await candidates(2026, 9, 10, 20, 0, 0) == [(A, 3)]  # B's streak is 2
    assert await candidates(2026, 9, 10, 22, 45, 0) == []  # quiet hours
    await set_marketing_opt_out(session, user_id=A, opt_out=True, now=t0)
    assert await candidates(2026, 9, 10, 21, 0, 0) == []


# ----- settings ------------------------------------------------------------------------------------------

async def test_settings_are_validated_and_stored(session, fresh, t0, audit_rows):
    g = await make_group(session, now=t0)
    assert checkin_settings(g).milestones == {7: 20, 30: 100}
    for bad in ({"card_time": "25:00"}, {"base_points": -1}, {"milestones": {1: 10}}, {"quiet_start": "22:00"},
                {"reminder_hour": 24}, {"nonsense": 1}):
        assert await codes_of(update_checkin_settings(session, community=g, actor_id=LEADER, now=t0, **bad)) \
            == "checkin_setting_invalid"
    await update_checkin_settings(session, community=g, actor_id=LEADER, now=t0,
                                  milestones=parse_milestones("7:25，30=90"), card_time="08:05")
    async with fresh() as s:
        stored = checkin_settings(await s.get(Community, g.id))
    assert (stored.milestones, stored.card_time) == ({7: 25, 30: 90}, "08:05")
    assert [a.action for a in await audit_rows()][-2:] == ["checkin.milestones", "checkin.card_time"]
    for raw in ("7:x", "7", "7:10, 7:20"):
        with pytest.raises(DomainError) as exc:
            parse_milestones(raw)
        assert exc.value.code == "checkin_milestones_format"
