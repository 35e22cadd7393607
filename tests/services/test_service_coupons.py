"""bot.services.coupons on a real database: issuing, finding, checking, discount math, redemption
under concurrency, and giving a coupon back when its order is cancelled."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from shop_builders import LEADER, Shop, buy, buy_in, make_product, make_shop, make_users, order_rows, product_row
from sqlmodel import select

from bot.services import coupons, members, orders
from bot.services.coupons import CODE_ALPHABET, CouponSpec
from bot.services.errors import DomainError
from models import Coupon, CouponKind, CouponRedemption, Order

BUYER, OTHER = 100, 200


@pytest.fixture
async def shop(session, t0) -> Shop:
    shop = await make_shop(session, now=t0)
    await make_users(session, [BUYER, OTHER], now=t0)
    return shop


def spec(**kw) -> CouponSpec:
    return CouponSpec(**({"kind": CouponKind.FIXED, "value": 500} | kw))


async def issue(session, shop, now, **kw) -> Coupon:
    return await coupons.issue(session, community_id=shop.id, spec=spec(**kw), actor_id=LEADER, now=now)


# ----- issuing ----------------------------------------------------------------------------------

async def test_issue_stores_the_coupon_and_audits(session, fresh, shop, t0, audit_rows):
    expires = t0 + timedelta(days=7)
    coupon = await issue(session, shop, t0, kind=CouponKind.PERCENT, value=15, cap=1000, min_spend=3000,
                         expires_at=expires, single_use=False, owner_id=BUYER, code=" spring  25 ")
    async with fresh() as s:
        row = await s.get(Coupon, coupon.id)
    assert (row.code, row.kind, row.value, row.cap, row.min_spend, row.expires_at, row.single_use, row.owner_id,
            row.uses, row.created_by) == ("SPRING25", "percent", 15, 1000, 3000, expires, False, BUYER, 0, LEADER)
    [entry] = await audit_rows("coupon.issue")
    assert entry.details == {"id": coupon.id, "code": "SPRING25", "kind": "percent", "value": 15, "source": "manual"}


async def test_generated_codes_are_readable_and_distinct(session, shop, t0):
    made = [await issue(session, shop, t0) for _ in range(20)]
    codes = {c.code for c in made}
    assert len(codes) == 20
    assert all(len(code) == 8 and set(code) <= set(CODE_ALPHABET) for code in codes)


@pytest.mark.parametrize("change, code", [
    ({"kind": CouponKind.PERCENT, "value": 0}, "coupon_percent_range"),
    ({"kind": CouponKind.PERCENT, "value": 101}, "coupon_percent_range"),
    ({"value": 0}, "coupon_value_zero"),
    ({"value": -100}, "coupon_value_zero"),
    ({"kind": CouponKind.PERCENT, "value": 10, "cap": 0}, "coupon_value_zero"),
    ({"expires_at": "now"}, "coupon_expiry_past"),
    ({"code": "x" * 33}, "coupon_code_format"),
    ({"code": "SAVE!"}, "coupon_code_format"),
    ({"code": "  "}, "coupon_code_format"),
])
async def test_issue_refusals_write_nothing(session, shop, t0, count, change, code):
    if change.get("expires_at") == "now":
        change["expires_at"] = t0
    with pytest.raises(DomainError) as exc:
        await issue(session, shop, t0, **change)
    assert exc.value.code == code
    assert await count(Coupon) == 0


async def test_codes_are_unique_per_community(session, fresh, shop, t0, count):
    other = await make_shop(session, now=t0, chat_id=-999)
    await issue(session, shop, t0, code="SAVE5")
    with pytest.raises(DomainError) as exc:
        await issue(session, shop, t0, code="save5")
    assert (exc.value.code, exc.value.params) == ("coupon_code_taken", {"code": "SAVE5"})
    # The refusal left the session usable, and another community may use the same code.
    assert (await issue(session, shop, t0, code="SAVE6")).code == "SAVE6"
    assert (await issue(session, other, t0, code="SAVE5")).community_id == other.id
    assert await count(Coupon) == 3


async def test_concurrent_issues_of_one_code_make_one_coupon(session, fresh, shop, t0, count):
    async def attempt():
        async with fresh() as s:
            try:
                await coupons.issue(s, community_id=shop.id, spec=spec(code="RACE"), actor_id=LEADER, now=t0)
                return "ok"
            except DomainError as err:
                return err.code

    assert sorted(await asyncio.gather(*(attempt() for _ in range(5)))) == ["coupon_code_taken"] * 4 + ["ok"]
    assert await count(Coupon) == 1


async def test_issue_without_commit_is_part_of_the_callers_transaction(session, shop, t0, count):
    """A later feature issues a reward coupon together with its own rows: if it rolls back, no
    coupon is left behind (on SQLite as well as PostgreSQL)."""
    community_id = shop.id  # the rollback below expires what the session loaded
    await coupons.issue(session, community_id=community_id, spec=spec(code="REWARD"), actor_id=None, now=t0, commit=False)
    await session.rollback()
    assert await count(Coupon) == 0
    await coupons.issue(session, community_id=community_id, spec=spec(code="REWARD"), actor_id=None, now=t0, commit=False)
    await session.commit()
    assert await count(Coupon) == 1


# ----- finding and checking ---------------------------------------------------------------------

async def test_find(session, shop, t0):
    other = await make_shop(session, now=t0, chat_id=-999)
    mine = await issue(session, shop, t0, code="BOTH")
    await issue(session, other, t0, code="BOTH")
    await issue(session, other, t0, code="THEIRS")

    assert (await coupons.find(session, community_id=shop.id, code=" both ")).id == mine.id
    for raw, code in (("theirs", "coupon_other_community"), ("NOPE", "coupon_unknown")):
        with pytest.raises(DomainError) as exc:
            await coupons.find(session, community_id=shop.id, code=raw)
        assert (exc.value.code, exc.value.params) == (code, {"code": raw.upper()})


async def _check_code(session, coupon, *, user_id=BUYER, subtotal=10_000, now) -> str | int:
    try:
        return await coupons.check(session, coupon, user_id=user_id, subtotal=subtotal, now=now)
    except DomainError as err:
        return err.code


async def test_check_refusals(session, shop, t0):
    product = await make_product(session, shop, now=t0, price=1000, stock=50)
    expiring = await issue(session, shop, t0, expires_at=t0 + timedelta(hours=1))
    personal = await issue(session, shop, t0, owner_id=BUYER)
    minimum = await issue(session, shop, t0, min_spend=5000)
    single = await issue(session, shop, t0, code="ONCE")
    shared = await issue(session, shop, t0, code="EVERYONE", single_use=False)
    await buy(session, shop, user_id=BUYER, product=product, now=t0, coupon_code="ONCE")
    await buy(session, shop, user_id=BUYER, product=product, now=t0, coupon_code="EVERYONE")

    assert await _check_code(session, expiring, now=t0 + timedelta(minutes=59)) == 500
    assert await _check_code(session, expiring, now=t0 + timedelta(hours=1)) == "coupon_expired"
    assert await _check_code(session, personal, user_id=OTHER, now=t0) == "coupon_not_yours"
    assert await _check_code(session, personal, user_id=BUYER, now=t0) == 500
    assert await _check_code(session, minimum, subtotal=4999, now=t0) == "coupon_below_minimum"
    assert await _check_code(session, minimum, subtotal=5000, now=t0) == 500
    await session.refresh(single)
    assert await _check_code(session, single, user_id=OTHER, now=t0) == "coupon_used"
    assert await _check_code(session, shared, user_id=BUYER, now=t0) == "coupon_used"  # once per member
    assert await _check_code(session, shared, user_id=OTHER, now=t0) == 500


@pytest.mark.parametrize("kind, value, cap, subtotal, off", [
    (CouponKind.PERCENT, 10, None, 2500, 250),
    (CouponKind.PERCENT, 15, None, 999, 149),      # rounded down: never more than the percentage
    (CouponKind.PERCENT, 50, 1000, 5000, 1000),    # capped
    (CouponKind.PERCENT, 50, 1000, 1500, 750),     # under the cap
    (CouponKind.PERCENT, 100, None, 1234, 1234),
    (CouponKind.FIXED, 500, None, 2000, 500),
    (CouponKind.FIXED, 5000, None, 2000, 2000),    # never below zero
])
def test_discount_math(kind, value, cap, subtotal, off):
    assert coupons.discount_for(Coupon(community_id=1, code="X", kind=kind, value=value, cap=cap), subtotal) == off


async def test_a_fixed_coupon_above_the_subtotal_makes_a_free_order(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, price=300, stock=5)
    await issue(session, shop, t0, code="BIG", value=1000)
    order = (await buy(session, shop, user_id=BUYER, product=product, now=t0, coupon_code="BIG")).order
    assert (order.discount, order.total) == (300, 0)


# ----- redeeming --------------------------------------------------------------------------------

async def test_single_use_coupon_raced_by_two_orders(session, fresh, shop, t0, count):
    """Two members confirm with the same single-use code at the same moment: one order gets it,
    the other is refused and takes no stock."""
    product = await make_product(session, shop, now=t0, price=1000, stock=10)
    await issue(session, shop, t0, code="ONLYONE")

    async def confirm(user_id):
        try:
            return await buy_in(fresh, shop, user_id=user_id, product=product, now=t0, coupon_code="ONLYONE")
        except DomainError as err:
            return err.code

    results = await asyncio.gather(confirm(BUYER), confirm(OTHER))
    placed = [r for r in results if isinstance(r, orders.Placed)]
    assert len(placed) == 1 and [r for r in results if isinstance(r, str)] == ["coupon_used"]
    async with fresh() as s:
        coupon = (await s.exec(select(Coupon))).one()
        redemptions = list(await s.exec(select(CouponRedemption)))
    assert coupon.uses == 1
    assert [(r.order_id, r.coupon_id) for r in redemptions] == [(placed[0].order.id, coupon.id)]
    assert (await product_row(fresh, product.id)).stock == 9
    assert await count(Order) == 1


async def test_shared_coupon_one_member_twice_at_once(session, fresh, shop, t0):
    """A shared code is once per member: two checkouts of one member with it, at once, get it once."""
    product = await make_product(session, shop, now=t0, price=1000, stock=10)
    await issue(session, shop, t0, code="TEAM", single_use=False)

    async def confirm(user_id):
        try:
            return (await buy_in(fresh, shop, user_id=user_id, product=product, now=t0, coupon_code="TEAM")).order.id
        except DomainError as err:
            return err.code

    mine = await asyncio.gather(confirm(BUYER), confirm(BUYER), confirm(BUYER))
    assert sorted(r for r in mine if isinstance(r, str)) == ["coupon_used", "coupon_used"]
    assert isinstance(await confirm(OTHER), int)
    async with fresh() as s:
        assert (await s.exec(select(Coupon))).one().uses == 2
        assert sorted(r.user_id for r in await s.exec(select(CouponRedemption))) == [BUYER, OTHER]
    assert (await product_row(fresh, product.id)).stock == 8


async def test_release_on_cancel_makes_the_coupon_usable_again(session, fresh, shop, t0):
    product = await make_product(session, shop, now=t0, price=1000, stock=10)
    await issue(session, shop, t0, code="TEAM", single_use=False)
    first = (await buy(session, shop, user_id=BUYER, product=product, now=t0, coupon_code="TEAM")).order
    await orders.cancel(session, order=first, reason="member", actor_id=BUYER, now=t0, by_member=True)
    async with fresh() as s:
        assert (await s.exec(select(Coupon))).one().uses == 0
        assert list(await s.exec(select(CouponRedemption))) == []
    again = (await buy(session, shop, user_id=BUYER, product=product, now=t0, coupon_code="TEAM")).order
    assert again.discount == 500
    assert [o.status for o in await order_rows(fresh)] == ["cancelled", "pending_payment"]


# ----- what a member sees -------------------------------------------------------------------------

async def test_for_member_lists_usable_coupons_soonest_expiry_first(session, shop, t0):
    other = await make_shop(session, now=t0, chat_id=-999)
    product = await make_product(session, shop, now=t0, price=1000, stock=10)
    for community_id in (shop.id, other.id):
        await members.ensure(session, community_id=community_id, user_id=BUYER, now=t0)
    await session.commit()
    forever = await issue(session, shop, t0, code="FOREVER", single_use=False)
    soon = await issue(session, shop, t0, code="SOON", expires_at=t0 + timedelta(days=1))
    later = await issue(session, shop, t0, code="LATER", owner_id=BUYER, expires_at=t0 + timedelta(days=5))
    await issue(session, shop, t0, code="GONE", expires_at=t0 + timedelta(minutes=1))
    await issue(session, shop, t0, code="NOTMINE", owner_id=OTHER)
    await issue(session, shop, t0, code="USED")
    await issue(session, shop, t0, code="SHAREDUSED", single_use=False)
    elsewhere = await issue(session, other, t0, code="ELSEWHERE")
    await buy(session, shop, user_id=OTHER, product=product, now=t0, coupon_code="USED")
    await buy(session, shop, user_id=BUYER, product=product, now=t0, coupon_code="SHAREDUSED")

    now = t0 + timedelta(hours=1)
    usable = await coupons.for_member(session, community_ids=[shop.id], user_id=BUYER, now=now)
    assert [c.code for c in usable] == [soon.code, later.code, forever.code]  # never-expiring last
    listed = await coupons.member_coupons(session, user_id=BUYER, now=now)
    assert {c.code for _, c in listed} == {soon.code, later.code, forever.code, elsewhere.code}
