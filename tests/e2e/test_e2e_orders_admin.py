"""/admin → Orders against the real bot and the emulator: filters and pages, marking one order and
every order at a pickup point (buyers told in private, unless they never started the bot),
cancelling with refunds, forged presses, pick lists, the CSV export, and the daily summary job.

Products and orders are made through the services (the member checkout is tested elsewhere), so
each test starts at the leader's first press.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html import unescape

from e2e_harness import E2E, Group, en, zh
from sqlmodel import select

from bot.sandbox import SimUser
from bot.sandbox.state import SimPayment
from bot.services import coupons, orders, products, settings, users
from bot.services.coupons import CouponSpec
from bot.services.money import format_money
from bot.services.products import ProductDraft
from bot.services.shop_settings import update_shop_settings
from bot.views.keyboards import AdminOrders, CouponAdmin, CouponOp, OrdersOp, ShopOp, ShopOption
from models import Community
from models.shop import Coupon, CouponKind, Order, OrderStatus, PaymentMethod, Product

_TAG = re.compile(r"<[^>]+>")
NOT_LEADER = "Only this community's leaders can do that."
CANT_CHANGE = "This order can no longer be changed."


def see(msgid: str, **kwargs: object) -> str:
    """An English message as the reader sees it (markup stripped)."""
    return unescape(_TAG.sub("", en(msgid, **kwargs)))


def usd(amount: int) -> str:
    return format_money(amount, "USD", "en")


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Shop:
    group: Group
    cid: int
    points: dict[str, int]
    goods: dict[str, Product]


async def open_shop(e2e: E2E, group: Group, *, points: tuple[str, ...] = ("North Gate", "South Gate"),
                    goods: tuple[tuple[str, int], ...] = (("Apples", 500), ("Pears", 300)), stock: int | None = 50,
                    **options) -> Shop:
    async with e2e.db() as s:
        community = await s.get(Community, group.community_id)
        ids = {}
        for name in points:
            ids[name] = (await settings.add_pickup_point(s, community_id=community.id, actor_id=group.leader.id,
                                                         raw_name=name, now=now())).id
        options = {"stars_enabled": True, "stars_per_unit": 7, "delivery_enabled": True} | options
        await update_shop_settings(s, community=community, actor_id=group.leader.id, now=now(), **options)
        made = {}
        for title, price in goods:
            made[title] = await products.create(s, community=community, actor_id=group.leader.id, now=now(),
                                                draft=ProductDraft(title=title, description="", price=price, stock=stock,
                                                                   per_member_limit=None))
    return Shop(group, group.community_id, ids, made)


async def place(e2e: E2E, shop: Shop, user: SimUser | int, product: str = "Apples", *, qty: int = 1,
                point: str | None = "North Gate", address: str | None = None, method: PaymentMethod = PaymentMethod.PICKUP,
                paid: bool = False, coupon: str | None = None, at: datetime | None = None) -> Order:
    """An order as the checkout places it; `paid` also records the payment (Telegram's, for online ones)."""
    uid = user if isinstance(user, int) else user.id
    at = at or now()
    async with e2e.db() as s:
        community = await s.get(Community, shop.cid)
        item = shop.goods[product]
        order = (await orders.place(s, community=community, user_id=uid, product_id=item.id, quantity=qty,
                                    unit_price=item.price, payment_method=method, checkout_key=f"t{uid}-{at.timestamp()}-{item.id}-{qty}-{point}",
                                    now=at, pickup_point_id=shop.points[point] if point and not address else None,
                                    delivery_address=address, coupon_code=coupon)).order
        if paid and method == PaymentMethod.PICKUP:
            await orders.leader_mark(s, order=order, to=OrderStatus.PAID, actor_id=shop.group.leader.id, now=at)
        elif paid:
            stars = method == PaymentMethod.STARS
            charge = f"{'stx' if stars else 'tg'}{order.id:024d}"
            amount, currency = (order.stars_total, "XTR") if stars else (order.total, order.currency)
            e2e.emu.payments[charge] = SimPayment(charge, "" if stars else f"provider_{order.id}", uid, uid, currency,
                                                  amount, f"order-{order.id}")
            await orders.record_payment(s, order_id=order.id, user_id=uid, currency=currency, amount=amount,
                                        telegram_charge_id=charge, provider_charge_id=None if stars else f"provider_{order.id}", now=at)
        return order


async def order_row(e2e: E2E, order_id: int) -> Order:
    async with e2e.db() as s:
        return await s.get(Order, order_id)


async def statuses(e2e: E2E) -> dict[int, str]:
    async with e2e.db() as s:
        return {o.id: o.status for o in await s.exec(select(Order).order_by(Order.id))}


def line(order: Order, buyer: str, title: str, status: str) -> str:
    return f"#{order.id} · {buyer} · {title} × {order.quantity} · {usd(order.total)} · {en(status)}"


async def open_orders(e2e: E2E, leader: SimUser) -> None:
    await e2e.say(leader, "/admin")
    await e2e.press(leader, en("🧾 Orders"))


def data(shop: Shop, op: OrdersOp, **fields) -> str:
    return AdminOrders(community_id=shop.cid, op=op, **fields).pack()


# --- the list, filters and pages --------------------------------------------------------------------

async def test_list_filters_and_pages(e2e: E2E, group: Group) -> None:
    alice, bob, carol = group.leader, *group.members
    shop = await open_shop(e2e, group)
    bobs = [await place(e2e, shop, bob, at=now() - timedelta(minutes=30 - n)) for n in range(11)]
    pears = await place(e2e, shop, carol, "Pears", qty=2, point="South Gate", paid=True)
    await open_orders(e2e, alice)
    view = e2e.last_msg(alice)
    assert view.visible.splitlines() == [
        see("<b>Orders · {title}</b>", title="Green Valley"),
        en("State: {state} · Product: {product} · Place: {place}", state=en("Open"), product=en("All"), place=en("All")),
        en("{total} orders · page {page} of {pages}", total=12, page=1, pages=2),
        line(pears, "Carol", "Pears", "paid"),
        *[line(o, "Bob", "Apples", "awaiting payment") for o in reversed(bobs[2:])],
    ]
    assert view.buttons == [
        [en("State ▾"), en("Product ▾"), en("Place ▾")],
        [f"#{pears.id}", *[f"#{o.id}" for o in reversed(bobs[7:])]],
        [f"#{o.id}" for o in reversed(bobs[2:7])],
        [en("Older ›")],
        [en("📋 Pick list"), en("⬇️ CSV")],
        [en("« Back")],
    ]
    await e2e.press(alice, en("Older ›"))
    assert e2e.last(alice).splitlines()[2:] == [
        en("{total} orders · page {page} of {pages}", total=12, page=2, pages=2),
        *[line(o, "Bob", "Apples", "awaiting payment") for o in reversed(bobs[:2])]]
    assert [en("‹ Newer")] in e2e.last_msg(alice).buttons

    await e2e.press(alice, en("State ▾"))
    assert e2e.last(alice) == en("Show orders in which state?")
    assert e2e.last_msg(alice).buttons[0] == ["✓ " + en("Open"), en("Awaiting payment")]
    await e2e.press(alice, en("Paid"))
    assert e2e.last(alice).splitlines()[1:] == [
        en("State: {state} · Product: {product} · Place: {place}", state=en("Paid"), product=en("All"), place=en("All")),
        en("{total} orders · page {page} of {pages}", total=1, page=1, pages=1),
        line(pears, "Carol", "Pears", "paid")]

    await e2e.press(alice, en("State ▾"))
    await e2e.press(alice, en("Picked up"))
    assert e2e.last(alice).splitlines()[-1] == en("No orders match.")
    await e2e.press(alice, en("State ▾"))
    await e2e.press(alice, en("All states"))
    await e2e.press(alice, en("Product ▾"))
    assert e2e.last_msg(alice).buttons == [["✓ " + en("All products"), "#2 Pears"], ["#1 Apples"], [en("« Back")]]
    await e2e.press(alice, "#2 Pears")
    assert e2e.last(alice).splitlines()[1] == en("State: {state} · Product: {product} · Place: {place}",
                                                 state=en("All states"), product="#2 Pears", place=en("All"))
    await e2e.press(alice, en("Product ▾"))
    await e2e.press(alice, en("All products"))
    await e2e.press(alice, en("Place ▾"))
    assert e2e.last_msg(alice).buttons == [["✓ " + en("All places"), "North Gate"], ["South Gate", en("Delivery")], [en("« Back")]]
    await e2e.press(alice, "South Gate")
    view = e2e.last_msg(alice)
    assert view.visible.splitlines()[-1] == line(pears, "Carol", "Pears", "paid")
    assert view.buttons[-3:] == [[en("✅ Mark all here fulfilled")], [en("📦 Mark all here picked up")], [en("« Back")]]
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice).splitlines()[0] == "Green Valley"


