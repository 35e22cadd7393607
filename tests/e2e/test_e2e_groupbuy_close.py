"""Group-buys closing, end to end: the deadline job closes teams and thresholds, every participant
is told once in their private chat, Stars come back through refundStarPayment, card payments are
left refund-due for the leader, the leaders get a summary, and a bot that was down at a deadline
closes it when it starts again.

Campaigns and joins are made through the services (the checkout and the admin screens have their
own tests); what is checked here is what the bot sends and what the database holds afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import pytest
from aiogram.client.session.aiohttp import AiohttpSession
from buying_helpers import Shop, now, open_shop, orders_of, product_row, see, start_bot, url_buttons
from e2e_harness import (
    BOT_USERNAME,
    E2E,
    OWNER_ID,
    TOKEN,
    ErrorLog,
    Group,
    HumanClock,
    PacedEmulator,
    close_without_ssl_grace,
    en,
    pace_throttle,
)
from sqlmodel import select

from bot.app import App, polling
from bot.core.config import load_settings
from bot.core.db import create_engine, session_factory
from bot.sandbox import SimUser
from bot.sandbox.state import SimPayment
from bot.services import groupbuy_close, groupbuy_join, groupbuys
from bot.services import orders as order_service
from bot.services.groupbuy_join import JoinMode, JoinRef
from bot.views.groupbuy_announce import announce_pending, announce_team
from models import Community, Coupon, GroupBuy, GroupBuyKind, GroupBuyTeam
from models.shop import Order, OrderStatus, PaymentMethod

STARS, CARD, PICKUP = PaymentMethod.STARS, PaymentMethod.PROVIDER, PaymentMethod.PICKUP
_keys = itertools.count(1)


@pytest.fixture(autouse=True)
def _jobs_run_only_when_called(request: pytest.FixtureRequest) -> None:
    """The scheduler would run the deadline job every few seconds of wall time; these tests run it
    with `run_job` as of the moments they name."""
    if "e2e" in request.fixturenames:
        request.getfixturevalue("e2e").app.scheduler._aps.pause()


async def gb_shop(e2e: E2E, group: Group, **options) -> Shop:
    return await open_shop(e2e, group, price=1000, stock=20, stars_enabled=True, stars_per_unit=7, **options)


async def team_campaign(e2e: E2E, shop: Shop, *, size: int = 3, minutes: int = 60, window: timedelta = timedelta(days=2),
                        price: int = 800) -> GroupBuy:
    async with e2e.db() as s:
        draft = await groupbuys.create(s, community_id=shop.community_id, actor_id=shop.group.leader.id, now=now(), terms=groupbuys.Terms(
            kind=GroupBuyKind.TEAM, product_id=shop.product.id, price=price, ends_at=now() + window, team_size=size,
            team_minutes=minutes))
        return await groupbuys.publish(s, community_id=shop.community_id, group_buy_id=draft.id, actor_id=shop.group.leader.id,
                                       now=now())


async def threshold_campaign(e2e: E2E, shop: Shop, *, min_units: int, tiers: tuple[tuple[int, int], ...],
                             cutoff: timedelta = timedelta(hours=5), price: int = 1000) -> GroupBuy:
    async with e2e.db() as s:
        draft = await groupbuys.create(s, community_id=shop.community_id, actor_id=shop.group.leader.id, now=now(), terms=groupbuys.Terms(
            kind=GroupBuyKind.THRESHOLD, product_id=shop.product.id, price=price, ends_at=now() + cutoff,
            min_units=min_units, tiers=tiers))
        return await groupbuys.publish(s, community_id=shop.community_id, group_buy_id=draft.id, actor_id=shop.group.leader.id,
                                       now=now())


async def join(e2e: E2E, shop: Shop, campaign: GroupBuy, user: SimUser, *, method: PaymentMethod = PICKUP,
               team_id: int | None = None, quantity: int = 1) -> groupbuy_join.Joined:
    """What the checkout's Confirm does for a member who joins."""
    mode = JoinMode.THRESHOLD if campaign.kind == GroupBuyKind.THRESHOLD else (JoinMode.TEAM if team_id else JoinMode.OPEN)
    ref = JoinRef(campaign.id, mode, team_id)
    async with e2e.db() as s:
        community = await s.get(Community, shop.community_id)
        target = await groupbuy_join.target(s, ref=ref, community_id=community.id, now=now())
        return await groupbuy_join.join(s, community=community, ref=ref, user_id=user.id, quantity=quantity,
                                        unit_price=target.unit_price, payment_method=method,
                                        checkout_key=f"gbc-{next(_keys)}", now=now(), pickup_point_id=shop.pickup_ids[0])


