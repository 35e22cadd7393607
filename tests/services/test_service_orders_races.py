"""Orders under concurrency, each actor in its own session as concurrent updates are, all released
at one moment. Run on SQLite and on PostgreSQL (TEST_DATABASE_URL): stock never goes below zero,
no order is lost or doubled, and SQLite writers wait for the lock instead of failing."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from shop_builders import LEADER, Shop, buy, buy_in, make_product, make_shop, make_users, order_rows, product_row
from sqlmodel import func, select

from bot.services import coupons, orders
from bot.services.coupons import CouponSpec
from bot.services.errors import DomainError
from models import AuditLog, Coupon, CouponKind, Order, OrderStatus, PaymentMethod

BUYERS = range(1000, 1060)


@pytest.fixture
async def shop(session, t0) -> Shop:
    shop = await make_shop(session, now=t0, stars_enabled=True, stars_per_unit=7, unpaid_minutes=30)
    await make_users(session, BUYERS, now=t0)
    return shop


async def together(*calls):
    """Start every call, then release them all at once; each returns its result or its refusal code."""
    gate = asyncio.Event()

    async def run(call):
        await gate.wait()
        try:
            return await call()
        except DomainError as err:
            return err.code

    tasks = [asyncio.create_task(run(call)) for call in calls]
    await asyncio.sleep(0)
    gate.set()
    return await asyncio.gather(*tasks)


async def test_sixty_buyers_for_twenty_units(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, stock=20)

    results = await together(*(lambda uid=uid: buy_in(fresh, shop, user_id=uid, product=product, now=t0) for uid in BUYERS))

    placed = [r for r in results if isinstance(r, orders.Placed)]
    assert len(placed) == 20 and all(p.created for p in placed)
    assert Counter(r for r in results if isinstance(r, str)) == {"product_sold_out": 40}
    stored = await product_row(fresh, product.id)
    assert (stored.stock, stored.sold) == (0, 20)
    rows = await order_rows(fresh)
    assert sum(o.quantity for o in rows) == 20
    assert sorted(o.id for o in rows) == sorted(p.order.id for p in placed)
    assert len({o.user_id for o in rows}) == 20


async def test_mixed_quantities_never_oversell(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, stock=20)
    wants = {uid: 1 + uid % 3 for uid in BUYERS[:40]}

    results = await together(*(lambda uid=uid: buy_in(fresh, shop, user_id=uid, product=product, quantity=wants[uid], now=t0)
                               for uid in wants))

    refusals = {r for r in results if isinstance(r, str)}
    assert refusals <= {"product_sold_out", "quantity_over_stock"}
    stored = await product_row(fresh, product.id)
    rows = await order_rows(fresh)
    assert stored.stock >= 0
    assert sum(o.quantity for o in rows) == stored.sold == 20 - stored.stock
    assert all(o.quantity == wants[o.user_id] for o in rows)
    # Whatever is left is less than anyone who was refused asked for.
    refused = [uid for uid, r in zip(wants, results) if isinstance(r, str)]
    assert all(wants[uid] > stored.stock for uid in refused)


async def test_per_member_limit_holds_under_concurrent_checkouts(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, stock=10, limit=2)
    member = BUYERS[0]

    results = await together(*(lambda: buy_in(fresh, shop, user_id=member, product=product, now=t0) for _ in range(5)))

    assert len([r for r in results if isinstance(r, orders.Placed)]) == 2
    assert Counter(r for r in results if isinstance(r, str)) == {"quantity_over_limit": 3}
    assert (await product_row(fresh, product.id)).stock == 8
    assert sum(o.quantity for o in await order_rows(fresh, user_id=member)) == 2


@pytest.mark.parametrize("stock", [5, 1])
async def test_double_tap_makes_one_order(session, fresh, shop, t0, stock):
    """The same Confirm pressed five times at once (or redelivered): one order, reported as created
    once; on the last unit the later taps find the order, not "sold out"."""
    product = await make_product(session, shop, now=t0, stock=stock)
    member = BUYERS[0]

    results = await together(*(lambda: buy_in(fresh, shop, user_id=member, product=product, now=t0, key="same-tap")
                               for _ in range(5)))

    assert all(isinstance(r, orders.Placed) for r in results), results
    assert [r.created for r in results].count(True) == 1
    assert len({r.order.id for r in results}) == 1
    assert len(await order_rows(fresh)) == 1
    assert (await product_row(fresh, product.id)).stock == stock - 1


async def test_expiry_job_racing_payments(session, fresh, shop, t0):
    """Every order is overdue and its payment arrives while the expiry job runs. Each ends exactly
    one way: paid (stock kept), or cancelled by the job and then refund-due with the money recorded
    (stock returned). Nothing is both, nothing is lost."""
    product = await make_product(session, shop, now=t0, price=1000, stock=30)
    placed = [(await buy(session, shop, user_id=uid, product=product, quantity=2, now=t0, method=PaymentMethod.STARS)).order
              for uid in BUYERS[:12]]
    at = t0 + timedelta(minutes=31)

    async def expire():
        async with fresh() as s:
            return [o.id for o in await orders.expire_due(s, now=at)]

    def pay(order):
        async def call():
            async with fresh() as s:
                paid, newly = await orders.record_payment(s, order_id=order.id, user_id=order.user_id, currency="XTR",
                                                          amount=order.stars_total, telegram_charge_id=f"tg-{order.id}",
                                                          provider_charge_id=None, now=at)
                return paid.id, newly
        return call

    # The job starts in the middle of the payments, so some land before it and some after.
    results = await together(*(pay(o) for o in placed[:6]), expire, *(pay(o) for o in placed[6:]))

    expired = set(results[6])
    newly_paid = {oid for oid, newly in results[:6] + results[7:] if newly}
    rows = {o.id: o for o in await order_rows(fresh)}
    for order_id, row in rows.items():
        assert row.telegram_charge_id == f"tg-{order_id}" and row.paid_at == at  # the money is on record
        if order_id in newly_paid:
            assert (row.status, row.cancelled_at) == ("paid", None)
            assert order_id not in expired
        else:
            assert (row.status, row.cancelled_at, row.cancel_reason) == ("refund_due", at, "expired")
            assert order_id in expired
    held = sum(r.quantity for r in rows.values() if r.status == "paid")
    stored = await product_row(fresh, product.id)
    assert (stored.stock, stored.sold) == (30 - held, held)


async def test_one_payment_delivered_four_times_at_once(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, price=1000, stock=5)
    order = (await buy(session, shop, user_id=BUYERS[0], product=product, now=t0, method=PaymentMethod.STARS)).order

    async def deliver():
        async with fresh() as s:
            paid, newly = await orders.record_payment(s, order_id=order.id, user_id=order.user_id, currency="XTR",
                                                      amount=order.stars_total, telegram_charge_id="tg-1",
                                                      provider_charge_id=None, now=t0)
            return paid.status, newly

    results = await together(*(deliver for _ in range(4)))
    assert sorted(results) == [("paid", False)] * 3 + [("paid", True)]
    [row] = await order_rows(fresh)
    assert (row.status, row.telegram_charge_id) == ("paid", "tg-1")
    async with fresh() as s:
        actions = list(await s.exec(select(AuditLog.action).where(AuditLog.action.like("order.%"))))
    assert actions == ["order.paid"]


async def test_cancels_racing_return_stock_and_coupon_once(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, price=1000, stock=5)
    await coupons.issue(session, community_id=shop.id, spec=CouponSpec(kind=CouponKind.FIXED, value=100, code="ONE"),
                        actor_id=LEADER, now=t0)
    member = BUYERS[0]
    order_id = (await buy(session, shop, user_id=member, product=product, quantity=3, now=t0, coupon_code="ONE")).order.id

    def cancel(actor_id, by_member):
        async def call():
            async with fresh() as s:
                order = await s.get(Order, order_id)
                return (await orders.cancel(s, order=order, reason="race", actor_id=actor_id, now=t0, by_member=by_member)).status
        return call

    results = await together(cancel(member, True), cancel(LEADER, False), cancel(LEADER, False), cancel(member, True))
    assert Counter(results) == {"cancelled": 1, "order_not_cancellable": 3}
    stored = await product_row(fresh, product.id)
    assert (stored.stock, stored.sold) == (5, 0)
    async with fresh() as s:
        assert (await s.exec(select(Coupon.uses))).one() == 0


async def test_fulfil_racing_member_cancel(session, fresh, shop, t0):
    """A leader marks an order fulfilled while its buyer cancels it: one of the two wins, never both."""
    product = await make_product(session, shop, now=t0, stock=10)
    ids = [(await buy(session, shop, user_id=uid, product=product, now=t0)).order.id for uid in BUYERS[:8]]

    def fulfil(order_id):
        async def call():
            async with fresh() as s:
                return await orders.leader_mark(s, order=await s.get(Order, order_id), to=OrderStatus.FULFILLED,
                                                actor_id=LEADER, now=t0)
        return call

    def cancel(order_id):
        async def call():
            async with fresh() as s:
                order = await s.get(Order, order_id)
                return (await orders.cancel(s, order=order, reason="member", actor_id=order.user_id, now=t0,
                                            by_member=True)).status
        return call

    results = await together(*(f(i) for i in ids for f in (fulfil, cancel)))
    rows = {o.id: o for o in await order_rows(fresh)}
    for n, order_id in enumerate(ids):
        marked, cancelled = results[2 * n], results[2 * n + 1]
        if rows[order_id].status == "fulfilled":
            assert (marked, cancelled) == (True, "order_not_cancellable")
        else:
            assert (rows[order_id].status, marked, cancelled) == ("cancelled", False, "cancelled")
    fulfilled = sum(1 for o in rows.values() if o.status == "fulfilled")
    assert (await product_row(fresh, product.id)).stock == 10 - fulfilled
    async with fresh() as s:
        assert (await s.exec(select(func.count()).select_from(Order))).one() == 8
