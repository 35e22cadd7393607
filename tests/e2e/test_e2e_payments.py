"""Paying, end to end: card invoices with a provider token and Stars invoices through the emulator's
payment flow, the pre-checkout re-check, exactly-once payment under redelivery, the expiry job,
and the member's /orders with cancelling and refunds."""

from __future__ import annotations

from datetime import timedelta

from buying_helpers import (
    Shop,
    age_order,
    checkout_to_summary,
    coupon_row,
    issue_coupon,
    now,
    open_shop,
    orders_of,
    product_row,
    redemptions,
    see,
    start_bot,
)
from e2e_harness import E2E, Group, en
from pydantic import SecretStr

from bot.sandbox import SimMessage, SimUser
from bot.sandbox.state import SimPayment
from bot.services import orders as order_service
from models import Community
from models.shop import OrderStatus, PaymentMethod

TOKEN = "284685063:TEST:provider-token"
CARD, STARS_PICKUP = en("💳 Card"), en("🤝 Pay at pickup")
CONFIRM = en("✅ Confirm")


def with_card(e2e: E2E) -> None:
    e2e.app.settings.PAYMENT_PROVIDER_TOKEN = SecretStr(TOKEN)


def head(order_id: int, qty: int, amount: str, title: str = "Apples") -> str:
    return see("Order #{id} · {title} × {qty} · {amount}", id=order_id, title=title, qty=qty, amount=amount)


def invoices(e2e: E2E, user: SimUser) -> list[SimMessage]:
    return [m for m in e2e.emu.bot_messages(user) if m.invoice is not None]


async def pay(e2e: E2E, user: SimUser, invoice: SimMessage, *, ok: bool = True) -> SimMessage | None:
    e2e.clock.advance()
    paid = await e2e.emu.pay(user, invoice, ok=ok)
    await e2e.settle()
    return paid


def last_pre_checkout(e2e: E2E):
    return list(e2e.emu.pre_checkouts.values())[-1]


async def card_order(e2e: E2E, shop: Shop, user: SimUser, qty: str = "1") -> SimMessage:
    """A member orders by card through the checkout; returns the invoice."""
    await checkout_to_summary(e2e, user, shop.product, qty=qty, method=CARD)
    await e2e.press(user, CONFIRM)
    return invoices(e2e, user)[-1]


async def test_card_payment_with_a_provider_token(e2e: E2E, group: Group) -> None:
    with_card(e2e)
    shop = await open_shop(e2e, group)
    bob = group.members[0]
    await e2e.say(bob, f"/start buy-{shop.product.id}")
    await e2e.press(bob, "2")
    await e2e.press(bob, "📍 North Gate")
    await e2e.press(bob, en("Continue without a coupon"))
    # Card and pay-at-pickup are both offered: the member chooses.
    assert e2e.last(bob) == see("Total: {total}\n\nHow would you like to pay?", total="$10.00")
    assert e2e.last_msg(bob).buttons == [[CARD], [STARS_PICKUP], [en("« Back"), en("✖ Cancel")]]
    await e2e.press(bob, CARD)
    assert e2e.last(bob).endswith(see("Payment: {method}", method=en("card")))
    await e2e.press(bob, en("« Back"))  # back from the summary to the payment question
    assert e2e.last(bob) == see("Total: {total}\n\nHow would you like to pay?", total="$10.00")
    await e2e.press(bob, CARD)
    await e2e.press(bob, CONFIRM)
    [order] = await orders_of(e2e)
    assert (order.status, order.payment_method, order.total) == (OrderStatus.PENDING_PAYMENT, PaymentMethod.PROVIDER, 1000)
    assert order.expires_at is not None and timedelta(minutes=29) < order.expires_at - order.created_at <= timedelta(minutes=30)
    confirmation, invoice = e2e.emu.bot_messages(bob)[-2:]
    assert confirmation.visible == "\n".join([
        head(order.id, 2, "$10.00"), see("Your order is placed and waits for your payment."), see("Pickup: {place}", place="North Gate"),
        "", see("Please pay with the invoice below within {minutes} minutes; after that the order is cancelled.", minutes=30),
        see("Send /orders to see your orders.")])
    assert invoice.invoice["currency"] == "USD" and invoice.invoice["total_amount"] == 1000
    assert invoice.invoice["title"] == "Apples" and invoice.invoice_payload == f"order:{order.id}"
    [call] = e2e.emu.calls("sendInvoice")
    assert call.params["provider_token"] == TOKEN
    assert await pay(e2e, bob, invoice) is not None
    assert last_pre_checkout(e2e).ok is True
    [order] = await orders_of(e2e)
    assert order.status == OrderStatus.PAID and order.paid_at is not None and order.expires_at is None
    assert order.telegram_charge_id.startswith("tg") and order.provider_charge_id.startswith("provider_")
    assert e2e.last(bob) == "\n".join([head(order.id, 2, "$10.00"), see("Payment received. Thank you!"),
                                      see("Pickup: {place}", place="North Gate")])
    assert len(await e2e.audit(shop.community_id, "order.paid")) == 1