async def pay(e2e: E2E, order: Order, user: SimUser) -> str:
    """The order's payment arrives (Stars are registered with the emulator, which refunds them)."""
    charge = f"charge-{order.id}-{next(_keys)}"
    if order.payment_method == STARS:
        e2e.emu.payments[charge] = SimPayment(telegram_payment_charge_id=charge, provider_payment_charge_id="",
                                              user_id=user.id, chat_id=user.id, currency="XTR",
                                              total_amount=order.stars_total, invoice_payload=f"order:{order.id}")
        currency, amount, provider = "XTR", order.stars_total, None
    else:
        currency, amount, provider = order.currency, order.total, f"prov-{charge}"
    async with e2e.db() as s:
        await order_service.record_payment(s, order_id=order.id, user_id=user.id, currency=currency, amount=amount,
                                           telegram_charge_id=charge, provider_charge_id=provider, now=now())
    return charge


async def order_row(e2e: E2E, order_id: int) -> Order:
    async with e2e.db() as s:
        return await s.get(Order, order_id)


async def team_row(e2e: E2E, team_id: int) -> GroupBuyTeam:
    async with e2e.db() as s:
        return await s.get(GroupBuyTeam, team_id)


async def deadlines(e2e: E2E, at: datetime) -> str:
    summary = await e2e.app.run_job("groupbuy_deadlines", at)
    await e2e.settle()
    return summary


def head(order: Order, amount: str, title: str = "Apples") -> str:
    return see("Order #{id} · {title} × {qty} · {amount}", id=order.id, title=title, qty=order.quantity, amount=amount)


def nothing(teams: int = 0, campaigns: int = 0) -> str:
    return (f"0 teams failed, 0 thresholds closed, 0 windows ended, 0 campaigns finished; {teams} teams and "
            f"{campaigns} campaigns announced")


EXPIRED = "⌛ Team #{number} for {title} did not fill before its deadline: the group-buy did not happen."
AGAIN = "Want to try again? Open a new team and share it with the group."