# --- one order ---------------------------------------------------------------------------------------

async def test_marking_one_order_tells_the_buyer_who_started_the_bot(e2e: E2E, group: Group) -> None:
    alice, bob, carol = group.leader, *group.members
    shop = await open_shop(e2e, group)
    await e2e.say(bob, "/start")
    bobs = await place(e2e, shop, bob, qty=2)
    carols = await place(e2e, shop, carol, "Pears", point="South Gate")
    await open_orders(e2e, alice)
    await e2e.press(alice, f"#{bobs.id}")
    view = e2e.last_msg(alice)
    assert view.visible.splitlines()[:5] == [
        see("<b>Order #{id}</b> · {state}", id=bobs.id, state=en("awaiting payment")),
        en("Buyer: {name}", name=f"Bob @{bob.username}"),
        en("#{number} {title} × {qty} at {price}", number=1, title="Apples", qty=2, price=usd(500)),
        en("Total: {amount} · {method}", amount=usd(1000), method=en("pay at pickup")),
        en("Pickup: {place}", place="North Gate"),
    ]
    assert view.buttons == [[en("💵 Mark paid")], [en("✅ Mark fulfilled")], [en("✖ Cancel order")], [en("« Back to the list")]]
    before = len(e2e.emu.bot_messages(bob))

    answer = e2e.answer(await e2e.press(alice, en("💵 Mark paid")))
    assert answer.text == en("Marked paid.")
    assert e2e.last(alice).splitlines()[0] == see("<b>Order #{id}</b> · {state}", id=bobs.id, state=en("paid"))
    assert e2e.last_msg(alice).buttons == [[en("✅ Mark fulfilled")], [en("📦 Mark picked up")], [en("✖ Cancel order")],
                                           [en("« Back to the list")]]
    row = await order_row(e2e, bobs.id)
    assert row.status == OrderStatus.PAID and row.paid_at is not None
    assert e2e.last(bob) == "\n".join([en("Order #{id} · {title} × {qty} · {amount}", id=bobs.id, title="Apples", qty=2,
                                          amount=usd(1000)),
                                       en("Payment received. Thank you!"), en("Pickup: {place}", place="North Gate")])
    await e2e.press(alice, en("✅ Mark fulfilled"))
    await e2e.press(alice, en("📦 Mark picked up"))
    row = await order_row(e2e, bobs.id)
    assert row.status == OrderStatus.PICKED_UP and row.fulfilled_at and row.picked_up_at
    assert e2e.last(bob).splitlines()[1] == en("Your order was picked up. Enjoy!")
    assert len(e2e.emu.bot_messages(bob)) == before + 3
    assert [a.action for a in await e2e.audit(shop.cid) if a.action.startswith("order.")] == [
        "order.paid", "order.fulfilled", "order.picked_up"]
    assert e2e.last_msg(alice).buttons == [[en("« Back to the list")]]

    # A stale or doubled press changes nothing and tells the member nothing.
    answer = e2e.answer(await e2e.press_data(alice, data(shop, OrdersOp.MARK_PAID, order_id=bobs.id)))
    assert answer.text == en(CANT_CHANGE) and answer.show_alert
    assert (await order_row(e2e, bobs.id)).status == OrderStatus.PICKED_UP
    assert len(e2e.emu.bot_messages(bob)) == before + 3

    # Carol never started the bot: her order moves, and nobody writes to her.
    await e2e.press(alice, en("« Back to the list"))
    await e2e.press(alice, f"#{carols.id}")
    await e2e.press(alice, en("✅ Mark fulfilled"))
    assert (await order_row(e2e, carols.id)).status == OrderStatus.FULFILLED
    assert e2e.emu.bot_messages(carol) == []
    assert not (await e2e.user_row(carol)).can_dm