async def test_stars_payment(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, pay_at_pickup=False, stars_enabled=True, stars_per_unit=7)
    bob = group.members[0]
    # Stars are the only way to pay: the payment question is skipped.
    await checkout_to_summary(e2e, bob, shop.product, qty="2")
    assert see("<b>Total: {total}</b>", total="$10.00 = 70 ⭐") in e2e.last(bob)
    assert e2e.last(bob).endswith(see("Payment: {method}", method=en("Telegram Stars")))
    await e2e.press(bob, CONFIRM)
    [order] = await orders_of(e2e)
    assert (order.payment_method, order.stars_total, order.total) == (PaymentMethod.STARS, 70, 1000)
    [invoice] = invoices(e2e, bob)
    assert (invoice.invoice["currency"], invoice.invoice["total_amount"]) == ("XTR", 70)
    assert not e2e.emu.calls("sendInvoice")[0].params.get("provider_token")
    await pay(e2e, bob, invoice)
    [order] = await orders_of(e2e)
    assert order.status == OrderStatus.PAID and order.telegram_charge_id.startswith("stx")
    assert e2e.last(bob) == "\n".join([head(order.id, 2, "$10.00 (70 ⭐)"), see("Payment received. Thank you!"),
                                      see("Pickup: {place}", place="North Gate")])


async def test_a_payment_delivered_twice_is_recorded_once(e2e: E2E, group: Group) -> None:
    with_card(e2e)
    shop = await open_shop(e2e, group)
    bob = group.members[0]
    invoice = await card_order(e2e, shop, bob)
    paid = await pay(e2e, bob, invoice)
    [order] = await orders_of(e2e)
    paid_at = order.paid_at
    received = see("Payment received. Thank you!")
    assert sum(received in t for t in e2e.bot_texts(bob)) == 1
    # The same update again (a webhook retry) ...
    e2e.emu.redeliver(e2e.last_update_id("message"))
    await e2e.settle()
    # ... and the same charge in a new update (Telegram re-sending the service message).
    e2e.clock.advance()
    e2e.emu.service_message(paid.chat, bob, {"successful_payment": paid.successful_payment})
    e2e.emu.touch()
    await e2e.settle()
    [order] = await orders_of(e2e)
    assert order.status == OrderStatus.PAID and order.paid_at == paid_at
    assert sum(received in t for t in e2e.bot_texts(bob)) == 1
    assert len(await e2e.audit(shop.community_id, "order.paid")) == 1


async def test_pre_checkout_refuses_expired_and_cancelled_orders(e2e: E2E, group: Group) -> None:
    with_card(e2e)
    shop = await open_shop(e2e, group)
    bob = group.members[0]
    await start_bot(e2e, bob)
    first = await card_order(e2e, shop, bob)
    # Past its deadline but the job has not run yet: refused with the reason.
    async with e2e.db() as s:
        order = (await order_service.member_orders(s, user_id=bob.id))[0][0].order
        order.expires_at = now() - timedelta(seconds=1)
        s.add(order)
        await s.commit()
    assert await pay(e2e, bob, first) is None
    assert (last_pre_checkout(e2e).ok, last_pre_checkout(e2e).error_message) == (
        False, en("This order expired before it was paid. Please order again."))
    # Cancelled by the member, then the old invoice is paid: refused, nothing charged.
    second = await card_order(e2e, shop, bob)
    second_id = (await orders_of(e2e))[-1].id
    await e2e.say(bob, "/orders")
    await e2e.press(bob, en("✖ Cancel #{id}", id=second_id))
    await e2e.press(bob, en("Yes, cancel order #{id}", id=second_id))
    assert await pay(e2e, bob, second) is None
    assert last_pre_checkout(e2e).error_message == en("This order can no longer be changed.")
    assert [o.status for o in await orders_of(e2e)] == [OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED]
    assert [o.telegram_charge_id for o in await orders_of(e2e)] == [None, None]


