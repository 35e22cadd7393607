"""Messages sent on behalf of a chat, end to end: an anonymous administrator (the group itself is
the sender) is told once how to be heard; a channel (its posts forwarded into the discussion group,
or a member writing as their channel) is ignored. Neither crashes a handler or becomes a user."""

from __future__ import annotations

from buying_helpers import open_shop
from e2e_harness import BOT_USERNAME, E2E, Group, en, zh

from bot.services import communities

ANONYMOUS = ("I cannot tell who you are while you write anonymously, so commands do not work that way. "
             "Turn off “Remain anonymous” in your administrator rights, or use the leader menu in a private chat with me.")
PLACEHOLDER_SENDERS = (1087968824, 136817688, 777000)


async def test_an_anonymous_administrator_is_told_once_how_to_be_heard(e2e: E2E, group: Group) -> None:
    await open_shop(e2e, group)
    before = len(e2e.bot_texts(group.chat))
    command = e2e.emu.send_as_group(group.leader, group.chat, "/buy 1")
    await e2e.settle()
    hint = e2e.last_msg(group.chat)
    assert hint.visible == en(ANONYMOUS)
    assert hint.reply_to is command
    assert hint.reply_markup["inline_keyboard"] == [[{
        "text": en("Open the leader menu"), "url": f"https://t.me/{BOT_USERNAME}?start=admin-{group.community_id}"}]]
    # More commands while the hint is fresh cost the group nothing.
    for text in ("/help", "/groupbuy", f"/buy@{BOT_USERNAME} 1 2", "/orders", "/admin"):
        e2e.clock.advance()
        e2e.emu.send_as_group(group.leader, group.chat, text)
        await e2e.settle()
    assert len(e2e.bot_texts(group.chat)) == before + 1
    for user_id in PLACEHOLDER_SENDERS:
        assert await e2e.user_row(user_id) is None


async def test_the_hint_speaks_the_groups_language(e2e: E2E, group: Group) -> None:
    async with e2e.db() as s:
        community = await communities.get_by_chat(s, group.chat.id)
        community.default_locale = "zh_Hans"
        await s.commit()
    e2e.emu.send_as_group(group.leader, group.chat, "/help")
    await e2e.settle()
    assert e2e.last(group.chat) == zh(ANONYMOUS)
    assert e2e.last_msg(group.chat).buttons == [[zh("Open the leader menu")]]


async def test_a_channel_is_ignored(e2e: E2E, group: Group) -> None:
    await open_shop(e2e, group)
    channel = e2e.emu.create_channel("Valley News", group.leader, discussion=group.chat)
    before = len(e2e.bot_texts(group.chat))
    for text in ("/buy 1", "/help", "/groupbuy", "/orders", "Fresh apples today!"):
        e2e.clock.advance()
        e2e.emu.post_in_channel(channel, text)
        await e2e.settle()
        e2e.clock.advance()
        e2e.emu.send_as_channel(group.leader, channel, group.chat, text)
        await e2e.settle()
    assert len(e2e.bot_texts(group.chat)) == before
    for user_id in PLACEHOLDER_SENDERS:
        assert await e2e.user_row(user_id) is None
    # People are still answered as before.
    await e2e.say(group.members[0], "/help", group.chat)
    assert len(e2e.bot_texts(group.chat)) == before + 1
