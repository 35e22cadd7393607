"""Rough edges of buying, end to end: digits that are not 0-9, a quantity above what is left, the
member who loses the race for the last unit (the way on), the last seat of a team (one success
message), a buy link to a product that is gone, and a message that arrives while the same
member's checkout closes."""

from __future__ import annotations

from datetime import timedelta
from html import escape

import pytest
from buying_helpers import add_product, buy_link, checkout_to_summary, now, open_shop, orders_of, see, start_bot
from e2e_harness import E2E, Group, en
from sqlmodel import select

from bot.services import groupbuys, products
from bot.services.groupbuys import Terms
from models import Community, GroupBuyKind, GroupBuyTeam
from models.shop import ProductStatus

CONFIRM, NO_COUPON, PICKUP = en("✅ Confirm"), en("Continue without a coupon"), "📍 North Gate"
USAGE = see("Send /buy followed by the number on the product's card, for example /buy 3, or /buy 3 2 for two.")


def quantity_step(*, left: int, title: str = "Apples", price: str = "$5.00") -> str:
    return "\n".join([see("<b>#{number} · {title}</b>", number=1, title=escape(title)), see("{price} each", price=price),
                      see("{count} left", count=left), "", see("How many would you like? Choose below or send a number.")])


async def test_digits_other_than_0_to_9_get_the_not_a_number_answer(e2e: E2E, group: Group) -> None:
    await open_shop(e2e, group, stock=10)
    bob = group.members[0]
    await start_bot(e2e, bob)
    for odd in ("①", "²", "٣", "#①"):
        await e2e.say(bob, f"/buy {odd}", group.chat)
        assert e2e.last(group.chat) == see("“{value}” is not a product number.", value=odd) + " " + USAGE, odd
    for odd in ("²", "①"):
        await e2e.say(bob, f"/buy 1 {odd}", group.chat)
        assert e2e.last(group.chat) == see("“{value}” is not a quantity. Send a whole number such as 2.", value=odd), odd
    assert await e2e.fsm_state(bob) is None
    # Typed into the checkout, the same: asked again with the reason.
    await e2e.say(bob, "/start buy-1")
    await e2e.say(bob, "③")
    assert e2e.last(bob) == see("“{value}” is not a quantity. Send a whole number such as 2.", value="③") + "\n\n" + \
        quantity_step(left=10)
    # Full-width digits are what a Chinese keyboard types: they are read as the digits they are.
    await e2e.say(bob, "２")
    assert await e2e.fsm_state(bob) == "CheckoutForm:pickup"
    assert await orders_of(e2e) == []


async def test_a_quantity_above_what_is_left_says_how_many_are_left(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, stock=3)
    bob = group.members[0]
    await start_bot(e2e, bob)
    await e2e.say(bob, "/buy 1 1000", group.chat)
    assert e2e.last(group.chat) == see("Only {available} left. Send a smaller quantity.", available=3)
    await e2e.say(bob, f"/start buy-{shop.product.id}")
    for typed in ("1000", "99999999999999999999999999999999999"):
        await e2e.say(bob, typed)
        assert e2e.last(bob) == see("Only {available} left. Send a smaller quantity.", available=3) + "\n\n" + \
            quantity_step(left=3), typed
    # Without a stock limit the most one order takes is still the limit.
    async with e2e.db() as s:
        await products.edit(s, community_id=shop.community_id, product_id=shop.product.id, actor_id=group.leader.id,
                            now=now(), stock=None)
    await e2e.say(bob, "1000")
    assert e2e.last(bob).startswith(see("At most {max} at a time.", max=999))


async def test_losing_the_race_for_the_last_unit_shows_the_way_on(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, stock=1)
    async with e2e.db() as s:
        community = await s.get(Community, group.community_id)
        pears = await add_product(s, community, group.leader.id, title="Pears <ripe>", price=300, stock=5)
        await add_product(s, community, group.leader.id, title="Figs", price=300, stock=0)
        plums = await add_product(s, community, group.leader.id, title="Plums", price=300, stock=None)
        paused = await add_product(s, community, group.leader.id, title="Kiwis", price=300, stock=5)
        await products.set_status(s, community_id=community.id, product_id=paused.id, actor_id=group.leader.id,
                                  status=ProductStatus.PAUSED, now=now())
        draft = await groupbuys.create(s, community_id=community.id, actor_id=group.leader.id, now=now(), terms=Terms(
            kind=GroupBuyKind.THRESHOLD, product_id=plums.id, price=250, min_units=10, ends_at=now() + timedelta(hours=6)))
        await groupbuys.publish(s, community_id=community.id, group_buy_id=draft.id, actor_id=group.leader.id, now=now())
    bob, carol = group.members
    await checkout_to_summary(e2e, bob, shop.product)
    await checkout_to_summary(e2e, carol, shop.product)
    e2e.clock.advance()
    e2e.emu.press(bob, e2e.last_msg(bob), CONFIRM)
    e2e.emu.press(carol, e2e.last_msg(carol), CONFIRM)
    await e2e.settle()
    [order] = await orders_of(e2e)
    loser = carol if order.user_id == bob.id else bob
    told = e2e.last_msg(loser)
    assert told.visible == "\n\n".join([
        see("Product #{number} is sold out.", number=1), see("Still on sale in {community}:", community="Green Valley"),
        see("Group-buys are open there too: send /groupbuy to see them.")])
    assert told.buttons == [["🛒 #2 · Pears <ripe>"], ["🛒 #4 · Plums"], [en("🧾 My orders")]]
    assert await e2e.fsm_state(loser) is None
    # Each product button is the product card's own Buy button: it opens that product's checkout.
    answer = e2e.answer(await e2e.press(loser, "🛒 #2 · Pears <ripe>", message=told))
    assert answer.url == buy_link(pears.id)
    await e2e.press(loser, en("🧾 My orders"), message=told)
    assert told.visible == see("You have no orders yet. Press Buy under a product in your group to order.")