async def test_double_tap_on_confirm_sends_one_invoice(e2e: E2E, group: Group) -> None:
    with_card(e2e)
    shop = await open_shop(e2e, group)
    bob = group.members[0]
    await checkout_to_summary(e2e, bob, shop.product, method=CARD)
    e2e.clock.advance()
    summary = e2e.last_msg(bob)
    taps = [e2e.emu.press(bob, summary, CONFIRM) for _tap in range(2)]
    await e2e.settle()
    assert len(await orders_of(e2e)) == 1
    assert len(e2e.emu.calls("sendInvoice")) == 1 and len(invoices(e2e, bob)) == 1
    assert all(e2e.answer(t) for t in taps)


async def test_unpaid_online_orders_expire_and_the_member_is_told(e2e: E2E, group: Group) -> None:
    with_card(e2e)
    shop = await open_shop(e2e, group, stars_enabled=True, stars_per_unit=7, unpaid_minutes=15)
    bob = group.members[0]
    await start_bot(e2e, bob)
    await card_order(e2e, shop, bob, qty="2")
    await checkout_to_summary(e2e, bob, shop.product, qty="1", method=en("⭐ Telegram Stars ({stars})", stars=35))
    await e2e.press(bob, CONFIRM)
    await checkout_to_summary(e2e, bob, shop.product, qty="1", method=STARS_PICKUP)
    await e2e.press(bob, CONFIRM)
    card, stars, pickup = await orders_of(e2e)
    assert (await product_row(e2e, shop.product.id)).stock == 6
    assert await e2e.app.run_job("expire_orders", card.created_at + timedelta(minutes=14)) == "0 expired"
    assert await e2e.app.run_job("expire_orders", stars.created_at + timedelta(minutes=15, seconds=1)) == "2 expired"
    await e2e.settle()
    card, stars, pickup = await orders_of(e2e)
    assert [(o.status, o.cancel_reason) for o in (card, stars)] == [(OrderStatus.CANCELLED, "expired")] * 2
    assert pickup.status == OrderStatus.PENDING_PAYMENT  # pay at pickup never expires
    assert (await product_row(e2e, shop.product.id)).stock == 9
    told = see("Your order was cancelled because it was not paid in time. Order again if you still want it.")
    assert e2e.bot_texts(bob)[-2:] == [f"{head(card.id, 2, '$10.00')}\n{told}", f"{head(stars.id, 1, '$5.00 (35 ⭐)')}\n{told}"]
    # Again, later: nothing more happens and nobody is told twice.
    assert await e2e.app.run_job("expire_orders", stars.created_at + timedelta(hours=1)) == "0 expired"
    await e2e.settle()
    assert sum(told in t for t in e2e.bot_texts(bob)) == 2


async def test_stars_that_arrive_after_the_order_expired_are_refunded(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, pay_at_pickup=False, stars_enabled=True, stars_per_unit=7)
    bob = group.members[0]
    await checkout_to_summary(e2e, bob, shop.product)
    await e2e.press(bob, CONFIRM)
    [order] = await orders_of(e2e)
    await e2e.app.run_job("expire_orders", order.expires_at + timedelta(seconds=1))
    await e2e.settle()
    # Telegram approved the checkout just before the deadline; the money lands just after it.
    payment = SimPayment(telegram_payment_charge_id="stx-late-0001", provider_payment_charge_id="", user_id=bob.id,
                         chat_id=bob.id, currency="XTR", total_amount=7 * 5, invoice_payload=f"order:{order.id}")
    e2e.emu.payments[payment.telegram_payment_charge_id] = payment
    e2e.clock.advance()
    e2e.emu.service_message(e2e.emu.chat(bob), bob, {"successful_payment": {
        "currency": "XTR", "total_amount": 35, "invoice_payload": f"order:{order.id}",
        "telegram_payment_charge_id": payment.telegram_payment_charge_id, "provider_payment_charge_id": ""}})
    e2e.emu.touch()
    await e2e.settle()
    [order] = await orders_of(e2e)
    assert order.status == OrderStatus.REFUNDED and payment.refunded
    assert e2e.last(bob) == "\n".join([head(order.id, 1, "$5.00 (35 ⭐)"),
                                      see("Your payment was refunded: {stars} ⭐ are back in your balance.", stars=35)])
    assert (await product_row(e2e, shop.product.id)).stock == 10


# ----- /orders -----------------------------------------------------------------------------------

