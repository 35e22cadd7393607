"""Plain group chatter through the real bot and the emulator: off the routed path with the bot's own
routers, routed again as soon as a handler could take it (bot/telegram/chatter.py)."""

from __future__ import annotations

import pytest
from aiogram import F, Router
from aiogram.types import Message
from e2e_harness import E2E, en, utc

import handlers


@pytest.fixture
def plus_one_router(monkeypatch: pytest.MonkeyPatch) -> None:
    """A feature that answers "+1" in groups, added after the bot's routers (before the App is built)."""
    router = Router(name="plus_one")

    @router.message(F.chat.type.in_({"group", "supergroup"}), F.text == "+1")
    async def plus_one(message: Message) -> None:
        await message.reply("noted")

    own = handlers.routers
    monkeypatch.setattr(handlers, "routers", lambda: [*own(), router])


async def test_chatter_is_counted_without_routing_and_commands_still_answer(routed_updates, e2e: E2E) -> None:
    group = await e2e.make_group("Busy Corner", members=2)
    bob, carol = group.members
    assert e2e.app.dp.chatter is not None
    routed_updates.clear()
    emu = e2e.emu

    e2e.clock.advance()
    first = emu.send(bob, group.chat, "morning!")
    reply = emu.send(carol, group.chat, "morning Bob", reply_to=first)
    last = emu.send(bob, group.chat, "+1")
    await e2e.say(carol, "/help", group.chat)
    help_update = e2e.last_update_id("message")

    async def counted():
        rows = [await e2e.member_row(group.chat, bob), await e2e.member_row(group.chat, carol)]
        return rows if all(r is not None and r.message_count >= 1 for r in rows) and rows[1].message_count == 2 else None

    bob_row, carol_row = await e2e.eventually(counted, what="the activity flush")
    assert bob_row.message_count == 2 and bob_row.last_active_at == utc(last.date)
    assert carol_row.last_active_at >= utc(reply.date)
    assert routed_updates == [help_update]  # the command only
    assert e2e.last(group.chat).startswith(en("Commands for members"))  # /help in the group was answered


async def test_a_handler_for_group_text_turns_the_lane_off_and_fires(plus_one_router, e2e: E2E) -> None:
    group = await e2e.make_group("Plus Ones", members=1)
    (bob,) = group.members
    assert e2e.app.dp.chatter is None

    await e2e.say(bob, "+1", group.chat)
    await e2e.say(bob, "just chatting", group.chat)

    assert e2e.bot_texts(group.chat)[-1] == "noted"
    row = await e2e.eventually(lambda: _counted(e2e, group, bob, 2), what="the activity flush")
    assert row.status == "member"


async def _counted(e2e: E2E, group, user, count: int):
    row = await e2e.member_row(group.chat, user)
    return row if row is not None and row.message_count == count else None