async def test_bulk_marks_at_one_pickup_point(e2e: E2E, group: Group) -> None:
    alice, bob, carol = group.leader, *group.members
    shop = await open_shop(e2e, group)
    await e2e.say(bob, "/start")
    unpaid = await place(e2e, shop, bob)
    paid = await place(e2e, shop, carol, "Pears", paid=True)
    stars = await place(e2e, shop, bob, "Pears", method=PaymentMethod.STARS, paid=True)
    waiting = await place(e2e, shop, bob, method=PaymentMethod.STARS)  # Telegram has not paid it yet
    south = await place(e2e, shop, bob, point="South Gate", paid=True)
    await open_orders(e2e, alice)
    await e2e.press(alice, en("Place ▾"))
    await e2e.press(alice, "North Gate")
    before = len(e2e.emu.bot_messages(bob))

    await e2e.press(alice, en("✅ Mark all here fulfilled"))
    assert e2e.last(alice) == en("Mark {count} orders at {place} as {state}? Each buyer gets a message.",
                                 count=3, place="North Gate", state=en("fulfilled"))
    assert e2e.last_msg(alice).buttons == [[en("Yes, mark {count}", count=3)], [en("« Back")]]
    late = await place(e2e, shop, carol)  # placed while the leader reads the question: not counted, not marked
    answer = e2e.answer(await e2e.press(alice, en("Yes, mark {count}", count=3)))
    assert answer.text == en("{count} orders at {place} marked {state}.", count=3, place="North Gate", state=en("fulfilled"))
    assert await statuses(e2e) == {unpaid.id: "fulfilled", paid.id: "fulfilled", stars.id: "fulfilled",
                                   waiting.id: "pending_payment", south.id: "paid", late.id: "pending_payment"}
    assert e2e.last(alice).splitlines()[1] == en("State: {state} · Product: {product} · Place: {place}",
                                                 state=en("Open"), product=en("All"), place="North Gate")
    assert len(e2e.emu.bot_messages(bob)) == before + 2  # two of Bob's; Carol never started the bot
    assert all(m.visible.splitlines()[1] == en("Your order is ready for pickup.") for m in e2e.emu.bot_messages(bob)[-2:])
    assert e2e.emu.bot_messages(carol) == []

    # The same confirmation again (a double tap) finds nothing left to move.
    answer = e2e.answer(await e2e.press_data(alice, data(shop, OrdersOp.BULK_FULFILLED_CONFIRM, place=shop.points["North Gate"],
                                                         order_id=late.id - 1)))
    assert answer.text == en("{count} orders at {place} marked {state}.", count=0, place="North Gate", state=en("fulfilled"))

    await e2e.press(alice, en("📦 Mark all here picked up"))
    assert e2e.last(alice).startswith(en("Mark {count} orders at {place} as {state}?", count=3, place="North Gate",
                                         state=en("picked up")))
    await e2e.press(alice, en("Yes, mark {count}", count=3))
    assert [s for s in (await statuses(e2e)).values()].count("picked_up") == 3
    answer = e2e.answer(await e2e.press(alice, en("📦 Mark all here picked up")))
    assert answer.text == en("No order at {place} can be marked {state} now.", place="North Gate", state=en("picked up"))
    assert answer.show_alert


