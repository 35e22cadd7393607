"""Win-back campaigns (bot/services/campaigns.py, campaign_config.py, lift.py) on a real database:
who a run chooses and why not, the holdout, coupons and sends that survive a crash, when a
campaign is due, the outcome of both arms and the lift's interval against published values."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest
from shop_builders import LEADER, buy, make_product, make_shop
from sqlalchemy import insert, select, update

from bot.services import campaigns, lift, stats
from bot.services.campaign_config import WinbackConfig, fill, template_fields
from bot.services.campaigns import Result, Skip
from bot.services.churn import Audience
from bot.services.errors import DomainError
from models import Arm, CampaignSend, Coupon, Member, RunStatus, SendStatus, User

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
LONG_AGO = NOW - timedelta(days=400)
FIRST = 1000


async def seed(session, community_id: int, ids, *, silent: int = 40, gap: int = 7, days: int = 20, **user) -> None:
    """Members active every `gap` days, `days` times, the last `silent` days ago: drifting, by default."""
    last = NOW.date() - timedelta(days=silent)
    await session.execute(insert(User.__table__), [
        {"id": uid, "first_name": f"Member {uid}", "can_dm": user.get("can_dm", True),
         "marketing_opt_out": user.get("opt_out", False)} for uid in ids])
    await session.execute(insert(Member.__table__), [
        {"community_id": community_id, "user_id": uid, "status": "member", "joined_at": LONG_AGO,
         "first_active_on": last - timedelta(days=gap * (days - 1)), "last_active_on": last, "active_days": days,
         "last_active_at": datetime.combine(last, datetime.min.time(), timezone.utc)} for uid in ids])
    await session.commit()


async def winback(session, shop, **config) -> campaigns.Campaign:
    made = await campaigns.create_winback(session, community=shop.community, owner_id=LEADER, name="Come back", now=NOW)
    await campaigns.update_config(session, campaign=made, changes={"audience": Audience.ACTIVE, **config},
                                  actor_id=LEADER, now=NOW)
    return made


async def sends(fresh, run_id: int) -> list[CampaignSend]:
    async with fresh() as s:
        return list((await s.execute(select(CampaignSend).where(CampaignSend.run_id == run_id)
                                     .order_by(CampaignSend.id))).scalars())


def test_the_holdout_is_a_hash_of_campaign_run_and_member():
    arms = [campaigns.arm_for(7, 3, uid, 10) for uid in range(20_000)]
    assert arms == [campaigns.arm_for(7, 3, uid, 10) for uid in range(20_000)]
    share = arms.count(Arm.HOLDOUT) / len(arms)
    assert 0.09 < share < 0.11
    # Another run draws again; none and all are exact.
    assert arms != [campaigns.arm_for(7, 4, uid, 10) for uid in range(20_000)]
    assert {campaigns.arm_for(7, 3, uid, 0) for uid in range(1000)} == {Arm.TREATMENT}
    assert campaigns.arm_for(7, 3, 1, 100) is Arm.HOLDOUT


async def test_a_run_chooses_the_drifting_members_it_may_message_and_says_why_not_the_others(session, fresh):
    shop = await make_shop(session, now=LONG_AGO)
    await seed(session, shop.id, range(FIRST, FIRST + 60))
    await seed(session, shop.id, range(2000, 2005), can_dm=False)
    await seed(session, shop.id, range(3000, 3003), opt_out=True)
    await seed(session, shop.id, range(4000, 4010), silent=2)  # active: not drifting
    campaign = await winback(session, shop, holdout_percent=20)

    run = await campaigns.start_run(session, campaign=campaign, community=shop.community, now=NOW, runner="w1",
                                    scheduled_on=NOW.date(), started_by=LEADER)

    rows = await sends(fresh, run.id)
    assert {r.user_id for r in rows} == set(range(FIRST, FIRST + 60))
    assert all(r.arm == campaigns.arm_for(campaign.id, run.id, r.user_id, 20) for r in rows)
    assert Counter(r.status for r in rows) == {SendStatus.PENDING: sum(r.arm == Arm.TREATMENT for r in rows),
                                               SendStatus.HELD: sum(r.arm == Arm.HOLDOUT for r in rows)}
    assert 0 < sum(r.arm == Arm.HOLDOUT for r in rows) < 30
    assert run.skipped == {Skip.UNREACHABLE: 5, Skip.OPTED_OUT: 3}
    assert (run.drifting, run.status, run.runner) == (68, RunStatus.SENDING, "w1")
    # Once a day; by hand, not while it is still sending; the cap keeps these members out of any
    # campaign for 14 days.
    assert await campaigns.start_run(session, campaign=campaign, community=shop.community, now=NOW, runner="w1",
                                     scheduled_on=NOW.date()) is None
    assert await campaigns.start_run(session, campaign=campaign, community=shop.community, now=NOW, runner="w1") \
        is None
    other = await winback(session, shop)
    again = await campaigns.start_run(session, campaign=other, community=shop.community,
                                      now=NOW + timedelta(days=13), runner="w1")
    assert await sends(fresh, again.id) == [] and again.skipped[Skip.CAPPED] == 60
    await campaigns.finish(session, run=again, now=NOW + timedelta(days=13))
    later = await campaigns.start_run(session, campaign=other, community=shop.community,
                                      now=NOW + timedelta(days=15), runner="w1")
    # The cap has passed; the members active two weeks ago have drifted meanwhile.
    assert {r.user_id for r in await sends(fresh, later.id)} == set(range(FIRST, FIRST + 60)) | set(range(4000, 4010))


async def test_claims_issue_unique_owner_bound_coupons_and_a_crash_never_sends_twice(session, fresh):
    shop = await make_shop(session, now=LONG_AGO)
    await seed(session, shop.id, range(FIRST, FIRST + 30))
    campaign = await winback(session, shop, holdout_percent=0, offer={"kind": "fixed", "value": 300, "min_spend": 1000,
                                                                       "valid_days": 7})
    run = await campaigns.start_run(session, campaign=campaign, community=shop.community, now=NOW, runner="w1")
    # Someone says /stop after the plan: settled at claim, no coupon.
    await session.execute(update(User).where(User.id == FIRST).values(marketing_opt_out=True))
    await session.commit()

    first = await campaigns.claim(session, run=run, community=shop.community, limit=10, now=NOW)
    second = await campaigns.claim(session, run=run, community=shop.community, limit=10, now=NOW)

    # A claim takes the next rows in order; the one who opted out was one of them.
    assert [o.user_id for o in first] == list(range(FIRST + 1, FIRST + 10))
    assert [o.user_id for o in second] == list(range(FIRST + 10, FIRST + 20))
    async with fresh() as s:
        issued = {c.id: c for c in (await s.execute(select(Coupon).where(Coupon.source == "winback"))).scalars()}
    assert len(issued) == 19 and len({c.code for c in issued.values()}) == 19
    by_owner = {c.owner_id: c for c in issued.values()}
    assert {o.coupon_code for o in first + second} == {c.code for c in issued.values()}
    coupon = by_owner[FIRST + 1]
    assert (coupon.kind, coupon.value, coupon.min_spend, coupon.single_use) == ("fixed", 300, 1000, True)
    assert coupon.expires_at == datetime(2026, 3, 9, 23, 59, 59, 999999, tzinfo=timezone.utc)  # UTC community
    rows = {r.user_id: r for r in await sends(fresh, run.id)}
    assert rows[FIRST].status == SendStatus.OPTED_OUT and rows[FIRST].coupon_id is None

    # The first chunk was answered; of the second, Telegram was handed four before the crash and
    # the journal has the answer to one of them.
    await campaigns.record(session, [Result(o.send_id, SendStatus.SENT, NOW, message_id=o.user_id) for o in first])
    attempted = {o.send_id for o in second[:3]}
    answered = [Result(second[3].send_id, SendStatus.SENT, NOW, message_id=77)]
    back, doubt = await campaigns.recover(session, run_id=run.id, attempted=attempted, answered=answered)
    assert (back, doubt) == (6, 3)
    assert {r.user_id: (r.status, r.message_id) for r in await sends(fresh, run.id)}[FIRST + 13] == (SendStatus.SENT, 77)
    resumed = await campaigns.claim(session, run=run, community=shop.community, limit=50, now=NOW)
    assert [o.user_id for o in resumed] == list(range(FIRST + 14, FIRST + 30))
    # A row put back keeps the coupon it was given: no second coupon for the same member.
    assert {o.coupon_code for o in resumed} >= {o.coupon_code for o in second[4:]}
    state = await campaigns.progress(session, run=run)
    assert (state.sent, state.failed, state.remaining, state.not_sent) == (10, 3, 16, {Skip.OPTED_OUT: 1})
    # Without the journal nobody knows: every row in hand is in doubt, none goes again.
    assert await campaigns.recover(session, run_id=run.id, attempted=None) == (0, 16)
    assert await campaigns.claim(session, run=run, community=shop.community, limit=50, now=NOW) == []


async def test_due_in_the_community_calendar_outside_quiet_hours(session):
    shop = await make_shop(session, now=LONG_AGO)
    shop.community.timezone = "Asia/Shanghai"
    await session.commit()
    campaign = await winback(session, shop, send_time="10:00")
    await campaigns.set_enabled(session, campaign=campaign, enabled=True, actor_id=LEADER, now=NOW)

    def at(hour: int, minute: int = 0, day: int = 2) -> datetime:  # Shanghai wall clock
        return datetime(2026, 3, day, hour, minute, tzinfo=timezone(timedelta(hours=8))).astimezone(timezone.utc)

    assert await campaigns.due(session, now=at(9, 59)) == []
    due = await campaigns.due(session, now=at(10, 0))
    assert [(d.campaign.id, d.day) for d in due] == [(campaign.id, date(2026, 3, 2))]
    # Still due late in the day until quiet hours (21:00 local, 13:00 UTC) begin; never in them.
    assert len(await campaigns.due(session, now=at(20, 59))) == 1
    assert await campaigns.due(session, now=at(21, 0)) == []
    assert await campaigns.due(session, now=at(8, 0, day=3)) == []
    await campaigns.start_run(session, campaign=campaign, community=shop.community, now=at(10, 0), runner="w",
                              scheduled_on=date(2026, 3, 2))
    assert await campaigns.due(session, now=at(11, 0)) == []
    assert len(await campaigns.due(session, now=at(10, 0, day=3))) == 1


async def test_settings_are_refused_as_a_whole_with_the_reason(session):
    shop = await make_shop(session, now=LONG_AGO)
    campaign = await winback(session, shop)
    for changes, reason, field in [({"send_time": "22:30"}, "in_quiet_hours", ""),
                                   ({"holdout_percent": 80}, "less_than_equal", "holdout_percent"),
                                   ({"message": "Hi {nam}"}, "unknown_placeholder", "message"),
                                   ({"message": "50% {off"}, "unpaired_brace", "message"),
                                   ({"quiet_start": "09:00"}, "quiet_same", "")]:
        with pytest.raises(DomainError) as refused:
            await campaigns.update_config(session, campaign=campaign, changes=changes, actor_id=LEADER, now=NOW)
        params = refused.value.params
        assert (refused.value.code, params["reason"], params["field"]) == ("campaign_setting", reason, field)
    assert params["detail"] == "quiet hours start and end at the same time"
    assert WinbackConfig.model_validate(campaign.config) == WinbackConfig(audience=Audience.ACTIVE)
    assert template_fields("Hi {name}, {coupon} until {expires}") == {"name", "coupon", "expires"}
    assert fill("<b>{name}</b> {{x}} {coupon}", name="<Ann>", product="", coupon="A&B", expires="") == \
        "&lt;b&gt;&lt;Ann&gt;&lt;/b&gt; {x} <code>A&amp;B</code>"


async def test_outcome_counts_both_arms_alike_and_shows_the_lift_once_the_window_closed(session, fresh):
    shop = await make_shop(session, now=LONG_AGO)
    product = await make_product(session, shop, now=LONG_AGO, price=1000)
    await seed(session, shop.id, range(FIRST, FIRST + 200))
    campaign = await winback(session, shop, holdout_percent=50, window_days=14)
    run = await campaigns.start_run(session, campaign=campaign, community=shop.community, now=NOW, runner="w")
    rows = await sends(fresh, run.id)
    treated = [r.user_id for r in rows if r.arm == Arm.TREATMENT]
    held = [r.user_id for r in rows if r.arm == Arm.HOLDOUT]
    assert len(treated) >= 20 and len(held) >= 20
    claimed = await campaigns.claim(session, run=run, community=shop.community, limit=500, now=NOW)
    await campaigns.record(session, [Result(o.send_id, SendStatus.SENT, NOW) for o in claimed])
    code_of = {o.user_id: o.coupon_code for o in claimed}

    # Returns: 12 messaged members order within the window (5 with their coupon), 3 held-out ones;
    # an order before the run, one after the window and a cancelled one do not count.
    for uid in treated[:12]:
        await buy(session, shop, user_id=uid, product=product, now=NOW + timedelta(days=3),
                  coupon_code=code_of[uid] if uid in treated[:5] else None)
    for uid in held[:3]:
        await buy(session, shop, user_id=uid, product=product, now=NOW + timedelta(days=13, hours=23))
    await buy(session, shop, user_id=held[3], product=product, now=NOW - timedelta(hours=1))
    await buy(session, shop, user_id=held[4], product=product, now=NOW + timedelta(days=14, minutes=1))
    cancelled = await buy(session, shop, user_id=treated[12], product=product, now=NOW + timedelta(days=1))
    await session.execute(update(type(cancelled.order)).where(type(cancelled.order).id == cancelled.order.id)
                          .values(status="cancelled"))
    await session.commit()

    early = await campaigns.outcome(session, campaign=campaign, now=NOW + timedelta(days=5))
    assert (early.lift, early.reason) == (None, "window")
    assert (early.treatment.members, early.treatment.returned, early.holdout.returned) == (len(treated), 12, 3)

    done = await campaigns.outcome(session, campaign=campaign, now=NOW + timedelta(days=15))
    assert (done.treatment.returned, done.holdout.returned, done.sent, done.redeemed) == (12, 3, len(treated), 5)
    assert done.treatment.revenue == 7 * 1000 + 5 * 850 and done.holdout.revenue == 3 * 1000
    assert done.lift == lift.lift(12, len(treated), 3, len(held))
    assert done.window_ends == NOW + timedelta(days=14)
    assert await campaigns.outcome(session, campaign=campaign, now=NOW + timedelta(days=15), run_id=run.id) == done
    # The stats' engagement screen shows the lift once it is in, not before.
    assert (await stats.engagement(session, community=shop.community, now=NOW + timedelta(days=5))).winback is None
    shown = (await stats.engagement(session, community=shop.community, now=NOW + timedelta(days=15))).winback
    assert shown == stats.WinbackLift(len(treated), 12, len(held), 3) and shown.lift == done.lift.absolute


@pytest.mark.parametrize(("counts", "interval"), [
    # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10.
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
])
def test_the_interval_matches_newcombes_published_values(counts, interval):
    found = lift.newcombe(*counts)
    assert (round(found.low, 4), round(found.high, 4)) == interval


def test_wilson_and_relative_lift():
    assert (round(lift.wilson(81, 263).low, 4), round(lift.wilson(81, 263).high, 4)) == (0.2553, 0.3662)
    measured = lift.lift(30, 100, 20, 100)
    assert (measured.absolute, measured.relative) == (pytest.approx(0.1), pytest.approx(0.5))
    assert lift.lift(3, 50, 0, 50).relative is None
