"""Messages sent on behalf of a chat, as Telegram delivers them: an anonymous administrator (the
group itself is the sender), a member writing as their channel, and a channel post forwarded
automatically into the channel's discussion group."""

from __future__ import annotations

import pytest

from bot.sandbox import SandboxError


async def test_an_anonymous_administrator_writes_as_the_group(emu, bot):
    owner, member = emu.add_user("Owner"), emu.add_user("Member")
    group = emu.create_group("Shop", owner)
    emu.add_bot_to_group(group, owner, admin=True)
    emu.join(group, member)
    emu.send_as_group(owner, group, "/buy 1")
    message = (await bot.get_updates(offset=-1))[0].message
    assert message.text == "/buy 1" and message.entities[0].type == "bot_command"
    assert message.sender_chat.id == group.id and message.sender_chat.type == "supergroup"
    assert (message.from_user.id, message.from_user.is_bot, message.from_user.username) == (1087968824, True, "GroupAnonymousBot")
    with pytest.raises(SandboxError):
        emu.send_as_group(member, group, "/buy 1")
    basic = emu.create_group("Basic", owner, supergroup=False)
    with pytest.raises(SandboxError):
        emu.send_as_group(owner, basic, "/help")


async def test_a_channel_post_is_forwarded_into_its_discussion_group(emu, bot):
    owner = emu.add_user("Owner")
    group = emu.create_group("Shop", owner)
    emu.add_bot_to_group(group, owner, admin=True)
    channel = emu.create_channel("News", owner, discussion=group)
    forward = emu.post_in_channel(channel, "/help")
    assert forward is not None and forward.chat is group
    message = (await bot.get_updates(offset=-1))[0].message
    assert message.is_automatic_forward is True
    assert message.sender_chat.id == channel.id and message.sender_chat.type == "channel"
    assert (message.from_user.id, message.from_user.is_bot) == (777000, False)
    assert message.forward_origin.type == "channel" and message.forward_origin.chat.id == channel.id
    # A member writing in the group as their own channel.
    emu.send_as_channel(owner, channel, group, "/groupbuy")
    message = (await bot.get_updates(offset=-1))[0].message
    assert message.sender_chat.id == channel.id and message.from_user.username == "Channel_Bot"
    assert not message.is_automatic_forward
    with pytest.raises(SandboxError):
        emu.create_channel("Other", owner, discussion=group)
