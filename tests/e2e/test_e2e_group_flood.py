"""A rush of commands into one group under Telegram's flood control (20 bot messages a minute).

Every member who asks gets their answer: in private when the bot can write to them (then the group
hears nothing of it), otherwise in the group, late when the group's minute is spent. The bot spends
the group's budget knowingly: Telegram (the emulator) never has to refuse a message with 429, and
no update ends in an apology.
"""

from __future__ import annotations

import asyncio

import pytest
from buying_helpers import buy_link, open_shop, see, start_bot, url_buttons
from e2e_harness import E2E, Group, en

import handlers.member.help
from bot.sandbox import SimMessage, SimUser
from bot.telegram.send_budget import MemoryBudget

APOLOGY = "Sorry, something went wrong"


async def handlers_done(e2e: E2E) -> None:
    """Every update delivered and handled; the sender may still hold replies for later."""
    await e2e.emu.settle(quiet=0.1, timeout=20)
    while tasks := set(e2e.app.dp._handle_update_tasks):
        await asyncio.wait(tasks)


async def a_minute_passes(e2e: E2E) -> None:
    e2e.clock.advance(64)
    e2e.app.sender.wake()
    await e2e.settle()


def reply_to(e2e: E2E, command: SimMessage) -> SimMessage | None:
    replies = [m for m in e2e.emu.bot_messages(command.chat) if m.reply_to is command]
    assert len(replies) <= 1, f"{len(replies)} replies to {command.text!r}"
    return replies[0] if replies else None


async def test_a_rush_of_commands_in_one_group_is_answered_without_flood_errors(e2e: E2E) -> None:
    # The sender's budget counts on the same human clock as the emulator's flood control, so the
    # test can let a minute pass instead of sleeping through it.
    e2e.app.sender.budget = MemoryBudget(clock=e2e.clock)
    people = [e2e.emu.add_user(f"M{n:02d}", username=f"m{n:02d}_rush") for n in range(36)]
    group = await e2e.make_group("Busy Street", members=people)
    shop = await open_shop(e2e, group)
    starters, strangers, listing, helped = people[:12], people[12:24], people[24:30], people[30:]
    for person in starters:
        await start_bot(e2e, person)
    welcome = len(e2e.emu.bot_messages(group.chat))

    # 37 commands within 37 seconds; 25 of them are owed an answer in the group.
    commands: dict[int, SimMessage] = {}
    rush: list[tuple[SimUser, str]] = [(p, "/buy 1") for p in starters + strangers]
    rush += [(p, "/groupbuy") for p in listing] + [(p, "/help") for p in helped] + [(group.leader, "/admin")]
    owed = len(strangers) + len(listing) + len(helped) + 1
    for person, text in rush:
        e2e.clock.advance(1.0)
        commands[person.id] = e2e.emu.send(person, group.chat, text)
        await handlers_done(e2e)

    async def minute_spent() -> bool:
        return len(e2e.emu.bot_messages(group.chat)) == 20

    await e2e.eventually(minute_spent, what="the group's 20 messages of the minute")
    await e2e.emu.settle(quiet=0.3)
    assert len(e2e.emu.bot_messages(group.chat)) == 20
    assert e2e.app.sender.pending == welcome + owed - 20  # waiting for the group's next minute, not lost

    await a_minute_passes(e2e)

    for person in starters:  # answered in private; the group hears nothing of it
        assert reply_to(e2e, commands[person.id]) is None
        assert e2e.last(person).endswith(see("How many would you like? Choose below or send a number."))
    for person in strangers:
        reply = reply_to(e2e, commands[person.id])
        assert reply is not None, f"{person.first_name} got no answer to /buy"
        assert reply.visible == see("{name}, press the button to order #{number} in a private chat with me.",
                                    name=person.first_name, number=1)
        assert url_buttons(reply) == [buy_link(shop.product.id)]
    for person in listing:
        assert reply_to(e2e, commands[person.id]).visible == en("No group-buy is open right now.")
    for person in helped:
        assert en("More commands are in a private chat with me.") in reply_to(e2e, commands[person.id]).visible
    assert reply_to(e2e, commands[group.leader.id]).visible == en("The leader menu opens in a private chat with me.")

    group_texts = e2e.bot_texts(group.chat)
    assert len(group_texts) == welcome + owed
    assert not any(APOLOGY in text for text in group_texts)
    assert not any(APOLOGY in text for person in starters for text in e2e.bot_texts(person))
    assert e2e.failed_requests(429) == []
    assert e2e.app.sender.stats.rate_limited == 0


async def test_the_apology_for_a_failed_command_waits_for_the_groups_budget(
        e2e: E2E, group: Group, monkeypatch: pytest.MonkeyPatch) -> None:
    budget = e2e.app.sender.budget = MemoryBudget(clock=e2e.clock)
    while await budget.acquire(group.chat.id) == 0:  # the group's 20 messages of this minute are spent
        pass

    async def broken(*args, **kwargs):
        raise RuntimeError("the help service is down")

    monkeypatch.setattr(handlers.member.help, "roles_of", broken)
    e2e.expect_logged_errors(1)
    bob = group.members[0]
    before = e2e.bot_texts(group.chat)
    e2e.clock.advance()
    command = e2e.emu.send(bob, group.chat, "/help")
    await handlers_done(e2e)
    assert e2e.bot_texts(group.chat) == before and e2e.app.sender.pending == 1

    await a_minute_passes(e2e)
    apology = reply_to(e2e, command)
    assert apology is not None and apology.visible.startswith(APOLOGY)
    assert e2e.failed_requests(429) == []
