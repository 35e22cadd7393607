"""Members the bot has never seen speak, end to end.

People who were in the group before the bot joined send no update the bot could learn them from.
They become members when they follow a deep link into the group's checkout (the bot asks
Telegram with getChatMember, at most once per person and group while the answer is fresh) or
press a button in the group; people who left are turned away at the link. Their coupons and the
group's group-buys are then listed for them in private.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from buying_helpers import Shop, now, open_shop, orders_of, post_card, see, start_bot
from e2e_harness import E2E, Group, en
from sqlmodel import select

from bot.sandbox import SimUser
from bot.services import groupbuys
from bot.services.groupbuys import Terms
from bot.telegram.membership import ANSWER_SECONDS, MembershipCheck
from models import Coupon, GroupBuy, GroupBuyKind, OrderStatus

CONFIRM, NO_COUPON, PICKUP = en("✅ Confirm"), en("Continue without a coupon"), "📍 North Gate"
REFUSAL = ("This shop is for the members of {title}, and you are not in that group now. Join it to order; if you "
           "joined just now, try the link again in a few minutes.")


@pytest.fixture(autouse=True)
def _jobs_run_only_when_called(e2e: E2E) -> None:
    """The deadline job runs when the test calls it, as of the moment it names."""
    e2e.app.scheduler._aps.pause()


def group_before_the_bot(e2e: E2E, *names: str) -> Group:
    """Alice's group "Green Valley", which `names` joined while the bot was not there."""
    emu = e2e.emu
    leader = emu.add_user("Alice", username="alice_leads")
    chat = emu.create_group("Green Valley", leader)
    people = [emu.add_user(name) for name in names]
    for person in people:
        emu.join(chat, person)
    return Group(chat=chat, leader=leader, members=people, community_id=0)


async def add_the_bot(e2e: E2E, group: Group) -> Group:
    """The leader adds the bot as an administrator: the community starts, knowing none of the members."""
    await e2e.act(lambda: e2e.emu.add_bot_to_group(group.chat, by=group.leader, admin=True))
    group.community_id = (await e2e.community(group.chat)).id
    for person in group.members:
        assert await e2e.member_row(group.chat, person) is None
    return group


async def group_with_old_members(e2e: E2E, *names: str) -> tuple[Group, list[SimUser]]:
    group = await add_the_bot(e2e, group_before_the_bot(e2e, *names))
    return group, group.members


def membership(e2e: E2E) -> MembershipCheck:
    return e2e.app.dp["membership"]


def asked(e2e: E2E, user: SimUser) -> int:
    """getChatMember requests the bot made about `user`."""
    return sum(call.params.get("user_id") in (user.id, str(user.id)) for call in e2e.emu.calls("getChatMember"))


async def campaign(e2e: E2E, shop: Shop, **terms) -> GroupBuy:
    leader = shop.group.leader.id
    async with e2e.db() as s:
        draft = await groupbuys.create(s, community_id=shop.community_id, actor_id=leader, now=now(),
                                       terms=Terms(product_id=shop.product.id, **terms))
        return await groupbuys.publish(s, community_id=shop.community_id, group_buy_id=draft.id, actor_id=leader,
                                       now=now())


async def checkout_and_pay(e2e: E2E, user: SimUser, payload: str, qty: str) -> None:
    """Follow a deep link, walk the checkout, confirm and pay the Stars invoice."""
    await e2e.say(user, f"/start {payload}")
    await e2e.press(user, qty)
    await e2e.press(user, PICKUP)
    await e2e.press(user, NO_COUPON)
    await e2e.press(user, CONFIRM)
    invoice = [m for m in e2e.emu.bot_messages(user) if m.invoice is not None][-1]
    e2e.clock.advance()
    assert await e2e.emu.pay(user, invoice) is not None
    await e2e.settle()


async def test_a_member_from_before_the_bot_buys_joins_a_threshold_and_sees_their_coupon_and_groupbuys(e2e: E2E) -> None:
    group, [bob] = await group_with_old_members(e2e, "Bob")
    shop = await open_shop(e2e, group, price=1000, stock=20, pay_at_pickup=False, stars_enabled=True, stars_per_unit=7)
    threshold = await campaign(e2e, shop, kind=GroupBuyKind.THRESHOLD, price=1000, min_units=2, tiers=((3, 800),),
                               ends_at=now() + timedelta(hours=5))
    await start_bot(e2e, bob)
    assert await e2e.member_row(group.chat, bob) is None

    await checkout_and_pay(e2e, bob, f"buy-{shop.product.id}", "1")
    member = await e2e.member_row(group.chat, bob)
    assert (member.status, member.is_leader) == ("member", False)
    await checkout_and_pay(e2e, bob, f"gbj-{threshold.id}", "3")
    assert asked(e2e, bob) == 1, "the second link found the member row"
    plain, joined = await orders_of(e2e, bob)
    assert (plain.status, plain.paid_at is not None) == (OrderStatus.PAID, True)
    assert (joined.group_buy_id, joined.quantity, joined.paid_at is not None) == (threshold.id, 3, True)

    await e2e.app.run_job("groupbuy_deadlines", threshold.ends_at + timedelta(seconds=1))
    await e2e.settle()
    async with e2e.db() as s:
        [credit] = list(await s.exec(select(Coupon).where(Coupon.owner_id == bob.id)))
    assert (credit.source, credit.value) == ("groupbuy", 600)

    await e2e.say(bob, "/coupons")
    listed = e2e.last(bob)
    assert see("<b>Your coupons</b>") in listed and credit.code in listed
    assert see("You have no coupons to use right now.") not in listed

    team = await campaign(e2e, shop, kind=GroupBuyKind.TEAM, price=800, team_size=3, team_minutes=60,
                          ends_at=now() + timedelta(days=1))
    await e2e.say(bob, "/groupbuy")
    reply = e2e.last_msg(bob)
    assert see("<b>{title}</b> (times in {tz})", title="Green Valley", tz="UTC") in reply.visible
    assert any(line.startswith("🤝 #1 · Apples: teams of 3 at $8.00") for line in reply.visible.splitlines())
    assert any(f"gbo-{team.id}" in button.get("url", "") for row in reply.reply_markup["inline_keyboard"] for button in row)


