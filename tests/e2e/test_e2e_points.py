"""/points and redeeming against the real bot and the emulator: the balance with recent entries in
words, the rewards catalogue, a redeem's coupon, and every way a redeem can go wrong (not enough
points, a double tap, two redeems at once, a reward deleted or repriced meanwhile); points expiry
and /points typed in the group."""

from __future__ import annotations

from datetime import timedelta

import pytest
from checkin_helpers import (
    balance,
    bot_clock,
    configure,
    coupons_of,
    entries,
    give_points,
    group_sends,
    local,
    now,
    say_at,
    see,
)
from e2e_harness import E2E, Group, en

from bot.services import points
from bot.services.points import RewardDraft
from models import CouponKind

SH = "Asia/Shanghai"
REDEEM = "🎁 Redeem: {title} ({cost})"


@pytest.fixture(autouse=True)
def paused(e2e: E2E) -> None:
    e2e.app.scheduler._aps.pause()


async def shop_of_rewards(e2e: E2E, group: Group, *, cost: int = 100):
    async with e2e.db() as s:
        return await points.add_reward(s, community_id=group.community_id, actor_id=group.leader.id, now=now(),
                                       draft=RewardDraft("5 off", cost, CouponKind.FIXED, 500, None, 2000, 30))


async def open_reward(e2e: E2E, user, cost: int = 100) -> None:
    await e2e.say(user, "/points")
    await e2e.press(user, en(REDEEM, title="5 off", cost=cost))


async def test_points_lists_balance_entries_and_rewards(e2e: E2E, group: Group) -> None:
    await configure(e2e, group, tz=SH)
    await shop_of_rewards(e2e, group)
    bob = group.members[0]
    await e2e.say(bob, "/start")
    for day in (1, 2):
        await say_at(e2e, bob, "/checkin", local(SH, 2026, 11, day, 9, 0))
    await e2e.say(bob, "/points")
    lines = e2e.last(bob).splitlines()
    assert lines[:2] == [see("<b>💰 Points · {title}</b>", title="Green Valley"),
                         see("Balance: <b>{balance}</b> points", balance=11)]
    assert lines[lines.index(see("<b>Recent</b>")) + 1:][:2] == ["11-02 · +6 · " + en("check-in"),
                                                                 "11-01 · +5 · " + en("check-in")]
    assert "• 5 off: $5.00 off, minimum spend $20.00, valid for 30 day(s) · 100 points" in lines
    assert e2e.last_msg(bob).buttons[0] == [en(REDEEM, title="5 off", cost=100)]


async def test_a_redeem_gives_an_owner_bound_coupon_and_a_double_tap_gives_one(e2e: E2E, group: Group) -> None:
    await configure(e2e, group, tz=SH)
    await shop_of_rewards(e2e, group)
    bob = group.members[0]
    await e2e.say(bob, "/start")
    await give_points(e2e, group, bob, 250)  # enough for two: only the key stops a double tap
    await open_reward(e2e, bob)
    assert see("Redeem it now? The coupon is for you alone.") in e2e.last(bob)
    confirm = e2e.last_msg(bob)
    e2e.clock.advance()
    taps = [e2e.emu.press(bob, confirm, en("✅ Redeem for {cost} points", cost=100)) for _ in range(2)]
    await e2e.settle()
    [coupon] = await coupons_of(e2e, bob)
    assert (coupon.owner_id, coupon.source, coupon.value, coupon.min_spend) == (bob.id, "points", 500, 2000)
    text = e2e.last(bob)
    assert text.startswith(see("🎟 <b>Your coupon: <code>{code}</code></b>", code=coupon.code))
    assert see("Type the code when you check out in {title}; /coupons lists it too.", title="Green Valley") in text
    assert see("💰 Balance: {balance} points", balance=150) in text
    assert {e2e.answer(t).text for t in taps} == {None, en("This was already redeemed: your coupon is in /coupons.")}
    assert await balance(e2e, group, bob) == (150, 150)
    assert [(e.reason, e.delta, e.coupon_id) for e in await entries(e2e, group, bob)][-1] == (
        "redeem", -100, coupon.id)
    # Redeeming again on purpose, from a new confirmation, works.
    await open_reward(e2e, bob)
    await e2e.press(bob, en("✅ Redeem for {cost} points", cost=100))
    assert len(await coupons_of(e2e, bob)) == 2 and await balance(e2e, group, bob) == (50, 50)


async def test_two_redeems_at_once_that_the_balance_covers_once_make_one_coupon(e2e: E2E, group: Group) -> None:
    await configure(e2e, group, tz=SH)
    await shop_of_rewards(e2e, group)
    bob = group.members[0]
    await e2e.say(bob, "/start")
    await give_points(e2e, group, bob, 120)
    await open_reward(e2e, bob)
    first = e2e.last_msg(bob)
    await open_reward(e2e, bob)
    second = e2e.last_msg(bob)
    assert first is not second
    e2e.clock.advance()
    taps = [e2e.emu.press(bob, screen, en("✅ Redeem for {cost} points", cost=100)) for screen in (first, second)]
    await e2e.settle()
    assert len(await coupons_of(e2e, bob)) == 1
    assert {e2e.answer(t).text for t in taps} == {
        None, en("Not enough points: you have {balance}, this needs {needed}.", balance=20, needed=100)}
    assert await balance(e2e, group, bob) == (20, 20)


