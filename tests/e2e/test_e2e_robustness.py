"""Duplicate deliveries, handler failures, flood control, blocked users, unreachable users, and
user text that looks like HTML."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from e2e_harness import E2E, Group, en

import handlers.member.help
from bot.services import settings as settings_service
from bot.services import users as users_service

APOLOGY = re.compile(re.escape(en("Sorry, something went wrong on our side. Please try again. (error id {error_id})",
                                  error_id="ERRORID")).replace("ERRORID", "([0-9a-f]{8})") + "$")


async def test_a_redelivered_update_has_one_effect(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("⚙️ Settings"))
    await e2e.press(alice, en("📍 Pickup points ({n})", n=0))
    await e2e.press(alice, en("➕ Add a pickup point"))
    await e2e.say(alice, "Gate A")
    answer_update = e2e.last_update_id()
    sent = len(e2e.emu.bot_messages(alice))
    assert e2e.last(alice).startswith(en("Pickup point “{name}” added.", name="Gate A"))

    e2e.emu.redeliver(answer_update)
    await e2e.settle()
    assert len(e2e.emu.bot_messages(alice)) == sent  # no second reply (not even "I did not understand")
    assert [p.name for p in await e2e.pickup_points(cid)] == ["Gate A"]
    assert len(await e2e.audit(cid, "pickup.add")) == 1

    # A redelivered button press: answered once, no second edit, no "query is too old".
    await e2e.press(alice, "Gate A")
    await e2e.press(alice, en("🗑 Remove"))
    callback = await e2e.press(alice, en("Yes, remove it"))
    press_update = e2e.last_update_id()
    calls = len(e2e.emu.requests)
    e2e.emu.redeliver(press_update)
    await e2e.settle()
    assert e2e.answer(callback).text == en("Removed.")
    assert [c.method for c in e2e.emu.requests[calls:] if c.method != "getUpdates"] == []
    assert len(await e2e.audit(cid, "pickup.remove")) == 1

    # A departure delivered again after the member came back must not make him leave again.
    dave = e2e.emu.add_user("Dave")
    await e2e.act(lambda: e2e.emu.join(group.chat, dave))
    await e2e.act(lambda: e2e.emu.leave(group.chat, dave))
    leave_update = e2e.last_update_id("chat_member")
    assert e2e.emu.updates.get(leave_update)["chat_member"]["new_chat_member"]["status"] == "left"
    await e2e.act(lambda: e2e.emu.join(group.chat, dave))
    e2e.emu.redeliver(leave_update)
    await e2e.settle()
    member = await e2e.member_row(group.chat, dave)
    assert member.status == "member" and member.left_at is None


async def test_a_failing_handler_apologises_with_an_error_id_and_the_bot_carries_on(
        e2e: E2E, group: Group, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob, chat = group.leader, group.members[0], group.chat

    async def broken(*args, **kwargs):
        raise RuntimeError("Traceback-like secret: connection string postgres://admin:hunter2@db")

    monkeypatch.setattr(users_service, "export_data", broken)
    monkeypatch.setattr(settings_service, "set_default_locale", broken)
    monkeypatch.setattr(handlers.member.help, "roles_of", broken)
    e2e.expect_logged_errors(3)

    # A command in private chat.
    await e2e.say(bob, "/mydata")
    private = e2e.last(bob)
    assert APOLOGY.match(private), private
    # A button press: the apology is the callback's alert.
    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("⚙️ Settings"))
    await e2e.press(alice, en("🌐 Language: {lang}", lang="English"))
    callback = await e2e.press(alice, "简体中文")
    alert = e2e.answer(callback)
    assert alert.show_alert and APOLOGY.match(alert.text), alert.text
    assert (await e2e.community_by_id(group.community_id)).default_locale == "en"
    # A command in the group: a reply to it.
    command = await e2e.say(bob, "/help", chat)
    in_group = e2e.last_msg(chat)
    assert APOLOGY.match(in_group.visible) and in_group.reply_to is command

    ids = {APOLOGY.match(text).group(1) for text in (private, alert.text, in_group.visible)}
    assert len(ids) == 3
    for text in (private, alert.text, in_group.visible):
        assert "Traceback" not in text and "hunter2" not in text and "RuntimeError" not in text

    monkeypatch.undo()
    await e2e.say(bob, "/help")
    assert e2e.last(bob).splitlines()[0] == en("Commands for members")
    await e2e.say(bob, "/mydata")
    assert e2e.last_msg(bob).document is not None


async def test_a_429_on_a_reply_is_waited_out_and_the_reply_arrives_once(e2e: E2E) -> None:
    ann = e2e.emu.add_user("Ann")
    e2e.allow_api_errors(429)
    e2e.emu.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    await e2e.say(ann, "/help")
    assert [m.visible.splitlines()[0] for m in e2e.emu.bot_messages(ann)] == [en("Commands for members")]
    sends = e2e.emu.calls("sendMessage")
    assert [(c.ok, c.error_code) for c in sends] == [(False, 429), (True, None)]


async def test_blocking_and_unblocking_the_bot_is_recorded(e2e: E2E) -> None:
    ann = e2e.emu.add_user("Ann")
    await e2e.say(ann, "/start")
    assert (await e2e.user_row(ann)).can_dm
    await e2e.act(lambda: e2e.emu.block_bot(ann))
    assert not (await e2e.user_row(ann)).can_dm

    e2e.allow_api_errors(403)
    delivery = await e2e.app.sender.send_message(ann.id, "A coupon for you")
    assert not delivery.ok and delivery.error == "forbidden"
    assert not (await e2e.user_row(ann)).can_dm

    await e2e.act(lambda: e2e.emu.unblock_bot(ann))
    assert (await e2e.user_row(ann)).can_dm
    delivery = await e2e.app.sender.send_message(ann.id, "A coupon for you")
    assert delivery.ok and e2e.last(ann) == "A coupon for you"


async def test_sending_to_a_user_who_never_started_the_bot_marks_them_unreachable(e2e: E2E, group: Group) -> None:
    carol = group.members[1]
    assert not carol.started_bot
    # What the database believed (say, from an old export or a stale flag): reachable.
    async with e2e.db() as session:
        await users_service.set_can_dm(session, user_id=carol.id, can_dm=True, now=datetime.now(timezone.utc))
    e2e.allow_api_errors(403)

    delivery = await e2e.app.sender.send_message(carol.id, "Your order is ready")
    assert not delivery.ok and delivery.error == "forbidden"
    [call] = e2e.failed_requests(403)
    assert call.method == "sendMessage" and "can't initiate conversation" in call.description
    assert not (await e2e.user_row(carol)).can_dm
    assert e2e.emu.bot_messages(carol) == []


async def test_html_like_names_and_titles_are_escaped_everywhere(e2e: E2E) -> None:
    emu = e2e.emu
    title = "Tom & Jerry <Club>"
    leader = emu.add_user("<Ann & Co>", last_name="</b>", username="ann_and_co")
    group = await e2e.make_group(title, leader=leader, members=[emu.add_user("Bo<b>b")])
    chat = group.chat
    assert e2e.last(chat) == en("Hello, {title}! I am your community's shop assistant. Leaders: open the menu in a "
                                "private chat with me to set things up.", title=title)
    assert "Tom &amp; Jerry &lt;Club&gt;" in e2e.last_msg(chat).html

    await e2e.say(leader, "/start")
    assert e2e.last(leader).startswith("Hi <Ann & Co>!")
    await e2e.say(leader, "/admin")
    assert e2e.last(leader).splitlines()[0] == title
    await e2e.press(leader, en("⚙️ Settings"))
    assert title in e2e.last(leader).splitlines()[0]
    await e2e.press(leader, en("📍 Pickup points ({n})", n=0))
    assert title in e2e.last(leader).splitlines()[0]
    await e2e.press(leader, en("➕ Add a pickup point"))
    await e2e.say(leader, "<i>Back door</i> & <Lobby>")
    assert "“<i>Back door</i> & <Lobby>”" in e2e.last(leader)
    await e2e.press(leader, "<i>Back door</i> & <Lobby>")
    await e2e.press(leader, en("✏️ Rename"))
    assert e2e.last(leader) == en("Send the new name for “{value}”.", value="<i>Back door</i> & <Lobby>")
    await e2e.say(leader, "Gate <&>")
    await e2e.press(leader, "Gate <&>")
    await e2e.press(leader, en("🗑 Remove"))
    assert "“Gate <&>”" in e2e.last(leader)
    await e2e.say(leader, "/admin")
    await e2e.press(leader, en("📜 Recent changes"))
    assert "from: <i>Back door</i> & <Lobby>, to: Gate <&>" in e2e.last(leader)

    await e2e.act(lambda: emu.remove_bot(chat, by=leader))
    await e2e.act(lambda: emu.add_bot_to_group(chat, by=leader, admin=False))
    texts = e2e.bot_texts(chat)
    assert texts[-2] == en("I am back in {title}. Everything you set up before is still here.", title=title)
    assert e2e.failed_requests() == []  # not one 400 "can't parse entities"


async def test_an_update_the_bot_cannot_parse_is_logged_skipped_and_polling_goes_on(
        e2e: E2E, caplog: pytest.LogCaptureFixture) -> None:
    """Telegram adds fields and values with every Bot API release; aiogram refuses a message whose
    forward origin is of a kind it does not know. That one update is passed over, not asked for again."""
    ann = e2e.emu.add_user("Ann")
    chat = e2e.emu.chat(ann)
    poison = e2e.emu.updates.push("message", {
        "message_id": 1, "date": int(datetime.now(timezone.utc).timestamp()), "text": "look at this",
        "chat": {"id": chat.id, "type": "private", "first_name": "Ann"},
        "from": {"id": ann.id, "is_bot": False, "first_name": "Ann"},
        "forward_origin": {"type": "a_kind_from_a_later_bot_api", "date": 1_700_000_000},
    })
    e2e.expect_logged_errors(1)
    await e2e.say(ann, "/start")
    assert e2e.last(ann).startswith("Hi Ann!")
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.name == "bot.telegram.chatter" and r.levelname == "ERROR"] \
        == [f"update {poison} could not be parsed and is skipped"]
    assert e2e.emu.updates.pending == 0 and e2e.emu.updates._confirmed_below > poison
