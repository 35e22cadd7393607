"""The emulator keeps Telegram's deadlines for answering a button press and a pre-checkout on its
own clock, and tells the buyer's private chat about a Stars refund with a service message."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice

TOO_OLD = "query is too old and response timeout expired or query ID is invalid"


async def test_a_callback_answer_after_the_deadline_is_refused(emu, bot, clock):
    alice = emu.add_user("Alice")
    emu.send(alice, None, "/start")
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Go", callback_data="go")]])
    await bot.send_message(alice.id, "Press", reply_markup=markup)
    message = emu.last_bot_message(alice)
    in_time = emu.press(alice, message, "Go")
    late = emu.press(alice, message, "Go")
    clock.advance(emu.callback_ttl - 1)
    assert await bot.answer_callback_query(in_time, text="Done")
    clock.advance(2)  # the second press is now past its deadline, however long the bot had it
    with pytest.raises(TelegramBadRequest, match=TOO_OLD):
        await bot.answer_callback_query(late, text="Done")
    assert emu.callback_answer(late) is None
    assert emu.calls("answerCallbackQuery")[-1].error_code == 400


async def test_a_pre_checkout_answer_after_the_deadline_is_refused(emu, bot, clock):
    alice = emu.add_user("Alice")
    emu.send(alice, None, "/start")
    await bot.send_invoice(alice.id, "Box", "A box", "box:1", "XTR", [LabeledPrice(label="Box", amount=5)])
    invoice = emu.last_bot_message(alice)
    payment = asyncio.create_task(emu.pay(alice, invoice, timeout=0.5))
    query_id = (await bot.get_updates())[-1].pre_checkout_query.id
    clock.advance(emu.pre_checkout_ttl + 1)
    with pytest.raises(TelegramBadRequest, match=TOO_OLD):
        await bot.answer_pre_checkout_query(query_id, ok=True)
    assert await payment is None


async def test_a_stars_refund_sends_refunded_payment_into_the_private_chat(emu, bot):
    alice = emu.add_user("Alice")
    emu.send(alice, None, "/start")
    await bot.send_invoice(alice.id, "Box", "A box", "box:7", "XTR", [LabeledPrice(label="Box", amount=25)])
    invoice = emu.last_bot_message(alice)
    paying = asyncio.create_task(emu.pay(alice, invoice))
    updates = await bot.get_updates()
    await bot.answer_pre_checkout_query(updates[-1].pre_checkout_query.id, ok=True)
    receipt = await paying
    charge = receipt.successful_payment["telegram_payment_charge_id"]
    offset = (await bot.get_updates(offset=updates[-1].update_id + 1))[-1].update_id + 1
    assert await bot.refund_star_payment(alice.id, charge)
    [update] = await bot.get_updates(offset=offset)
    message = update.message
    assert message.chat.id == alice.id and message.from_user.id == alice.id
    assert message.content_type == "refunded_payment" and message.text is None
    refunded = message.refunded_payment
    assert (refunded.currency, refunded.total_amount, refunded.invoice_payload) == ("XTR", 25, "box:7")
    assert refunded.telegram_payment_charge_id == charge and refunded.provider_payment_charge_id is None
    # A refused refund says nothing in the chat.
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(alice.id, charge)
    assert await bot.get_updates(offset=update.update_id + 1) == []