# --- cancelling and refunds ----------------------------------------------------------------------------

async def test_cancel_refunds_stars_at_once_and_card_payments_by_hand(e2e: E2E, group: Group) -> None:
    alice, bob, _carol = group.leader, *group.members
    shop = await open_shop(e2e, group, goods=(("Apples", 500),))
    await e2e.say(bob, "/start")
    async with e2e.db() as s:
        coupon = await coupons.issue(s, community_id=shop.cid, spec=CouponSpec(kind=CouponKind.FIXED, value=100, code="BOB1",
                                                                                owner_id=bob.id), actor_id=None, now=now())
    with_coupon = await place(e2e, shop, bob, qty=2, coupon="BOB1")
    stars = await place(e2e, shop, bob, method=PaymentMethod.STARS, paid=True)
    card = await place(e2e, shop, bob, method=PaymentMethod.PROVIDER, paid=True)
    await open_orders(e2e, alice)

    await e2e.press(alice, f"#{stars.id}")
    await e2e.press(alice, en("✖ Cancel order"))
    assert e2e.last(alice).startswith(en("Cancel order #{id}?", id=stars.id))
    assert e2e.last_msg(alice).buttons == [[en("Yes, cancel the order")], [en("« Back")]]
    answer = e2e.answer(await e2e.press(alice, en("Yes, cancel the order")))
    assert answer.text == en("Order cancelled and refunded.")
    row = await order_row(e2e, stars.id)
    assert row.status == OrderStatus.REFUNDED and row.cancel_reason == "leader"
    assert e2e.emu.payments[row.telegram_charge_id].refunded
    assert e2e.last(bob).splitlines()[1] == en("Your payment was refunded: {stars} ⭐ are back in your balance.", stars=row.stars_total)
    assert e2e.last_msg(alice).buttons == [[en("« Back to the list")]]

    await e2e.press(alice, en("« Back to the list"))
    await e2e.press(alice, f"#{card.id}")
    await e2e.press(alice, en("✖ Cancel order"))
    answer = e2e.answer(await e2e.press(alice, en("Yes, cancel the order")))
    assert answer.text == en("Order cancelled. Refund the payment, then mark the order refunded.") and answer.show_alert
    assert (await order_row(e2e, card.id)).status == OrderStatus.REFUND_DUE
    assert e2e.last(bob).splitlines()[1] == en("Your order was cancelled after you paid. The leader will refund you.")
    assert e2e.last_msg(alice).buttons == [[en("↩️ Mark refunded")], [en("« Back to the list")]]
    await e2e.press(alice, en("↩️ Mark refunded"))
    assert (await order_row(e2e, card.id)).status == OrderStatus.REFUNDED
    assert e2e.last(bob).splitlines()[1] == en("Your payment was refunded.")

    await e2e.press(alice, en("« Back to the list"))
    await e2e.press(alice, f"#{with_coupon.id}")
    await e2e.press(alice, en("✖ Cancel order"))
    await e2e.press(alice, en("Yes, cancel the order"))
    assert (await order_row(e2e, with_coupon.id)).status == OrderStatus.CANCELLED
    async with e2e.db() as s:
        assert (await s.get(Coupon, coupon.id)).uses == 0  # the coupon is Bob's again
        assert (await s.get(Product, shop.goods["Apples"].id)).stock == 50
    cancelled_at = (await order_row(e2e, with_coupon.id)).cancelled_at
    assert e2e.last(alice).splitlines()[-1] == en("Cancelled: {when} ({reason})", when=f"{cancelled_at:%Y-%m-%d %H:%M}",
                                                  reason=en("by a leader"))
    assert e2e.last_msg(alice).buttons == [[en("« Back to the list")]]


