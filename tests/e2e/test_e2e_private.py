"""Private chat: /start and its deep links, /help by role, languages, marketing consent, data export
and erasure, and the fallbacks."""

from __future__ import annotations

import json
import re

from e2e_harness import E2E, Group, en, zh

from bot.telegram import commands

WELCOME = ("Hi {name}! I run the shop of the Telegram groups I am in: products with buy buttons, "
           "group-buys, check-ins and rewards.\n\n"
           "Send /help to see what you can do. Send /lang to change the language.")
NOT_VALID = "This link is not valid or has expired."
NOT_LEADER_LINK = "Only this community's leaders can open its menu."
OPTED_OUT = ("Done: you will get no promotional messages from me. Order updates still reach you.\n"
             "Changed your mind? Press the button or send /start optin.")
OPTED_IN = "Welcome back: you will get promotions and coupons again. Send /stop to turn them off."
FORGET_ASK = ("This erases your name, username, language and group memberships from the bot. "
              "Orders stay in the leaders' books without your name. This cannot be undone. Erase now?")
# The commands of this foundation; features add theirs (/checkin, /buy...) to bot.telegram.commands.
BASE_MEMBER_COMMANDS = ["start", "help", "lang", "stop", "mydata", "forgetme", "cancel"]
MEMBER_COMMANDS = [c.name for c in commands.for_role({commands.MEMBER}, commands.PRIVATE)]
LEADER_ONLY = [c.name for c in commands.for_role({commands.LEADER}, commands.PRIVATE) if commands.MEMBER not in c.roles]
GROUP_MEMBER = [c.name for c in commands.for_role({commands.MEMBER}, commands.GROUP)]
GROUP_LEADER_ONLY = [c.name for c in commands.for_role({commands.LEADER}, commands.GROUP) if commands.MEMBER not in c.roles]


def test_the_role_table_itself() -> None:
    """What the checks below compare against: /admin is for leaders only, private matters stay private."""
    assert set(BASE_MEMBER_COMMANDS) <= set(MEMBER_COMMANDS) and "admin" not in MEMBER_COMMANDS
    assert "admin" in LEADER_ONLY and "admin" in GROUP_LEADER_ONLY
    assert "help" in GROUP_MEMBER and not {"start", "lang", "stop", "mydata", "forgetme"} & set(GROUP_MEMBER)


def listed_commands(text: str) -> list[str]:
    return re.findall(r"^/(\w+) — ", text, flags=re.MULTILINE)


async def test_start_welcomes_and_opens_the_private_chat(e2e: E2E) -> None:
    ann = e2e.emu.add_user("Ann", last_name="Lee", username="ann_lee")
    await e2e.say(ann, "/start")
    assert e2e.last(ann) == en(WELCOME, name="Ann")
    user = await e2e.user_row(ann)
    assert user.can_dm and user.first_name == "Ann" and user.last_name == "Lee" and user.username == "ann_lee"
    assert not user.marketing_opt_out and user.locale is None


async def test_start_with_unknown_or_malformed_payload(e2e: E2E) -> None:
    ann = e2e.emu.add_user("Ann")
    payloads = ["nosuchlink", "a!b", "x" * 65, "<b>hi</b>", "admin_x-1"]
    for payload in payloads:
        await e2e.say(ann, f"/start {payload}")
        assert e2e.last(ann) == en(NOT_VALID) + "\n\n" + en(WELCOME, name="Ann"), payload
    assert len(e2e.emu.bot_messages(ann)) == len(payloads)
    assert (await e2e.user_row(ann)).can_dm


async def test_start_admin_link_opens_the_menu_for_leaders_only(e2e: E2E, group: Group) -> None:
    alice, bob = group.leader, group.members[0]
    await e2e.say(alice, f"/start admin-{group.community_id}")
    menu = e2e.last_msg(alice)
    assert menu.visible.splitlines()[0] == "Green Valley"
    assert [en("⚙️ Settings")] in menu.buttons and [en("📜 Recent changes")] in menu.buttons
    assert menu.buttons[-1] == [en("« All communities")]

    for payload in (f"admin-{group.community_id}", "admin-999999", "admin-abc"):
        await e2e.say(bob, f"/start {payload}")
        assert e2e.last(bob) == en(NOT_LEADER_LINK)
        assert e2e.last_msg(bob).buttons == []
    await e2e.say(alice, "/start admin-999999")
    assert e2e.last(alice) == en(NOT_LEADER_LINK)


async def test_help_lists_each_roles_commands(e2e: E2E, group: Group) -> None:
    alice, bob = group.leader, group.members[0]
    await e2e.say(bob, "/help")
    text = e2e.last(bob)
    assert text.splitlines()[0] == en("Commands for members")
    assert listed_commands(text) == MEMBER_COMMANDS
    assert f"/help — {en('Commands you can use')}" in text.splitlines()
    assert en("Commands for leaders") not in text

    await e2e.say(alice, "/help")
    text = e2e.last(alice)
    assert listed_commands(text) == MEMBER_COMMANDS + LEADER_ONLY
    assert en("Commands for leaders") in text.splitlines()
    assert f"/admin — {en('Manage your communities')}" in text.splitlines()


async def test_help_in_the_group(e2e: E2E, group: Group) -> None:
    chat, alice, bob = group.chat, group.leader, group.members[0]
    await e2e.say(bob, "/help", chat)
    text = e2e.last(chat)
    assert listed_commands(text) == GROUP_MEMBER
    assert text.splitlines()[-1] == en("More commands are in a private chat with me.")
    await e2e.say(alice, "/help", chat)
    assert listed_commands(e2e.last(chat)) == GROUP_MEMBER + GROUP_LEADER_ONLY


