"""Joining group-buys from the member's side, end to end: the campaign card in the group and its
deep links, the private checkout at the group price, the "join my team" link (who invited is
recorded), a team filling (orders confirmed, the card edited to done), the last-seat race, a
duplicated Confirm, joining twice or too late, /groupbuy, and a threshold joined with a quantity."""

from __future__ import annotations

from datetime import timedelta

from buying_helpers import Shop, now, open_shop, orders_of, see, start_bot, url_buttons
from e2e_harness import BOT_USERNAME, E2E, Group, en
from sqlmodel import select

from bot.services import groupbuys
from bot.services.groupbuys import Terms
from bot.views.groupbuy_cards import post_card
from models import GroupBuy, GroupBuyKind, GroupBuyTeam, OrderStatus, TeamStatus
from models.shop import Order

CONFIRM, NO_COUPON = en("✅ Confirm"), en("Continue without a coupon")
PICKUP = "📍 North Gate"


def link(payload: str) -> str:
    return f"https://t.me/{BOT_USERNAME}?start={payload}"


async def campaign(e2e: E2E, shop: Shop, *, kind: GroupBuyKind = GroupBuyKind.TEAM, post: bool = True, **terms) -> GroupBuy:
    """A published campaign on the shop's product, its card posted in the group (as the leader's Publish does)."""
    if kind == GroupBuyKind.TEAM:
        terms = {"price": 400, "team_size": 3, "team_minutes": 120, "ends_at": now() + timedelta(days=1)} | terms
    else:
        terms = {"price": 450, "min_units": 10, "tiers": ((20, 400),), "ends_at": now() + timedelta(hours=6)} | terms
    leader = shop.group.leader.id
    async with e2e.db() as s:
        draft = await groupbuys.create(s, community_id=shop.community_id, actor_id=leader, now=now(),
                                       terms=Terms(kind=kind, product_id=shop.product.id, **terms))
        live = await groupbuys.publish(s, community_id=shop.community_id, group_buy_id=draft.id, actor_id=leader, now=now())
        if post:
            assert await post_card(e2e.app.bot, s, live.id)
    await e2e.settle()
    return live


async def row(e2e: E2E, model, ident: int):
    async with e2e.db() as s:
        return await s.get(model, ident)


async def teams_of(e2e: E2E, group_buy_id: int) -> list[GroupBuyTeam]:
    async with e2e.db() as s:
        return list(await s.exec(select(GroupBuyTeam).where(GroupBuyTeam.group_buy_id == group_buy_id).order_by(GroupBuyTeam.id)))


async def to_summary(e2e: E2E, user, payload: str, *, qty: str = "1") -> None:
    """Follow a deep link (Telegram sends /start <payload>) and walk to the summary."""
    await e2e.say(user, f"/start {payload}")
    await e2e.press(user, qty)
    await e2e.press(user, PICKUP)
    await e2e.press(user, NO_COUPON)
    assert e2e.last(user).startswith(see("<b>Your order</b>")), e2e.last(user)


async def card_shows(e2e: E2E, card, text: str) -> str:
    """The card as the refresh job leaves it (it runs every few seconds)."""
    async def probe():
        return card.text if text in (card.text or "") else None
    return await e2e.eventually(probe, timeout=12, what=f"card showing {text!r}")


def team_line(number: int, name: str, open_: int, size: int = 3) -> str:
    return en("• Team #{number} · {name} · open seats: {open} of {size} · until {when}", number=number, name=name,
              open=open_, size=size, when="").rsplit(" · ", 1)[0]


