"""What the stats read and only the bot's handlers can record, end to end: joins and leaves as
membership events with their source (a rejoin too, each change once), and the funnel's Buy presses
and checkouts started, counted in memory and written by the activity flush."""

from __future__ import annotations

from buying_helpers import open_shop, post_card, start_bot
from e2e_harness import E2E, Group
from sqlmodel import select

from models import FunnelDay, MembershipEvent


async def events(e2e: E2E, community_id: int) -> list[tuple[int, str, str]]:
    async with e2e.db() as s:
        rows = await s.exec(select(MembershipEvent).where(MembershipEvent.community_id == community_id)
                            .order_by(MembershipEvent.id))
        return [(e.user_id, e.change, e.via) for e in rows]


async def test_joins_and_leaves_become_membership_events_once(e2e: E2E, group: Group) -> None:
    bob, carol = group.members
    link = e2e.emu.primary_link(group.chat)
    dan = e2e.emu.add_user("Dan", username="dan_stats")
    await e2e.act(lambda: e2e.emu.join(group.chat, dan, invite_link=link.link))
    await e2e.act(lambda: e2e.emu.leave(group.chat, carol))
    await e2e.act(lambda: e2e.emu.join(group.chat, carol))
    await e2e.act(lambda: e2e.emu.kick(group.chat, bob, group.leader))
    await e2e.act(lambda: e2e.emu.promote(group.chat, dan, group.leader))

    recorded = await events(e2e, group.community_id)
    # Bob and Carol joined together (handled concurrently), the rest one after the other.
    assert sorted(recorded[:2]) == [(bob.id, "join", "unknown"), (carol.id, "join", "unknown")]
    assert recorded[2:] == [(dan.id, "join", "primary_link"), (carol.id, "leave", "left"),
                            (carol.id, "join", "unknown"), (bob.id, "leave", "kicked")]


async def test_buy_presses_and_checkouts_are_counted_by_the_flush(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group)
    card = await post_card(e2e, group, shop.product)
    bob, carol = group.members
    await start_bot(e2e, bob)
    await e2e.press(bob, "🛒 Buy", group.chat, message=card)
    await e2e.say(bob, f"/start buy-{shop.product.id}")  # where the press's link leads
    await e2e.press(carol, "🛒 Buy", group.chat, message=card)  # Carol never follows it
    await e2e.say(bob, "/buy 1", group.chat)  # opens the checkout in private at once

    async def counted():
        async with e2e.db() as s:
            rows = {r.step: r.count for r in await s.exec(select(FunnelDay).where(
                FunnelDay.community_id == group.community_id, FunnelDay.product_id == shop.product.id))}
        return rows if rows.get("buy_pressed") == 3 and rows.get("checkout_started") == 2 else None

    await e2e.eventually(counted, what="the funnel's counts flushed")
