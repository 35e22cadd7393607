"""getChatMember as Telegram answers it: for people who joined before the bot, for people who left,
and for restricted users, who stay "restricted" after leaving with `is_member` false."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import ChatMemberLeft, ChatMemberMember, ChatMemberRestricted, ChatPermissions


async def test_members_who_joined_before_the_bot_are_reported_as_members(emu, bot):
    owner, bob, cid = emu.add_user("Owner"), emu.add_user("Bob"), emu.add_user("Cid")
    group = emu.create_group("Market", owner)
    emu.join(group, bob)
    emu.join(group, cid)
    emu.leave(group, cid)
    emu.add_bot_to_group(group, owner)
    assert isinstance(await bot.get_chat_member(group.id, bob.id), ChatMemberMember)
    assert isinstance(await bot.get_chat_member(group.id, cid.id), ChatMemberLeft)
    stranger = emu.add_user("Stranger")
    assert isinstance(await bot.get_chat_member(group.id, stranger.id), ChatMemberLeft)


async def test_restricted_members_keep_their_restriction_when_they_leave(emu, bot):
    owner, bob = emu.add_user("Owner"), emu.add_user("Bob")
    group = emu.create_group("Market", owner)
    emu.join(group, bob)
    emu.add_bot_to_group(group, owner, admin=True)
    assert await bot.restrict_chat_member(group.id, bob.id, ChatPermissions(can_send_messages=False))
    restricted = await bot.get_chat_member(group.id, bob.id)
    assert isinstance(restricted, ChatMemberRestricted)
    assert (restricted.is_member, restricted.can_send_messages, restricted.until_date.timestamp()) == (True, False, 0)
    emu.leave(group, bob)
    gone = await bot.get_chat_member(group.id, bob.id)
    assert isinstance(gone, ChatMemberRestricted) and gone.is_member is False
    everything = ChatPermissions(**dict.fromkeys(ChatPermissions.model_fields, True))
    assert await bot.restrict_chat_member(group.id, bob.id, everything)
    assert isinstance(await bot.get_chat_member(group.id, bob.id), ChatMemberLeft)


async def test_restrictions_are_for_supergroups(emu, bot):
    owner, bob = emu.add_user("Owner"), emu.add_user("Bob")
    group = emu.create_group("Basic", owner, supergroup=False)
    emu.join(group, bob)
    emu.add_bot_to_group(group, owner, admin=True)
    with pytest.raises(TelegramBadRequest, match="method is available only for supergroups"):
        await bot.restrict_chat_member(group.id, bob.id, ChatPermissions(can_send_messages=False))