async def _place(e2e: E2E, shop: Shop, user: SimUser, key: str, qty: int = 1, coupon: str | None = None):
    async with e2e.db() as s:
        community = await s.get(Community, shop.community_id)
        placed = await order_service.place(s, community=community, user_id=user.id, product_id=shop.product.id, quantity=qty,
                                           unit_price=shop.product.price, payment_method=PaymentMethod.PICKUP,
                                           checkout_key=key, now=now(), pickup_point_id=shop.pickup_ids[0], coupon_code=coupon)
    return placed.order


async def test_orders_lists_pages_and_cancels_with_stock_and_coupon_back(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, stock=20)
    bob, carol = group.members
    await e2e.say(bob, "/orders")
    assert e2e.last(bob) == see("You have no orders yet. Press Buy under a product in your group to order.")
    coupon = await issue_coupon(e2e, shop.community_id, "TAKE1", value=100)
    first = await _place(e2e, shop, bob, "bob-1", qty=2, coupon="TAKE1")
    for n in range(2, 7):
        await _place(e2e, shop, bob, f"bob-{n}")
    carols = await _place(e2e, shop, carol, "carol-1")
    assert (await product_row(e2e, shop.product.id)).stock == 12
    await e2e.say(bob, "/orders")
    page = e2e.last(bob)
    assert page.startswith(see("<b>Your orders</b> · page {page} of {pages}", page=1, pages=2))
    assert [line for line in page.splitlines() if line.startswith("Order #")] == [
        head(n, 1, "$5.00") for n in (6, 5, 4, 3, 2)]
    assert see("{status} · {community} · {when}", status=en("to pay at pickup"), community="Green Valley", when="X").rsplit("X")[0] in page
    assert e2e.last_msg(bob).buttons == [[en("✖ Cancel #{id}", id=n)] for n in (6, 5, 4, 3, 2)] + [[en("Older ›")]]
    await e2e.press(bob, en("Older ›"))
    assert [line for line in e2e.last(bob).splitlines() if line.startswith("Order #")] == [head(first.id, 2, "$9.00")]
    assert e2e.last_msg(bob).buttons == [[en("✖ Cancel #{id}", id=first.id)], [en("‹ Newer")]]
    await e2e.press(bob, en("✖ Cancel #{id}", id=first.id))
    assert e2e.last(bob) == "\n".join([see("Cancel this order?"), head(first.id, 2, "$9.00")])
    await e2e.press(bob, en("« Back"))
    assert e2e.last(bob).startswith(see("<b>Your orders</b> · page {page} of {pages}", page=2, pages=2))
    await e2e.press(bob, en("✖ Cancel #{id}", id=first.id))
    answer = e2e.answer(await e2e.press(bob, en("Yes, cancel order #{id}", id=first.id)))
    assert answer.text == en("Order #{id} cancelled.", id=first.id)
    assert e2e.last(bob).startswith(see("Order #{id} is cancelled; the items are back on sale.", id=first.id))
    assert head(first.id, 2, "$9.00") + "\n" + see("{status} · {community} · {when}", status=en("cancelled"),
                                                    community="Green Valley", when="")[:-1] in e2e.last(bob)
    cancelled = (await orders_of(e2e, bob))[0]
    assert (cancelled.status, cancelled.cancel_reason) == (OrderStatus.CANCELLED, "member")
    assert (await product_row(e2e, shop.product.id)).stock == 14
    assert (await coupon_row(e2e, coupon.id)).uses == 0 and await redemptions(e2e) == []
    # Someone else's order, forged: refused, nothing changes.
    answer = e2e.answer(await e2e.press_data(bob, f"mo:yes:{carols.id}:0"))
    assert (answer.text, answer.show_alert) == (en("That order does not exist."), True)
    assert (await orders_of(e2e, carol))[0].status == OrderStatus.PENDING_PAYMENT
    # Cancelling twice (an old confirm button): refused with the reason.
    answer = e2e.answer(await e2e.press_data(bob, f"mo:yes:{first.id}:1"))
    assert answer.text == en("This order can no longer be changed.")


async def test_cancel_window_closes(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, cancel_hours=2)
    bob = group.members[0]
    old = await _place(e2e, shop, bob, "old")
    await age_order(e2e, old.id, hours=3)
    await e2e.say(bob, "/orders")
    assert e2e.last_msg(bob).buttons == []  # no Cancel offered
    answer = e2e.answer(await e2e.press_data(bob, f"mo:cancel:{old.id}:0"))
    assert answer.text == en("This order can no longer be cancelled here. Ask the leader.")
    answer = e2e.answer(await e2e.press_data(bob, f"mo:yes:{old.id}:0"))
    assert answer.text == en("Orders can only be cancelled within {hours} hours of ordering. Ask the leader.", hours=2)
    assert (await orders_of(e2e))[0].status == OrderStatus.PENDING_PAYMENT
    assert (await product_row(e2e, shop.product.id)).stock == 9