async def test_a_team_opened_from_the_card_fills_through_the_card_and_the_share_link(e2e: E2E) -> None:
    group = await e2e.make_group(members=3)
    bob, carol, dan = group.members
    shop = await open_shop(e2e, group)  # Apples at $5.00, pay at pickup
    gb = await campaign(e2e, shop)
    card = e2e.last_msg(group.chat)
    assert card.visible.splitlines()[0] == "🤝 Team group-buy: #1 · Apples"
    assert en("Normal price {normal} · team price <b>{price}</b>", normal="$5.00", price="$4.00").replace("<b>", "").replace(
        "</b>", "") in card.visible
    assert card.buttons == [[en("🤝 Open a team")], [en("Buy alone at {price}", price="$5.00")]]
    assert url_buttons(card) == [link(f"gbo-{gb.id}"), link(f"buy-{shop.product.id}")]

    # Bob opens a team from the card's button: the checkout says so and quotes the team price.
    await start_bot(e2e, bob)
    await e2e.say(bob, f"/start gbo-{gb.id}")
    first = e2e.last(bob).splitlines()
    assert first[1].startswith(see("🤝 Group-buy: you open a new team of {size} at the team price {price} (normal price "
                                   "{normal}). Once open, it has {limit} to fill.", size=3, price="$4.00", normal="$5.00",
                                   limit="2 h"))
    assert first[2] == see("{price} each", price="$4.00")
    await e2e.press(bob, "1")
    await e2e.press(bob, PICKUP)
    await e2e.press(bob, NO_COUPON)
    assert see("{qty} × {price} = {subtotal}", qty=1, price="$4.00", subtotal="$4.00") in e2e.last(bob)
    await e2e.press(bob, CONFIRM)
    [team] = await teams_of(e2e, gb.id)
    [bob_order] = await orders_of(e2e, bob)
    assert (bob_order.status, bob_order.unit_price, bob_order.team_id, team.seats, team.opener_id) == (
        OrderStatus.AWAITING_GROUP, 400, team.id, 1, bob.id)
    told = e2e.last(bob)
    assert see("Your order waits for the group-buy to succeed.") in told
    assert see("Team #{number}: {seats} of {size} joined; it must fill by {when} ({tz}), or the orders are cancelled.",
               number=1, seats=1, size=3, when=team.deadline_at.strftime("%Y-%m-%d %H:%M"), tz="UTC") in told
    share = link(f"gbt-{team.id}-{bob.id}")
    assert share in told
    assert e2e.last_msg(bob).buttons == [[en("↗️ Share: join my team")]]
    assert "gbt-" + str(team.id) + "-" + str(bob.id) in url_buttons(e2e.last_msg(bob))[0]

    # The card shows the team with its own Join button (edited by the refresh job).
    await card_shows(e2e, card, team_line(1, "Bob", 2))
    assert [en("Join team #{number}", number=1)] in card.buttons
    assert link(f"gbt-{team.id}") in url_buttons(card)

    # Carol joins from the card.
    await start_bot(e2e, carol)
    await to_summary(e2e, carol, f"gbt-{team.id}")
    assert see("🤝 Group-buy: you join team #{number} of {name} ({seats} of {size} joined; it must fill by {when}) at the "
               "team price {price} (normal price {normal}).", number=1, name="Bob", seats=1, size=3,
               when=team.deadline_at.strftime("%m-%d %H:%M"), price="$4.00", normal="$5.00") in e2e.last(carol)
    await e2e.press(carol, CONFIRM)
    assert see("Team #{number}: {seats} of {size} joined; it must fill by {when} ({tz}), or the orders are cancelled.",
               number=1, seats=2, size=3, when=team.deadline_at.strftime("%Y-%m-%d %H:%M"), tz="UTC") in e2e.last(carol)

    # Dan joins through Bob's share link and takes the last seat: the team succeeds at once.
    await start_bot(e2e, dan)
    await to_summary(e2e, dan, f"gbt-{team.id}-{bob.id}")
    await e2e.press(dan, CONFIRM)
    assert see("🎉 Team #{number} is full: {size} of {size} joined. The group-buy succeeded!", number=1, size=3) in e2e.bot_texts(dan)[-2] + e2e.bot_texts(dan)[-1]
    placed = await orders_of(e2e)
    assert len(placed) == 3 and {o.status for o in placed} == {OrderStatus.CONFIRMED}
    invited = {o.user_id: o.invited_by for o in placed}
    assert invited == {bob.id: None, carol.id: None, dan.id: bob.id}
    [team] = await teams_of(e2e, gb.id)
    assert (team.status, team.seats, team.announce_due) == (TeamStatus.SUCCEEDED, 3, False)
    # Every member heard that the team filled, once: the others from the announcement, Dan (who took
    # the last seat) from his checkout alone.
    for member in (bob, carol):
        heard = [t for t in e2e.bot_texts(member) if t.startswith("🎉") and "Apples is full" in t]
        assert len(heard) == 1, (member.first_name, e2e.bot_texts(member))
    assert not [t for t in e2e.bot_texts(dan) if t.startswith("🎉") and "Apples is full" in t]
    # The card says the team is done and offers no seat in it any more.
    await card_shows(e2e, card, en("✅ Team #{number} · {name} · done, {size} of {size}", number=1, name="Bob", size=3))
    assert [en("Join team #{number}", number=1)] not in card.buttons
    assert not [c for c in e2e.emu.calls("editMessageText") if not c.ok]


