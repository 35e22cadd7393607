"""A failing team settles all its orders in a few statements: each order ends as the one-by-one
cancellation left it (status, refund due, stock, coupon, audit row), and the objects the caller's
session holds show it."""

from __future__ import annotations

from datetime import timedelta

from groupbuy_builders import join, team_campaign
from shop_builders import LEADER, make_product, make_shop, make_users, order_rows, product_row
from sqlmodel import select

from bot.services import coupons, groupbuy_close, orders
from models import AuditLog, Coupon, CouponKind, CouponRedemption, OrderStatus, PaymentMethod


async def test_failed_team_settles_every_order_once(session, fresh, t0):
    shop = await make_shop(session, now=t0, stars_enabled=True, stars_per_unit=50)
    product = await make_product(session, shop, now=t0, stock=20)
    other = await make_product(session, shop, now=t0, stock=5, title="Pears")
    await make_users(session, [11, 12, 13, 14, 15], now=t0)
    coupon = await coupons.issue(session, community_id=shop.id, actor_id=LEADER, now=t0,
                                 spec=coupons.CouponSpec(kind=CouponKind.FIXED, value=100, code="TEAM100"))
    campaign = await team_campaign(session, shop, product, now=t0, size=6, minutes=30, join_limit=1)
    opened = await join(session, shop, campaign, user_id=11, now=t0, coupon_code="TEAM100")
    team_id = opened.team.id
    paid = await join(session, shop, campaign, user_id=12, now=t0, team_id=team_id, method=PaymentMethod.STARS)
    await orders.record_payment(session, order_id=paid.order.id, user_id=12, currency="XTR", amount=paid.order.stars_total,
                                telegram_charge_id="ch-12", provider_charge_id=None, now=t0)
    unpaid = await join(session, shop, campaign, user_id=13, now=t0, team_id=team_id, method=PaymentMethod.STARS)
    left = await join(session, shop, campaign, user_id=14, now=t0, team_id=team_id)
    await orders.cancel(session, order=left.order, reason="member", actor_id=14, now=t0, by_member=True)
    plain = (await orders.place(session, community=shop.community, user_id=15, product_id=other.id, quantity=1,
                                unit_price=other.price, payment_method=PaymentMethod.PICKUP, checkout_key="plain",
                                now=t0, pickup_point_id=shop.point_id)).order
    assert (await product_row(fresh, product.id)).stock == 17

    done = await groupbuy_close.sweep(session, now=t0 + timedelta(minutes=31))

    assert done.teams_failed == [team_id]
    by_user = {o.user_id: o for o in await order_rows(fresh, team_id=team_id)}
    assert {u: (o.status, o.cancel_reason) for u, o in by_user.items()} == {
        11: (OrderStatus.CANCELLED, "groupbuy_failed"), 12: (OrderStatus.REFUND_DUE, "groupbuy_failed"),
        13: (OrderStatus.CANCELLED, "groupbuy_failed"), 14: (OrderStatus.CANCELLED, "member")}
    assert all(by_user[u].cancelled_at == t0 + timedelta(minutes=31) for u in (11, 12, 13))
    # The caller's own objects show the close, without a reload.
    assert (opened.order.status, paid.order.status, unpaid.order.status) == (
        OrderStatus.CANCELLED, OrderStatus.REFUND_DUE, OrderStatus.CANCELLED)
    assert ((await product_row(fresh, product.id)).stock, (await product_row(fresh, product.id)).sold) == (20, 0)
    assert (await product_row(fresh, other.id)).stock == 4
    assert (await order_rows(fresh, id=plain.id))[0].status == OrderStatus.PENDING_PAYMENT
    async with fresh() as s:
        assert (await s.get(Coupon, coupon.id)).uses == 0
        assert list(await s.exec(select(CouponRedemption))) == []
        cancels = [a.details for a in await s.exec(select(AuditLog).where(AuditLog.action == "order.cancel"))]
    assert sorted((d["id"], d["reason"], d["refund_due"]) for d in cancels) == sorted([
        (left.order.id, "member", False), (opened.order.id, "groupbuy_failed", False),
        (paid.order.id, "groupbuy_failed", True), (unpaid.order.id, "groupbuy_failed", False)])
    again = await groupbuy_close.sweep(session, now=t0 + timedelta(minutes=32))
    assert again.empty
    assert ((await product_row(fresh, product.id)).stock, (await product_row(fresh, other.id)).stock) == (20, 4)