async def test_a_stars_refund_telegram_refused_can_be_retried(e2e: E2E, group: Group) -> None:
    alice, bob, _carol = group.leader, *group.members
    shop = await open_shop(e2e, group)
    await e2e.say(bob, "/start")
    order = await place(e2e, shop, bob, method=PaymentMethod.STARS, paid=True)
    async with e2e.db() as s:  # cancelled by the member: the refund is the leader's to finish
        await orders.cancel(s, order=await s.get(Order, order.id), reason="member", actor_id=bob.id, now=now())
    charge = (await order_row(e2e, order.id)).telegram_charge_id
    payment = e2e.emu.payments.pop(charge)
    await open_orders(e2e, alice)
    await e2e.press(alice, en("State ▾"))
    await e2e.press(alice, en("Refund due"))
    await e2e.press(alice, f"#{order.id}")
    assert e2e.last_msg(alice).buttons == [[en("↩️ Refund the Stars")], [en("« Back to the list")]]
    e2e.allow_api_errors(400)  # Telegram refuses a charge it does not know
    answer = e2e.answer(await e2e.press(alice, en("↩️ Refund the Stars")))
    assert answer.text == en("Telegram did not refund the Stars. Try again later.") and answer.show_alert
    assert (await order_row(e2e, order.id)).status == OrderStatus.REFUND_DUE
    e2e.emu.payments[charge] = payment
    answer = e2e.answer(await e2e.press(alice, en("↩️ Refund the Stars")))
    assert answer.text == en("Refunded.")
    assert (await order_row(e2e, order.id)).status == OrderStatus.REFUNDED and payment.refunded
    assert e2e.last(bob).splitlines()[1] == en("Your payment was refunded: {stars} ⭐ are back in your balance.",
                                               stars=order.stars_total)
    assert e2e.last_msg(alice).buttons == [[en("« Back to the list")]]