async def test_two_members_race_for_the_last_seat(e2e: E2E) -> None:
    group = await e2e.make_group(members=3)
    bob, carol, dan = group.members
    shop = await open_shop(e2e, group)
    gb = await campaign(e2e, shop, team_size=2)
    await start_bot(e2e, bob)
    await to_summary(e2e, bob, f"gbo-{gb.id}")
    await e2e.press(bob, CONFIRM)
    [team] = await teams_of(e2e, gb.id)
    for member in (carol, dan):
        await start_bot(e2e, member)
        await to_summary(e2e, member, f"gbt-{team.id}")
    e2e.clock.advance()
    callbacks = [e2e.emu.press(carol, e2e.last_msg(carol), CONFIRM), e2e.emu.press(dan, e2e.last_msg(dan), CONFIRM)]
    await e2e.settle()
    assert all(e2e.answer(c) for c in callbacks)
    placed = [o for o in await orders_of(e2e) if o.team_id == team.id]
    assert len(placed) == 2
    winner, loser = (carol, dan) if carol.id in {o.user_id for o in placed} else (dan, carol)
    [team] = await teams_of(e2e, gb.id)
    assert (team.seats, team.status) == (2, TeamStatus.SUCCEEDED)
    assert any(see("🎉 Team #{number} is full: {size} of {size} joined. The group-buy succeeded!", number=1, size=2) in t
               for t in e2e.bot_texts(winner))
    refusal = e2e.last_msg(loser)
    assert refusal.visible == see("Someone took the last seat of team #{number} a moment before you. Open a new team?", number=1)
    assert refusal.buttons == [[en("👥 Open a new team")]] and url_buttons(refusal) == [link(f"gbo-{gb.id}")]
    assert await e2e.fsm_state(loser) is None
    assert not [o for o in await orders_of(e2e) if o.user_id == loser.id]
    # The loser opens a new team from there.
    await to_summary(e2e, loser, f"gbo-{gb.id}")
    await e2e.press(loser, CONFIRM)
    assert [t.opener_id for t in await teams_of(e2e, gb.id)] == [bob.id, loser.id]


