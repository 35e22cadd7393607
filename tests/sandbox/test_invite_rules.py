"""Invite links as Telegram handles them: names cut to 32 characters, no member limit on links that
create join requests, the right to invite users, and which `chat_member` updates name the link
(first joins into private groups; not public-group joins, not rejoins); join requests carry the link,
other administrators' links show with their end hidden, and people added by an admin come `from` them."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramBadRequest

from bot.sandbox import SandboxError

ALLOWED = ["message", "chat_member", "chat_join_request", "my_chat_member"]


async def setup(emu, bot, *, public: bool = False, rights: dict | None = None):
    owner = emu.add_user("Owner")
    group = emu.create_group("Garden", owner, username="garden_market" if public else None)
    emu.add_bot_to_group(group, owner, admin=True, rights=rights)
    updates = await bot.get_updates(allowed_updates=ALLOWED)
    return owner, group, updates[-1].update_id + 1


async def member_updates(bot, offset):
    updates = await bot.get_updates(offset=offset)
    return [u.chat_member for u in updates if u.chat_member], (updates[-1].update_id + 1 if updates else offset)


async def test_link_names_are_cut_to_32_characters_not_refused(emu, bot):
    _, group, _ = await setup(emu, bot)
    long = "Maximilian Alexander von Hohenzollern"  # 37 characters
    link = await bot.create_chat_invite_link(group.id, name=long)
    assert link.name == long[:32] and len(link.name) == 32
    spaced = await bot.create_chat_invite_link(group.id, name="  Ann \n\n  Lee  ")
    assert spaced.name == "Ann Lee"
    blank = await bot.create_chat_invite_link(group.id, name="   ")
    assert blank.name is None
    edited = await bot.edit_chat_invite_link(group.id, link.invite_link, name="李" * 40)
    assert edited.name == "李" * 32
    assert emu.chats[group.id].invite_links[link.invite_link].name == "李" * 32


async def test_member_limit_is_refused_on_links_that_create_join_requests(emu, bot):
    _, group, _ = await setup(emu, bot)
    with pytest.raises(TelegramBadRequest, match="member limit can't be specified for links requiring"):
        await bot.create_chat_invite_link(group.id, creates_join_request=True, member_limit=5)
    link = await bot.create_chat_invite_link(group.id, creates_join_request=True)
    with pytest.raises(TelegramBadRequest, match="member limit can't be specified"):
        await bot.edit_chat_invite_link(group.id, link.invite_link, creates_join_request=True, member_limit=5)
    assert (await bot.create_chat_invite_link(group.id, member_limit=5)).member_limit == 5


async def test_invite_links_and_join_requests_need_the_right_to_invite_users(emu, bot):
    owner, group, offset = await setup(emu, bot, rights={"can_invite_users": False})
    for call in (bot.create_chat_invite_link(group.id, name="x"), bot.export_chat_invite_link(group.id),
                 bot.approve_chat_join_request(group.id, owner.id), bot.decline_chat_join_request(group.id, owner.id)):
        with pytest.raises(TelegramBadRequest, match="not enough rights to manage chat invite links"):
            await call
    # A request arrives only for a bot that may answer it.
    emu.request_join(group, emu.add_user("Ann"))
    assert [u for u in await bot.get_updates(offset=offset) if u.chat_join_request] == []


async def test_first_joins_into_a_private_group_name_the_link_rejoins_do_not(emu, bot):
    _, group, offset = await setup(emu, bot)
    ann = emu.add_user("Ann")
    link = await bot.create_chat_invite_link(group.id, name="Bob")
    emu.join(group, ann, invite_link=link.invite_link)
    joined, offset = await member_updates(bot, offset)
    assert joined[0].invite_link.invite_link == link.invite_link and joined[0].invite_link.name == "Bob"
    emu.leave(group, ann)
    emu.join(group, ann, invite_link=link.invite_link)
    updates, offset = await member_updates(bot, offset)
    back = [u for u in updates if u.new_chat_member.status == "member"]
    assert len(back) == 1 and back[0].invite_link is None
    # Someone who was a member before the bot came comes back without the link too.
    dee, cid = emu.add_user("Dee"), emu.add_user("Cid")
    orchard = emu.create_group("Orchard", dee)
    emu.join(orchard, cid)
    emu.leave(orchard, cid)
    emu.add_bot_to_group(orchard, dee, admin=True)
    link2 = await bot.create_chat_invite_link(orchard.id)
    emu.join(orchard, cid, invite_link=link2.invite_link)
    updates, _ = await member_updates(bot, offset)
    assert [u.invite_link for u in updates if u.chat.id == orchard.id] == [None]


async def test_joins_into_a_public_group_never_name_the_link(emu, bot):
    _, group, offset = await setup(emu, bot, public=True)
    link = await bot.create_chat_invite_link(group.id, name="Bob")
    emu.join(group, emu.add_user("Ann"), invite_link=link.invite_link)
    emu.join(group, emu.add_user("Eve"))  # the Join button
    joined, _ = await member_updates(bot, offset)
    assert [u.invite_link for u in joined] == [None, None]
    assert emu.chats[group.id].invite_links[link.invite_link].joined == 0


async def test_join_requests_carry_the_link_in_public_groups_and_for_rejoins(emu, bot):
    _, group, offset = await setup(emu, bot, public=True)
    ann = emu.add_user("Ann")
    emu.join(group, ann)
    emu.leave(group, ann)
    link = await bot.create_chat_invite_link(group.id, name="Bob", creates_join_request=True)
    with pytest.raises(SandboxError):
        emu.join(group, ann, invite_link=link.invite_link)
    emu.request_join(group, ann, invite_link=link.invite_link)
    updates = await bot.get_updates(offset=offset)
    request = next(u.chat_join_request for u in updates if u.chat_join_request)
    assert (request.from_user.id, request.invite_link.invite_link, request.invite_link.creates_join_request) == (
        ann.id, link.invite_link, True)
    offset = updates[-1].update_id + 1
    assert await bot.approve_chat_join_request(group.id, ann.id)
    joined, offset = await member_updates(bot, offset)
    assert [(u.from_user.id, u.via_join_request, u.new_chat_member.status) for u in joined] == [(bot.id, True, "member")]
    # Declined: no member update, and the request is gone.
    eve = emu.add_user("Eve")
    emu.request_join(group, eve, invite_link=link.invite_link)
    await bot.get_updates(offset=offset)
    assert await bot.decline_chat_join_request(group.id, eve.id)
    with pytest.raises(TelegramBadRequest, match="HIDE_REQUESTER_MISSING"):
        await bot.approve_chat_join_request(group.id, eve.id)
    assert not emu.chats[group.id].member(eve.id).is_member


async def test_other_administrators_links_show_with_their_end_hidden(emu, bot):
    owner, group, offset = await setup(emu, bot)
    mine = emu.create_invite_link(group, owner, name="Owner's poster")
    primary = emu.primary_link(group)
    assert emu.primary_link(group) is primary and primary.creator_id == owner.id
    emu.join(group, emu.add_user("Ann"), invite_link=mine.link)
    emu.join(group, emu.add_user("Eve"), invite_link=primary.link)
    joined, _ = await member_updates(bot, offset)
    shown = [u.invite_link for u in joined]
    assert [(s.creator.id, s.is_primary, s.name) for s in shown] == [(owner.id, False, "Owner's poster"),
                                                                      (owner.id, True, None)]
    for link, seen in zip((mine, primary), shown):
        assert seen.invite_link.endswith("…") and seen.invite_link != link.link
        assert link.link.startswith(seen.invite_link[:-1])
    with pytest.raises(SandboxError):
        emu.create_invite_link(group, emu.users[joined[0].new_chat_member.user.id])  # a plain member may not


async def test_people_added_by_an_administrator_come_from_them_without_a_link(emu, bot):
    owner, group, offset = await setup(emu, bot)
    ann = emu.add_user("Ann")
    emu.add_member(group, ann, owner)
    updates = await bot.get_updates(offset=offset)
    joined = [u.chat_member for u in updates if u.chat_member]
    assert [(u.from_user.id, u.new_chat_member.user.id, u.invite_link) for u in joined] == [(owner.id, ann.id, None)]
    service = [u.message for u in updates if u.message and u.message.new_chat_members]
    assert service[0].from_user.id == owner.id
    with pytest.raises(SandboxError):
        emu.add_member(group, ann, owner)