async def test_people_who_left_before_or_after_the_bot_came_are_turned_away_at_the_link(e2e: E2E) -> None:
    group = group_before_the_bot(e2e, "Dan", "Erin")
    dan, erin = group.members
    e2e.emu.leave(group.chat, dan)  # before the bot came: it never hears of Dan
    await add_the_bot(e2e, group)
    shop = await open_shop(e2e, group)
    threshold = await campaign(e2e, shop, kind=GroupBuyKind.THRESHOLD, price=450, min_units=10, tiers=(),
                               ends_at=now() + timedelta(hours=5))
    await e2e.act(lambda: e2e.emu.leave(group.chat, erin))  # the bot sees Erin leave
    assert (await e2e.member_row(group.chat, erin)).status == "left"
    for person in (dan, erin):
        await start_bot(e2e, person)
        for payload in (f"buy-{shop.product.id}", f"gbj-{threshold.id}"):
            await e2e.say(person, f"/start {payload}")
            assert e2e.last(person) == see(REFUSAL, title="Green Valley")
            assert await e2e.fsm_state(person) is None
        assert asked(e2e, person) == 1
    assert await orders_of(e2e) == []
    assert await e2e.member_row(group.chat, dan) is None
    assert (await e2e.member_row(group.chat, erin)).status == "left"


async def test_a_restricted_member_may_buy_and_one_who_left_may_not(e2e: E2E) -> None:
    group = group_before_the_bot(e2e, "Fay", "Gus")
    fay, gus = group.members
    e2e.emu.restrict(group.chat, fay, by=group.leader)  # read-only, and still in the group
    e2e.emu.restrict(group.chat, gus, by=group.leader)
    e2e.emu.leave(group.chat, gus)  # restricted, and gone
    await add_the_bot(e2e, group)
    shop = await open_shop(e2e, group)
    for person in (fay, gus):
        await start_bot(e2e, person)
        await e2e.say(person, f"/start buy-{shop.product.id}")
    assert await e2e.fsm_state(fay) == "CheckoutForm:quantity"
    assert (await e2e.member_row(group.chat, fay)).status == "member"
    assert e2e.last(gus) == see(REFUSAL, title="Green Valley")
    assert await e2e.member_row(group.chat, gus) is None


async def test_a_burst_of_links_asks_telegram_once_per_person_until_the_answer_is_old(e2e: E2E) -> None:
    group = group_before_the_bot(e2e, "Hal", "Ivy")
    hal, ivy = group.members
    e2e.emu.leave(group.chat, ivy)
    await add_the_bot(e2e, group)
    shop = await open_shop(e2e, group)
    for person in (hal, ivy):
        await start_bot(e2e, person)
    e2e.clock.advance()
    for _ in range(3):
        for person in (hal, ivy):
            e2e.emu.send(person, None, f"/start buy-{shop.product.id}")
    await e2e.settle()
    assert (asked(e2e, hal), asked(e2e, ivy)) == (1, 1)
    assert (await e2e.member_row(group.chat, hal)).status == "member"
    assert e2e.bot_texts(ivy)[-3:] == [see(REFUSAL, title="Green Valley")] * 3

    # Later links: Hal has a member row now; Ivy's answer is kept until it is too old.
    await e2e.say(hal, f"/start buy-{shop.product.id}")
    await e2e.say(ivy, f"/start buy-{shop.product.id}")
    assert (asked(e2e, hal), asked(e2e, ivy)) == (1, 1)
    membership(e2e).clock = lambda: time.time() + ANSWER_SECONDS + 1
    await e2e.say(ivy, f"/start buy-{shop.product.id}")
    assert asked(e2e, ivy) == 2


async def test_when_telegram_cannot_be_asked_the_purchase_goes_on(e2e: E2E) -> None:
    group, [jo] = await group_with_old_members(e2e, "Jo")
    shop = await open_shop(e2e, group)
    await start_bot(e2e, jo)
    e2e.allow_api_errors(500)
    e2e.emu.fail_next("getChatMember", 500, "Internal Server Error")
    await e2e.say(jo, f"/start buy-{shop.product.id}")
    assert await e2e.fsm_state(jo) == "CheckoutForm:quantity"
    assert await e2e.member_row(group.chat, jo) is None, "nothing is learned from a failed request"


async def test_a_button_pressed_in_the_group_makes_the_presser_a_member(e2e: E2E) -> None:
    group, [kim] = await group_with_old_members(e2e, "Kim")
    shop = await open_shop(e2e, group)
    card = await post_card(e2e, group, shop.product)
    await e2e.press(kim, "🛒 Buy", group.chat, message=card)

    async def row():
        return await e2e.member_row(group.chat, kim)
    member = await e2e.eventually(row, what="Kim's member row")
    assert (member.status, member.message_count, member.last_active_at is not None) == ("member", 0, True)
