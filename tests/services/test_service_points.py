"""bot.services.points on a real database: the ledger's idempotency and the cached balance, manual
adjustments, the rewards catalogue, redeeming (concurrent redeems, a deleted or changed reward),
purchase points credited and reversed through the order paths, and expiry oldest-first."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from checkin_builders import held, join, local, make_group
from shop_builders import LEADER, buy, make_product, make_shop, make_users
from sqlmodel import select

from bot.services import coupons, orders, points
from bot.services.checkin_settings import CheckinSettings
from bot.services.errors import DomainError
from bot.services.points import RewardDraft
from models import Community, Coupon, CouponKind, OrderStatus, PaymentMethod, PointsEntry, PointsReason, PointsReward

SH = "Asia/Shanghai"
A, B = 201, 202


async def give(session, community_id, uid, amount, reference, now):
    return await points.credit(session, community_id=community_id, user_id=uid, amount=amount,
                               reason=PointsReason.INVITE, reference=reference, now=now)


async def code_of(coro) -> str:
    try:
        await coro
    except DomainError as err:
        return err.code
    return "ok"


# ----- the ledger ---------------------------------------------------------------------------------------

async def test_entries_are_idempotent_and_the_balance_follows_the_ledger(session, fresh, t0):
    g = await make_group(session, now=t0)
    await join(session, g, A, now=t0)
    assert await give(session, g.id, A, 100, "invite:7", t0) is True
    assert await give(session, g.id, A, 100, "invite:7", t0) is False
    assert await points.debit(session, community_id=g.id, user_id=A, amount=30, reason=PointsReason.MAKEUP,
                              reference="2026-01-02", now=t0) is True
    assert await points.debit(session, community_id=g.id, user_id=A, amount=30, reason=PointsReason.MAKEUP,
                              reference="2026-01-02", now=t0) is False
    mine = await held(fresh, g.id, A)
    assert mine.entries == [("invite", "invite:7", 100), ("makeup", "2026-01-02", -30)]
    assert mine.account.balance == mine.ledger_total == 70
    assert await points.balance(session, community_id=g.id, user_id=A) == 70
    assert await points.ledger_total(session, community_id=g.id, user_id=A) == 70
    assert [e.delta for e in await points.recent(session, community_id=g.id, user_id=A)] == [-30, 100]


async def test_concurrent_credits_of_one_event_write_once(session, fresh, t0):
    g = await make_group(session, now=t0)
    await join(session, g, A, now=t0)

    async def attempt() -> bool:
        async with fresh() as s:
            return await give(s, g.id, A, 50, "invite:9", t0)

    assert sorted(await asyncio.gather(*(attempt() for _ in range(5)))) == [False] * 4 + [True]
    mine = await held(fresh, g.id, A)
    assert mine.account.balance == mine.ledger_total == 50 and len(mine.entries) == 1


async def test_a_debit_never_goes_below_zero(session, fresh, t0):
    g = await make_group(session, now=t0)
    await join(session, g, A, now=t0)
    await give(session, g.id, A, 10, "invite:1", t0)
    with pytest.raises(DomainError) as exc:
        await points.debit(session, community_id=g.id, user_id=A, amount=11, reason=PointsReason.MAKEUP,
                           reference="2026-01-02", now=t0)
    assert (exc.value.code, exc.value.params) == ("points_insufficient", {"balance": 10, "needed": 11})
    mine = await held(fresh, g.id, A)
    assert mine.account.balance == mine.ledger_total == 10 and len(mine.entries) == 1


# ----- manual adjustments -------------------------------------------------------------------------------

async def test_leader_adjustment_is_audited_and_never_below_zero(session, fresh, t0, audit_rows):
    g = await make_group(session, now=t0)
    await join(session, g, A, now=t0)
    done = await points.adjust(session, community_id=g.id, user_id=A, delta=40, note="  prize  for the quiz ",
                               actor_id=LEADER, now=t0, key="msg:55")
    assert (done.created, done.balance) == (True, 40)
    again = await points.adjust(session, community_id=g.id, user_id=A, delta=40, note="prize for the quiz",
                                actor_id=LEADER, now=t0, key="msg:55")
    assert (again.created, again.balance) == (False, 40)
    [entry] = await audit_rows("points.adjust")
    assert (entry.actor_id, entry.details) == (LEADER, {"user_id": A, "delta": 40, "note": "prize for the quiz",
                                                        "balance": 40})
    async with fresh() as s:
        row = (await s.exec(select(PointsEntry))).one()
    assert (row.reason, row.delta, row.note, row.created_by, row.reference) == (
        "adjust", 40, "prize for the quiz", LEADER, "adjust:msg:55")

    cases = [
        ({"delta": -41, "note": "oops"}, ("points_adjust_below_zero", {"balance": 40})),
        ({"delta": 0, "note": "x"}, ("points_adjust_zero", {})),
        ({"delta": 5, "note": "   "}, ("points_note_required", {})),
        ({"delta": 5, "note": "x" * 201}, ("points_note_too_long", {"max": 200})),
        ({"delta": 10**7, "note": "x"}, ("points_adjust_too_large", {"max": 1_000_000})),
        ({"delta": 5, "note": "x", "user_id": B}, ("points_member_unknown", {})),
    ]
    for change, expected in cases:
        kwargs = {"community_id": g.id, "user_id": A, "actor_id": LEADER, "now": t0} | change
        with pytest.raises(DomainError) as exc:
            await points.adjust(session, **kwargs)
        assert (exc.value.code, exc.value.params) == expected
    taken = await points.adjust(session, community_id=g.id, user_id=A, delta=-40, note="correction", actor_id=LEADER,
                                now=t0)
    assert taken.balance == 0
    mine = await held(fresh, g.id, A)
    assert mine.account.balance == mine.ledger_total == 0 and len(mine.entries) == 2


# ----- the rewards catalogue and redeeming ----------------------------------------------------------------

def draft(**kw) -> RewardDraft:
    return RewardDraft(**({"title": "5.00 off", "cost": 500, "kind": CouponKind.FIXED, "value": 500,
                           "min_spend": 2000, "valid_days": 30} | kw))


async def test_rewards_catalogue(session, fresh, t0, audit_rows):
    g = await make_group(session, now=t0)
    cheap = await points.add_reward(session, community_id=g.id, actor_id=LEADER, draft=draft(cost=100, title=" Tea "),
                                    now=t0)
    dear = await points.add_reward(session, community_id=g.id, actor_id=LEADER, draft=draft(), now=t0)
    assert cheap.title == "Tea"
    assert [r.id for r in await points.rewards(session, community_id=g.id)] == [cheap.id, dear.id]
    await points.update_reward(session, community_id=g.id, actor_id=LEADER, reward_id=dear.id,
                               draft=draft(cost=50, kind=CouponKind.PERCENT, value=10, cap=300), now=t0)
    await points.delete_reward(session, community_id=g.id, actor_id=LEADER, reward_id=cheap.id, now=t0)
    async with fresh() as s:
        listed = [(r.id, r.cost, r.kind, r.value, r.cap) for r in await points.rewards(s, community_id=g.id)]
        assert (await s.get(PointsReward, cheap.id)).deleted_at == t0
    assert listed == [(dear.id, 50, "percent", 10, 300)]
    assert [a.action for a in await audit_rows()][-4:] == [
        "points.reward_add", "points.reward_add", "points.reward_update", "points.reward_delete"]
    for bad, code in ((draft(title=" "), "points_reward_title_empty"), (draft(title="x" * 65), "points_reward_title_too_long"),
                      (draft(cost=0), "points_reward_cost_range"), (draft(kind=CouponKind.PERCENT, value=101),
                                                                     "coupon_percent_range"),
                      (draft(value=0), "coupon_value_zero"), (draft(valid_days=0), "points_reward_valid_days"),
                      (draft(min_spend=-1), "points_reward_min_spend")):
        assert await code_of(points.add_reward(session, community_id=g.id, actor_id=LEADER, draft=bad, now=t0)) == code


async def test_redeem_issues_an_owner_bound_coupon_and_takes_the_points(session, fresh, t0):
    g = await make_group(session, now=t0, tz=SH)
    await join(session, g, A, now=t0)
    await give(session, g.id, A, 700, "invite:1", t0)
    reward = await points.add_reward(session, community_id=g.id, actor_id=LEADER, draft=draft(), now=t0)
    now = local(SH, 2026, 4, 1, 23, 30, 0)
    done = await points.redeem(session, community=g, user_id=A, reward_id=reward.id, now=now, cost_seen=500)
    assert (done.cost, done.balance) == (500, 200)
    async with fresh() as s:
        coupon = await s.get(Coupon, done.coupon.id)
        entry = (await s.exec(select(PointsEntry).where(PointsEntry.reason == "redeem"))).one()
    assert (coupon.owner_id, coupon.kind, coupon.value, coupon.min_spend, coupon.source, coupon.single_use) == (
        A, "fixed", 500, 2000, "points", True)
    # Valid through the end of the community-local day 30 days on.
    assert coupon.expires_at == local(SH, 2026, 5, 2, 0, 0, 0) - timedelta(microseconds=1)
    assert (entry.delta, entry.coupon_id, entry.reference) == (-500, coupon.id, f"coupon:{coupon.id}")
    mine = await held(fresh, g.id, A)
    assert mine.account.balance == mine.ledger_total == 200

    with pytest.raises(DomainError) as exc:
        await points.redeem(session, community=g, user_id=A, reward_id=reward.id, now=now)
    assert (exc.value.code, exc.value.params) == ("points_insufficient", {"balance": 200, "needed": 500})


async def test_concurrent_redeems_make_one_coupon(session, fresh, t0, count):
    g = await make_group(session, now=t0)
    await join(session, g, A, now=t0)
    await give(session, g.id, A, 700, "invite:1", t0)
    reward = await points.add_reward(session, community_id=g.id, actor_id=LEADER, draft=draft(), now=t0)

    async def tap() -> str:
        async with fresh() as s:
            community = await s.get(Community, g.id)
            return await code_of(points.redeem(s, community=community, user_id=A, reward_id=reward.id, now=t0))

    assert sorted(await asyncio.gather(*(tap() for _ in range(4)))) == ["ok"] + ["points_insufficient"] * 3
    assert await count(Coupon) == 1
    mine = await held(fresh, g.id, A)
    assert mine.account.balance == mine.ledger_total == 200
    assert [r for r, *_ in mine.entries] == ["invite", "redeem"]


async def test_a_drawn_code_already_taken_is_drawn_again(session, fresh, t0, monkeypatch):
    g = await make_group(session, now=t0)
    await join(session, g, A, now=t0)
    await give(session, g.id, A, 1000, "invite:1", t0)
    reward = await points.add_reward(session, community_id=g.id, actor_id=LEADER, draft=draft(), now=t0)
    draws = iter(["SAMECODE", "SAMECODE", "OTHERONE"])
    monkeypatch.setattr(coupons, "new_code", lambda prefix="": next(draws))
    first = await points.redeem(session, community=g, user_id=A, reward_id=reward.id, now=t0)
    second = await points.redeem(session, community=g, user_id=A, reward_id=reward.id, now=t0)
    assert (first.coupon.code, second.coupon.code, second.balance) == ("SAMECODE", "OTHERONE", 0)
    mine = await held(fresh, g.id, A)
    assert mine.account.balance == mine.ledger_total == 0


async def test_redeeming_a_deleted_or_changed_reward(session, fresh, t0, count):
    g = await make_group(session, now=t0)
    other = await make_group(session, now=t0, chat_id=-501)
    await join(session, g, A, now=t0)
    await give(session, g.id, A, 1000, "invite:1", t0)
    reward = await points.add_reward(session, community_id=g.id, actor_id=LEADER, draft=draft(), now=t0)
    foreign = await points.add_reward(session, community_id=other.id, actor_id=LEADER, draft=draft(), now=t0)

    # The member saw the reward; the leader deletes it from another session before the press.
    async with fresh() as s:
        await points.delete_reward(s, community_id=g.id, actor_id=LEADER, reward_id=reward.id, now=t0)
    with pytest.raises(DomainError) as exc:
        await points.redeem(session, community=g, user_id=A, reward_id=reward.id, now=t0)
    assert (exc.value.code, exc.value.params) == ("points_reward_deleted", {"title": "5.00 off"})
    assert await code_of(points.redeem(session, community=g, user_id=A, reward_id=foreign.id, now=t0)) \
        == "points_reward_unknown"
    assert await code_of(points.redeem(session, community=g, user_id=A, reward_id=2**40, now=t0)) \
        == "points_reward_unknown"

    changed = await points.add_reward(session, community_id=g.id, actor_id=LEADER, draft=draft(), now=t0)
    await points.update_reward(session, community_id=g.id, actor_id=LEADER, reward_id=changed.id,
                               draft=draft(cost=800), now=t0)
    with pytest.raises(DomainError) as exc:
        await points.redeem(session, community=g, user_id=A, reward_id=changed.id, now=t0, cost_seen=500)
    assert (exc.value.code, exc.value.params) == ("points_reward_changed", {"cost": 800})
    assert await count(Coupon) == 0
    mine = await held(fresh, g.id, A)
    assert mine.account.balance == mine.ledger_total == 1000


# ----- purchase points ------------------------------------------------------------------------------------

@pytest.fixture
async def shop(session, t0):
    shop = await make_shop(session, now=t0)
    community = shop.community
    community.settings = {**community.settings,
                          "checkin": CheckinSettings(purchase_points_per_unit=2).model_dump(mode="json")}
    await session.commit()
    await make_users(session, [A, B], now=t0)
    await join(session, community, A, B, now=t0)
    return shop


async def test_purchase_points_credited_once_and_reversed_once(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, price=1234)  # 12.34 USD → 24 points
    order = (await buy(session, shop, user_id=A, product=product, now=t0)).order
    assert (await held(fresh, shop.id, A)).entries == []  # not paid yet
    assert await orders.leader_mark(session, order=order, to=OrderStatus.PAID, actor_id=LEADER, now=t0)
    assert (await held(fresh, shop.id, A)).entries == [("purchase", f"order:{order.id}", 24)]
    await orders.cancel(session, order=order, reason="leader", actor_id=LEADER, now=t0)
    assert order.status == OrderStatus.REFUND_DUE
    assert await orders.mark_refunded(session, order=order, actor_id=LEADER, now=t0)
    mine = await held(fresh, shop.id, A)
    assert mine.entries == [("purchase", f"order:{order.id}", 24), ("purchase_reversal", f"order:{order.id}", -24)]
    assert mine.account.balance == mine.ledger_total == 0
    # Called again (a retried job, say), nothing more is written.
    assert await points.reverse_purchase(session, order=order, now=t0) == 0
    assert await points.credit_purchase(session, order=order, now=t0) == 0
    await session.commit()
    assert len((await held(fresh, shop.id, A)).entries) == 2


async def test_picked_up_and_paid_online_orders_earn_once(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, price=1000)
    pickup = (await buy(session, shop, user_id=A, product=product, now=t0)).order
    await orders.leader_mark(session, order=pickup, to=OrderStatus.FULFILLED, actor_id=LEADER, now=t0)
    assert (await held(fresh, shop.id, A)).entries == []  # handed over but not paid yet
    await orders.leader_mark(session, order=pickup, to=OrderStatus.PICKED_UP, actor_id=LEADER, now=t0)
    online = (await buy(session, shop, user_id=A, product=product, now=t0, method=PaymentMethod.PROVIDER)).order
    for _ in range(2):  # the payment delivered twice
        await orders.record_payment(session, order_id=online.id, user_id=A, currency="USD", amount=online.total,
                                    telegram_charge_id="charge-1", provider_charge_id=None, now=t0)
    await orders.leader_mark(session, order=online, to=OrderStatus.FULFILLED, actor_id=LEADER, now=t0)
    mine = await held(fresh, shop.id, A)
    assert mine.entries == [("purchase", f"order:{pickup.id}", 20), ("purchase", f"order:{online.id}", 20)]
    assert mine.account.balance == mine.ledger_total == 40
    # An order cancelled before it was paid earned nothing and reverses nothing.
    unpaid = (await buy(session, shop, user_id=B, product=product, now=t0)).order
    await orders.cancel(session, order=unpaid, reason="member", actor_id=B, now=t0, by_member=True)
    assert (await held(fresh, shop.id, B)).entries == []


async def test_a_reversal_takes_only_what_is_left(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, price=5000)  # 100 points
    order = (await buy(session, shop, user_id=A, product=product, now=t0)).order
    await orders.leader_mark(session, order=order, to=OrderStatus.PAID, actor_id=LEADER, now=t0)
    await points.debit(session, community_id=shop.id, user_id=A, amount=70, reason=PointsReason.REDEEM,
                       reference="coupon:x", now=t0)
    await orders.cancel(session, order=order, reason="leader", actor_id=LEADER, now=t0)
    mine = await held(fresh, shop.id, A)
    assert mine.entries[-1] == ("purchase_reversal", f"order:{order.id}", -30)
    assert mine.account.balance == mine.ledger_total == 0
    async with fresh() as s:
        note = (await s.exec(select(PointsEntry.note).where(PointsEntry.reason == "purchase_reversal"))).one()
    assert note == "100 owed, 30 taken: the rest was spent"


# ----- expiry ---------------------------------------------------------------------------------------------

def test_months_before():
    assert points.months_before(date(2026, 3, 31), 1) == date(2026, 2, 28)
    assert points.months_before(date(2026, 1, 15), 1) == date(2025, 12, 15)
    assert points.months_before(date(2026, 5, 31), 14) == date(2025, 3, 31)


async def test_expiry_takes_the_oldest_points_first(session, fresh, t0):
    g = await make_group(session, now=t0, tz=SH, points_expiry_months=1)
    await join(session, g, A, B, now=t0)
    await give(session, g.id, A, 100, "invite:1", local(SH, 2026, 1, 10, 12, 0, 0))
    await give(session, g.id, A, 50, "invite:2", local(SH, 2026, 2, 20, 12, 0, 0))
    await points.debit(session, community_id=g.id, user_id=A, amount=30, reason=PointsReason.REDEEM,
                       reference="coupon:1", now=local(SH, 2026, 2, 25, 12, 0, 0))
    await give(session, g.id, B, 40, "invite:3", local(SH, 2026, 2, 15, 0, 0, 0))  # earned on the cutoff day

    # 15 March, Shanghai: what was earned before 15 February expires, less what was spent since.
    march_15 = local(SH, 2026, 3, 15, 3, 0, 0)
    assert await points.expire(session, community=g, as_of=march_15) == [points.Expired(A, 70)]
    assert await points.expire(session, community=g, as_of=march_15 + timedelta(hours=1)) == []
    mine = await held(fresh, g.id, A)
    assert mine.entries[-1] == ("expiry", "2026-03-15", -70)
    assert mine.account.balance == mine.ledger_total == 50
    assert (await held(fresh, g.id, B)).account.balance == 40

    # Ten days later February's points are a month old too.
    expired = await points.expire(session, community=g, as_of=local(SH, 2026, 3, 25, 3, 0, 0))
    assert expired == [points.Expired(A, 50), points.Expired(B, 40)]
    for uid in (A, B):
        mine = await held(fresh, g.id, uid)
        assert mine.account.balance == mine.ledger_total == 0


async def test_no_expiry_unless_set(session, t0):
    g = await make_group(session, now=t0)
    await join(session, g, A, now=t0)
    await give(session, g.id, A, 100, "invite:1", t0)
    assert await points.expire(session, community=g, as_of=t0 + timedelta(days=3650)) == []