async def test_a_sold_out_product_in_a_shop_with_nothing_else_still_offers_the_orders(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, stock=0)
    bob = group.members[0]
    await e2e.say(bob, f"/start buy-{shop.product.id}")
    assert e2e.last(bob) == see("Product #{number} is sold out.", number=1)
    assert e2e.last_msg(bob).buttons == [[en("🧾 My orders")]]


async def test_a_buy_link_to_a_product_that_is_gone_says_the_link_is_out_of_date(e2e: E2E, group: Group) -> None:
    await open_shop(e2e, group)
    bob = group.members[0]
    for payload in ("buy-424242", "buy-424242-2", "buy-9999999999"):
        await e2e.say(bob, f"/start {payload}")
        assert e2e.last(bob) == see("This link is out of date: the product it was for is gone. Press Buy on a product's "
                                    "card in your group to order."), payload
        assert await e2e.fsm_state(bob) is None


async def test_a_message_that_arrives_while_the_checkout_closes_is_not_an_error(
        e2e: E2E, group: Group, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkout's state is read once per update: a photo (or any non-text message) handled while
    another update of the same member closes the checkout is answered from what was read."""
    shop = await open_shop(e2e, group)
    bob = group.members[0]
    await e2e.say(bob, f"/start buy-{shop.product.id}")
    storage = e2e.app.dp.storage
    read, reads = storage.get_state, []

    async def closed_right_after_reading(key):
        found = await read(key)
        reads.append(found)
        # The update's first read is aiogram's (for the state filters), the second the checkout
        # handler's own: right after it, another update of Bob's (a Cancel, a Confirm) closes it.
        if len(reads) == 2:
            await storage.set_state(key, None)
        return found

    monkeypatch.setattr(storage, "get_state", closed_right_after_reading)
    await e2e.send_raw(bob, service={"location": {"latitude": 1.0, "longitude": 2.0}})
    assert e2e.last(bob) == see("Please answer with text or use the buttons.") + "\n\n" + quantity_step(left=10)


async def test_the_member_who_takes_the_last_seat_hears_of_success_once(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group)
    async with e2e.db() as s:
        draft = await groupbuys.create(s, community_id=shop.community_id, actor_id=group.leader.id, now=now(), terms=Terms(
            kind=GroupBuyKind.TEAM, product_id=shop.product.id, price=400, team_size=2, team_minutes=120,
            ends_at=now() + timedelta(days=1)))
        gb = await groupbuys.publish(s, community_id=shop.community_id, group_buy_id=draft.id, actor_id=group.leader.id,
                                     now=now())
    bob, carol = group.members
    for member, payload in ((bob, f"gbo-{gb.id}"), (carol, None)):
        if payload is None:
            [team] = await teams_of(e2e, gb.id)
            payload = f"gbt-{team.id}"
        await e2e.say(member, f"/start {payload}")
        await e2e.press(member, "1")
        await e2e.press(member, PICKUP)
        await e2e.press(member, NO_COUPON)
        await e2e.press(member, CONFIRM)
    full = see("🎉 Team #{number} is full: {size} of {size} joined. The group-buy succeeded!", number=1, size=2)
    assert full in e2e.last(carol)
    assert [t for t in e2e.bot_texts(carol) if "🎉" in t] == [e2e.last(carol)]
    # The opener hears it from the announcement, once.
    headline = see("🎉 Team #{number} for {title} is full: the group-buy succeeded!", number=1, title="Apples")
    assert [t for t in e2e.bot_texts(bob) if "🎉" in t] == [e2e.last(bob)] and e2e.last(bob).startswith(headline)
    [team] = await teams_of(e2e, gb.id)
    assert team.announce_due is False


async def teams_of(e2e: E2E, group_buy_id: int) -> list[GroupBuyTeam]:
    async with e2e.db() as s:
        return list(await s.exec(select(GroupBuyTeam).where(GroupBuyTeam.group_buy_id == group_buy_id)
                                 .order_by(GroupBuyTeam.id)))