async def test_a_team_that_expires_is_cancelled_refunded_and_its_members_told_once(e2e: E2E) -> None:
    group = await e2e.make_group(members=4)
    bob, carol, dan, eve = group.members
    shop = await gb_shop(e2e, group)
    for person in (bob, carol, dan):
        await start_bot(e2e, person)
    campaign = await team_campaign(e2e, shop, size=4)
    opened = await join(e2e, shop, campaign, bob, method=STARS)
    team = opened.team
    stars_charge = await pay(e2e, opened.order, bob)
    by_card = await join(e2e, shop, campaign, carol, method=CARD, team_id=team.id)
    await pay(e2e, by_card.order, carol)
    at_pickup = await join(e2e, shop, campaign, dan, team_id=team.id)
    assert (await product_row(e2e, shop.product.id)).stock == 17
    chats_before = {p.id: len(e2e.bot_texts(p)) for p in (bob, carol, dan)}

    # Before the deadline nothing happens.
    assert await deadlines(e2e, team.deadline_at - timedelta(seconds=1)) == nothing()
    assert (await team_row(e2e, team.id)).status == "open"

    summary = await deadlines(e2e, team.deadline_at + timedelta(seconds=1))
    assert summary == ("1 teams failed, 0 thresholds closed, 0 windows ended, 0 campaigns finished; 1 teams and 0 "
                       "campaigns announced")
    stars, card, pickup = [await order_row(e2e, o.order.id) for o in (opened, by_card, at_pickup)]
    assert [(o.status, o.cancel_reason) for o in (stars, card, pickup)] == [
        (OrderStatus.REFUNDED, "groupbuy_failed"), (OrderStatus.REFUND_DUE, "groupbuy_failed"),
        (OrderStatus.CANCELLED, "groupbuy_failed")]
    assert (await product_row(e2e, shop.product.id)).stock == 20
    [refund] = e2e.emu.calls("refundStarPayment")
    assert refund.params["telegram_payment_charge_id"] == stars_charge and e2e.emu.payments[stars_charge].refunded

    headline = see(EXPIRED, number=1, title="Apples")
    assert e2e.last(bob) == "\n\n".join([
        headline, f"{head(stars, f'$8.00 ({stars.stars_total} ⭐)')}\n"
                  + see("❌ Cancelled. Your {stars} ⭐ are refunded to your balance.", stars=stars.stars_total),
        see(AGAIN)])
    assert e2e.last(carol) == "\n\n".join([
        headline, f"{head(card, '$8.00')}\n" + see("❌ Cancelled. You paid by card: the leader will refund you."), see(AGAIN)])
    assert e2e.last(dan) == "\n\n".join([headline, f"{head(pickup, '$8.00')}\n" + see("❌ Cancelled. You pay nothing."),
                                         see(AGAIN)])
    link = f"https://t.me/{BOT_USERNAME}?start=gbo-{campaign.id}"
    assert url_buttons(e2e.last_msg(bob)) == [link] and url_buttons(e2e.last_msg(dan)) == [link]
    assert [b["text"] for row in e2e.last_msg(bob).reply_markup["inline_keyboard"] for b in row] == [en("👥 Open a new team")]

    # Later runs, a run twice at once: nothing more happens and nobody hears twice.
    results = await asyncio.gather(*(e2e.app.run_job("groupbuy_deadlines", team.deadline_at + timedelta(minutes=n))
                                     for n in range(1, 4)))
    await e2e.settle()
    assert results == [nothing()] * 3
    assert {p.id: len(e2e.bot_texts(p)) for p in (bob, carol, dan)} == {k: v + 1 for k, v in chats_before.items()}
    assert len(e2e.emu.calls("refundStarPayment")) == 1
    assert not e2e.bot_texts(eve)


async def test_a_team_that_fills_confirms_everyone_and_is_announced_once(e2e: E2E) -> None:
    group = await e2e.make_group(members=3)
    bob, carol, dan = group.members
    shop = await gb_shop(e2e, group)
    for person in (bob, carol, dan):
        await start_bot(e2e, person)
    campaign = await team_campaign(e2e, shop, size=3)
    opened = await join(e2e, shop, campaign, bob, method=STARS)
    await pay(e2e, opened.order, bob)
    unpaid = await join(e2e, shop, campaign, carol, method=STARS, team_id=opened.team.id)
    last = await join(e2e, shop, campaign, dan, team_id=opened.team.id)
    assert last.completed and last.team.status == "succeeded"
    # The checkout that took the last seat and the deadline job both try to announce, at once.
    told = await asyncio.gather(announce_team(e2e.app.context, last.team.id, now=now()),
                                announce_team(e2e.app.context, last.team.id, now=now()),
                                e2e.app.run_job("groupbuy_deadlines", now()))
    await e2e.settle()
    assert sorted(told[:2]) == [False, True] and told[2] == nothing()

    paid, waiting, pickup = await order_row(e2e, opened.order.id), await order_row(e2e, unpaid.order.id), await order_row(e2e, last.order.id)
    assert [o.status for o in (paid, waiting, pickup)] == [OrderStatus.CONFIRMED, OrderStatus.PENDING_PAYMENT, OrderStatus.CONFIRMED]
    headline = see("🎉 Team #{number} for {title} is full: the group-buy succeeded!", number=1, title="Apples")
    where = see("Pickup: {place}", place="North Gate")
    assert e2e.last(bob) == "\n\n".join([headline, "\n".join([
        head(paid, f"$8.00 ({paid.stars_total} ⭐)"), see("✅ Confirmed at {price} each.", price="$8.00"), where])])
    assert e2e.last(carol) == "\n\n".join([headline, "\n".join([
        head(waiting, f"$8.00 ({waiting.stars_total} ⭐)"),
        see("💳 Your place is held: please pay {amount} to confirm it (your invoice is in /orders).", amount="$8.00"), where])])
    assert e2e.last(dan) == "\n\n".join([headline, "\n".join([
        head(pickup, "$8.00"), see("✅ Confirmed at {price} each. You pay {amount} at pickup.", price="$8.00", amount="$8.00"),
        where])])
    assert e2e.last_msg(dan).reply_markup is None
    for person in (bob, carol, dan):
        assert sum(headline in t for t in e2e.bot_texts(person)) == 1
    assert not e2e.emu.calls("refundStarPayment")


