"""Leaders' order reports on a real database: filters and pages, the actions an order offers, bulk
marks at one pickup point, pick lists, the CSV export, the daily figures and when they are due;
and the coupon and shop-option helpers behind the leaders' forms and /coupons."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlmodel import select

from bot.services import communities, coupons, job_marks, members, order_reports, orders, products, settings, users
from bot.services.coupons import CouponSpec
from bot.services.errors import DomainError
from bot.services.order_reports import DELIVERY, LeaderAction, ReportFilter
from bot.services.products import ProductDraft
from bot.services.shop_settings import (
    option_bounds,
    parse_option_number,
    parse_summary_time,
    shop_settings,
    update_shop_settings,
)
from bot.services.users import Profile
from models import Community, MemberStatus
from models.shop import Coupon, CouponKind, Order, OrderStatus, PaymentMethod, Product

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
LEADER = 1
RIGHTS = {"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True}
_keys = itertools.count(1)


# --- builders (through the real services) ---------------------------------------------------------

async def make_shop(session, *, chat_id: int = -100, title: str = "Green Valley", tz: str = "UTC", currency: str = "USD",
                    points: tuple[str, ...] = ("North Gate", "South Gate"), **options) -> tuple[Community, list[int]]:
    await person(session, None, LEADER, "Alice")
    community = (await communities.on_bot_status(session, chat_id=chat_id, title=title, status="administrator",
                                                 rights=RIGHTS, default_locale="en", default_timezone=tz, now=T0)).community
    community.currency = currency
    await session.commit()
    await members.ensure(session, community_id=community.id, user_id=LEADER, now=T0)
    await communities.set_leaders(session, community_id=community.id, admins=[Profile(LEADER, "Alice")], now=T0)
    options = {"stars_enabled": True, "stars_per_unit": 7, "delivery_enabled": True} | options
    await update_shop_settings(session, community=community, actor_id=LEADER, now=T0, **options)
    ids = []
    for name in points:
        ids.append((await settings.add_pickup_point(session, community_id=community.id, actor_id=LEADER, raw_name=name, now=T0)).id)
    return community, ids


async def person(session, community: Community | None, uid: int, first: str, *, username: str | None = None,
                 can_dm: bool = True) -> int:
    user = await users.upsert_user(session, Profile(uid, first, username=username), now=T0)
    user.can_dm = can_dm
    if community is not None:
        await members.ensure(session, community_id=community.id, user_id=uid, now=T0)
    await session.commit()
    return uid


async def make_product(session, community: Community, title: str = "Apples", price: int = 500, stock: int | None = None) -> Product:
    return await products.create(session, community=community, actor_id=LEADER, now=T0,
                                 draft=ProductDraft(title=title, description="", price=price, stock=stock, per_member_limit=None))


async def place(session, community: Community, product: Product, user_id: int, *, qty: int = 1, point: int | None = None,
                address: str | None = None, method: PaymentMethod = PaymentMethod.PICKUP, now: datetime = T0,
                paid: bool = False, coupon: str | None = None) -> Order:
    order = (await orders.place(session, community=community, user_id=user_id, product_id=product.id, quantity=qty,
                                unit_price=product.price, payment_method=method, checkout_key=f"k{next(_keys)}", now=now,
                                pickup_point_id=point, delivery_address=address, coupon_code=coupon)).order
    if paid:
        if method == PaymentMethod.PICKUP:
            assert await orders.leader_mark(session, order=order, to=OrderStatus.PAID, actor_id=LEADER, now=now)
        else:
            amount, currency = (order.stars_total, "XTR") if method == PaymentMethod.STARS else (order.total, order.currency)
            await orders.record_payment(session, order_id=order.id, user_id=user_id, currency=currency, amount=amount,
                                        telegram_charge_id=f"charge-{order.id}", provider_charge_id=None, now=now)
    return order


async def ids(result) -> list[int]:
    return [row.order.id for row in result]


# --- filters and pages --------------------------------------------------------------------------------

async def test_filters_by_state_product_and_place(session) -> None:
    shop, (north, south) = await make_shop(session)
    bob = await person(session, shop, 10, "Bob")
    apples, pears = await make_product(session, shop, "Apples"), await make_product(session, shop, "Pears")
    unpaid = await place(session, shop, apples, bob, point=north)
    paid = await place(session, shop, pears, bob, point=south, paid=True)
    online = await place(session, shop, apples, bob, point=north, method=PaymentMethod.STARS, paid=True)
    delivered = await place(session, shop, pears, bob, address="1 Long Road")
    cancelled = await place(session, shop, apples, bob, point=north)
    await orders.cancel(session, order=cancelled, reason="leader", actor_id=LEADER, now=T0)
    refund_due = await place(session, shop, apples, bob, point=south, method=PaymentMethod.PROVIDER, paid=True)
    await orders.cancel(session, order=refund_due, reason="leader", actor_id=LEADER, now=T0)

    async def found(**kw) -> list[int]:
        return sorted((row.order.id for row in await order_reports.filtered(session, community_id=shop.id, flt=ReportFilter(**kw))))

    assert await found() == sorted([unpaid.id, paid.id, online.id, delivered.id])
    assert await found(status="unpaid") == sorted([unpaid.id, delivered.id])
    assert await found(status="paid") == sorted([paid.id, online.id])
    assert await found(status="cancelled") == [cancelled.id]
    assert await found(status="refund") == [refund_due.id]
    assert await found(status="all") == sorted([unpaid.id, paid.id, online.id, delivered.id, cancelled.id, refund_due.id])
    assert await found(product_id=pears.id) == sorted([paid.id, delivered.id])
    assert await found(place=north) == sorted([unpaid.id, online.id])
    assert await found(place=DELIVERY) == [delivered.id]
    assert await found(status="all", place=south, product_id=apples.id) == [refund_due.id]
    with pytest.raises(ValueError):
        ReportFilter(status="nonsense")


async def test_pages_are_newest_first_and_clamped(session) -> None:
    shop, (north, _south) = await make_shop(session)
    other, _ = await make_shop(session, chat_id=-200, title="Elsewhere")
    bob = await person(session, shop, 10, "Bob")
    apples = await make_product(session, shop)
    placed = [await place(session, shop, apples, bob, point=north, now=T0 + timedelta(minutes=n)) for n in range(23)]
    await place(session, other, await make_product(session, other), bob, point=None, address="x")
    first = await order_reports.page(session, community_id=shop.id, flt=ReportFilter(), page=0)
    assert (first.total, first.pages, first.page) == (23, 3, 0)
    assert await ids(first.rows) == [o.id for o in reversed(placed)][:10]
    last = await order_reports.page(session, community_id=shop.id, flt=ReportFilter(), page=99)
    assert last.page == 2 and await ids(last.rows) == [o.id for o in placed[:3]][::-1]
    assert (await order_reports.page(session, community_id=shop.id, flt=ReportFilter(), page=-5)).page == 0
    empty = await order_reports.page(session, community_id=shop.id, flt=ReportFilter(status="refund"), page=3)
    assert (empty.total, empty.pages, empty.page, empty.rows) == (0, 1, 0, [])
    assert await order_reports.order_row(session, community_id=other.id, order_id=placed[0].id) is None
    assert (await order_reports.order_row(session, community_id=shop.id, order_id=placed[0].id)).product.id == apples.id


async def test_leader_actions_follow_the_state(session) -> None:
    shop, (north, _south) = await make_shop(session)
    bob = await person(session, shop, 10, "Bob")
    apples = await make_product(session, shop)
    pickup = await place(session, shop, apples, bob, point=north)
    assert order_reports.leader_actions(pickup) == [LeaderAction.MARK_PAID, LeaderAction.MARK_FULFILLED, LeaderAction.CANCEL]
    online = await place(session, shop, apples, bob, point=north, method=PaymentMethod.STARS)
    assert order_reports.leader_actions(online) == [LeaderAction.CANCEL]
    await orders.record_payment(session, order_id=online.id, user_id=bob, currency="XTR", amount=online.stars_total,
                                telegram_charge_id="c1", provider_charge_id=None, now=T0)
    assert order_reports.leader_actions(online) == [LeaderAction.MARK_FULFILLED, LeaderAction.MARK_PICKED_UP, LeaderAction.CANCEL]
    await orders.leader_mark(session, order=online, to=OrderStatus.FULFILLED, actor_id=LEADER, now=T0)
    assert order_reports.leader_actions(online) == [LeaderAction.MARK_PICKED_UP, LeaderAction.CANCEL]
    await orders.cancel(session, order=online, reason="leader", actor_id=LEADER, now=T0)
    assert order_reports.leader_actions(online) == [LeaderAction.REFUND_STARS]
    card = await place(session, shop, apples, bob, point=north, method=PaymentMethod.PROVIDER, paid=True)
    await orders.cancel(session, order=card, reason="leader", actor_id=LEADER, now=T0)
    assert order_reports.leader_actions(card) == [LeaderAction.MARK_REFUNDED]
    await orders.mark_refunded(session, order=card, actor_id=LEADER, now=T0)
    assert order_reports.leader_actions(card) == []


# --- bulk ---------------------------------------------------------------------------------------------

async def test_bulk_marks_only_what_can_move_at_that_point_once(session, engine) -> None:
    shop, (north, south) = await make_shop(session)
    bob, carol = await person(session, shop, 10, "Bob"), await person(session, shop, 11, "Carol")
    apples = await make_product(session, shop)
    unpaid = await place(session, shop, apples, bob, point=north)
    paid = await place(session, shop, apples, carol, point=north, paid=True)
    online_unpaid = await place(session, shop, apples, bob, point=north, method=PaymentMethod.STARS)
    elsewhere = await place(session, shop, apples, bob, point=south, paid=True)

    found = await order_reports.bulk_candidates(session, community_id=shop.id, point_id=north, to=OrderStatus.FULFILLED)
    assert [o.id for o in found] == [unpaid.id, paid.id]
    assert await order_reports.bulk_candidates(session, community_id=shop.id, point_id=north, to=OrderStatus.PICKED_UP,
                                               upto_id=unpaid.id) == []
    late = await place(session, shop, apples, carol, point=north)
    moved = await order_reports.bulk_mark(session, community_id=shop.id, point_id=north, to=OrderStatus.FULFILLED,
                                          actor_id=LEADER, now=T0, upto_id=paid.id)
    assert [o.id for o in moved] == [unpaid.id, paid.id]
    again = await order_reports.bulk_mark(session, community_id=shop.id, point_id=north, to=OrderStatus.FULFILLED,
                                          actor_id=LEADER, now=T0, upto_id=paid.id)
    assert again == []
    async with engine.connect() as conn:
        rows = dict((await conn.exec_driver_sql("SELECT id, status FROM orders")).all())
    assert rows == {unpaid.id: "fulfilled", paid.id: "fulfilled", online_unpaid.id: "pending_payment",
                    elsewhere.id: "paid", late.id: "pending_payment"}
    picked = await order_reports.bulk_mark(session, community_id=shop.id, point_id=north, to=OrderStatus.PICKED_UP,
                                           actor_id=LEADER, now=T0)
    assert sorted(o.id for o in picked) == [unpaid.id, paid.id]
    with pytest.raises(ValueError):
        await order_reports.bulk_candidates(session, community_id=shop.id, point_id=north, to=OrderStatus.PAID)


async def test_two_bulk_marks_at_once_move_each_order_once(engine, session) -> None:
    from bot.core.db import session_factory

    shop, (north, _south) = await make_shop(session)
    apples = await make_product(session, shop)
    placed = [await place(session, shop, apples, await person(session, shop, 100 + n, f"M{n}"), point=north, paid=True)
              for n in range(6)]
    factory = session_factory(engine)

    async def run() -> list[Order]:
        async with factory() as s:
            return await order_reports.bulk_mark(s, community_id=shop.id, point_id=north, to=OrderStatus.FULFILLED,
                                                 actor_id=LEADER, now=T0)

    first, second = await asyncio.gather(run(), run())
    assert sorted(o.id for o in first + second) == [o.id for o in placed]


# --- pick list ----------------------------------------------------------------------------------------

async def test_pick_list_groups_by_member_with_amounts_to_collect(session) -> None:
    shop, (north, south) = await make_shop(session)
    bob = await person(session, shop, 10, "Bob", username="bob")
    ann = await person(session, shop, 11, "Ann")
    zed = await person(session, shop, 12, "Zed")
    apples, pears = await make_product(session, shop, "Apples", 500), await make_product(session, shop, "Pears", 300)
    b1 = await place(session, shop, apples, bob, qty=2, point=north)
    b2 = await place(session, shop, pears, bob, point=north, paid=True)
    a1 = await place(session, shop, pears, ann, qty=3, point=north, method=PaymentMethod.STARS, paid=True)
    await place(session, shop, apples, ann, point=north, method=PaymentMethod.STARS)  # not paid online yet
    done = await place(session, shop, apples, zed, point=north, paid=True)
    await orders.leader_mark(session, order=done, to=OrderStatus.PICKED_UP, actor_id=LEADER, now=T0)
    await place(session, shop, apples, zed, point=south)
    gone = await place(session, shop, apples, zed, point=north)
    await orders.cancel(session, order=gone, reason="leader", actor_id=LEADER, now=T0)
    await users.forget(session, user_id=ann, now=T0)

    collectors = await order_reports.pick_list(session, community_id=shop.id, place=north)
    assert [(c.buyer.id, [r.order.id for r in c.rows], c.to_collect) for c in collectors] == [
        (bob, [b1.id, b2.id], 1000), (ann, [a1.id], 0)]  # erased members last
    assert [(p.title, n) for p, n in order_reports.product_totals(collectors)] == [("Apples", 2), ("Pears", 4)]
    assert await order_reports.pick_list(session, community_id=shop.id, place=DELIVERY) == []


# --- export -------------------------------------------------------------------------------------------

async def test_csv_export_round_trips_with_bom_chinese_and_local_times(session) -> None:
    shop, (north,) = await make_shop(session, tz="Asia/Shanghai", currency="CNY", points=("北门",))
    wang = await person(session, shop, 10, "王小明", username="wang")
    gone = await person(session, shop, 11, "Erin", username="erin")
    tea = await make_product(session, shop, "乌龙茶, \"特级\"", 1250)
    await coupons.issue(session, community_id=shop.id, spec=CouponSpec(kind=CouponKind.FIXED, value=250, code="TEA"),
                        actor_id=LEADER, now=T0)
    first = await place(session, shop, tea, wang, qty=2, point=north, coupon="TEA", paid=True, now=T0)
    second = await place(session, shop, tea, gone, address="上海市 1号", now=T0 + timedelta(hours=1))
    await users.forget(session, user_id=gone, now=T0)
    rows = await order_reports.filtered(session, community_id=shop.id, flt=ReportFilter(status="all"))
    data = order_reports.export_csv(rows, tz="Asia/Shanghai", header=["H"] * 18, erased_name="(erased)",
                                    status_label=lambda s: f"S:{s}", method_label=lambda m: f"M:{m}")
    assert data.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert parsed[0] == ["H"] * 18
    assert parsed[1] == [str(first.id), "2025-03-01 20:00", "王小明", "@wang", "1", "乌龙茶, \"特级\"", "2", "12.50", "2.50",
                         "22.50", "CNY", "S:paid", "M:pickup", "北门", "", "2025-03-01 20:00", "", ""]
    assert parsed[2][:4] == [str(second.id), "2025-03-01 21:00", "(erased)", ""]
    assert parsed[2][13:15] == ["", "上海市 1号"]
    assert order_reports.decimal_amount(1234, "JPY") == "1234" and order_reports.decimal_amount(5, "USD") == "0.05"


# --- daily figures ------------------------------------------------------------------------------------

async def test_daily_figures_count_the_community_local_day(session) -> None:
    shop, (north, south) = await make_shop(session, tz="Asia/Shanghai")  # UTC+8: the 1st runs 16:00 (Feb 28) to 16:00 UTC
    bob = await person(session, shop, 10, "Bob")
    apples = await make_product(session, shop, price=500)
    day_start = datetime(2025, 2, 28, 16, 0, tzinfo=timezone.utc)
    await place(session, shop, apples, bob, point=north, now=day_start - timedelta(seconds=1))  # the 28th locally
    a = await place(session, shop, apples, bob, qty=2, point=north, now=day_start, paid=True)
    b = await place(session, shop, apples, bob, qty=3, point=south, now=day_start + timedelta(hours=2))
    c = await place(session, shop, apples, bob, point=north, method=PaymentMethod.STARS, paid=True, now=day_start + timedelta(hours=3))
    d = await place(session, shop, apples, bob, qty=4, address="Road 1", now=day_start + timedelta(hours=4))
    await orders.cancel(session, order=d, reason="leader", actor_id=LEADER, now=day_start + timedelta(hours=5))
    await place(session, shop, apples, bob, point=south, now=day_start + timedelta(days=1))  # the 2nd locally
    assert (a.id, b.id, c.id) and shop_settings(shop).summary_time is None

    figures = await order_reports.daily_figures(session, community=shop, day=date(2025, 3, 1))
    assert (figures.placed, figures.units, figures.revenue, figures.unpaid_count, figures.unpaid_amount, figures.cancelled) == (
        4, 6, 1500, 1, 1500, 1)
    assert figures.by_place == [("North Gate", 2), ("South Gate", 1)]
    quiet = await order_reports.daily_figures(session, community=shop, day=date(2025, 3, 5))
    assert (quiet.placed, quiet.units, quiet.revenue, quiet.by_place) == (0, 0, 0, [])


async def test_summaries_due_after_the_local_time_for_active_communities(session) -> None:
    shanghai, _ = await make_shop(session, tz="Asia/Shanghai", summary_time="21:00")
    berlin, _ = await make_shop(session, chat_id=-200, tz="Europe/Berlin", summary_time="08:30")
    await make_shop(session, chat_id=-300)  # no summary
    gone, _ = await make_shop(session, chat_id=-400, summary_time="00:00")
    await communities.deactivate(session, chat_id=-400, now=T0)

    async def due(at: datetime) -> list[tuple[int, date]]:
        return [(c.id, d) for c, d in await order_reports.summaries_due(session, now=at)]

    assert await due(datetime(2025, 3, 1, 7, 29, tzinfo=timezone.utc)) == []
    assert await due(datetime(2025, 3, 1, 7, 30, tzinfo=timezone.utc)) == [(berlin.id, date(2025, 3, 1))]
    assert await due(datetime(2025, 3, 1, 13, 0, tzinfo=timezone.utc)) == [(shanghai.id, date(2025, 3, 1)), (berlin.id, date(2025, 3, 1))]
    # Past midnight locally a new day starts, and nothing is due until its time.
    assert await due(datetime(2025, 3, 1, 23, 30, tzinfo=timezone.utc)) == []
    assert await due(datetime(2025, 3, 2, 7, 45, tzinfo=timezone.utc)) == [(berlin.id, date(2025, 3, 2))]
    assert gone.id not in [c for c, _ in await due(datetime(2025, 3, 1, 13, 0, tzinfo=timezone.utc))]


async def test_summary_recipients_are_reachable_present_leaders(session) -> None:
    shop, _ = await make_shop(session)
    await person(session, shop, 20, "Lee")
    await person(session, shop, 21, "Quiet", can_dm=False)
    await person(session, shop, 22, "Gone")
    await communities.set_leaders(session, community_id=shop.id, now=T0, admins=[
        Profile(LEADER, "Alice"), Profile(20, "Lee"), Profile(21, "Quiet"), Profile(22, "Gone")])
    member = await members.get(session, community_id=shop.id, user_id=22)
    member.status = MemberStatus.LEFT
    await session.commit()
    assert [u.id for u in await order_reports.summary_recipients(session, community_id=shop.id)] == [LEADER, 20]


async def test_the_daily_claim_is_taken_once(engine, session) -> None:
    from bot.core.db import session_factory

    factory = session_factory(engine)

    async def claim() -> bool:
        async with factory() as s:
            won = await job_marks.claim(s, job="daily_summary", key="1:2025-03-01", now=T0)
            await s.commit()
            return won

    results = await asyncio.gather(*(claim() for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    assert await claim() is False


# --- coupons: form helpers, checkout, member list ----------------------------------------------------

def test_parse_percent() -> None:
    assert coupons.parse_percent(" 15 ") == 15 and coupons.parse_percent("100%") == 100
    for bad in ("0", "101", "abc", "12.5", "-5", ""):
        with pytest.raises(DomainError) as err:
            coupons.parse_percent(bad)
        assert err.value.code == "coupon_percent_range"


def test_parse_expiry_ends_with_the_local_day() -> None:
    now = datetime(2025, 3, 1, 17, 0, tzinfo=timezone.utc)  # already the 2nd, 01:00, in Shanghai
    assert coupons.parse_expiry("7", tz="Asia/Shanghai", now=now) == datetime(2025, 3, 9, 15, 59, 59, 999999, tzinfo=timezone.utc)
    assert coupons.parse_expiry("2025-03-02", tz="Asia/Shanghai", now=now) == datetime(2025, 3, 2, 15, 59, 59, 999999, tzinfo=timezone.utc)
    with pytest.raises(DomainError) as err:
        coupons.parse_expiry("2025-03-01", tz="Asia/Shanghai", now=now)
    assert err.value.code == "coupon_expiry_past"
    for bad in ("0", "next week", "2025-13-01", "99999"):
        with pytest.raises(DomainError) as err:
            coupons.parse_expiry(bad, tz="UTC", now=now)
        assert err.value.code == "coupon_expiry_format" and err.value.params["value"] == bad


async def test_resolve_owner_and_new_codes(session) -> None:
    shop, _ = await make_shop(session)
    other, _ = await make_shop(session, chat_id=-200, title="Other")
    await person(session, shop, 10, "Bob", username="Bob_Chen")
    await person(session, other, 11, "Carol", username="carol")
    await person(session, shop, 12, "Dan", username="dan")
    member = await members.get(session, community_id=shop.id, user_id=12)
    member.status = MemberStatus.LEFT
    await session.commit()
    assert (await coupons.resolve_owner(session, community_id=shop.id, raw="@bob_chen")).id == 10
    assert (await coupons.resolve_owner(session, community_id=shop.id, raw=" 10 ")).id == 10
    for raw in ("@carol", "11", "@dan", "@nobody", "@", "999"):
        with pytest.raises(DomainError) as err:
            await coupons.resolve_owner(session, community_id=shop.id, raw=raw)
        assert err.value.code == "coupon_owner_unknown"
    await coupons.issue(session, community_id=shop.id, spec=CouponSpec(kind=CouponKind.FIXED, value=100, code="SPRING"),
                        actor_id=LEADER, now=T0)
    assert await coupons.check_new_code(session, community_id=shop.id, raw=" summer-25 ") == "SUMMER-25"
    assert await coupons.check_new_code(session, community_id=other.id, raw="spring") == "SPRING"
    for raw, code in (("spring", "coupon_code_taken"), ("no way!", "coupon_code_format"), ("优惠", "coupon_code_format"),
                      ("X" * 33, "coupon_code_format")):
        with pytest.raises(DomainError) as err:
            await coupons.check_new_code(session, community_id=shop.id, raw=raw)
        assert err.value.code == code


async def test_a_coupon_works_at_checkout_and_is_refused_for_each_reason(session) -> None:
    shop, (north, _south) = await make_shop(session)
    other, _ = await make_shop(session, chat_id=-200, title="Other")
    bob, carol = await person(session, shop, 10, "Bob"), await person(session, shop, 11, "Carol")
    apples = await make_product(session, shop, price=1000)

    async def issue(code: str, **spec) -> Coupon:
        spec = {"kind": CouponKind.PERCENT, "value": 20} | spec
        return await coupons.issue(session, community_id=shop.id, spec=CouponSpec(code=code, **spec), actor_id=LEADER, now=T0)

    await issue("TWENTY", cap=300, min_spend=1500, expires_at=T0 + timedelta(days=1))
    await issue("BOBS", kind=CouponKind.FIXED, value=250, owner_id=bob)
    await coupons.issue(session, community_id=other.id, spec=CouponSpec(kind=CouponKind.FIXED, value=1, code="ELSEWHERE"),
                        actor_id=LEADER, now=T0)

    async def refusal(code: str, *, user: int = bob, qty: int = 2, now: datetime = T0) -> str:
        with pytest.raises(DomainError) as err:
            await orders.quote(session, community=shop, product_id=apples.id, user_id=user, quantity=qty, coupon_code=code, now=now)
        return err.value.code

    quote = await orders.quote(session, community=shop, product_id=apples.id, user_id=bob, quantity=2, coupon_code="twenty", now=T0)
    assert (quote.subtotal, quote.discount, quote.total) == (2000, 300, 1700)  # 20 % capped at 3.00
    assert await refusal("TWENTY", qty=1) == "coupon_below_minimum"
    assert await refusal("TWENTY", now=T0 + timedelta(days=2)) == "coupon_expired"
    assert await refusal("BOBS", user=carol) == "coupon_not_yours"
    assert await refusal("ELSEWHERE") == "coupon_other_community"
    assert await refusal("NOPE") == "coupon_unknown"

    order = await place(session, shop, apples, bob, qty=2, point=north, coupon="TWENTY")
    assert (order.discount, order.total) == (300, 1700)
    assert await refusal("TWENTY", user=carol) == "coupon_used"  # single use: one redemption in all
    with pytest.raises(DomainError) as err:
        await place(session, shop, apples, carol, qty=2, point=north, coupon="TWENTY")
    assert err.value.code == "coupon_used"

    # A cancelled order gives its coupon back while it is valid; an expired one stays unusable.
    await orders.cancel(session, order=order, reason="leader", actor_id=LEADER, now=T0)
    assert (await orders.quote(session, community=shop, product_id=apples.id, user_id=carol, quantity=2,
                               coupon_code="TWENTY", now=T0)).discount == 300
    assert await refusal("TWENTY", user=carol, now=T0 + timedelta(days=2)) == "coupon_expired"

    # Once per member: each member once.
    await issue("EVERYONE", kind=CouponKind.FIXED, value=100, single_use=False)
    await place(session, shop, apples, bob, point=north, coupon="EVERYONE")
    assert await refusal("EVERYONE") == "coupon_used"
    assert (await place(session, shop, apples, carol, point=north, coupon="EVERYONE")).discount == 100


async def test_member_coupons_across_communities(session) -> None:
    shop, (north, _) = await make_shop(session, title="Green Valley")
    other, _ = await make_shop(session, chat_id=-200, title="Apple Street")
    left, _ = await make_shop(session, chat_id=-300, title="Left Behind")
    bob, carol = await person(session, shop, 10, "Bob"), await person(session, shop, 11, "Carol")
    await members.ensure(session, community_id=other.id, user_id=bob, now=T0)
    await members.ensure(session, community_id=left.id, user_id=bob, now=T0)
    (await members.get(session, community_id=left.id, user_id=bob)).status = MemberStatus.LEFT
    await session.commit()

    async def issue(community: Community, code: str, **spec) -> None:
        spec = {"kind": CouponKind.FIXED, "value": 100} | spec
        await coupons.issue(session, community_id=community.id, spec=CouponSpec(code=code, **spec), actor_id=LEADER, now=T0)

    await issue(shop, "MINE", owner_id=bob)
    await issue(shop, "OPEN", single_use=False, expires_at=T0 + timedelta(days=3))
    await issue(shop, "CAROLS", owner_id=carol)
    await issue(shop, "OLD", expires_at=T0 + timedelta(hours=1))
    await issue(shop, "SPENT")
    await issue(other, "STREET")
    await issue(left, "GONE")
    await place(session, shop, await make_product(session, shop), carol, point=north, coupon="SPENT")
    listed = await coupons.member_coupons(session, user_id=bob, now=T0 + timedelta(hours=2))
    assert [(c.title, coupon.code) for c, coupon in listed] == [("Apple Street", "STREET"), ("Green Valley", "OPEN"),
                                                               ("Green Valley", "MINE")]
    assert await coupons.member_coupons(session, user_id=999, now=T0) == []


# --- shop options -------------------------------------------------------------------------------------

def test_shop_option_parsing() -> None:
    assert option_bounds("stars_per_unit") == (1, 10_000) and option_bounds("cancel_hours") == (0, 720)
    assert parse_option_number("unpaid_minutes", " 45 ") == 45 and parse_option_number("cancel_hours", "0") == 0
    for key, raw in (("unpaid_minutes", "4"), ("unpaid_minutes", "abc"), ("stars_per_unit", "0"), ("cancel_hours", "-1"),
                     ("post_grace_minutes", "1441")):
        with pytest.raises(DomainError) as err:
            parse_option_number(key, raw)
        assert err.value.code == "shop_setting_number" and err.value.params["value"] == raw
    assert parse_summary_time("21:00") == "21:00" and parse_summary_time("7:05") == "07:05"
    assert parse_summary_time("Off") is None and parse_summary_time("关闭") is None
    for bad in ("25:00", "21", "noon", "21:60", "2100"):
        with pytest.raises(DomainError) as err:
            parse_summary_time(bad)
        assert err.value.code == "shop_setting_time"


async def test_shop_options_persist_and_are_audited(session, fresh, audit_rows) -> None:
    shop, _ = await make_shop(session, points=())
    await update_shop_settings(session, community=shop, actor_id=LEADER, now=T0, summary_time="21:00", cancel_hours=0)
    await update_shop_settings(session, community=shop, actor_id=LEADER, now=T0, summary_time="21:00")  # no change
    async with fresh() as s:
        stored = shop_settings(await s.get(Community, shop.id))
    assert (stored.summary_time, stored.cancel_hours, stored.stars_per_unit) == ("21:00", 0, 7)
    entries = [(e.action, e.details) for e in await audit_rows() if e.action in ("shop.summary_time", "shop.cancel_hours")]
    assert entries == [("shop.summary_time", {"from": None, "to": "21:00"}), ("shop.cancel_hours", {"from": 24, "to": 0})]
    with pytest.raises(DomainError) as err:
        await update_shop_settings(session, community=shop, actor_id=LEADER, now=T0, summary_time="25:00")
    assert err.value.code == "shop_setting_invalid"
    async with fresh() as s:
        assert (await s.exec(select(Community.id))).all() == [shop.id]