async def test_a_duplicated_confirm_makes_one_order_and_joining_twice_or_late_says_so(e2e: E2E, group: Group) -> None:
    bob, carol = group.members
    shop = await open_shop(e2e, group)
    gb = await campaign(e2e, shop)
    await start_bot(e2e, bob)
    await to_summary(e2e, bob, f"gbo-{gb.id}")
    await e2e.press(bob, CONFIRM)
    e2e.emu.redeliver(e2e.last_update_id("callback_query"))
    await e2e.settle()
    e2e.clock.advance()
    summary = [m for m in e2e.emu.bot_messages(bob) if m.buttons and m.buttons[0] == [CONFIRM]]
    assert summary == []  # the summary became the confirmation
    [order] = await orders_of(e2e)
    [team] = await teams_of(e2e, gb.id)
    assert team.seats == 1 and order.team_id == team.id
    assert sum("Team #1: 1 of 3 joined" in t for t in e2e.bot_texts(bob)) == 1
    # Joining one's own team again, and opening a second team beyond the limit of one.
    await e2e.say(bob, f"/start gbt-{team.id}")
    assert e2e.last(bob) == see("You are already in team #{number}.", number=1)
    await e2e.say(bob, f"/start gbo-{gb.id}")
    assert e2e.last(bob) == see("You can open at most {limit} team(s) in this group-buy.", limit=1)
    # A team past its deadline (not yet swept) and one that failed.
    async with e2e.db() as s:
        expired = await s.get(GroupBuyTeam, team.id)
        expired.deadline_at = now() - timedelta(minutes=1)
        await s.commit()
    await start_bot(e2e, carol)
    await e2e.say(carol, f"/start gbt-{team.id}")
    late = e2e.last_msg(carol)
    assert late.visible == see("Team #{number} ran out of time before it filled.", number=1)
    assert url_buttons(late) == [link(f"gbo-{gb.id}")]
    async with e2e.db() as s:
        failed = await s.get(GroupBuyTeam, team.id)
        failed.status = TeamStatus.FAILED
        await s.commit()
    await e2e.say(carol, f"/start gbt-{team.id}")
    assert e2e.last(carol) == see("Team #{number} is closed: it did not fill in time.", number=1)
    for bad in ("gbt-999999", "gbt-abc", f"gbo-{gb.id}-x", "gbj-0"):
        await e2e.say(carol, f"/start {bad}")
        assert e2e.last(carol) in (see("This link is not valid or has expired."), see("That team does not exist."),
                                   see("That group-buy does not exist in this community.")), bad
    assert len(await orders_of(e2e)) == 1


async def test_groupbuy_lists_what_is_open_in_the_group_and_in_private(e2e: E2E, group: Group) -> None:
    bob = group.members[0]
    await e2e.say(bob, "/groupbuy", group.chat)
    assert e2e.last(group.chat) == see("No group-buy is open right now.")
    shop = await open_shop(e2e, group)
    teams = await campaign(e2e, shop, post=False)
    threshold = await campaign(e2e, shop, kind=GroupBuyKind.THRESHOLD, post=False)
    await e2e.say(bob, "/groupbuy", group.chat)
    reply = e2e.last_msg(group.chat)
    lines = reply.visible.splitlines()
    assert lines[0] == see("<b>Group-buys open now</b>")
    assert any(line.startswith("🛒 #1 · Apples: 0 of 10 units at $4.50") for line in lines)
    assert any(line.startswith("🤝 #1 · Apples: teams of 3 at $4.00; open teams: 0") for line in lines)
    assert sorted(url_buttons(reply)) == sorted([link(f"gbo-{teams.id}"), link(f"gbj-{threshold.id}")])
    await start_bot(e2e, bob)
    await e2e.say(bob, "/groupbuy")
    private = e2e.last_msg(bob)
    assert see("<b>{title}</b> (times in {tz})", title="Green Valley", tz="UTC") in private.visible
    assert sorted(url_buttons(private)) == sorted(url_buttons(reply))
    outsider = e2e.emu.add_user("Zed")
    await e2e.say(outsider, "/groupbuy")
    assert e2e.last(outsider) == see("No group-buy is open right now in your groups.")