# --- nobody else can press these ------------------------------------------------------------------------

async def test_forged_presses_change_nothing(e2e: E2E, group: Group) -> None:
    alice, bob, carol = group.leader, *group.members
    shop = await open_shop(e2e, group)
    order = await place(e2e, shop, carol)
    zoe = e2e.emu.add_user("Zoe", username="zoe_leads")
    other = await e2e.make_group("Hill Side", leader=zoe, members=[])
    await e2e.say(bob, "/start")
    await e2e.say(zoe, "/start")
    point = shop.points["North Gate"]
    forged = [
        data(shop, OrdersOp.MARK_FULFILLED, order_id=order.id), data(shop, OrdersOp.CANCEL_CONFIRM, order_id=order.id),
        data(shop, OrdersOp.BULK_FULFILLED_CONFIRM, place=point, order_id=order.id), data(shop, OrdersOp.EXPORT, status="all"),
        data(shop, OrdersOp.PICK_LIST, place=point), data(shop, OrdersOp.VIEW, order_id=order.id),
        CouponAdmin(op=CouponOp.NEW, community_id=shop.cid).pack(),
        ShopOption(op=ShopOp.PAY_AT_PICKUP, community_id=shop.cid).pack(),
    ]
    for payload in forged:
        answer = e2e.answer(await e2e.press_data(bob, payload))
        assert answer.text == en(NOT_LEADER) and answer.show_alert
    # A leader of another community naming this community's order through her own.
    for op in (OrdersOp.VIEW, OrdersOp.MARK_FULFILLED, OrdersOp.CANCEL_CONFIRM):
        answer = e2e.answer(await e2e.press_data(zoe, AdminOrders(community_id=other.community_id, op=op, order_id=order.id).pack()))
        assert answer.text == en("That order does not exist.")
    answer = e2e.answer(await e2e.press_data(zoe, AdminOrders(community_id=other.community_id, op=OrdersOp.BULK_FULFILLED_CONFIRM,
                                                              place=point, order_id=order.id).pack()))
    assert answer.text == en("That pickup point no longer exists.")
    # Ids no database key can hold (PostgreSQL would refuse them as query arguments).
    await e2e.say(alice, "/admin")
    for payload in (data(shop, OrdersOp.VIEW, order_id=2**40), data(shop, OrdersOp.LIST, product_id=-7),
                    data(shop, OrdersOp.PICK_LIST, place=2**31), data(shop, OrdersOp.LIST, status="x" * 20)):
        answer = e2e.answer(await e2e.press_data(alice, payload))
        assert answer.text == en("This button is no longer valid.") and answer.show_alert
    for payload in (AdminOrders(community_id=2**40, op=OrdersOp.LIST).pack(), ShopOption(op=ShopOp.STARS, community_id=-2**40).pack()):
        answer = e2e.answer(await e2e.press_data(alice, payload))
        assert answer.text == en(NOT_LEADER) and answer.show_alert
    assert await statuses(e2e) == {order.id: "pending_payment"}
    assert e2e.emu.documents == [] and e2e.emu.bot_messages(carol) == []
    assert await e2e.fsm_state(bob) is None
    async with e2e.db() as s:
        assert (await s.get(Community, shop.cid)).settings["shop"]["pay_at_pickup"] is True
    assert [a.action for a in await e2e.audit(shop.cid) if a.action.startswith("order.")] == []


# --- pick list and export ----------------------------------------------------------------------------------