async def test_cancelling_paid_orders_refunds_stars_and_leaves_card_refunds_to_the_leader(e2e: E2E, group: Group) -> None:
    with_card(e2e)
    shop = await open_shop(e2e, group, pay_at_pickup=False, stars_enabled=True, stars_per_unit=7)
    bob = group.members[0]
    await checkout_to_summary(e2e, bob, shop.product, qty="2", method=en("⭐ Telegram Stars ({stars})", stars=70))
    await e2e.press(bob, CONFIRM)
    await pay(e2e, bob, invoices(e2e, bob)[-1])
    stars_invoice_charge = (await orders_of(e2e))[0].telegram_charge_id
    await pay(e2e, bob, await card_order(e2e, shop, bob))
    stars, card = await orders_of(e2e)
    assert (stars.status, card.status) == (OrderStatus.PAID, OrderStatus.PAID)
    await e2e.say(bob, "/orders")
    await e2e.press(bob, en("✖ Cancel #{id}", id=stars.id))
    assert e2e.last(bob) == "\n".join([see("Cancel this order?"), head(stars.id, 2, "$10.00 (70 ⭐)"),
                                      see("Your {stars} ⭐ are refunded at once.", stars=70)])
    await e2e.press(bob, en("Yes, cancel order #{id}", id=stars.id))
    [refund_call] = e2e.emu.calls("refundStarPayment")
    assert refund_call.params["telegram_payment_charge_id"] == stars_invoice_charge
    assert e2e.emu.payments[stars_invoice_charge].refunded
    assert e2e.last(bob).startswith("\n".join([
        see("Order #{id} is cancelled; the items are back on sale.", id=stars.id),
        see("Your payment was refunded: {stars} ⭐ are back in your balance.", stars=70)]))
    await e2e.press(bob, en("✖ Cancel #{id}", id=card.id))
    assert e2e.last(bob).endswith(see("The leader refunds your payment."))
    await e2e.press(bob, en("Yes, cancel order #{id}", id=card.id))
    assert e2e.last(bob).startswith("\n".join([
        see("Order #{id} is cancelled; the items are back on sale.", id=card.id),
        see("Your order was cancelled after you paid. The leader will refund you.")]))
    stars, card = await orders_of(e2e)
    assert (stars.status, card.status) == (OrderStatus.REFUNDED, OrderStatus.REFUND_DUE)
    assert len(e2e.emu.calls("refundStarPayment")) == 1
    assert (await product_row(e2e, shop.product.id)).stock == 10


async def test_pay_again_from_orders_and_orders_in_the_group(e2e: E2E, group: Group) -> None:
    with_card(e2e)
    shop = await open_shop(e2e, group)
    bob = group.members[0]
    await card_order(e2e, shop, bob)
    [order] = await orders_of(e2e)
    await e2e.say(bob, "/orders")
    assert e2e.last_msg(bob).buttons == [[en("💳 Pay #{id}", id=order.id), en("✖ Cancel #{id}", id=order.id)]]
    await e2e.press(bob, en("💳 Pay #{id}", id=order.id))
    assert len(invoices(e2e, bob)) == 2
    await pay(e2e, bob, invoices(e2e, bob)[-1])
    assert (await orders_of(e2e))[0].status == OrderStatus.PAID
    # The first invoice cannot charge a second time.
    assert await pay(e2e, bob, invoices(e2e, bob)[0]) is None
    assert last_pre_checkout(e2e).error_message == en("This order can no longer be changed.")
    answer = e2e.answer(await e2e.press_data(bob, f"mo:pay:{order.id}:0", message=e2e.emu.bot_messages(bob)[-3]))
    assert answer.text == en("This order can no longer be changed.")
    # In the group /orders only points to the private chat.
    await e2e.say(bob, "/orders", group.chat)
    reply = e2e.last_msg(group.chat)
    assert reply.visible == see("Your orders are in our private chat.")
    assert reply.reply_markup["inline_keyboard"][0][0]["url"].endswith("?start=orders")
    await e2e.say(bob, "/start orders")
    assert head(order.id, 1, "$5.00") in e2e.last(bob)
