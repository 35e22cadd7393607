"""Group-buy seats and closes on a real database: teams fill exactly, deadlines close once,
thresholds settle at their final tier."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from groupbuy_builders import join, join_in, team_campaign, threshold_campaign
from shop_builders import make_product, make_shop, make_users, order_rows, product_row
from sqlmodel import select

from bot.services import groupbuy_close, orders
from bot.services.errors import DomainError
from models import Coupon, GroupBuy, GroupBuyStatus, GroupBuyTeam, OrderStatus, PaymentMethod, TeamStatus


async def test_team_fills_and_confirms_everyone(session, fresh, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, price=1000, stock=10)
    await make_users(session, [11, 12, 13], now=t0)
    campaign = await team_campaign(session, shop, product, now=t0, size=3)
    opened = await join(session, shop, campaign, user_id=11, now=t0)
    assert opened.order.status == OrderStatus.AWAITING_GROUP and opened.order.unit_price == 800
    team_id = opened.team.id
    second = await join(session, shop, campaign, user_id=12, now=t0, team_id=team_id, invited_by=11)
    assert not second.completed and second.order.invited_by == 11
    last = await join(session, shop, campaign, user_id=13, now=t0, team_id=team_id)
    assert last.completed
    rows = await order_rows(fresh, team_id=team_id)
    assert [o.status for o in rows] == [OrderStatus.CONFIRMED] * 3
    assert (await product_row(fresh, product.id)).stock == 7
    with pytest.raises(DomainError) as err:
        await join(session, shop, campaign, user_id=14, now=t0, team_id=team_id, unit_price=800)
    assert err.value.code == "team_full"


async def test_member_cannot_join_own_team_twice(session, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0)
    await make_users(session, [11, 12], now=t0)
    campaign = await team_campaign(session, shop, product, now=t0, size=3, join_limit=2)
    opened = await join(session, shop, campaign, user_id=11, now=t0)
    await join(session, shop, campaign, user_id=12, now=t0, team_id=opened.team.id)
    with pytest.raises(DomainError) as err:
        await join(session, shop, campaign, user_id=12, now=t0, team_id=opened.team.id, unit_price=800)
    assert err.value.code == "team_already_in"


@pytest.mark.parametrize("racers", [6])
async def test_last_seat_race_one_winner(session, engine, fresh, t0, racers):
    from bot.core.db import session_factory
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, stock=100)
    uids = list(range(20, 20 + racers + 1))
    await make_users(session, uids, now=t0)
    campaign = await team_campaign(session, shop, product, now=t0, size=2)
    opened = await join(session, shop, campaign, user_id=uids[0], now=t0)
    factory = session_factory(engine)
    results = await asyncio.gather(*(join_in(factory, shop, campaign.id, user_id=u, now=t0, team_id=opened.team.id,
                                             unit_price=800) for u in uids[1:]), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, DomainError)]
    assert len(winners) == 1 and len(losers) == racers - 1
    assert {e.code for e in losers} == {"team_full"}
    async with fresh() as s:
        team = await s.get(GroupBuyTeam, opened.team.id)
        assert (team.seats, team.status) == (2, TeamStatus.SUCCEEDED)
    assert len(await order_rows(fresh, team_id=opened.team.id)) == 2


async def test_team_fails_at_deadline_once(session, fresh, t0):
    shop = await make_shop(session, now=t0, stars_enabled=True, stars_per_unit=50)
    product = await make_product(session, shop, now=t0, stock=10)
    await make_users(session, [11, 12], now=t0)
    campaign = await team_campaign(session, shop, product, now=t0, size=3, minutes=30)
    opened = await join(session, shop, campaign, user_id=11, now=t0)
    paid = await join(session, shop, campaign, user_id=12, now=t0, team_id=opened.team.id, method=PaymentMethod.STARS)
    assert paid.order.status == OrderStatus.PENDING_PAYMENT
    order, _ = await orders.record_payment(session, order_id=paid.order.id, user_id=12, currency="XTR",
                                           amount=paid.order.stars_total, telegram_charge_id="ch1",
                                           provider_charge_id=None, now=t0)
    assert order.status == OrderStatus.AWAITING_GROUP
    early = await groupbuy_close.sweep(session, now=t0 + timedelta(minutes=29))
    assert early.empty
    late = t0 + timedelta(minutes=31)
    first = await groupbuy_close.sweep(session, now=late)
    second = await groupbuy_close.sweep(session, now=late)
    assert first.teams_failed == [opened.team.id] and second.empty
    rows = await order_rows(fresh, team_id=opened.team.id)
    assert [o.status for o in rows] == [OrderStatus.CANCELLED, OrderStatus.REFUND_DUE]
    assert (await product_row(fresh, product.id)).stock == 10
    assert await groupbuy_close.claim_team(session, team_id=opened.team.id)
    assert not await groupbuy_close.claim_team(session, team_id=opened.team.id)


async def test_opener_cancels_next_member_takes_over(session, fresh, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0)
    await make_users(session, [11, 12, 13], now=t0)
    campaign = await team_campaign(session, shop, product, now=t0, size=3)
    opened = await join(session, shop, campaign, user_id=11, now=t0)
    await join(session, shop, campaign, user_id=12, now=t0 + timedelta(seconds=1), team_id=opened.team.id)
    await orders.cancel(session, order=opened.order, reason="member", actor_id=11, now=t0, by_member=True)
    async with fresh() as s:
        team = await s.get(GroupBuyTeam, opened.team.id)
        assert (team.opener_id, team.seats, team.status) == (12, 1, TeamStatus.OPEN)


async def test_threshold_reaches_second_tier_and_credits(session, fresh, t0):
    shop = await make_shop(session, now=t0, stars_enabled=True, stars_per_unit=50)
    product = await make_product(session, shop, now=t0, price=1200)
    await make_users(session, range(11, 16), now=t0)
    campaign = await threshold_campaign(session, shop, product, now=t0, price=1000, min_units=10,
                                        tiers=((20, 950), (30, 880)))
    for uid in range(11, 16):
        await join(session, shop, campaign, user_id=uid, now=t0, quantity=6)
    assert (await session.get(GroupBuy, campaign.id, populate_existing=True)).units == 30
    closed = await groupbuy_close.sweep(session, now=t0 + timedelta(hours=6))
    assert closed.thresholds_closed == [campaign.id]
    async with fresh() as s:
        c = await s.get(GroupBuy, campaign.id)
        assert (c.status, c.final_price) == (GroupBuyStatus.SUCCEEDED, 880)
    rows = await order_rows(fresh, group_buy_id=campaign.id)
    assert {(o.status, o.unit_price, o.total, o.credit) for o in rows} == {(OrderStatus.CONFIRMED, 880, 5280, 0)}


async def test_threshold_paid_above_final_price_gets_credit(session, fresh, t0):
    shop = await make_shop(session, now=t0, stars_enabled=True, stars_per_unit=50)
    product = await make_product(session, shop, now=t0, price=1200)
    await make_users(session, [11, 12], now=t0)
    campaign = await threshold_campaign(session, shop, product, now=t0, price=1000, min_units=2, tiers=((2, 900),))
    paid = await join(session, shop, campaign, user_id=11, now=t0, method=PaymentMethod.STARS)
    await orders.record_payment(session, order_id=paid.order.id, user_id=11, currency="XTR", amount=paid.order.stars_total,
                                telegram_charge_id="c1", provider_charge_id=None, now=t0)
    await join(session, shop, campaign, user_id=12, now=t0)
    await groupbuy_close.sweep(session, now=t0 + timedelta(hours=6))
    rows = await order_rows(fresh, group_buy_id=campaign.id)
    assert [(o.total, o.credit) for o in rows] == [(900, 100), (900, 0)]
    async with fresh() as s:
        credit = (await s.exec(select(Coupon).where(Coupon.owner_id == 11))).one()
        assert (credit.value, credit.source, credit.id) == (100, "groupbuy", rows[0].credit_coupon_id)


async def test_threshold_below_minimum_fails(session, fresh, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, price=1200, stock=50)
    await make_users(session, [11], now=t0)
    campaign = await threshold_campaign(session, shop, product, now=t0, min_units=10)
    await join(session, shop, campaign, user_id=11, now=t0, quantity=3)
    with pytest.raises(DomainError) as err:
        await join(session, shop, campaign, user_id=11, now=t0 + timedelta(hours=5), quantity=1, unit_price=1000)
    assert err.value.code == "groupbuy_closed"
    await groupbuy_close.sweep(session, now=t0 + timedelta(hours=5))
    rows = await order_rows(fresh, group_buy_id=campaign.id)
    assert [o.status for o in rows] == [OrderStatus.CANCELLED]
    assert (await product_row(fresh, product.id)).stock == 50