async def test_lang_switches_every_later_reply(e2e: E2E) -> None:
    ann = e2e.emu.add_user("Ann")
    assert zh("Choose your language:") != en("Choose your language:")  # the catalog really translates
    await e2e.say(ann, "/lang")
    assert e2e.last(ann) == en("Choose your language:")
    assert e2e.last_msg(ann).buttons == [["✓ English", "简体中文"]]

    await e2e.press(ann, "简体中文")
    assert e2e.last(ann) == zh("Language set to Simplified Chinese.")
    assert (await e2e.user_row(ann)).locale == "zh_Hans"
    await e2e.say(ann, "/help")
    assert e2e.last(ann).splitlines()[0] == zh("Commands for members")
    await e2e.say(ann, "/lang")
    assert e2e.last(ann) == zh("Choose your language:")
    assert e2e.last_msg(ann).buttons == [["English", "✓ 简体中文"]]

    await e2e.press(ann, "English")
    assert e2e.last(ann) == en("Language set to English.")
    assert (await e2e.user_row(ann)).locale == "en"
    await e2e.say(ann, "/start")
    assert e2e.last(ann) == en(WELCOME, name="Ann")


async def test_telegram_language_code_picks_chinese_without_asking(e2e: E2E) -> None:
    chen = e2e.emu.add_user("陈", last_name="小红", language_code="zh-hans")
    assert zh(WELCOME, name="陈") != en(WELCOME, name="陈")
    await e2e.say(chen, "/start")
    assert e2e.last(chen) == zh(WELCOME, name="陈")
    user = await e2e.user_row(chen)
    assert user.language_code == "zh-hans" and user.locale is None


async def test_stop_then_opt_back_in_by_button_and_by_link(e2e: E2E) -> None:
    ann = e2e.emu.add_user("Ann")
    await e2e.say(ann, "/stop")
    assert e2e.last(ann) == en(OPTED_OUT)
    assert (await e2e.user_row(ann)).marketing_opt_out

    await e2e.press(ann, en("Send me promotions again"))
    assert e2e.last(ann) == en(OPTED_IN)
    assert not (await e2e.user_row(ann)).marketing_opt_out
    await e2e.press(ann, en("Stop promotions"))
    assert e2e.last(ann) == en(OPTED_OUT)
    assert (await e2e.user_row(ann)).marketing_opt_out

    await e2e.say(ann, "/start optin")
    assert e2e.last(ann) == en(OPTED_IN)
    assert not (await e2e.user_row(ann)).marketing_opt_out


async def test_mydata_sends_a_json_document(e2e: E2E, group: Group) -> None:
    bob = group.members[0]
    await e2e.say(bob, "/mydata")
    message = e2e.last_msg(bob)
    assert message.document is not None and message.document.file_name == f"mydata-{bob.id}.json"
    assert message.caption == en("Everything I keep about you, as a JSON file. Send /forgetme to erase it.")
    exported = json.loads(message.document.text())
    assert exported["user"]["id"] == bob.id and exported["user"]["first_name"] == "Bob"
    assert exported["user"]["can_receive_private_messages"] is True
    assert [(m["chat_id"], m["community"], m["status"], m["leader"]) for m in exported["memberships"]] == [
        (group.chat.id, "Green Valley", "member", False)]
    assert e2e.emu.documents[-1] is message.document


async def test_forgetme_asks_first_and_erases_only_on_yes(e2e: E2E, group: Group) -> None:
    bob = group.members[0]
    await e2e.say(bob, "/forgetme")
    assert e2e.last(bob) == en(FORGET_ASK)
    assert e2e.last_msg(bob).buttons == [[en("Yes, erase my data"), en("No, keep it")]]

    await e2e.press(bob, en("No, keep it"))
    assert e2e.last(bob) == en("Nothing was erased.")
    user = await e2e.user_row(bob)
    assert user.first_name == "Bob" and user.username and not user.erased
    assert len(await e2e.memberships(bob)) == 1

    await e2e.say(bob, "/forgetme")
    await e2e.press(bob, en("Yes, erase my data"))
    assert e2e.last(bob) == en("Your personal data has been erased. If you write to me again, "
                               "I will only know what you send from then on.")
    user = await e2e.user_row(bob)
    assert user.erased and user.first_name == "" and user.last_name is None and user.username is None
    assert user.language_code is None and user.locale is None
    assert await e2e.memberships(bob) == []
    assert [a.details for a in await e2e.audit(action="user.erased")] == [{}]


async def test_unknown_input_points_to_help(e2e: E2E) -> None:
    ann = e2e.emu.add_user("Ann")
    await e2e.say(ann, "/frobnicate")
    assert e2e.last(ann) == en("I do not know that command. Send /help to see what I can do.")
    await e2e.say(ann, "what can you do?")
    assert e2e.last(ann) == en("I did not understand that. Send /help to see what I can do.")
    await e2e.send_raw(ann, service={"location": {"latitude": 31.23, "longitude": 121.47}})
    assert e2e.last(ann) == en("I did not understand that. Send /help to see what I can do.")
    await e2e.say(ann, "/cancel")
    assert e2e.last(ann) == en("There is nothing to cancel.")
    assert len(e2e.emu.bot_messages(ann)) == 4
