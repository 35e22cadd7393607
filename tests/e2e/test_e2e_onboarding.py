"""The bot joins a group: welcome, exactly which rights are missing, leaders, leaving and coming back,
members joining and leaving, and group chatter recorded in batches."""

from __future__ import annotations

from datetime import datetime, timezone

from e2e_harness import BOT_USERNAME, E2E, Group, en, utc

from bot.core.db import WriteCounter
from bot.services import settings as settings_service

WELCOME = ("Hello, {title}! I am your community's shop assistant. Leaders: open the menu in a private chat "
           "with me to set things up.")
BACK = "I am back in {title}. Everything you set up before is still here."
NOT_ADMIN_HEAD = "To work fully I need to be an administrator of this group with these rights:"
ADMIN_HEAD = "I am an administrator here but I am missing these rights:"
TAIL = ("A group admin can grant them in the group's settings → Administrators → this bot. "
        "I will check again when they change.")
ALL_RIGHTS = "Thanks! I now have every right I need."
RIGHT_LABELS = ["Invite users via link", "Delete messages", "Pin messages"]


def bullets(text: str) -> list[str]:
    return [line[2:] for line in text.splitlines() if line.startswith("• ")]


async def test_added_as_member_then_promoted_names_exactly_the_missing_rights(e2e: E2E) -> None:
    emu = e2e.emu
    alice = emu.add_user("Alice", username="alice_leads")
    chat = emu.create_group("Green Valley", alice)

    await e2e.act(lambda: emu.add_bot_to_group(chat, by=alice, admin=False))
    welcome, rights = emu.bot_messages(chat)
    community = await e2e.community(chat)
    assert welcome.visible == en(WELCOME, title="Green Valley")
    assert welcome.reply_markup["inline_keyboard"][0][0]["url"] == f"https://t.me/{BOT_USERNAME}?start=admin-{community.id}"
    assert rights.visible.splitlines()[0] == en(NOT_ADMIN_HEAD)
    assert bullets(rights.visible) == [en(label) for label in RIGHT_LABELS]
    assert rights.visible.splitlines()[-1] == en(TAIL)
    assert community.active and community.bot_status == "member" and community.bot_rights == {}
    assert community.missing_rights == ["can_invite_users", "can_delete_messages", "can_pin_messages"]

    await e2e.act(lambda: emu.promote_bot(chat, by=alice, rights={"can_pin_messages": False}))
    text = e2e.last(chat)
    assert text.splitlines()[0] == en(ADMIN_HEAD)
    assert bullets(text) == [en("Pin messages")]
    community = await e2e.community(chat)
    assert community.bot_status == "administrator"
    assert community.bot_rights == {"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": False}

    await e2e.act(lambda: emu.promote_bot(chat, by=alice, rights={}))
    assert e2e.last(chat) == en(ALL_RIGHTS)
    community = await e2e.community(chat)
    assert community.bot_rights == {"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True}
    assert community.missing_rights == []
    assert len(emu.bot_messages(chat)) == 4  # welcome, 3 missing, 1 missing, all rights: nothing twice

    assert [a.action for a in await e2e.audit(community.id)] == ["bot.added", "bot.rights_changed", "bot.rights_changed"]
    # The creator is the first leader, straight from getChatAdministrators.
    assert (await e2e.member_row(chat, alice)).is_leader


async def test_leaders_are_the_creator_and_the_administrators(e2e: E2E, group: Group) -> None:
    emu, chat, alice = e2e.emu, group.chat, group.leader
    bob, carol = group.members
    assert (await e2e.member_row(chat, alice)).is_leader
    assert not (await e2e.member_row(chat, bob)).is_leader

    await e2e.act(lambda: emu.promote(chat, bob, by=alice))
    assert (await e2e.member_row(chat, bob)).is_leader
    assert not (await e2e.member_row(chat, carol)).is_leader
    await e2e.say(bob, "/admin")
    assert e2e.last(bob).splitlines()[0] == "Green Valley"

    await e2e.act(lambda: emu.demote(chat, bob, by=alice))
    member = await e2e.member_row(chat, bob)
    assert not member.is_leader and member.status == "member"
    await e2e.say(bob, "/admin")
    assert e2e.last(bob) == en("You do not lead any community yet. Add me to your group as an administrator, "
                               "then send /admin again.")


async def test_removed_keeps_the_data_and_readded_is_the_same_community(e2e: E2E, group: Group) -> None:
    emu, chat, alice = e2e.emu, group.chat, group.leader
    async with e2e.db() as session:
        await settings_service.add_pickup_point(session, community_id=group.community_id, actor_id=alice.id,
                                                raw_name="North Gate", now=datetime.now(timezone.utc))
    members_before = [(m.user_id, m.status) for m in await e2e.members_of(group.community_id)]
    assert len(members_before) == 3
    sent_before = len(emu.bot_messages(chat))

    await e2e.act(lambda: emu.remove_bot(chat, by=alice))
    community = await e2e.community(chat)
    assert community.id == group.community_id
    assert not community.active and community.bot_status == "kicked"
    assert [p.name for p in await e2e.pickup_points(group.community_id)] == ["North Gate"]
    assert [(m.user_id, m.status) for m in await e2e.members_of(group.community_id)] == members_before
    assert len(emu.bot_messages(chat)) == sent_before
    await e2e.say(alice, "/admin")
    assert en("⚠️ I am not in this group any more. Add me back to post and sell there; your data is kept.") in e2e.last(alice)

    await e2e.act(lambda: emu.add_bot_to_group(chat, by=alice, admin=True))
    assert e2e.last(chat) == en(BACK, title="Green Valley")
    assert len(emu.bot_messages(chat)) == sent_before + 1  # all rights: no missing-rights message
    community = await e2e.community(chat)
    assert community.id == group.community_id and community.active and community.bot_status == "administrator"
    assert [p.name for p in await e2e.pickup_points(group.community_id)] == ["North Gate"]
    assert [a.action for a in await e2e.audit(group.community_id) if a.action.startswith("bot.")] == [
        "bot.added", "bot.removed", "bot.returned"]


async def test_joins_and_leaves_are_recorded_with_their_own_time(e2e: E2E, group: Group) -> None:
    emu, chat, alice = e2e.emu, group.chat, group.leader
    dave = emu.add_user("Dave", username="dave_d")

    joined = await e2e.act(lambda: emu.join(chat, dave))
    member = await e2e.member_row(chat, dave)
    assert member.status == "member" and member.left_at is None and not member.is_leader
    assert member.joined_at == utc(joined.date)

    await e2e.act(lambda: emu.leave(chat, dave))
    left = emu.messages(chat)[-1]
    assert left.service and left.service["left_chat_member"]["id"] == dave.id
    member = await e2e.member_row(chat, dave)
    assert member.status == "left" and member.left_at == utc(left.date)
    assert member.joined_at == utc(joined.date)

    rejoined = await e2e.act(lambda: emu.join(chat, dave))
    member = await e2e.member_row(chat, dave)
    assert member.status == "member" and member.left_at is None and member.joined_at == utc(rejoined.date)

    await e2e.act(lambda: emu.kick(chat, dave, by=alice))
    assert (await e2e.member_row(chat, dave)).status == "kicked"


async def test_chatter_creates_members_in_batches_not_a_write_per_message(e2e: E2E) -> None:
    emu = e2e.emu
    alice = emu.add_user("Alice")
    chat = emu.create_group("Chatty", alice)
    erin, frank = emu.add_user("Erin", username="erin_e"), emu.add_user("Frank")
    emu.join(chat, erin)
    emu.join(chat, frank)  # before the bot is there: it never hears of these joins
    await e2e.act(lambda: emu.add_bot_to_group(chat, by=alice, admin=True))
    assert await e2e.member_row(chat, erin) is None and await e2e.member_row(chat, frank) is None

    writes = WriteCounter(e2e.app.engine)
    e2e.clock.advance()
    sent = [emu.send(erin if i % 2 else frank, chat, f"hello number {i}") for i in range(10)]
    await e2e.settle()

    async def both_counted():
        rows = [await e2e.member_row(chat, erin), await e2e.member_row(chat, frank)]
        return rows if all(r is not None and r.message_count == 5 for r in rows) else None

    erin_row, frank_row = await e2e.eventually(both_counted, what="the activity flush")
    assert erin_row.status == frank_row.status == "member"
    assert erin_row.last_active_at == utc(sent[9].date) and frank_row.last_active_at == utc(sent[8].date)
    assert (await e2e.user_row(erin)).username == "erin_e"
    # Ten messages: one multi-row upsert for users and one for members per flush (two flushes at most).
    assert writes.count <= 4, f"{writes.count} writes for 10 messages"
    assert emu.bot_messages(chat)[-1].visible == en(WELCOME, title="Chatty")  # chatter got no reply


async def test_without_admin_rights_join_and_leave_notices_still_count(e2e: E2E) -> None:
    """A plain-member bot gets no chat_member updates; the service messages are its only source."""
    emu = e2e.emu
    alice = emu.add_user("Alice")
    chat = emu.create_group("Quiet Corner", alice)
    await e2e.act(lambda: emu.add_bot_to_group(chat, by=alice, admin=False))
    gina = emu.add_user("Gina")
    joined = await e2e.act(lambda: emu.join(chat, gina))
    member = await e2e.member_row(chat, gina)
    assert member.status == "member" and member.joined_at == utc(joined.date)
    await e2e.act(lambda: emu.leave(chat, gina))
    member = await e2e.member_row(chat, gina)
    assert member.status == "left" and member.left_at == utc(emu.messages(chat)[-1].date)


async def test_added_while_down_chatter_starts_the_community_and_the_next_status_welcomes(e2e: E2E) -> None:
    emu = e2e.emu
    alice = emu.add_user("Alice")
    chat = emu.create_group("Late Start", alice)
    emu.add_bot_to_group(chat, by=alice, admin=True, rights={"can_pin_messages": False})
    emu.updates.drop_pending()  # the bot was down; Telegram gave up on those updates
    await e2e.say(alice, "is the shop bot here yet?", chat)

    community = await e2e.eventually(lambda: e2e.community(chat), what="the activity flush")
    assert community.active and community.bot_status == "unknown"
    assert emu.bot_messages(chat) == []

    await e2e.act(lambda: emu.promote_bot(chat, by=alice, rights={"can_pin_messages": False, "can_invite_users": False}))
    welcome, rights = e2e.bot_texts(chat)
    assert welcome == en(WELCOME, title="Late Start")
    assert bullets(rights) == [en("Invite users via link"), en("Pin messages")]
    community = await e2e.community(chat)
    assert community.bot_status == "administrator" and community.id == (await e2e.community(chat)).id
    assert [a.action for a in await e2e.audit(community.id)] == ["bot.added"]
    assert (await e2e.member_row(chat, alice)).is_leader