async def test_threshold_join_with_a_quantity_and_the_member_limit(e2e: E2E, group: Group) -> None:
    bob = group.members[0]
    shop = await open_shop(e2e, group, stock=50)
    gb = await campaign(e2e, shop, kind=GroupBuyKind.THRESHOLD, member_limit=4)
    card = e2e.last_msg(group.chat)
    assert url_buttons(card) == [link(f"gbj-{gb.id}")]
    await start_bot(e2e, bob)
    await e2e.say(bob, f"/start gbj-{gb.id}")
    assert see("You can join with up to {count}.", count=4) in e2e.last(bob)
    assert e2e.last_msg(bob).buttons[0] == ["1", "2", "3"]
    await e2e.say(bob, "3")
    await e2e.press(bob, PICKUP)
    await e2e.press(bob, NO_COUPON)
    assert see("{qty} × {price} = {subtotal}", qty=3, price="$4.50", subtotal="$13.50") in e2e.last(bob)
    await e2e.press(bob, CONFIRM)
    [order] = await orders_of(e2e)
    assert (order.quantity, order.status, order.group_buy_id, order.team_id) == (3, OrderStatus.AWAITING_GROUP, gb.id, None)
    assert (await row(e2e, GroupBuy, gb.id)).units == 3
    assert see("Community group-buy: {units} of {min} units so far. It closes {when} ({tz}); everyone pays the price "
               "reached then, and if the minimum is not reached nobody pays.", units=3, min=10,
               when=gb.ends_at.strftime("%Y-%m-%d %H:%M"), tz="UTC") in e2e.last(bob)
    await card_shows(e2e, card, "Units so far: 3 of 10")
    # A second order beyond the member limit is asked again with what is left.
    await e2e.say(bob, f"/start gbj-{gb.id}-2")
    assert e2e.last(bob).startswith(see("Each member may join with at most {limit} units; you can still add {left}.",
                                        limit=4, left=1))
    assert await e2e.fsm_state(bob) == "CheckoutForm:quantity"
    await e2e.press(bob, "1")
    await e2e.press(bob, PICKUP)
    await e2e.press(bob, NO_COUPON)
    await e2e.press(bob, CONFIRM)
    async with e2e.db() as s:
        mine = list(await s.exec(select(Order).where(Order.group_buy_id == gb.id)))
    assert sorted(o.quantity for o in mine) == [1, 3]
    assert (await row(e2e, GroupBuy, gb.id)).units == 4


async def test_paying_online_for_a_seat_sends_the_invoice_and_the_paid_order_waits_for_the_team(e2e: E2E, group: Group) -> None:
    bob, carol = group.members
    shop = await open_shop(e2e, group, pay_at_pickup=False, stars_enabled=True, stars_per_unit=7)
    gb = await campaign(e2e, shop, team_size=2)
    await start_bot(e2e, bob)
    await to_summary(e2e, bob, f"gbo-{gb.id}")
    assert see("<b>Total: {total}</b>", total="$4.00 = 28 ⭐") in e2e.last(bob)
    await e2e.press(bob, CONFIRM)
    [invoice] = [m for m in e2e.emu.bot_messages(bob) if m.invoice is not None]
    assert (invoice.invoice["currency"], invoice.invoice["total_amount"]) == ("XTR", 28)
    [order] = await orders_of(e2e, bob)
    assert (order.status, order.team_id is not None) == (OrderStatus.PENDING_PAYMENT, True)
    e2e.clock.advance()
    await e2e.emu.pay(bob, invoice)
    await e2e.settle()
    [order] = await orders_of(e2e, bob)
    assert order.status == OrderStatus.AWAITING_GROUP and order.paid_at is not None
    assert see("Your order waits for the group-buy to succeed.") in e2e.last(bob)
    # Carol takes the last seat; her seat is held until she pays, then her order is confirmed too.
    await start_bot(e2e, carol)
    await to_summary(e2e, carol, f"gbt-{order.team_id}")
    await e2e.press(carol, CONFIRM)
    [team] = await teams_of(e2e, gb.id)
    assert (team.status, team.seats) == (TeamStatus.SUCCEEDED, 2)
    assert (await orders_of(e2e, bob))[0].status == OrderStatus.CONFIRMED
    [carol_invoice] = [m for m in e2e.emu.bot_messages(carol) if m.invoice is not None]
    e2e.clock.advance()
    await e2e.emu.pay(carol, carol_invoice)
    await e2e.settle()
    assert (await orders_of(e2e, carol))[0].status == OrderStatus.CONFIRMED