async def test_pick_list_and_csv_export(e2e: E2E, group: Group) -> None:
    alice, bob, carol = group.leader, *group.members
    shop = await open_shop(e2e, group, goods=(("苹果", 550), ("Pears", 300)))
    wang = e2e.emu.add_user("王小明", language_code="zh-hans")
    erin = e2e.emu.add_user("Erin", username="erin_e")
    for person in (wang, erin):
        await e2e.act(lambda p=person: e2e.emu.join(group.chat, p))
    b1 = await place(e2e, shop, bob, "苹果", qty=2)
    b2 = await place(e2e, shop, bob, "Pears", paid=True)
    w1 = await place(e2e, shop, wang, "苹果", method=PaymentMethod.STARS, paid=True)
    e1 = await place(e2e, shop, erin, "Pears", qty=3)
    await place(e2e, shop, carol, "Pears", point="South Gate", paid=True)
    async with e2e.db() as s:
        await users.forget(s, user_id=erin.id, now=now())

    await open_orders(e2e, alice)
    await e2e.press(alice, en("📋 Pick list"))
    assert e2e.last(alice) == en("Pick list for which place?")
    assert e2e.last_msg(alice).buttons == [["North Gate", "South Gate"], [en("Delivery")], [en("« Back")]]
    await e2e.press(alice, "North Gate")
    pick = e2e.last(alice)
    assert pick.splitlines() == [
        see("<b>Pick list · {place}</b>", place="North Gate"),
        en("{orders} orders for {members} members · to collect at pickup: {amount}", orders=4, members=3, amount=usd(2000)),
        en("To hand out: {items}", items="#1 苹果 × 3, #2 Pears × 4"),
        "",
        f"Bob @{bob.username}",
        f"#{b1.id} · 苹果 × 2 · " + en("to pay {amount}", amount=usd(1100)),
        f"#{b2.id} · Pears × 1 · " + en("paid"),
        en("To collect: {amount}", amount=usd(1100)),
        "",
        "王小明",
        f"#{w1.id} · 苹果 × 1 · " + en("paid"),
        "",
        en("Erased member"),
        f"#{e1.id} · Pears × 3 · " + en("to pay {amount}", amount=usd(900)),
        en("To collect: {amount}", amount=usd(900)),
    ]
    # The list above it now shows that place.
    assert e2e.emu.bot_messages(alice)[-2].visible.splitlines()[1] == en(
        "State: {state} · Product: {product} · Place: {place}", state=en("Open"), product=en("All"), place="North Gate")

    listing = e2e.emu.bot_messages(alice)[-2]
    await e2e.press(alice, en("📋 Pick list"), message=listing)  # the place is chosen now
    assert e2e.last(alice) == pick
    await e2e.press(alice, en("State ▾"), message=listing)
    await e2e.press(alice, en("All states"), message=listing)
    await e2e.press(alice, en("⬇️ CSV"), message=listing)
    message = e2e.last_msg(alice)
    assert message.document.file_name.startswith(f"orders-{shop.cid}-") and message.document.file_name.endswith(".csv")
    assert message.caption == en("{count} orders · {state} · times in {tz}", count=4, state=en("All states"), tz="UTC")
    raw = message.document.data
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == [en(h) for h in ("Order", "Created", "Buyer", "Username", "Product #", "Product", "Quantity", "Unit price",
                                       "Discount", "Total", "Currency", "Status", "Payment", "Pickup point", "Delivery address",
                                       "Paid at", "Fulfilled at", "Picked up at")]
    by_id = {int(r[0]): r for r in rows[1:]}
    assert sorted(by_id) == [b1.id, b2.id, w1.id, e1.id]
    assert by_id[b1.id][2:13] == ["Bob", f"@{bob.username}", "1", "苹果", "2", "5.50", "0.00", "11.00", "USD",
                                  en("awaiting payment"), en("pay at pickup")]
    assert by_id[w1.id][2] == "王小明" and by_id[w1.id][11:14] == [en("paid"), en("Telegram Stars"), "North Gate"]
    assert by_id[w1.id][15] != "" and by_id[b1.id][15] == ""
    assert by_id[e1.id][2:4] == [en("Erased member"), ""] and by_id[e1.id][9] == "9.00"
    assert sum(float(r[9]) for r in rows[1:]) == 11.0 + 3.0 + 5.5 + 9.0