async def test_not_enough_points_is_said_before_and_at_the_redeem(e2e: E2E, group: Group) -> None:
    await configure(e2e, group, tz=SH)
    reward = await shop_of_rewards(e2e, group)
    bob = group.members[0]
    await e2e.say(bob, "/start")
    await give_points(e2e, group, bob, 30)
    await open_reward(e2e, bob)
    assert see("You need {needed} more points for this reward.", needed=70) in e2e.last(bob)
    assert e2e.last_msg(bob).buttons == [[en("« Back")]]
    callback = await e2e.press_data(bob, f"ckr:y:{group.community_id}:{reward.id}:100:7")
    assert e2e.answer(callback).text == en("Not enough points: you have {balance}, this needs {needed}.", balance=30,
                                           needed=100)
    assert await coupons_of(e2e, bob) == [] and await balance(e2e, group, bob) == (30, 30)


async def test_a_reward_deleted_or_repriced_meanwhile_is_refused_and_nothing_taken(e2e: E2E, group: Group) -> None:
    await configure(e2e, group, tz=SH)
    reward = await shop_of_rewards(e2e, group)
    bob = group.members[0]
    await e2e.say(bob, "/start")
    await give_points(e2e, group, bob, 500)
    await open_reward(e2e, bob)
    async with e2e.db() as s:
        await points.update_reward(s, community_id=group.community_id, actor_id=group.leader.id, reward_id=reward.id,
                                   draft=RewardDraft("5 off", 120, CouponKind.FIXED, 500, None, 2000, 30), now=now())
    callback = await e2e.press(bob, en("✅ Redeem for {cost} points", cost=100))
    assert e2e.answer(callback).text == en("The cost changed to {cost} points. Check it and confirm again.", cost=120)
    assert e2e.last_msg(bob).buttons[0] == [en(REDEEM, title="5 off", cost=120)]  # back on the list, repriced
    await e2e.press(bob, en(REDEEM, title="5 off", cost=120))
    async with e2e.db() as s:
        await points.delete_reward(s, community_id=group.community_id, actor_id=group.leader.id, reward_id=reward.id,
                                   now=now())
    callback = await e2e.press(bob, en("✅ Redeem for {cost} points", cost=120))
    assert e2e.answer(callback).text == en("“{title}” is no longer offered: the leader removed it.", title="5 off")
    assert see("No rewards to redeem yet.") in e2e.last(bob)
    assert await coupons_of(e2e, bob) == [] and await balance(e2e, group, bob) == (500, 500)


async def test_points_expire_once_a_day_oldest_first(e2e: E2E, group: Group) -> None:
    await configure(e2e, group, tz=SH, points_expiry_months=1)
    bob = group.members[0]
    at = local(SH, 2026, 11, 15, 10, 0)
    async with e2e.db() as s:
        for amount, when, ref in ((40, at - timedelta(days=60), "old"), (25, at - timedelta(days=5), "new")):
            await points.credit(s, community_id=group.community_id, user_id=bob.id, amount=amount,
                                reason=points.PointsReason.INVITE, reference=ref, now=when)
    assert await e2e.app.run_job("expire_points", at) == "40 points of 1 members"
    assert await e2e.app.run_job("expire_points", at + timedelta(hours=1)) == "0 points of 0 members"
    assert await balance(e2e, group, bob) == (25, 25)
    await e2e.say(bob, "/points")
    assert "-40 · " + en("expired") in e2e.last(bob)


async def test_points_typed_in_the_group_goes_to_the_private_chat(e2e: E2E, group: Group) -> None:
    bot_clock(e2e)
    await configure(e2e, group, tz=SH)
    bob, carol = group.members
    await e2e.say(bob, "/start")
    sends = len(group_sends(e2e, group))
    await say_at(e2e, bob, "/points", local(SH, 2026, 11, 1, 9, 0), group.chat)
    assert e2e.last(bob).startswith(see("<b>💰 Points · {title}</b>", title="Green Valley"))
    assert len(group_sends(e2e, group)) == sends
    # Carol cannot be reached: one pointer to the private chat a minute, whoever asks.
    for seconds in (0, 10, 30):
        await say_at(e2e, carol, "/points", local(SH, 2026, 11, 1, 9, 1, seconds), group.chat)
    assert len(group_sends(e2e, group)) == sends + 1
    assert e2e.last(group.chat) == en("Points and rewards are in our private chat.")
    await say_at(e2e, carol, "/points", local(SH, 2026, 11, 1, 9, 2, 1), group.chat)
    assert len(group_sends(e2e, group)) == sends + 2