async def test_a_threshold_reaches_its_second_tier_and_credits_what_was_paid_above_it(e2e: E2E) -> None:
    group = await e2e.make_group(members=4)
    bob, carol, dan, eve = group.members
    for person in (group.leader, bob, carol, dan, eve):
        await start_bot(e2e, person)
    shop = await gb_shop(e2e, group)
    campaign = await threshold_campaign(e2e, shop, min_units=3, tiers=((3, 900), (5, 800)))
    stars = await join(e2e, shop, campaign, bob, method=STARS, quantity=2)
    await pay(e2e, stars.order, bob)
    pickup = await join(e2e, shop, campaign, carol, quantity=2)
    card = await join(e2e, shop, campaign, dan, method=CARD)
    await pay(e2e, card.order, dan)
    unpaid = await join(e2e, shop, campaign, eve, method=CARD)  # never paid: out at the cut-off

    cutoff = campaign.ends_at + timedelta(seconds=1)
    assert await deadlines(e2e, cutoff) == ("0 teams failed, 1 thresholds closed, 0 windows ended, 0 campaigns finished; "
                                            "0 teams and 1 campaigns announced")
    rows = {o.id: o for o in await orders_of(e2e)}
    bob_order, carol_order, dan_order, eve_order = (rows[j.order.id] for j in (stars, pickup, card, unpaid))
    assert [(o.status, o.unit_price, o.total, o.credit) for o in (bob_order, carol_order, dan_order)] == [
        (OrderStatus.CONFIRMED, 800, 1600, 400), (OrderStatus.CONFIRMED, 800, 1600, 0), (OrderStatus.CONFIRMED, 800, 800, 200)]
    assert (eve_order.status, eve_order.cancel_reason) == (OrderStatus.CANCELLED, "groupbuy_unpaid")
    async with e2e.db() as s:
        coupons = {c.owner_id: c for c in await s.exec(select(Coupon).where(Coupon.source == "groupbuy"))}
    assert {uid: c.value for uid, c in coupons.items()} == {bob.id: 400, dan.id: 200}

    headline = see("🎉 The group-buy for {title} reached {units} units: everyone pays {price} each.", title="Apples",
                   units=5, price="$8.00")
    where = see("Pickup: {place}", place="North Gate")
    # Paid, final and credit on one line: the Stars were paid for $20.00, not for the final $16.00.
    bob_paid = see("paid {paid} · final {final} · {credit} back as a coupon", paid=f"$20.00 ({bob_order.stars_total} ⭐)",
                   final="$16.00", credit="$4.00")
    assert e2e.last(bob) == "\n\n".join([headline, "\n".join([
        head(bob_order, bob_paid), see("✅ Confirmed at {price} each.", price="$8.00"),
        see("💝 You paid {credit} more than the final price: coupon <code>{code}</code> takes it off your next order.",
            credit="$4.00", code=coupons[bob.id].code), where])])
    assert e2e.last(carol) == "\n\n".join([headline, "\n".join([
        head(carol_order, "$16.00"),
        see("✅ Confirmed at {price} each. You pay {amount} at pickup.", price="$8.00", amount="$16.00"), where])])
    assert coupons[dan.id].code in e2e.last(dan)
    assert e2e.last(eve) == "\n\n".join([headline, f"{head(eve_order, '$10.00')}\n"
                                         + see("❌ Cancelled: it was not paid before the cut-off.")])
    assert e2e.last(group.leader) == "\n".join([
        see("📊 <b>Threshold group-buy closed: #{number} {title}</b>", number=1, title="Apples"),
        see("Reached {units} of {minimum} units; final price {price} each.", units=5, minimum=3, price="$8.00"),
        see("Participants: {people} · units: {units}", people=4, units=5),
        see("Orders confirmed: {orders} · {amount} ({paid} paid online, the rest at pickup)", orders=3, amount="$40.00",
            paid="$24.00"),
        see("Orders cancelled before payment: {orders}", orders=1),
        see("Paid above the final price, given back as coupons: {amount}", amount="$6.00")])
    assert await deadlines(e2e, cutoff + timedelta(minutes=5)) == nothing()
    assert sum(headline in t for t in e2e.bot_texts(bob)) == 1

    await e2e.say(bob, "/orders")
    assert head(bob_order, bob_paid) in e2e.last(bob).splitlines()
    await e2e.say(dan, "/orders")
    assert head(dan_order, see("paid {paid} · final {final} · {credit} back as a coupon", paid="$10.00", final="$8.00",
                               credit="$2.00")) in e2e.last(dan).splitlines()
    await e2e.say(carol, "/orders")
    assert head(carol_order, "$16.00") in e2e.last(carol).splitlines()


