"""The parts of bot.services.orders the member's screens stand on: the group's sellability check,
delivery addresses, orders a coupon pays in full, the member's own order list across communities,
and whether Cancel is still offered."""

from __future__ import annotations

from datetime import timedelta

import pytest
from shop_builders import LEADER, buy, make_product, make_shop, make_users, order_rows, product_row

from bot.services import coupons, orders, products
from bot.services.coupons import CouponSpec
from bot.services.errors import DomainError
from models import CouponKind, OrderStatus, PaymentMethod, ProductStatus

BUYER, OTHER = 100, 200


@pytest.fixture
async def shop(session, t0):
    shop = await make_shop(session, now=t0, pay_at_pickup=True, cancel_hours=24)
    await make_users(session, [BUYER, OTHER], now=t0)
    return shop


@pytest.mark.parametrize("status, stock, quantity, code", [
    (ProductStatus.PAUSED, 5, 1, "product_paused"),
    (ProductStatus.ARCHIVED, 5, 1, "product_archived"),
    (ProductStatus.ACTIVE, 0, 1, "product_sold_out"),
    (ProductStatus.ACTIVE, 3, 4, "quantity_over_stock"),
])
async def test_check_sellable_refusals(session, shop, t0, status, stock, quantity, code):
    product = await make_product(session, shop, now=t0, stock=stock)
    product.status = status
    with pytest.raises(DomainError) as exc:
        orders.check_sellable(product, quantity)
    assert exc.value.code == code


async def test_check_sellable_passes_unlimited_and_enough_stock(session, shop, t0):
    orders.check_sellable(await make_product(session, shop, now=t0, stock=None), 999)
    orders.check_sellable(await make_product(session, shop, now=t0, stock=3), 3)


@pytest.mark.parametrize("raw, expected", [("  12 Main St \n", "12 Main St"), ("<b>&</b>", "<b>&</b>"), ("x" * 300, "x" * 300)])
def test_clean_address_trims(raw, expected):
    assert orders.clean_address(raw) == expected


@pytest.mark.parametrize("raw, code", [("", "address_empty"), (" \n\t ", "address_empty"), ("x" * 301, "address_too_long")])
def test_clean_address_refuses(raw, code):
    with pytest.raises(DomainError) as exc:
        orders.clean_address(raw)
    assert exc.value.code == code


async def test_an_order_a_coupon_pays_in_full_is_settled_at_once(session, fresh, t0):
    """No invoice can be sent for 0: the order is paid on placing, whatever way of paying was
    picked (even one the shop has switched off), never expires, and cancels without a refund."""
    shop = await make_shop(session, now=t0, pay_at_pickup=False, stars_enabled=False, unpaid_minutes=30)
    await make_users(session, [BUYER], now=t0)
    product = await make_product(session, shop, now=t0, price=300, stock=5)
    await coupons.issue(session, community_id=shop.id, actor_id=LEADER, now=t0,
                        spec=CouponSpec(kind=CouponKind.FIXED, value=500, code="FREE"))
    order = (await buy(session, shop, user_id=BUYER, product=product, now=t0, coupon_code="FREE",
                       method=PaymentMethod.STARS)).order
    assert (order.total, order.status, order.expires_at, order.stars_total, order.paid_at) == (0, OrderStatus.PAID, None, None, None)
    assert (await product_row(fresh, product.id)).stock == 4
    cancelled = await orders.cancel(session, order=order, reason="member", actor_id=BUYER, now=t0, by_member=True)
    assert cancelled.status == OrderStatus.CANCELLED
    assert (await product_row(fresh, product.id)).stock == 5


async def test_without_a_coupon_the_switched_off_method_is_still_refused(session, fresh, t0):
    shop = await make_shop(session, now=t0, pay_at_pickup=False)
    await make_users(session, [BUYER], now=t0)
    product = await make_product(session, shop, now=t0, price=300, stock=5)
    with pytest.raises(DomainError) as exc:
        await buy(session, shop, user_id=BUYER, product=product, now=t0, method=PaymentMethod.PICKUP)
    assert exc.value.code == "payment_unavailable"
    assert (await product_row(fresh, product.id)).stock == 5 and await order_rows(fresh) == []


async def test_member_orders_pages_newest_first_across_communities(session, shop, t0):
    other = await make_shop(session, now=t0, chat_id=-200)
    here = await make_product(session, shop, now=t0, stock=50, title="Apples")
    there = await make_product(session, other, now=t0, stock=50, title="Honey")
    placed = []
    for n in range(7):
        target, product = (shop, here) if n % 2 == 0 else (other, there)
        placed.append((await buy(session, target, user_id=BUYER, product=product, now=t0 + timedelta(minutes=n))).order.id)
    await buy(session, shop, user_id=OTHER, product=here, now=t0 + timedelta(hours=1))

    first, total = await orders.member_orders(session, user_id=BUYER, offset=0, limit=5)
    second, _total = await orders.member_orders(session, user_id=BUYER, offset=5, limit=5)
    assert total == 7
    assert [r.order.id for r in first + second] == placed[::-1]
    assert [r.product.title for r in first[:2]] == ["Apples", "Honey"]
    assert {r.community.id for r in first} == {shop.id, other.id}
    assert all(r.pickup is not None and r.pickup.community_id == r.community.id for r in first + second)
    assert await orders.member_orders(session, user_id=999, offset=0, limit=5) == ([], 0)


async def test_member_may_cancel_follows_the_state_and_the_window(session, shop, t0):
    product = await make_product(session, shop, now=t0, stock=10)
    order = (await buy(session, shop, user_id=BUYER, product=product, now=t0)).order
    community = shop.community
    assert orders.member_may_cancel(order, community, t0 + timedelta(hours=24))
    assert not orders.member_may_cancel(order, community, t0 + timedelta(hours=24, seconds=1))
    assert await orders.leader_mark(session, order=order, to=OrderStatus.FULFILLED, actor_id=LEADER, now=t0)
    assert not orders.member_may_cancel(order, community, t0)
    with pytest.raises(DomainError) as exc:
        await orders.cancel(session, order=order, reason="member", actor_id=BUYER, now=t0, by_member=True)
    assert exc.value.code == "order_not_cancellable"


async def test_edited_price_after_reading_the_product_is_refused_not_sold_cheap(session, fresh, shop, t0):
    """What the group's /buy and the summary rely on: the product read earlier is not trusted."""
    product = await make_product(session, shop, now=t0, price=500, stock=5)
    await products.edit(session, community_id=shop.id, product_id=product.id, actor_id=LEADER, now=t0, price=700)
    with pytest.raises(DomainError) as exc:
        await buy(session, shop, user_id=BUYER, product=product, now=t0, unit_price=500)
    assert (exc.value.code, exc.value.params["price"]) == ("price_changed", 700)
    assert await order_rows(fresh) == []
