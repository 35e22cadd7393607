"""Telegram's own notices in a chat (a refund, a payment, a pin, a new title...) are not people
talking to the bot: nothing answers them as if they were, in private or in the group."""

from __future__ import annotations

from buying_helpers import checkout_to_summary, open_shop, orders_of, see
from e2e_harness import E2E, Group, en

from bot.sandbox.serialize import message_json
from models.shop import OrderStatus

CONFIRM = en("✅ Confirm")
NOT_UNDERSTOOD = en("I did not understand that. Send /help to see what I can do.")


async def test_a_stars_refund_notice_is_not_answered(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, pay_at_pickup=False, stars_enabled=True, stars_per_unit=7)
    bob = group.members[0]
    await checkout_to_summary(e2e, bob, shop.product, qty="2")
    await e2e.press(bob, CONFIRM)
    invoice = [m for m in e2e.emu.bot_messages(bob) if m.invoice is not None][-1]
    e2e.clock.advance()
    await e2e.emu.pay(bob, invoice)
    await e2e.settle()
    [order] = await orders_of(e2e)
    await e2e.say(bob, "/orders")
    await e2e.press(bob, en("✖ Cancel #{id}", id=order.id))
    await e2e.press(bob, en("Yes, cancel order #{id}", id=order.id))
    [order] = await orders_of(e2e)
    assert order.status == OrderStatus.REFUNDED
    # Telegram put the refund notice into the private chat, and the bot received it...
    [notice] = [m for m in e2e.emu.messages(bob) if m.service and "refunded_payment" in m.service]
    assert notice.service["refunded_payment"] == {
        "currency": "XTR", "total_amount": 70, "invoice_payload": f"order:{order.id}",
        "telegram_payment_charge_id": order.telegram_charge_id}
    assert any(u.get("message", {}).get("refunded_payment") for u in e2e.emu.updates._history.values())
    # ...and the member's last word from the bot is still the cancellation and refund, nothing after it.
    assert e2e.last(bob).startswith("\n".join([
        see("Order #{id} is cancelled; the items are back on sale.", id=order.id),
        see("Your payment was refunded: {stars} ⭐ are back in your balance.", stars=70)]))
    assert NOT_UNDERSTOOD not in e2e.bot_texts(bob)


async def test_notices_in_a_private_chat_get_no_answer_but_what_a_person_sends_does(e2e: E2E, group: Group) -> None:
    bob = group.members[0]
    await e2e.say(bob, "/start")
    hello = e2e.last_msg(bob)
    before = len(e2e.emu.bot_messages(bob))
    notices = [
        {"pinned_message": message_json(hello)},
        {"message_auto_delete_timer_changed": {"message_auto_delete_time": 86400}},
        {"successful_payment": {"currency": "XTR", "total_amount": 5, "invoice_payload": "something-else",
                                "telegram_payment_charge_id": "stx-foreign", "provider_payment_charge_id": ""}},
        {"refunded_payment": {"currency": "XTR", "total_amount": 5, "invoice_payload": "something-else",
                              "telegram_payment_charge_id": "stx-foreign"}},
        {"write_access_allowed": {"from_request": True}},
        {"users_shared": {"request_id": 1, "users": [{"user_id": group.members[1].id}]}},
    ]
    for fields in notices:
        await e2e.send_raw(bob, service=fields)
    assert len(e2e.emu.bot_messages(bob)) == before
    # What the member writes or sends is still answered with the pointer to /help.
    await e2e.say(bob, "hello?")
    assert e2e.last(bob) == NOT_UNDERSTOOD
    await e2e.send_raw(bob, service={"sticker": {"file_id": "s1", "file_unique_id": "s1", "type": "regular",
                                                 "width": 512, "height": 512, "is_animated": False, "is_video": False}})
    await e2e.send_raw(bob, service={"location": {"latitude": 31.23, "longitude": 121.47}})
    assert e2e.bot_texts(bob)[before:] == [NOT_UNDERSTOOD] * 3


async def test_notices_in_the_group_get_no_answer(e2e: E2E, group: Group) -> None:
    chat, alice = group.chat, group.leader
    await e2e.say(alice, "/help", chat)
    before = len(e2e.emu.bot_messages(chat))
    await e2e.send_raw(alice, chat, service={"new_chat_title": "Green Valley 2"})
    await e2e.send_raw(alice, chat, service={"delete_chat_photo": True})
    await e2e.send_raw(alice, chat, service={"pinned_message": message_json(e2e.last_msg(chat))})
    await e2e.send_raw(alice, chat, service={"video_chat_started": {}})
    assert len(e2e.emu.bot_messages(chat)) == before


async def test_notices_during_a_leaders_form_are_not_taken_for_answers(e2e: E2E, group: Group) -> None:
    alice = group.leader
    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("⚙️ Settings"))
    await e2e.press(alice, en("🕒 Timezone: {tz}", tz="UTC"))
    prompt = e2e.last_msg(alice)
    before = len(e2e.emu.bot_messages(alice))
    await e2e.send_raw(alice, service={"pinned_message": message_json(prompt)})
    await e2e.send_raw(alice, service={"refunded_payment": {"currency": "XTR", "total_amount": 5, "invoice_payload": "x",
                                                            "telegram_payment_charge_id": "stx-1"}})
    assert len(e2e.emu.bot_messages(alice)) == before
    assert await e2e.fsm_state(alice) == "SettingsForm:timezone"
    # A location is the leader talking: it is not a timezone, and the form says so.
    await e2e.send_raw(alice, service={"location": {"latitude": 31.23, "longitude": 121.47}})
    assert e2e.last(alice).startswith(en("Please answer with text."))
    await e2e.say(alice, "Asia/Shanghai")
    assert e2e.last(alice).startswith(en("Timezone set to {value}.", value="Asia/Shanghai"))
    assert (await e2e.community_by_id(group.community_id)).timezone == "Asia/Shanghai"


async def test_notices_during_a_checkout_or_the_coupon_form_are_not_taken_for_answers(e2e: E2E, group: Group) -> None:
    alice, bob = group.leader, group.members[0]
    shop = await open_shop(e2e, group)
    await e2e.say(bob, "/start")
    await e2e.say(bob, f"/start buy-{shop.product.id}")
    question = e2e.last_msg(bob)
    notices = [{"pinned_message": message_json(question)},
               {"refunded_payment": {"currency": "XTR", "total_amount": 5, "invoice_payload": "x",
                                     "telegram_payment_charge_id": "stx-2"}}]
    state = await e2e.fsm_state(bob)
    for notice in notices:
        await e2e.send_raw(bob, service=notice)
    assert e2e.last_msg(bob).message_id == question.message_id and await e2e.fsm_state(bob) == state
    await e2e.send_raw(bob, service={"location": {"latitude": 31.23, "longitude": 121.47}})
    assert en("Please answer with text or use the buttons.") in e2e.last(bob)

    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("🎟 Coupons"))
    await e2e.press(alice, en("➕ New coupon"))
    question = e2e.last_msg(alice)
    for notice in notices:
        await e2e.send_raw(alice, service=notice)
    assert e2e.last_msg(alice).message_id == question.message_id
    await e2e.send_raw(alice, service={"location": {"latitude": 31.23, "longitude": 121.47}})
    assert e2e.last(alice).startswith(en("Please choose with the buttons."))
