"""bot.services.orders on a real database: quoting, placing, cancelling, expiring, paying, fulfilling,
searching. Concurrency lives in test_service_orders_races.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from shop_builders import LEADER, Shop, buy, make_product, make_shop, make_users, order_rows, product_row
from sqlalchemy import update
from sqlmodel import select

from bot.services import coupons, orders, products, settings
from bot.services.coupons import CouponSpec
from bot.services.errors import DomainError
from models import Coupon, CouponKind, Order, OrderStatus, PaymentMethod, PostStatus, ProductPost, ProductStatus

BUYER, OTHER = 100, 200
ONLINE = dict(stars_enabled=True, stars_per_unit=7)


@pytest.fixture
async def shop(session, t0) -> Shop:
    shop = await make_shop(session, now=t0, **ONLINE, delivery_enabled=True, unpaid_minutes=30, cancel_hours=24)
    await make_users(session, [BUYER, OTHER], now=t0)
    return shop


async def _refused(call, code: str, **params) -> DomainError:
    with pytest.raises(DomainError) as exc:
        await call
    assert exc.value.code == code
    for key, value in params.items():
        assert exc.value.params[key] == value
    return exc.value


# ----- small parsers ------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [("1", 1), (" 3 ", 3), ("999", 999)])
def test_parse_quantity(raw, expected):
    assert orders.parse_quantity(raw) == expected


@pytest.mark.parametrize("raw, code", [("0", "quantity_zero"), ("1000", "quantity_too_large"), ("-1", "quantity_negative"),
                                       ("two", "quantity_format"), ("1.5", "quantity_format"), ("", "quantity_format")])
def test_parse_quantity_refuses(raw, code):
    with pytest.raises(DomainError) as exc:
        orders.parse_quantity(raw)
    assert exc.value.code == code


@pytest.mark.parametrize("total, currency, rate, stars", [(1250, "USD", 7, 88), (1200, "USD", 7, 84), (1, "USD", 7, 1),
                                                          (500, "JPY", 1, 500), (0, "USD", 7, 1)])
def test_stars_round_up_for_the_leader(total, currency, rate, stars):
    assert orders.stars_for(total, currency, rate) == stars


# ----- quote ------------------------------------------------------------------------------------

async def test_quote_prices_with_coupon_and_writes_nothing(session, fresh, shop, t0, count):
    product = await make_product(session, shop, now=t0, price=1250, stock=10)
    await coupons.issue(session, community_id=shop.id, spec=CouponSpec(kind=CouponKind.PERCENT, value=10, code="TEN"),
                        actor_id=LEADER, now=t0)
    q = await orders.quote(session, community=shop.community, product_id=product.id, user_id=BUYER, quantity=2,
                           coupon_code=" ten ", now=t0)
    assert (q.quantity, q.unit_price, q.subtotal, q.discount, q.total, q.coupon.code) == (2, 1250, 2500, 250, 2250, "TEN")
    assert await count(Order) == 0
    assert (await product_row(fresh, product.id)).stock == 10


@pytest.mark.parametrize("setup, quantity, code, params", [
    ({"status": ProductStatus.PAUSED}, 1, "product_paused", {"number": 1}),
    ({"status": ProductStatus.ARCHIVED}, 1, "product_archived", {"number": 1}),
    ({"stock": 0}, 1, "product_sold_out", {"number": 1}),
    ({"stock": 3}, 4, "quantity_over_stock", {"available": 3}),
    ({}, 0, "quantity_zero", {}),
    ({}, 1000, "quantity_too_large", {"max": 999}),
])
async def test_quote_refusals(session, shop, t0, setup, quantity, code, params):
    product = await make_product(session, shop, now=t0, stock=setup.get("stock", 10))
    if "status" in setup:
        await products.set_status(session, community_id=shop.id, product_id=product.id, actor_id=LEADER,
                                  status=setup["status"], now=t0)
    await _refused(orders.quote(session, community=shop.community, product_id=product.id, user_id=BUYER,
                                quantity=quantity, coupon_code=None, now=t0), code, **params)


async def test_quote_counts_what_the_member_already_holds(session, shop, t0):
    product = await make_product(session, shop, now=t0, stock=10, limit=3)
    await buy(session, shop, user_id=BUYER, product=product, quantity=2, now=t0)
    await _refused(orders.quote(session, community=shop.community, product_id=product.id, user_id=BUYER, quantity=2,
                                coupon_code=None, now=t0), "quantity_over_limit", limit=3, left=1)
    # Someone else is not limited by BUYER's order.
    assert (await orders.quote(session, community=shop.community, product_id=product.id, user_id=OTHER, quantity=3,
                               coupon_code=None, now=t0)).total == 3000


async def test_quote_refuses_another_communitys_product(session, shop, t0):
    other = await make_shop(session, now=t0, chat_id=-999)
    foreign = await make_product(session, other, now=t0)
    await _refused(orders.quote(session, community=shop.community, product_id=foreign.id, user_id=BUYER, quantity=1,
                                coupon_code=None, now=t0), "product_unknown")


# ----- place ------------------------------------------------------------------------------------

async def test_place_reserves_stock_and_records_the_order(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, price=1250, stock=5)
    placed = await buy(session, shop, user_id=BUYER, product=product, quantity=2, now=t0, key="chk-1")

    assert placed.created is True
    [row] = await order_rows(fresh)
    assert (row.id, row.user_id, row.quantity, row.unit_price, row.discount, row.total, row.currency) == (
        placed.order.id, BUYER, 2, 1250, 0, 2500, "USD")
    assert (row.status, row.payment_method, row.pickup_point_id, row.checkout_key, row.expires_at) == (
        "pending_payment", "pickup", shop.point_id, "chk-1", None)  # pay at pickup: no deadline
    stored = await product_row(fresh, product.id)
    assert (stored.stock, stored.sold) == (3, 2)


async def test_same_checkout_twice_makes_one_order(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, stock=5)
    first = await buy(session, shop, user_id=BUYER, product=product, now=t0, key="tap")
    again = await buy(session, shop, user_id=BUYER, product=product, now=t0 + timedelta(seconds=1), key="tap")
    assert (first.created, again.created, again.order.id) == (True, False, first.order.id)
    assert len(await order_rows(fresh)) == 1
    assert (await product_row(fresh, product.id)).stock == 4


async def test_unlimited_stock_stays_unlimited(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, stock=None)
    await buy(session, shop, user_id=BUYER, product=product, quantity=999, now=t0)
    placed = await buy(session, shop, user_id=OTHER, product=product, quantity=5, now=t0)
    stored = await product_row(fresh, product.id)
    assert (stored.stock, stored.sold) == (None, 1004)
    await orders.cancel(session, order=placed.order, reason="leader", actor_id=LEADER, now=t0)
    stored = await product_row(fresh, product.id)
    assert (stored.stock, stored.sold) == (None, 999)


async def test_price_changed_since_the_summary(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, price=1000, stock=5)
    seen = product.price
    await products.edit(session, community_id=shop.id, product_id=product.id, actor_id=LEADER, now=t0, price=1200)
    await _refused(buy(session, shop, user_id=BUYER, product=product, unit_price=seen, now=t0), "price_changed", price=1200)
    assert await order_rows(fresh) == []
    assert (await product_row(fresh, product.id)).stock == 5
    assert (await buy(session, shop, user_id=BUYER, product=product, unit_price=1200, now=t0)).order.total == 1200


@pytest.mark.parametrize("setup, quantity, code", [
    ({"status": ProductStatus.PAUSED}, 1, "product_paused"),
    ({"status": ProductStatus.ARCHIVED}, 1, "product_archived"),
    ({"stock": 0}, 1, "product_sold_out"),
    ({"stock": 2}, 3, "quantity_over_stock"),
    ({"limit": 2}, 3, "quantity_over_limit"),
    ({}, 0, "quantity_zero"),
    ({}, 1000, "quantity_too_large"),
])
async def test_place_refusals_write_nothing(session, fresh, shop, t0, count, setup, quantity, code):
    product = await make_product(session, shop, now=t0, stock=setup.get("stock", 10), limit=setup.get("limit"))
    if "status" in setup:
        await products.set_status(session, community_id=shop.id, product_id=product.id, actor_id=LEADER,
                                  status=setup["status"], now=t0)
    await _refused(buy(session, shop, user_id=BUYER, product=product, quantity=quantity, now=t0), code)
    assert await count(Order) == 0
    stored = await product_row(fresh, product.id)
    assert (stored.stock, stored.sold) == (setup.get("stock", 10), 0)


async def test_refusal_leaves_the_handlers_objects_usable(session, shop, t0):
    """After a refused Confirm the handler still words the reply from the community and product it
    loaded in the same session (currency, number): those must not be expired by the refusal."""
    product = await make_product(session, shop, now=t0, stock=1, limit=1)
    await buy(session, shop, user_id=BUYER, product=product, now=t0)
    for quantity, code in ((1, "product_sold_out"), (1, "quantity_over_limit")):
        if code == "quantity_over_limit":
            await products.edit(session, community_id=shop.id, product_id=product.id, actor_id=LEADER, now=t0, stock=5)
        await _refused(buy(session, shop, user_id=BUYER, product=product, quantity=quantity, now=t0), code)
        assert (shop.community.currency, shop.community.title) == ("USD", "Shop -100")
        assert product.title == "Apples"


async def test_pickup_point_must_be_this_communitys_and_present(session, fresh, shop, t0):
    other = await make_shop(session, now=t0, chat_id=-999)
    product = await make_product(session, shop, now=t0, stock=5)
    await _refused(buy(session, shop, user_id=BUYER, product=product, now=t0, pickup_point_id=other.point_id), "pickup_unknown")
    await _refused(buy(session, shop, user_id=BUYER, product=product, now=t0, pickup_point_id=None), "pickup_required")
    await settings.remove_pickup_point(session, community_id=shop.id, actor_id=LEADER, point_id=shop.point_id, now=t0)
    await _refused(buy(session, shop, user_id=BUYER, product=product, now=t0), "pickup_unknown")
    assert await order_rows(fresh) == []
    assert (await product_row(fresh, product.id)).stock == 5


async def test_delivery(session, fresh, t0):
    closed = await make_shop(session, now=t0, chat_id=-1)
    await make_users(session, [BUYER], now=t0)
    product = await make_product(session, closed, now=t0, stock=5)
    await _refused(buy(session, closed, user_id=BUYER, product=product, now=t0, delivery_address="1 Main St"),
                   "delivery_disabled")

    shop = await make_shop(session, now=t0, chat_id=-2, delivery_enabled=True)
    product = await make_product(session, shop, now=t0, stock=5)
    await _refused(buy(session, shop, user_id=BUYER, product=product, now=t0, delivery_address="   "), "address_empty")
    await _refused(buy(session, shop, user_id=BUYER, product=product, now=t0, delivery_address="x" * 301),
                   "address_too_long", max=300)
    placed = await buy(session, shop, user_id=BUYER, product=product, now=t0, delivery_address="1 Main St, flat 2")
    [row] = await order_rows(fresh)
    assert (row.id, row.delivery_address, row.pickup_point_id) == (placed.order.id, "1 Main St, flat 2", None)


async def test_payment_methods_follow_the_shop_settings(session, fresh, t0):
    plain = await make_shop(session, now=t0, chat_id=-1, pay_at_pickup=False)
    await make_users(session, [BUYER], now=t0)
    product = await make_product(session, plain, now=t0, stock=5)
    await _refused(buy(session, plain, user_id=BUYER, product=product, now=t0), "payment_unavailable")
    await _refused(buy(session, plain, user_id=BUYER, product=product, now=t0, method=PaymentMethod.STARS),
                   "payment_unavailable")
    assert (await product_row(fresh, product.id)).stock == 5

    stars = await make_shop(session, now=t0, chat_id=-2, **ONLINE, unpaid_minutes=45)
    product = await make_product(session, stars, now=t0, price=1250, stock=5)
    placed = await buy(session, stars, user_id=BUYER, product=product, now=t0, method=PaymentMethod.STARS)
    assert (placed.order.stars_total, placed.order.total, placed.order.expires_at) == (88, 1250, t0 + timedelta(minutes=45))


async def test_a_coupon_is_taken_with_the_order(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, price=1000, stock=5)
    await coupons.issue(session, community_id=shop.id, actor_id=LEADER, now=t0,
                        spec=CouponSpec(kind=CouponKind.FIXED, value=300, code="OFF3"))
    placed = await buy(session, shop, user_id=BUYER, product=product, quantity=2, now=t0, coupon_code="off3")
    assert (placed.order.discount, placed.order.total) == (300, 1700)
    async with fresh() as s:
        coupon = (await s.exec(select(Coupon))).one()
    assert (coupon.uses, placed.order.coupon_id) == (1, coupon.id)
    # Single use: the next checkout with it is refused and takes no stock.
    await _refused(buy(session, shop, user_id=OTHER, product=product, now=t0, coupon_code="OFF3"), "coupon_used")
    assert (await product_row(fresh, product.id)).stock == 3


async def test_order_placed_marks_posted_cards_stale(session, fresh, shop, t0):
    from bot.services import posts

    product = await make_product(session, shop, now=t0, stock=5)
    post = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER, due_at=t0, now=t0)
    [claim] = await posts.claim_due(session, now=t0)
    await posts.mark_posted(session, post=claim.post, chat_id=-100, message_id=9, with_photo=False, rendered="x", now=t0)
    await posts.claim_stale_cards(session)
    await buy(session, shop, user_id=BUYER, product=product, now=t0)
    async with fresh() as s:
        card = await s.get(ProductPost, post.id)
    assert (card.status, card.refresh_due) == (PostStatus.POSTED, True)


# ----- cancel -----------------------------------------------------------------------------------

async def test_cancel_returns_stock_and_coupon(session, fresh, shop, t0, audit_rows):
    product = await make_product(session, shop, now=t0, price=1000, stock=5)
    await coupons.issue(session, community_id=shop.id, actor_id=LEADER, now=t0,
                        spec=CouponSpec(kind=CouponKind.PERCENT, value=50, code="HALF"))
    placed = await buy(session, shop, user_id=BUYER, product=product, quantity=2, now=t0, coupon_code="HALF")
    t1 = t0 + timedelta(minutes=3)

    cancelled = await orders.cancel(session, order=placed.order, reason="leader", actor_id=LEADER, now=t1)

    assert (cancelled.status, cancelled.cancelled_at, cancelled.cancel_reason) == ("cancelled", t1, "leader")
    stored = await product_row(fresh, product.id)
    assert (stored.stock, stored.sold) == (5, 0)
    async with fresh() as s:
        assert (await s.exec(select(Coupon))).one().uses == 0
    [entry] = await audit_rows("order.cancel")
    assert entry.details == {"id": placed.order.id, "reason": "leader", "refund_due": False}
    # The coupon is usable again, and a second cancel changes nothing.
    assert (await buy(session, shop, user_id=OTHER, product=product, now=t1, coupon_code="HALF")).order.discount == 500
    await _refused(orders.cancel(session, order=cancelled, reason="leader", actor_id=LEADER, now=t1), "order_not_cancellable")
    assert (await product_row(fresh, product.id)).stock == 4


async def test_cancelling_a_paid_order_makes_it_refund_due(session, fresh, shop, t0, audit_rows):
    product = await make_product(session, shop, now=t0, stock=5)
    placed = await buy(session, shop, user_id=BUYER, product=product, now=t0)
    assert await orders.leader_mark(session, order=placed.order, to=OrderStatus.PAID, actor_id=LEADER, now=t0)

    order = await orders.cancel(session, order=placed.order, reason="leader", actor_id=LEADER, now=t0)
    assert order.status == "refund_due"
    assert (await product_row(fresh, product.id)).stock == 5
    assert (await audit_rows("order.cancel"))[0].details["refund_due"] is True
    assert await orders.mark_refunded(session, order=order, actor_id=LEADER, now=t0) is True
    assert await orders.mark_refunded(session, order=order, actor_id=LEADER, now=t0) is False
    [row] = await order_rows(fresh)
    assert row.status == "refunded"


async def test_member_cancel_window_and_state(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, stock=5)
    late = (await buy(session, shop, user_id=BUYER, product=product, now=t0)).order
    await _refused(orders.cancel(session, order=late, reason="member", actor_id=BUYER, now=t0 + timedelta(hours=25),
                                 by_member=True), "order_cancel_window", hours=24)
    shipped = (await buy(session, shop, user_id=BUYER, product=product, now=t0)).order
    await orders.leader_mark(session, order=shipped, to=OrderStatus.FULFILLED, actor_id=LEADER, now=t0)
    await _refused(orders.cancel(session, order=shipped, reason="member", actor_id=BUYER, now=t0, by_member=True),
                   "order_not_cancellable")
    mine = (await buy(session, shop, user_id=BUYER, product=product, now=t0)).order
    await _refused(orders.cancel(session, order=mine, reason="member", actor_id=OTHER, now=t0, by_member=True),
                   "order_unknown")  # someone else's order
    assert (await orders.cancel(session, order=mine, reason="member", actor_id=BUYER, now=t0 + timedelta(hours=23),
                                by_member=True)).status == "cancelled"
    assert (await product_row(fresh, product.id)).stock == 3
    # The leader may still cancel the late one.
    assert (await orders.cancel(session, order=late, reason="leader", actor_id=LEADER, now=t0 + timedelta(days=3))).status == "cancelled"


async def test_cancel_with_a_stale_order_keeps_a_payment_visible(session, fresh, shop, t0):
    """The member opened their order (unpaid) and pressed Cancel just as their payment landed: the
    money must show as refund-due, not vanish into a plain cancellation."""
    product = await make_product(session, shop, now=t0, stock=5)
    order = (await buy(session, shop, user_id=BUYER, product=product, now=t0, method=PaymentMethod.STARS)).order
    async with fresh() as other:
        await orders.record_payment(other, order_id=order.id, user_id=BUYER, currency="XTR", amount=order.stars_total,
                                    telegram_charge_id="tg-1", provider_charge_id=None, now=t0)
    assert order.status == "pending_payment"  # what the member's session still believes

    cancelled = await orders.cancel(session, order=order, reason="member", actor_id=BUYER, now=t0, by_member=True)
    assert cancelled.status == "refund_due"
    [row] = await order_rows(fresh)
    assert (row.status, row.telegram_charge_id) == ("refund_due", "tg-1")
    assert (await product_row(fresh, product.id)).stock == 5


# ----- expiry -----------------------------------------------------------------------------------

async def test_expire_due_only_touches_unpaid_online_orders_past_deadline(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, stock=10)
    pickup = (await buy(session, shop, user_id=BUYER, product=product, now=t0)).order
    due = (await buy(session, shop, user_id=BUYER, product=product, now=t0, method=PaymentMethod.STARS)).order
    later = (await buy(session, shop, user_id=OTHER, product=product, now=t0 + timedelta(minutes=20),
                       method=PaymentMethod.STARS)).order
    paid = (await buy(session, shop, user_id=OTHER, product=product, now=t0, method=PaymentMethod.STARS)).order
    await orders.record_payment(session, order_id=paid.id, user_id=OTHER, currency="XTR", amount=paid.stars_total,
                                telegram_charge_id="tg-paid", provider_charge_id=None, now=t0 + timedelta(minutes=5))

    at = t0 + timedelta(minutes=30)  # exactly `due`'s deadline
    expired = await orders.expire_due(session, now=at)
    assert [o.id for o in expired] == [due.id]
    assert await orders.expire_due(session, now=at) == []  # a second run finds nothing
    rows = {o.id: o for o in await order_rows(fresh)}
    assert {k: v.status for k, v in rows.items()} == {pickup.id: "pending_payment", due.id: "cancelled",
                                                      later.id: "pending_payment", paid.id: "paid"}
    assert (rows[due.id].cancel_reason, rows[due.id].cancelled_at) == ("expired", at)
    assert (await product_row(fresh, product.id)).stock == 7


async def test_expire_due_skips_an_order_paid_while_it_ran(session, fresh, shop, t0, engine):
    """The job read two overdue orders; the first is paid before the job reaches it. The paid order
    stays paid with its stock, and the job still cancels the second."""
    product = await make_product(session, shop, now=t0, stock=10)
    first = (await buy(session, shop, user_id=BUYER, product=product, now=t0, method=PaymentMethod.STARS)).order
    second = (await buy(session, shop, user_id=OTHER, product=product, now=t0, method=PaymentMethod.STARS)).order
    at = t0 + timedelta(hours=1)

    async with fresh() as payer:
        # The payment's write is under way (it holds the row / write lock) when the job starts...
        await payer.execute(update(Order).where(Order.id == first.id)
                            .values(status=OrderStatus.PAID, paid_at=at, telegram_charge_id="tg-1", expires_at=None))
        job = asyncio.create_task(_expire_in(fresh, at))
        await asyncio.sleep(0.3)
        assert not job.done()
        await payer.commit()  # ...and lands after the job read its list.
    expired = await job

    assert expired == [second.id]
    rows = {o.id: o.status for o in await order_rows(fresh)}
    assert rows == {first.id: "paid", second.id: "cancelled"}
    assert (await product_row(fresh, product.id)).stock == 9


async def _expire_in(fresh, at) -> list[int]:
    async with fresh() as s:
        return [o.id for o in await orders.expire_due(s, now=at)]


# ----- payments ---------------------------------------------------------------------------------

async def _stars_order(session, shop, t0, *, user_id=BUYER, price=1250) -> Order:
    product = await make_product(session, shop, now=t0, price=price, stock=5)
    return (await buy(session, shop, user_id=user_id, product=product, now=t0, method=PaymentMethod.STARS)).order


async def test_check_payment(session, shop, t0):
    order = await _stars_order(session, shop, t0)
    ok = dict(order_id=order.id, user_id=BUYER, currency="XTR", amount=88, now=t0 + timedelta(minutes=29))
    assert (await orders.check_payment(session, **ok)).id == order.id
    await _refused(orders.check_payment(session, **(ok | {"user_id": OTHER})), "order_unknown")
    await _refused(orders.check_payment(session, **(ok | {"order_id": order.id + 99})), "order_unknown")
    await _refused(orders.check_payment(session, **(ok | {"amount": 87})), "payment_amount_mismatch")
    await _refused(orders.check_payment(session, **(ok | {"currency": "USD", "amount": 1250})), "payment_amount_mismatch")
    await _refused(orders.check_payment(session, **(ok | {"now": t0 + timedelta(minutes=30)})), "order_expired")
    await orders.record_payment(session, order_id=order.id, user_id=BUYER, currency="XTR", amount=88,
                                telegram_charge_id="tg-1", provider_charge_id=None, now=t0)
    await _refused(orders.check_payment(session, **ok), "order_not_payable", status="paid")


async def test_check_payment_card_order_in_the_shop_currency(session, shop, t0):
    product = await make_product(session, shop, now=t0, price=1250, stock=5)
    order = (await buy(session, shop, user_id=BUYER, product=product, now=t0, method=PaymentMethod.PROVIDER)).order
    ok = dict(order_id=order.id, user_id=BUYER, currency="USD", amount=1250, now=t0)
    assert (await orders.check_payment(session, **ok)).id == order.id
    await _refused(orders.check_payment(session, **(ok | {"currency": "XTR", "amount": 88})), "payment_amount_mismatch")


async def test_record_payment_once(session, fresh, shop, t0, audit_rows):
    order = await _stars_order(session, shop, t0)
    t1 = t0 + timedelta(minutes=2)
    pay = dict(order_id=order.id, user_id=BUYER, currency="XTR", amount=88, telegram_charge_id="tg-1",
               provider_charge_id="pv-1", now=t1)

    paid, newly = await orders.record_payment(session, **pay)
    assert (newly, paid.status, paid.paid_at, paid.expires_at, paid.telegram_charge_id) == (True, "paid", t1, None, "tg-1")
    again, newly = await orders.record_payment(session, **(pay | {"now": t1 + timedelta(seconds=5)}))
    assert (newly, again.id, again.status, again.paid_at) == (False, order.id, "paid", t1)
    assert len(await audit_rows("order.paid")) == 1
    await _refused(orders.record_payment(session, **(pay | {"telegram_charge_id": "tg-x", "user_id": OTHER})), "order_unknown")


async def test_a_second_charge_for_a_paid_order_does_not_unpay_it(session, fresh, shop, t0, audit_rows):
    """Two invoices for one order, both paid: the order stays paid with its first charge, and the
    second charge is kept on record for the leader to refund."""
    order = await _stars_order(session, shop, t0)
    pay = dict(order_id=order.id, user_id=BUYER, currency="XTR", amount=88, provider_charge_id=None, now=t0)
    await orders.record_payment(session, telegram_charge_id="tg-1", **pay)
    second, newly = await orders.record_payment(session, telegram_charge_id="tg-2", **pay)
    assert (newly, second.status, second.telegram_charge_id) == (False, "paid", "tg-1")
    [row] = await order_rows(fresh)
    assert (row.status, row.telegram_charge_id) == ("paid", "tg-1")
    [extra] = await audit_rows("order.payment_extra")
    assert extra.details["telegram_charge_id"] == "tg-2"


async def test_payment_after_expiry_is_refund_due(session, fresh, shop, t0, audit_rows):
    order = await _stars_order(session, shop, t0)
    await orders.expire_due(session, now=t0 + timedelta(minutes=31))
    late, newly = await orders.record_payment(session, order_id=order.id, user_id=BUYER, currency="XTR", amount=88,
                                              telegram_charge_id="tg-late", provider_charge_id=None,
                                              now=t0 + timedelta(minutes=32))
    assert (newly, late.status, late.telegram_charge_id) == (False, "refund_due", "tg-late")
    assert len(await audit_rows("order.paid_after_cancel")) == 1
    [row] = await order_rows(fresh)
    assert (row.status, row.cancel_reason) == ("refund_due", "expired")
    assert (await product_row(fresh, row.product_id)).stock == 5  # returned at expiry, not taken again
    # Redelivered: still one record, nothing changes.
    again, newly = await orders.record_payment(session, order_id=order.id, user_id=BUYER, currency="XTR", amount=88,
                                               telegram_charge_id="tg-late", provider_charge_id=None, now=t0)
    assert (newly, again.status) == (False, "refund_due")
    assert len(await audit_rows("order.paid_after_cancel")) == 1


# ----- leader marks -----------------------------------------------------------------------------

async def test_leader_moves_a_pickup_order_forward(session, fresh, shop, t0, audit_rows):
    product = await make_product(session, shop, now=t0, stock=5)
    order = (await buy(session, shop, user_id=BUYER, product=product, now=t0)).order
    t1, t2, t3 = (t0 + timedelta(hours=h) for h in (1, 2, 3))

    assert await orders.leader_mark(session, order=order, to=OrderStatus.PAID, actor_id=LEADER, now=t1)
    assert await orders.leader_mark(session, order=order, to=OrderStatus.PAID, actor_id=LEADER, now=t1) is False
    assert await orders.leader_mark(session, order=order, to=OrderStatus.FULFILLED, actor_id=LEADER, now=t2)
    assert await orders.leader_mark(session, order=order, to=OrderStatus.PICKED_UP, actor_id=LEADER, now=t3)
    assert await orders.leader_mark(session, order=order, to=OrderStatus.FULFILLED, actor_id=LEADER, now=t3) is False
    [row] = await order_rows(fresh)
    assert (row.status, row.paid_at, row.fulfilled_at, row.picked_up_at) == ("picked_up", t1, t2, t3)
    assert [e.action for e in await audit_rows() if e.action.startswith("order.")] == [
        "order.paid", "order.fulfilled", "order.picked_up"]
    await _refused(orders.cancel(session, order=order, reason="leader", actor_id=LEADER, now=t3), "order_not_cancellable")


async def test_leader_mark_refusals(session, shop, t0):
    product = await make_product(session, shop, now=t0, stock=5)
    online = (await buy(session, shop, user_id=BUYER, product=product, now=t0, method=PaymentMethod.STARS)).order
    # Online payments come from Telegram only, and an unpaid online order cannot be handed out.
    assert await orders.leader_mark(session, order=online, to=OrderStatus.PAID, actor_id=LEADER, now=t0) is False
    assert await orders.leader_mark(session, order=online, to=OrderStatus.FULFILLED, actor_id=LEADER, now=t0) is False
    assert await orders.leader_mark(session, order=online, to=OrderStatus.PICKED_UP, actor_id=LEADER, now=t0) is False
    pickup = (await buy(session, shop, user_id=BUYER, product=product, now=t0)).order
    # Pay-at-pickup: handed out before the money, allowed.
    assert await orders.leader_mark(session, order=pickup, to=OrderStatus.FULFILLED, actor_id=LEADER, now=t0)
    gone = (await buy(session, shop, user_id=BUYER, product=product, now=t0)).order
    await orders.cancel(session, order=gone, reason="leader", actor_id=LEADER, now=t0)
    for to in (OrderStatus.PAID, OrderStatus.FULFILLED, OrderStatus.PICKED_UP):
        assert await orders.leader_mark(session, order=gone, to=to, actor_id=LEADER, now=t0) is False
    assert online.status == "pending_payment" and gone.status == "cancelled"


# ----- search -----------------------------------------------------------------------------------

async def test_search_filters(session, shop, t0):
    apples = await make_product(session, shop, now=t0, title="Apples", stock=50)
    pears = await make_product(session, shop, now=t0, title="Pears", stock=50)
    second_point = await settings.add_pickup_point(session, community_id=shop.id, actor_id=LEADER, raw_name="Back door", now=t0)
    other = await make_shop(session, now=t0, chat_id=-999)
    foreign = await make_product(session, other, now=t0, stock=5)
    a1 = (await buy(session, shop, user_id=BUYER, product=apples, now=t0)).order
    p1 = (await buy(session, shop, user_id=OTHER, product=pears, now=t0 + timedelta(minutes=1),
                    pickup_point_id=second_point.id)).order
    a2 = (await buy(session, shop, user_id=OTHER, product=apples, now=t0 + timedelta(minutes=2))).order
    await orders.cancel(session, order=a2, reason="leader", actor_id=LEADER, now=t0)
    await buy(session, other, user_id=BUYER, product=foreign, now=t0)

    async def ids(**filters):
        return [r.order.id for r in await orders.search(session, community_id=shop.id, **filters)]

    assert await ids() == [a2.id, p1.id, a1.id]  # newest first, this community only
    assert await ids(product_id=apples.id) == [a2.id, a1.id]
    assert await ids(pickup_point_id=second_point.id) == [p1.id]
    assert await ids(statuses=("pending_payment",)) == [p1.id, a1.id]
    assert await ids(user_id=OTHER) == [a2.id, p1.id]
    assert await ids(limit=1) == [a2.id]
    [row] = await orders.search(session, community_id=shop.id, pickup_point_id=second_point.id)
    assert (row.product.title, row.buyer.id, row.pickup.name) == ("Pears", OTHER, "Back door")