async def test_a_campaign_that_ends_sends_the_leaders_a_summary_and_card_refunds_stay_due(e2e: E2E) -> None:
    group = await e2e.make_group(members=4)
    bob, carol, dan, eve = group.members
    for person in (group.leader, bob, carol, dan, eve):
        await start_bot(e2e, person)
    shop = await gb_shop(e2e, group)
    campaign = await team_campaign(e2e, shop, size=2, minutes=30, window=timedelta(hours=1))
    full = await join(e2e, shop, campaign, bob, method=STARS)
    await pay(e2e, full.order, bob)
    await join(e2e, shop, campaign, carol, team_id=full.team.id)
    lonely = await join(e2e, shop, campaign, dan, method=CARD)
    await pay(e2e, lonely.order, dan)
    unpaid_lonely = await join(e2e, shop, campaign, eve, method=STARS)
    await announce_team(e2e.app.context, full.team.id, now=now())

    # The window closes first (teams still open run on), then the last team's deadline ends it all.
    end = campaign.ends_at + timedelta(seconds=1)
    assert await deadlines(e2e, end) == ("2 teams failed, 0 thresholds closed, 1 windows ended, 1 campaigns finished; "
                                         "2 teams and 1 campaigns announced")
    # Eve's Stars order was never paid: nothing to refund, and no "open a new team" (the window is over).
    assert e2e.last_msg(eve).reply_markup is None and see(AGAIN) not in e2e.last(eve)
    assert (await order_row(e2e, lonely.order.id)).status == OrderStatus.REFUND_DUE
    assert (await order_row(e2e, unpaid_lonely.order.id)).status == OrderStatus.CANCELLED
    assert e2e.last(group.leader) == "\n".join([
        see("📊 <b>Team group-buy closed: #{number} {title}</b>", number=1, title="Apples"),
        see("Teams: {succeeded} filled, {failed} did not fill.", succeeded=1, failed=2),
        see("Participants: {people} · units: {units}", people=4, units=2),
        see("Orders confirmed: {orders} · {amount} ({paid} paid online, the rest at pickup)", orders=2, amount="$16.00",
            paid="$8.00"),
        see("Orders cancelled before payment: {orders}", orders=1),
        see("⚠️ Card payments for you to refund: {orders} · {amount}. Refund them, then mark them refunded in /admin → "
            "Orders.", orders=1, amount="$8.00")])
    assert await deadlines(e2e, end + timedelta(hours=1)) == nothing()
    assert sum(t.startswith(see("📊 <b>Team group-buy closed: #{number} {title}</b>", number=1, title="Apples"))
               for t in e2e.bot_texts(group.leader)) == 1


