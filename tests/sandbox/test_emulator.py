"""End-to-end checks of the Bot API emulator through real HTTP (aiogram and raw)."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import Command, CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
)

from bot.sandbox import SandboxError, TelegramEmulator

pytestmark = pytest.mark.asyncio

# A 1×1 PNG: the emulator, like Telegram, refuses photo bytes that are no image.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8ffff3f0005fe02fea7d6a4830000000049454e44ae426082"
)


def keyboard(*buttons: InlineKeyboardButton) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[list(buttons)])


def started(emu: TelegramEmulator, name: str = "Alice"):
    user = emu.add_user(name)
    emu.send(user, None, "/start")
    return user


async def test_auth_unknown_method_and_get_me(emu, bot, raw):
    status, body = await raw("getMe", token="999:WRONG")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    status, body = await raw("sendTelepathy")
    assert (status, body["description"]) == (404, "Not Found")
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "community_test_bot", True)


async def test_long_poll_holds_until_an_update_arrives(emu, bot):
    alice = emu.add_user("Alice")
    started_at = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.3)
    assert not poll.done(), "getUpdates must hold the request open while the queue is empty"
    emu.send(alice, None, "hello")
    updates = await asyncio.wait_for(poll, 2)
    assert [u.message.text for u in updates] == ["hello"]
    assert time.monotonic() - started_at < 2


async def test_long_poll_times_out_empty(emu, bot):
    started_at = time.monotonic()
    assert await bot.get_updates(timeout=1) == []
    assert time.monotonic() - started_at >= 0.9


async def test_offset_confirms_and_negative_offset_keeps_newest(emu, bot):
    alice = emu.add_user("Alice")
    for text in ("one", "two", "three"):
        emu.send(alice, None, text)
    first = await bot.get_updates()
    assert [u.message.text for u in first] == ["one", "two", "three"]
    assert [u.message.text for u in await bot.get_updates()] == ["one", "two", "three"], "unconfirmed"
    assert await bot.get_updates(offset=first[-1].update_id + 1) == []
    assert await bot.get_updates() == [], "confirmed updates are gone"
    for text in ("four", "five"):
        emu.send(alice, None, text)
    assert [u.message.text for u in await bot.get_updates(offset=-1)] == ["five"]
    assert [u.message.text for u in await bot.get_updates()] == ["five"], "negative offset forgot older ones"


async def test_second_poller_terminates_the_first_with_409(emu, bot):
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    second = asyncio.create_task(bot.get_updates(timeout=1))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 2)
    assert await second == []


async def test_allowed_updates_controls_chat_member(emu, bot):
    owner, bob, carol = emu.add_user("Owner"), emu.add_user("Bob"), emu.add_user("Carol")
    group = emu.create_group("Green Valley Group", owner)
    emu.add_bot_to_group(group, owner, admin=True)
    updates = await bot.get_updates()
    assert [u.event_type for u in updates] == ["my_chat_member", "message"]
    offset = updates[-1].update_id + 1

    emu.join(group, bob)  # default allowed_updates: no chat_member
    updates = await bot.get_updates(offset=offset)
    assert [u.event_type for u in updates] == ["message"]
    assert updates[0].message.new_chat_members[0].id == bob.id
    offset = updates[-1].update_id + 1

    await bot.get_updates(offset=offset, allowed_updates=["message", "chat_member"])
    link = await bot.create_chat_invite_link(group.id, name="spring")
    emu.join(group, carol, invite_link=link.invite_link)
    updates = await bot.get_updates(offset=offset)  # omitted: the previous setting persists
    assert [u.event_type for u in updates] == ["chat_member", "message"]
    member_update = updates[0].chat_member
    assert (member_update.old_chat_member.status, member_update.new_chat_member.status) == ("left", "member")
    assert member_update.invite_link.invite_link == link.invite_link
    assert member_update.invite_link.name == "spring"


async def test_chat_member_updates_need_an_admin_bot(emu, bot):
    owner, bob = emu.add_user("Owner"), emu.add_user("Bob")
    group = emu.create_group("Plain", owner)
    emu.add_bot_to_group(group, owner)  # plain member
    updates = await bot.get_updates(allowed_updates=["message", "chat_member", "my_chat_member"])
    emu.join(group, bob)
    updates = await bot.get_updates(offset=updates[-1].update_id + 1)
    assert [u.event_type for u in updates] == ["message"]


async def test_private_chat_forbidden_errors(emu, bot):
    stranger = emu.add_user("Stranger")
    with pytest.raises(TelegramForbiddenError, match="bot can't initiate conversation with a user"):
        await bot.send_message(stranger.id, "hi")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(424242, "hi")

    alice = started(emu)
    await bot.send_message(alice.id, "welcome")
    emu.block_bot(alice)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(alice.id, "hi again")
    updates = await bot.get_updates()
    blocked = updates[-1].my_chat_member
    assert (blocked.old_chat_member.status, blocked.new_chat_member.status) == ("member", "kicked")
    emu.unblock_bot(alice)
    assert (await bot.send_message(alice.id, "back")).text == "back"


async def test_removed_bot_gets_403_in_groups(emu, bot):
    owner = emu.add_user("Owner")
    supergroup = emu.create_group("Super", owner)
    basic = emu.create_group("Basic", owner, supergroup=False)
    with pytest.raises(TelegramForbiddenError, match="bot is not a member of the supergroup chat"):
        await bot.send_message(supergroup.id, "hi")
    for chat in (supergroup, basic):
        emu.add_bot_to_group(chat, owner)
        await bot.send_message(chat.id, "hello")
        emu.remove_bot(chat, owner)
    with pytest.raises(TelegramForbiddenError, match="bot was kicked from the supergroup chat"):
        await bot.send_message(supergroup.id, "still here?")
    with pytest.raises(TelegramForbiddenError, match="bot is not a member of the group chat"):
        await bot.send_message(basic.id, "still here?")
    statuses = [u.my_chat_member.new_chat_member.status for u in await bot.get_updates() if u.my_chat_member]
    assert statuses == ["member", "kicked", "member", "left"]


async def test_text_validation(emu, bot):
    alice = started(emu)
    with pytest.raises(TelegramBadRequest, match="can't parse entities: Unsupported start tag"):
        await bot.send_message(alice.id, "5 < 6 <blink>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(alice.id, "<b>unclosed", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(alice.id, "Tom & Jerry", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match=r"can't parse entities: Character '\.' is reserved"):
        await bot.send_message(alice.id, "Total: 1.5", parse_mode="MarkdownV2")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(alice.id, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(alice.id, "<b> </b>", parse_mode="HTML")
    long_markup = "<b>" + "y" * 4096 + "</b>"  # 4103 raw characters, 4096 visible
    msg = await bot.send_message(alice.id, long_markup, parse_mode="HTML")
    assert len(msg.text) == 4096
    sim = emu.last_bot_message(alice)
    assert (sim.html, sim.text) == (long_markup, "y" * 4096)
    sent = await bot.send_message(alice.id, "<i>a &lt; b &amp; c</i>", parse_mode="HTML")
    assert sent.text == "a < b & c"
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(alice.id, "https://example.com/p.jpg", caption="c" * 1025)


async def test_keyboard_validation(emu, bot):
    alice = started(emu)
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(
            alice.id, "x", reply_markup=keyboard(InlineKeyboardButton(text="a", callback_data="d" * 65))
        )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        data = "é" * 33  # 33 characters, 66 bytes
        await bot.send_message(alice.id, "x", reply_markup=keyboard(InlineKeyboardButton(text="a", callback_data=data)))
    with pytest.raises(TelegramBadRequest, match="BUTTON_URL_INVALID"):
        await bot.send_message(
            alice.id, "x", reply_markup=keyboard(InlineKeyboardButton(text="a", url="http://localhost:8080"))
        )
    with pytest.raises(TelegramBadRequest, match="Text buttons are unallowed"):
        await bot.send_message(alice.id, "x", reply_markup=keyboard(InlineKeyboardButton(text="a")))
    ok = keyboard(InlineKeyboardButton(text="a", callback_data="d" * 64))
    sent = await bot.send_message(alice.id, "x", reply_markup=ok)
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "d" * 64


async def test_edit_rules(emu, bot):
    alice = started(emu)
    markup = keyboard(InlineKeyboardButton(text="Buy", callback_data="buy"))
    msg = await bot.send_message(alice.id, "<b>Price</b>", parse_mode="HTML", reply_markup=markup)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "<b>Price</b>", chat_id=alice.id, message_id=msg.message_id, parse_mode="HTML", reply_markup=markup
        )
    edited = await bot.edit_message_text("Price", chat_id=alice.id, message_id=msg.message_id, reply_markup=markup)
    assert edited.edit_date is not None, "dropping bold is a modification"
    await bot.edit_message_text("Sold", chat_id=alice.id, message_id=msg.message_id)
    assert emu.last_bot_message(alice).reply_markup is None, "editing text without reply_markup removes the keyboard"
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=alice.id, message_id=999)
    mine = emu.send(alice, None, "my own words")
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=alice.id, message_id=mine.message_id)
    with pytest.raises(TelegramBadRequest, match="there is no caption in the message to edit"):
        await bot.edit_message_caption(chat_id=alice.id, message_id=msg.message_id, caption="c")


async def test_delete_and_pin_need_rights_in_groups(emu, bot):
    owner, bob = emu.add_user("Owner"), emu.add_user("Bob")
    group = emu.create_group("Club", owner)
    emu.join(group, bob)
    emu.add_bot_to_group(group, owner)
    own = await bot.send_message(group.id, "/rules here")
    others = emu.send(bob, group, "spam")
    with pytest.raises(TelegramBadRequest, match="message can't be deleted"):
        await bot.delete_message(group.id, others.message_id)
    with pytest.raises(TelegramBadRequest, match="not enough rights to manage pinned messages in the chat"):
        await bot.pin_chat_message(group.id, own.message_id)
    assert await bot.delete_message(group.id, own.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(group.id, own.message_id)
    emu.promote_bot(group, owner, {"can_pin_messages": True, "can_delete_messages": True})
    assert await bot.delete_message(group.id, others.message_id)
    notice = await bot.send_message(group.id, "Market opens at 9")
    assert await bot.pin_chat_message(group.id, notice.message_id)
    assert (await bot.get_chat(group.id)).pinned_message.text == "Market opens at 9"
    assert [m.visible for m in emu.messages(group) if not m.service] == ["Market opens at 9"]


async def test_group_rate_limit_returns_retry_after(emu, bot, clock):
    owner = emu.add_user("Owner")
    group = emu.create_group("Busy", owner)
    emu.add_bot_to_group(group, owner)
    for i in range(20):
        clock.advance(0.5)
        await bot.send_message(group.id, f"msg {i}")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(group.id, "one too many")
    assert caught.value.retry_after == 51  # the first send leaves the 60 s window 50.5 s from now
    assert "Too Many Requests: retry after 51" in caught.value.message
    assert emu.requests[-1].error_code == 429
    clock.advance(51)
    await bot.send_message(group.id, "after waiting")


async def test_callback_answers_are_not_rate_limited(emu, bot):
    alice = started(emu)
    emu.rate_limits.per_private = (1, 60.0)
    menu = await bot.send_message(
        alice.id, "menu", reply_markup=keyboard(InlineKeyboardButton(text="Go", callback_data="go"))
    )
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(alice.id, "again")
    message = emu.last_bot_message(alice)
    assert message.message_id == menu.message_id
    for _ in range(3):
        assert await bot.answer_callback_query(emu.press(alice, message, "Go"), text="ok")


async def test_rate_limit_private_burst_and_disabled_limits(clock):
    async with TelegramEmulator(clock=clock) as emu:
        alice = started(emu)
        emu.rate_limits.per_private = (2, 1.0)
        session_bot = Bot(emu.token, session=AiohttpSession(api=TelegramAPIServer.from_base(emu.url)))
        try:
            await session_bot.send_message(alice.id, "1")
            await session_bot.send_message(alice.id, "2")
            with pytest.raises(TelegramRetryAfter) as caught:
                await session_bot.send_message(alice.id, "3")
            assert caught.value.retry_after == 1
        finally:
            await session_bot.session.close()
    async with TelegramEmulator(clock=clock, limits=False) as emu:
        alice = started(emu)
        session_bot = Bot(emu.token, session=AiohttpSession(api=TelegramAPIServer.from_base(emu.url)))
        try:
            for i in range(40):
                await session_bot.send_message(alice.id, str(i))
        finally:
            await session_bot.session.close()
        assert len(emu.bot_messages(alice)) == 40


async def test_invite_links_need_rights(emu, bot):
    owner, dana = emu.add_user("Owner"), emu.add_user("Dana")
    group = emu.create_group("Garden", owner)
    emu.add_bot_to_group(group, owner, admin=True, rights={"can_invite_users": False})
    with pytest.raises(TelegramBadRequest, match="not enough rights to manage chat invite links"):
        await bot.create_chat_invite_link(group.id)
    emu.promote_bot(group, owner)
    link = await bot.create_chat_invite_link(group.id, name="vip", member_limit=1)
    assert link.invite_link.startswith("https://t.me/+") and link.creator.id == bot.id
    assert link.member_limit == 1 and not link.is_revoked
    other = await bot.create_chat_invite_link(group.id)
    assert other.invite_link != link.invite_link
    emu.join(group, dana, invite_link=link.invite_link)
    revoked = await bot.revoke_chat_invite_link(group.id, other.invite_link)
    assert revoked.is_revoked
    with pytest.raises(SandboxError):
        emu.join(group, emu.add_user("Eve"), invite_link=link.invite_link)  # member limit reached


async def test_join_request_approval(emu, bot):
    owner, fay = emu.add_user("Owner"), emu.add_user("Fay")
    group = emu.create_group("Closed", owner)
    emu.add_bot_to_group(group, owner, admin=True)
    await bot.get_updates(allowed_updates=["chat_join_request", "chat_member", "message"])
    link = await bot.create_chat_invite_link(group.id, creates_join_request=True)
    with pytest.raises(SandboxError):
        emu.join(group, fay, invite_link=link.invite_link)
    emu.request_join(group, fay, invite_link=link.invite_link)
    updates = await bot.get_updates()
    request = next(u.chat_join_request for u in updates if u.chat_join_request)
    assert request.from_user.id == fay.id and request.invite_link.invite_link == link.invite_link
    assert await bot.approve_chat_join_request(group.id, fay.id)
    with pytest.raises(TelegramBadRequest, match="HIDE_REQUESTER_MISSING"):
        await bot.approve_chat_join_request(group.id, fay.id)
    joined = [u.chat_member for u in await bot.get_updates(offset=updates[-1].update_id + 1) if u.chat_member]
    assert joined[0].via_join_request and joined[0].new_chat_member.status == "member"


async def test_privacy_mode_filters_group_messages(emu, bot):
    owner = emu.add_user("Owner")
    group = emu.create_group("Chatty", owner)
    emu.add_bot_to_group(group, owner)
    emu.send(owner, group, "just chatting")
    emu.send(owner, group, "/checkin")
    emu.send(owner, group, "/checkin@other_bot")
    emu.send(owner, group, "/stats@community_test_bot")
    texts = [u.message.text for u in await bot.get_updates() if u.message and u.message.text]
    assert texts == ["/checkin", "/stats@community_test_bot"]
    emu.promote_bot(group, owner)
    emu.send(owner, group, "admins see everything")
    assert (await bot.get_updates(offset=-1))[0].message.text == "admins see everything"


async def test_callbacks_and_answers(emu, bot):
    alice = started(emu)
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="Buy", callback_data="buy:7"),
                InlineKeyboardButton(text="Site", url="https://example.com"),
            ]
        ]
    )
    await bot.send_message(alice.id, "Tomatoes", reply_markup=markup)
    message = emu.last_bot_message(alice)
    with pytest.raises(SandboxError):
        emu.press(alice, message, "Site")
    with pytest.raises(SandboxError):
        emu.press(alice, message, "Nope")
    callback_id = emu.press(alice, message, "Buy")
    query = (await bot.get_updates())[-1].callback_query
    assert (query.id, query.data, query.message.text) == (callback_id, "buy:7", "Tomatoes")
    assert emu.callback_answer(callback_id) is None
    await bot.answer_callback_query(callback_id, text="Added", show_alert=True)
    assert (emu.callback_answer(callback_id).text, emu.callback_answer(callback_id).show_alert) == ("Added", True)
    with pytest.raises(
        TelegramBadRequest, match="query is too old and response timeout expired or query ID is invalid"
    ):
        await bot.answer_callback_query(callback_id)
    assert emu.press(alice, message, "buy:7") != callback_id  # by callback_data, fresh id


async def test_redeliver_keeps_update_id(emu, bot):
    alice = emu.add_user("Alice")
    emu.send(alice, None, "/start")
    first = await bot.get_updates()
    offset = first[-1].update_id + 1
    assert await bot.get_updates(offset=offset) == []
    emu.redeliver(first[-1].update_id)
    again = await bot.get_updates(offset=offset)
    assert [u.update_id for u in again] == [first[-1].update_id]
    assert again[0].message.text == "/start"
    assert await bot.get_updates(offset=offset) == []


async def test_fault_injection(emu, bot):
    alice = started(emu)
    emu.fail_next("sendMessage", 502, "Bad Gateway")
    with pytest.raises(TelegramServerError):
        await bot.send_message(alice.id, "x")
    emu.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7, times=2)
    for _ in range(2):
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_message(alice.id, "x")
        assert caught.value.retry_after == 7
    assert (await bot.send_message(alice.id, "finally")).text == "finally"


async def test_documents_keep_bytes_and_file_ids_resend(emu, bot):
    alice = started(emu)
    sent = await bot.send_document(
        alice.id, BufferedInputFile(b"name,qty\nkale,3\n", filename="orders.csv"), caption="Orders"
    )
    assert sent.document.file_name == "orders.csv" and sent.caption == "Orders"
    assert emu.documents[-1].text() == "name,qty\nkale,3\n"
    again = await bot.send_document(alice.id, sent.document.file_id)
    assert again.document.file_id == sent.document.file_id
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(alice.id, "no-such-file-id")
    photo = await bot.send_photo(
        alice.id, BufferedInputFile(TINY_PNG, filename="p.png"), caption="<b>Fresh</b>", parse_mode="HTML"
    )
    assert photo.caption == "Fresh" and photo.photo[0].file_id


async def test_commands_store_and_validation(emu, bot):
    await bot.set_my_commands(
        [BotCommand(command="start", description="Start"), BotCommand(command="shop", description="Shop")]
    )
    await bot.set_my_commands(
        [BotCommand(command="checkin", description="Check in")],
        scope=BotCommandScopeAllPrivateChats(),
        language_code="de",
    )
    assert [c.command for c in await bot.get_my_commands()] == ["start", "shop"]
    assert emu.commands_for({"type": "all_private_chats"}, "de") == [{"command": "checkin", "description": "Check in"}]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_DESCRIPTION_INVALID"):
        await bot.set_my_commands([BotCommand(command="ok", description="d" * 257)])
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == []


async def test_invoice_validation(emu, bot):
    alice = started(emu)
    with pytest.raises(TelegramBadRequest, match="PAYMENT_PROVIDER_INVALID"):
        await bot.send_invoice(alice.id, "Box", "Veg box", "box:1", "USD", [LabeledPrice(label="Box", amount=500)])
    with pytest.raises(TelegramBadRequest):
        await bot.send_invoice(
            alice.id,
            "Box",
            "Veg box",
            "box:1",
            "XTR",
            [LabeledPrice(label="a", amount=5), LabeledPrice(label="b", amount=5)],
        )
    msg = await bot.send_invoice(alice.id, "Box", "Veg box", "box:1", "XTR", [LabeledPrice(label="Box", amount=50)])
    assert (msg.invoice.currency, msg.invoice.total_amount) == ("XTR", 50)


async def test_pay_round_trip_with_dispatcher(emu, bot, polling):
    dp = Dispatcher()
    charges: list[str] = []

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer_invoice("Veg box", "Weekly box", "box:42", "XTR", [LabeledPrice(label="Box", amount=25)])

    @dp.pre_checkout_query()
    async def checkout(query: PreCheckoutQuery) -> None:
        await query.answer(ok=query.invoice_payload == "box:42")

    @dp.message(F.successful_payment)
    async def paid(message: Message) -> None:
        charges.append(message.successful_payment.telegram_payment_charge_id)
        await message.answer(f"Thanks for {message.successful_payment.total_amount} stars")

    alice = emu.add_user("Alice")
    async with polling(dp):
        emu.send(alice, None, "/start")
        invoice = await emu.wait_bot_message(alice)
        assert invoice.invoice["total_amount"] == 25
        receipt = await emu.pay(alice, invoice)
        assert receipt.successful_payment["invoice_payload"] == "box:42"
        thanks = await emu.wait_bot_message(alice, contains="Thanks for 25 stars")
        assert thanks.from_bot
        await emu.settle()
    charge = receipt.successful_payment["telegram_payment_charge_id"]
    assert charges == [charge]
    assert await bot.refund_star_payment(alice.id, charge)
    assert emu.payments[charge].refunded
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await bot.refund_star_payment(alice.id, charge)
    with pytest.raises(TelegramBadRequest, match="CHARGE_ID_INVALID"):
        await bot.refund_star_payment(alice.id, "stx-unknown")


async def test_pay_declined_by_bot_returns_none(emu, bot, polling):
    dp = Dispatcher()

    @dp.pre_checkout_query()
    async def checkout(query: PreCheckoutQuery) -> None:
        await query.answer(ok=False, error_message="Sold out")

    alice = started(emu)
    await bot.send_invoice(alice.id, "Box", "Veg box", "box:1", "XTR", [LabeledPrice(label="Box", amount=5)])
    async with polling(dp):
        assert await emu.pay(alice, emu.last_bot_message(alice)) is None
    assert not emu.payments
    assert "bot declined the checkout: Sold out" in emu.transcript.render()


async def test_transcript_and_waiting_with_a_real_bot(emu, bot, polling):
    dp = Dispatcher()

    @dp.message(Command("checkin"))
    async def checkin(message: Message) -> None:
        markup = InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    InlineKeyboardButton(text="Buy", callback_data="buy"),
                    InlineKeyboardButton(text="Share", url="https://t.me/share"),
                ]
            ]
        )
        await message.answer(f"{message.from_user.first_name} checked in — day 3 streak", reply_markup=markup)

    @dp.callback_query(F.data == "buy")
    async def buy(query: CallbackQuery) -> None:
        await query.answer("Added")

    alice = emu.add_user("Alice")
    group = emu.create_group("Green Valley Group", alice)
    emu.add_bot_to_group(group, alice)
    mark = len(emu.transcript)
    async with polling(dp):
        emu.send(alice, group, "/checkin")
        reply = await emu.wait_bot_message(group, contains="checked in")
        callback_id = emu.press(alice, reply, "Buy")
        await emu.wait_for(lambda: emu.callback_answer(callback_id))
        await emu.settle()
    assert emu.transcript.render(since=mark) == (
        "[Green Valley Group] Alice: /checkin\n"
        "[Green Valley Group] bot: Alice checked in — day 3 streak\n"
        "                       [ Buy ] [ Share ↗ ]\n"
        "[Green Valley Group] Alice pressed [ Buy ]\n"
        "[Green Valley Group] bot (toast): Added"
    )


async def test_wait_timeouts_explain_themselves(emu):
    alice = emu.add_user("Alice")
    emu.send(alice, None, "/start")
    with pytest.raises(TimeoutError, match="bot message in private Alice"):
        await emu.wait_bot_message(alice, timeout=0.2)
    with pytest.raises(TimeoutError, match="not fetched"):
        await emu.settle(quiet=0.05, timeout=0.2)


async def test_send_many_for_load(emu, bot):
    users = [emu.add_user(f"user{i}") for i in range(200)]
    emu.send_many((user, None, "/start") for user in users)
    fetched = 0
    offset = 0
    while fetched < 200:
        batch = await bot.get_updates(offset=offset, timeout=0)
        fetched += len(batch)
        offset = batch[-1].update_id + 1
    assert fetched == 200 and emu.updates.undelivered == 0


async def test_ban_unban_and_leave(emu, bot):
    owner, bob, cid = emu.add_user("Owner"), emu.add_user("Bob"), emu.add_user("Cid")
    group = emu.create_group("Market", owner)
    emu.join(group, bob)
    emu.join(group, cid)
    emu.add_bot_to_group(group, owner)
    with pytest.raises(TelegramBadRequest, match="not enough rights to restrict/unrestrict chat member"):
        await bot.ban_chat_member(group.id, bob.id)
    emu.promote_bot(group, owner)
    with pytest.raises(TelegramBadRequest, match="can't remove chat owner"):
        await bot.ban_chat_member(group.id, owner.id)
    assert await bot.ban_chat_member(group.id, bob.id)
    assert (await bot.get_chat_member(group.id, bob.id)).status == "kicked"
    assert await bot.unban_chat_member(group.id, bob.id, only_if_banned=True)
    assert (await bot.get_chat_member(group.id, bob.id)).status == "left"
    assert await bot.unban_chat_member(group.id, cid.id)  # Telegram removes a current member here
    assert (await bot.get_chat_member(group.id, cid.id)).status == "left"
    assert await bot.get_chat_member_count(group.id) == 2
    assert [m.status for m in await bot.get_chat_administrators(group.id)] == ["creator", "administrator"]
    assert await bot.leave_chat(group.id)
    with pytest.raises(TelegramForbiddenError, match="bot is not a member of the supergroup chat"):
        await bot.send_message(group.id, "hello?")
    left = [u.my_chat_member for u in await bot.get_updates() if u.my_chat_member][-1]
    assert (left.from_user.id, left.new_chat_member.status) == (bot.id, "left")


async def test_reply_markup_edit_not_modified_and_reply_parameters(emu, bot):
    alice = started(emu)
    question = emu.send(alice, None, "what's fresh?")
    answer = await bot.send_message(alice.id, "Kale", reply_to_message_id=question.message_id)
    assert answer.reply_to_message.text == "what's fresh?"
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(alice.id, "x", reply_to_message_id=999)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=alice.id, message_id=answer.message_id)
    markup = keyboard(InlineKeyboardButton(text="More", callback_data="more"))
    edited = await bot.edit_message_reply_markup(chat_id=alice.id, message_id=answer.message_id, reply_markup=markup)
    assert edited.reply_markup.inline_keyboard[0][0].text == "More"
    assert emu.last_bot_message(alice).buttons == [["More"]]
