"""Telegram's paid broadcast in the emulator: its own overall limit, per-chat limits kept, 0.1 Star a message."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter

from bot.sandbox import TelegramEmulator

pytestmark = pytest.mark.asyncio


def started(emu: TelegramEmulator, count: int) -> list:
    users = [emu.add_user(f"U{n}") for n in range(count)]
    for user in users:
        emu.send(user, None, "/start")
    return users


async def test_paid_messages_skip_the_free_overall_limit_but_have_their_own(emu, bot, clock):
    emu.bot_star_balance = 10
    emu.rate_limits.overall = (2, 1.0)
    emu.rate_limits.paid_overall = (3, 1.0)
    users = started(emu, 6)
    await bot.send_message(users[0].id, "free 1")
    await bot.send_message(users[1].id, "free 2")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(users[2].id, "free 3")
    for user in users[2:5]:
        await bot.send_message(user.id, "paid", allow_paid_broadcast=True)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(users[5].id, "paid 4", allow_paid_broadcast=True)
    assert caught.value.retry_after == 1
    assert [m.visible for m in emu.bot_messages(users[5])] == []
    clock.advance(1)
    await bot.send_message(users[5].id, "paid 4", allow_paid_broadcast=True)
    assert emu.paid_messages == 4
    assert emu.bot_star_balance == pytest.approx(9.6)


async def test_paid_messages_still_wait_for_the_chat(emu, bot, clock):
    emu.bot_star_balance = 1
    emu.rate_limits.per_private = (1, 1.0)
    [ann] = started(emu, 1)
    await bot.send_message(ann.id, "one", allow_paid_broadcast=True)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(ann.id, "two", allow_paid_broadcast=True)
    assert (emu.paid_messages, emu.bot_star_balance) == (1, pytest.approx(0.9))  # a 429 costs nothing
    clock.advance(1)
    await bot.send_message(ann.id, "two", allow_paid_broadcast=True)
    assert [m.visible for m in emu.bot_messages(ann)] == ["one", "two"]


async def test_a_balance_that_cannot_pay_refuses_the_message(emu, bot, raw):
    emu.bot_star_balance = 0.1
    ann, bob = started(emu, 2)
    await bot.send_photo(ann.id, "https://example.com/kale.jpg", caption="Kale", allow_paid_broadcast=True)
    with pytest.raises(TelegramBadRequest) as caught:
        await bot.send_message(bob.id, "sale", allow_paid_broadcast=True)
    assert caught.value.message == "Bad Request: BALANCE_TOO_LOW"
    status, body = await raw("sendMessage", chat_id=bob.id, text="sale", allow_paid_broadcast=True)
    assert (status, body["error_code"]) == (400, 400)
    assert emu.bot_messages(bob) == []
    assert (emu.paid_messages, emu.bot_star_balance) == (1, 0)
    await bot.send_message(bob.id, "free is still free")  # the free path never looks at the balance
    assert [m.visible for m in emu.bot_messages(bob)] == ["free is still free"]