async def test_a_stars_refund_telegram_refuses_is_retried_by_the_refund_job(e2e: E2E) -> None:
    e2e.allow_api_errors(500)
    group = await e2e.make_group(members=1)
    [bob] = group.members
    await start_bot(e2e, bob)
    shop = await gb_shop(e2e, group)
    campaign = await team_campaign(e2e, shop)
    opened = await join(e2e, shop, campaign, bob, method=STARS)
    charge = await pay(e2e, opened.order, bob)
    e2e.emu.fail_next("refundStarPayment", 500, "Internal Server Error")
    closed_at = opened.team.deadline_at + timedelta(seconds=1)
    await deadlines(e2e, closed_at)
    order = await order_row(e2e, opened.order.id)
    assert order.status == OrderStatus.REFUND_DUE and not e2e.emu.payments[charge].refunded
    assert see("❌ Cancelled. Your {stars} ⭐ will be refunded automatically shortly.", stars=order.stars_total) in e2e.last(bob)

    # Right after the close the retry leaves it alone (the announcement may still be refunding).
    assert await e2e.app.run_job("groupbuy_refunds", closed_at + timedelta(seconds=30)) == "0 refunded, 0 still due"
    assert await e2e.app.run_job("groupbuy_refunds", closed_at + timedelta(minutes=5)) == "1 refunded, 0 still due"
    await e2e.settle()
    assert e2e.emu.payments[charge].refunded and (await order_row(e2e, order.id)).status == OrderStatus.REFUNDED
    assert e2e.last(bob).endswith(see("Your payment was refunded: {stars} ⭐ are back in your balance.", stars=order.stars_total))
    assert await e2e.app.run_job("groupbuy_refunds", closed_at + timedelta(minutes=10)) == "0 refunded, 0 still due"
    assert len([c for c in e2e.emu.calls("refundStarPayment") if c.ok]) == 1


async def test_two_workers_sweeping_at_once_close_each_team_once_and_tell_each_member_once(e2e: E2E) -> None:
    group = await e2e.make_group(members=4)
    for person in group.members:
        await start_bot(e2e, person)
    shop = await gb_shop(e2e, group)
    campaign = await team_campaign(e2e, shop)
    opened = []
    for person in group.members:
        joined = await join(e2e, shop, campaign, person, method=STARS)
        await pay(e2e, joined.order, person)
        opened.append(joined)
    at = max(j.team.deadline_at for j in opened) + timedelta(seconds=1)

    async def sweep_in_own_session():
        async with e2e.db() as s:
            return await groupbuy_close.sweep(s, now=at)

    first, second = await asyncio.gather(sweep_in_own_session(), sweep_in_own_session())
    assert sorted(first.teams_failed + second.teams_failed) == sorted(j.team.id for j in opened)
    told = await asyncio.gather(announce_pending(e2e.app.context, now=at), announce_pending(e2e.app.context, now=at))
    await e2e.settle()
    assert sum(teams for teams, _ in told) == 4
    for joined, person in zip(opened, group.members):
        assert sum(see(EXPIRED, number=joined.team.number, title="Apples") in t for t in e2e.bot_texts(person)) == 1
        assert (await order_row(e2e, joined.order.id)).status == OrderStatus.REFUNDED
    assert len(e2e.emu.calls("refundStarPayment")) == 4
    assert len(await e2e.audit(action="order.cancel")) == 4
    assert (await product_row(e2e, shop.product.id)).stock == 20