async def test_a_long_pick_list_is_split_into_messages(e2e: E2E, group: Group) -> None:
    alice = group.leader
    shop = await open_shop(e2e, group, goods=(("A very long product name for the pick list", 100),), stock=None)
    people = []
    for n in range(25):
        person = e2e.emu.add_user(f"Member{n:02d} " + "Longname" * 6, username=f"member_{n:02d}_x")
        e2e.emu.join(group.chat, person)
        people.append(person)
    await e2e.settle()
    for person in people:
        await place(e2e, shop, person, "A very long product name for the pick list")
        await place(e2e, shop, person, "A very long product name for the pick list", qty=2)
    await open_orders(e2e, alice)
    await e2e.press(alice, en("Place ▾"))
    await e2e.press(alice, "North Gate")
    await e2e.press(alice, en("📋 Pick list"))
    sent = e2e.emu.bot_messages(alice)[-2:]
    assert sent[0].visible.startswith(see("<b>Pick list · {place}</b>", place="North Gate"))
    assert all(len(m.visible) <= 4096 for m in sent) and len(sent[0].html) > 3000
    text = "\n".join(m.visible for m in sent)
    assert all(text.count(f"@{p.username}") == 1 for p in people)


# --- the daily summary ----------------------------------------------------------------------------------

async def test_daily_summary_once_at_the_community_local_time(e2e: E2E, group: Group) -> None:
    alice, bob, carol = group.leader, *group.members
    async with e2e.db() as s:
        community = await s.get(Community, group.community_id)
        community.timezone = "Asia/Shanghai"
        await s.commit()
    shop = await open_shop(e2e, group, summary_time="21:00")
    await e2e.act(lambda: e2e.emu.promote(group.chat, carol, by=alice))  # a leader who never started the bot
    await e2e.say(alice, "/start")
    day = datetime(2025, 3, 1, 1, 0, tzinfo=timezone.utc)  # 09:00 in Shanghai
    await place(e2e, shop, bob, qty=2, at=day, paid=True)
    await place(e2e, shop, bob, "Pears", point="South Gate", at=day + timedelta(hours=1))
    cancelled = await place(e2e, shop, bob, at=day + timedelta(hours=2))
    async with e2e.db() as s:
        await orders.cancel(s, order=await s.get(Order, cancelled.id), reason="leader", actor_id=alice.id,
                            now=day + timedelta(hours=3))
    before = len(e2e.emu.bot_messages(alice))

    assert await e2e.app.run_job("daily_summary", datetime(2025, 3, 1, 12, 59, tzinfo=timezone.utc)) == "0 communities, 0 messages"
    at = datetime(2025, 3, 1, 13, 0, tzinfo=timezone.utc)  # 21:00 in Shanghai
    results = await asyncio.gather(*(e2e.app.run_job("daily_summary", at + timedelta(seconds=n)) for n in range(3)))
    assert sorted(results) == ["0 communities, 0 messages"] * 2 + ["1 communities, 1 messages"]
    assert await e2e.app.run_job("daily_summary", at + timedelta(hours=2)) == "0 communities, 0 messages"
    await e2e.settle()
    sent = e2e.emu.bot_messages(alice)[before:]
    assert [m.visible for m in sent] == ["\n".join([
        see("<b>Daily summary · {title} · {day}</b>", title="Green Valley", day="2025-03-01"),
        en("Orders placed: {orders} ({units} units)", orders=3, units=3),
        en("Paid: {amount}", amount=usd(1000)),
        en("Unpaid, to collect at pickup: {orders} orders, {amount}", orders=1, amount=usd(300)),
        en("Cancelled: {orders}", orders=1),
        en("By place:"),
        "  North Gate: 1",
        "  South Gate: 1",
    ])]
    assert e2e.emu.bot_messages(carol) == []

    # The next local day has its own summary; a Chinese-speaking leader reads it in Chinese.
    async with e2e.db() as s:
        await users.set_locale(s, user_id=alice.id, locale="zh_Hans", now=now())
    assert await e2e.app.run_job("daily_summary", at + timedelta(days=1)) == "1 communities, 1 messages"
    await e2e.settle()
    assert e2e.last(alice).splitlines()[1] == zh("Orders placed: {orders} ({units} units)", orders=0, units=0)
