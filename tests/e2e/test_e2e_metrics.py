"""/metrics counts what every App handles: routed updates through their middleware, plain group chatter
through its lane, which stays on once polling starts with the metrics in place."""

from __future__ import annotations

from e2e_harness import en
from prometheus_client import REGISTRY


def handled(kind: str) -> float:
    return REGISTRY.get_sample_value("ccb_updates_total", {"type": kind}) or 0.0


async def test_group_chatter_and_commands_are_counted_in_updates_total(e2e):
    group = await e2e.make_group(members=3)
    # Polling started with the metrics middleware registered: chatter must still skip routing.
    assert e2e.app.dp.chatter is not None
    before, said = handled("message"), len(e2e.bot_texts(group.chat))
    for n, person in enumerate(group.members * 4):
        e2e.emu.send(person, group.chat, f"good morning {n}")
    await e2e.settle()
    assert handled("message") - before == 12
    assert len(e2e.bot_texts(group.chat)) == said, "the bot answered chatter"

    before = handled("message")
    await e2e.say(group.members[0], "/help")
    assert en("Commands for members") in e2e.last(group.members[0])
    assert handled("message") - before == 1