# ----- a restart across a deadline ------------------------------------------------------------

@asynccontextmanager
async def running_bot(emu: PacedEmulator, clock: HumanClock, db_url: str, redis_url: str | None):
    """The bot as `python -m bot run` starts it, polling the emulator. The scheduler's interval runs
    are paused at once, so only the start-up catch-up can close what fell due while it was down."""
    settings = load_settings(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=emu.url, DATABASE_URL=db_url, REDIS_URL=redis_url,
                             OWNER_IDS=str(OWNER_ID), ACTIVITY_FLUSH_SECONDS=0.2)
    app = await App.connect(settings)
    await app.start()
    app.scheduler._aps.pause()
    async with polling(app):
        deadline = time.monotonic() + 10
        while "chat_member" not in emu.updates.allowed:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        pace_throttle(app, clock)
        yield app


async def test_a_deadline_that_passed_while_the_bot_was_down_is_closed_at_start_up(
        db_url: str, redis_url: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AiohttpSession, "close", close_without_ssl_grace)
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    clock = HumanClock()
    emu = PacedEmulator(token=TOKEN, bot_username=BOT_USERNAME, human_clock=clock)
    await emu.start()
    try:
        owner = emu.add_user("Olga", user_id=OWNER_ID)
        async with running_bot(emu, clock, db_url, redis_url) as app:
            e2e = E2E(emu=emu, app=app, clock=clock, owner=owner)
            group = await e2e.make_group(members=2)
            bob, carol = group.members
            for person in (bob, carol):
                await start_bot(e2e, person)
            shop = await gb_shop(e2e, group)
            campaign = await team_campaign(e2e, shop, size=3)
            opened = await join(e2e, shop, campaign, bob, method=STARS)
            charge = await pay(e2e, opened.order, bob)
            await join(e2e, shop, campaign, carol, team_id=opened.team.id)
            await e2e.settle()
        # The bot is down; the team's deadline passes meanwhile.
        engine = create_engine(db_url)
        async with session_factory(engine)() as s:
            team = await s.get(GroupBuyTeam, opened.team.id)
            team.deadline_at = now() - timedelta(minutes=1)
            await s.commit()
        await engine.dispose()
        headline = see(EXPIRED, number=1, title="Apples")
        assert not any(headline in t for t in e2e.bot_texts(bob))

        async with running_bot(emu, clock, db_url, redis_url) as app:
            e2e = E2E(emu=emu, app=app, clock=clock, owner=owner)

            async def told() -> bool:
                await e2e.settle()
                return all(any(headline in t for t in e2e.bot_texts(p)) for p in (bob, carol))

            # No job was run by hand: the start-up catch-up closed it.
            await e2e.eventually(told, timeout=4, what="members told after the restart")
            assert (await team_row(e2e, opened.team.id)).status == "failed"
            assert e2e.emu.payments[charge].refunded
            # Scheduled runs after that, and another restart, change nothing.
            await app.run_job("groupbuy_deadlines", now())
            await e2e.settle()
        async with running_bot(emu, clock, db_url, redis_url) as app:
            e2e = E2E(emu=emu, app=app, clock=clock, owner=owner)
            await asyncio.sleep(0.2)
            await e2e.settle()
        for person in (bob, carol):
            assert sum(headline in t for t in e2e.bot_texts(person)) == 1
        assert len(e2e.emu.calls("refundStarPayment")) == 1
    finally:
        await emu.stop()
        logging.getLogger().removeHandler(errors)
    assert not [f"{r.name}: {r.getMessage()}" for r in errors.records]
