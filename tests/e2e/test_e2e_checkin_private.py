"""Check-ins beyond the card: private /checkin in one or two communities, making up a missed day
(and every refusal), /top in the group and in private, and the evening reminder."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from checkin_helpers import (
    account,
    balance,
    bot_clock,
    checkin_rows,
    configure,
    entries,
    group_sends,
    local,
    now,
    say_at,
    see,
    stop_promotions,
)
from e2e_harness import E2E, Group, en

SH, NY = "Asia/Shanghai", "America/New_York"


@pytest.fixture(autouse=True)
def paused(e2e: E2E) -> None:
    e2e.app.scheduler._aps.pause()


async def checkin_days(e2e: E2E, group: Group, user, tz: str, *days: int, month: int = 11) -> None:
    """`user` sends /checkin in private at 09:00 local on each of these days of the month."""
    for day in days:
        await say_at(e2e, user, "/checkin", local(tz, 2026, month, day, 9, 0))


# --- private /checkin -------------------------------------------------------------------------------

async def test_private_checkin_with_two_communities_asks_which(e2e: E2E, group: Group) -> None:
    clock = bot_clock(e2e)
    bob = group.members[0]
    other = await e2e.make_group("Hill Top", leader=e2e.emu.add_user("Hana"), members=[bob])
    await configure(e2e, group, tz=SH)
    await configure(e2e, other, tz=NY)
    await e2e.say(bob, "/start")
    await say_at(e2e, bob, "/checkin", local(SH, 2026, 11, 1, 9, 0))
    assert e2e.last(bob) == en("Which group do you check in at?")
    assert e2e.last_msg(bob).buttons == [["Green Valley"], ["Hill Top"]]
    # The press is when the bot receives it: 2026-11-01 21:00 in New York is the 2nd in Shanghai.
    clock.at = local(NY, 2026, 11, 1, 21, 0)
    await e2e.press(bob, "Hill Top")
    assert e2e.last(bob).startswith(see("✅ <b>Checked in</b> · {title} · {day}", title="Hill Top", day="Sun, Nov 1"))
    await say_at(e2e, bob, "/checkin", local(SH, 2026, 11, 2, 10, 0))
    await e2e.press(bob, "Green Valley")
    assert e2e.last(bob).startswith(see("✅ <b>Checked in</b> · {title} · {day}", title="Green Valley",
                                        day="Mon, Nov 2"))
    assert [r.day for r in await checkin_rows(e2e, other, bob)] == [date(2026, 11, 1)]
    assert [r.day for r in await checkin_rows(e2e, group, bob)] == [date(2026, 11, 2)]
    # Again the same day: already, with today's figures.
    await say_at(e2e, bob, "/checkin", local(SH, 2026, 11, 2, 10, 5))
    await e2e.press(bob, "Green Valley")
    assert e2e.last(bob).startswith(see("☑️ You already checked in today in <b>{title}</b> ({day}): +{points} points.",
                                        title="Green Valley", day="Mon, Nov 2", points=5))


async def test_one_community_checks_in_at_once_and_shows_the_next_milestone(e2e: E2E, group: Group) -> None:
    await configure(e2e, group, tz=SH, milestones={3: 50, 7: 100})
    bob = group.members[0]
    await e2e.say(bob, "/start")
    await checkin_days(e2e, group, bob, SH, 1)
    assert see("🎯 {days} more days to the {streak}-day bonus: {reward}.", days=2, streak=3,
               reward=en("+{points} points", points=50)) in e2e.last(bob)
    await checkin_days(e2e, group, bob, SH, 2)
    assert see("🎯 Check in tomorrow for the {streak}-day bonus: {reward}.", streak=3,
               reward=en("+{points} points", points=50)) in e2e.last(bob)
    await checkin_days(e2e, group, bob, SH, 3)
    text = e2e.last(bob)
    assert see("🎁 {streak}-day bonus: +{points} points!", streak=3, points=50) in text
    assert see("🔥 Streak: day {streak} (best {best})", streak=3, best=3) in text
    assert see("💰 Balance: {balance} points", balance=5 + 6 + 7 + 50) in text
    assert await balance(e2e, group, bob) == (68, 68)


# --- make-ups ----------------------------------------------------------------------------------------

async def test_a_missed_day_is_made_up_and_the_streak_joined(e2e: E2E, group: Group) -> None:
    clock = bot_clock(e2e)
    await configure(e2e, group, tz=SH, makeup_days=3, makeup_cost=10, makeups_per_month=2)
    bob = group.members[0]
    await e2e.say(bob, "/start")
    await checkin_days(e2e, group, bob, SH, 1, 2, 4)  # the 3rd is missed
    assert e2e.last_msg(bob).buttons == [[en("🗓 Make up a missed day"), en("💰 My points")]]
    clock.at = local(SH, 2026, 11, 4, 9, 5)
    await e2e.press(bob, en("🗓 Make up a missed day"))
    listing = e2e.last(bob)
    assert see("Make-ups left this month: {left} of {limit}. Balance: {balance} points.", left=2, limit=2,
               balance=5 + 6 + 5) in listing
    assert e2e.last_msg(bob).buttons == [["Tue, Nov 3"]]
    await e2e.press(bob, "Tue, Nov 3")
    assert e2e.last(bob) == see("Make up {day} in {title} for {cost} points? Balance: {balance} points.",
                                day="Tue, Nov 3", title="Green Valley", cost=10, balance=16)
    confirm = e2e.last_msg(bob)
    # A double tap on Confirm makes the day up once.
    e2e.clock.advance()
    taps = [e2e.emu.press(bob, confirm, en("✅ Make up for {cost} points", cost=10)) for _ in range(2)]
    await e2e.settle()
    assert e2e.last(bob).startswith(see("✅ {day} made up for {cost} points.", day="Tue, Nov 3", cost=10))
    assert see("🔥 Streak: day {streak} (best {best})", streak=4, best=4) in e2e.last(bob)
    assert {e2e.answer(t).text for t in taps} == {
        None, en("{day} already counts for your streak: nothing to make up.", day="Tue, Nov 3")}
    rows = await checkin_rows(e2e, group, bob)
    assert [(r.day, r.kind, r.streak) for r in rows] == [
        (date(2026, 11, 1), "checkin", 1), (date(2026, 11, 2), "checkin", 2), (date(2026, 11, 3), "makeup", 3),
        (date(2026, 11, 4), "checkin", 4)]
    assert [(e.reason, e.delta) for e in await entries(e2e, group, bob)][-1] == ("makeup", -10)
    assert await balance(e2e, group, bob) == (6, 6)


async def test_make_up_refusals_leave_nothing_written(e2e: E2E, group: Group) -> None:
    clock = bot_clock(e2e)
    await configure(e2e, group, tz=SH, makeup_days=2, makeup_cost=10, makeups_per_month=1)
    bob = group.members[0]
    await e2e.say(bob, "/start")
    await checkin_days(e2e, group, bob, SH, 1, 5)
    clock.at = local(SH, 2026, 11, 5, 9, 5)
    await e2e.press(bob, en("🗓 Make up a missed day"))
    assert e2e.last_msg(bob).buttons == [["Wed, Nov 4"], ["Tue, Nov 3"]]

    async def forged(day: int) -> str:
        callback = await e2e.press_data(bob, f"ckm:y:{group.community_id}:{day}")
        return e2e.answer(callback).text

    # Beyond K days, today, a day to come, a day not in any calendar: refused in words.
    assert await forged(20261102) == en("Only days up to {days} day(s) back can be made up.", days=2)
    assert await forged(20261105) == en("Today is not missed yet: check in with /checkin.")
    assert await forged(20261106) == en("That day has not come yet.")
    assert await forged(20261131) == en("This button is no longer valid.")
    # Not enough points: 5 + 5 = 10 covers one make-up. Then the month's limit.
    await e2e.press(bob, "Wed, Nov 4")
    await e2e.press(bob, en("✅ Make up for {cost} points", cost=10))
    assert (await account(e2e, group, bob)).balance == 0
    assert await forged(20261103) == en("You have used all {limit} make-ups of this month.", limit=1)
    await configure(e2e, group, makeups_per_month=3)
    assert await forged(20261103) == en("Not enough points: you have {balance}, this needs {needed}.", balance=0,
                                        needed=10)
    await configure(e2e, group, makeup_days=0)
    assert await forged(20261103) == en("Make-ups are off in this group.")
    assert [(r.day, r.kind) for r in await checkin_rows(e2e, group, bob)] == [
        (date(2026, 11, 1), "checkin"), (date(2026, 11, 4), "makeup"), (date(2026, 11, 5), "checkin")]
    assert await balance(e2e, group, bob) == (0, 0)


# --- /top ---------------------------------------------------------------------------------------------

async def test_top_in_the_group_is_one_message_a_minute(e2e: E2E, group: Group) -> None:
    bob, carol = group.members
    await configure(e2e, group, tz=SH)
    await e2e.say(bob, "/start")
    at = local(SH, 2026, 11, 2, 9, 0)
    for n, day in enumerate((1, 2)):
        await say_at(e2e, bob, "/checkin", local(SH, 2026, 11, day, 8, n), group.chat)
    await say_at(e2e, carol, "/checkin", local(SH, 2026, 11, 2, 8, 5), group.chat)
    sends = len(group_sends(e2e, group))
    await say_at(e2e, carol, "/top", at, group.chat)
    board = e2e.last(group.chat)
    assert board.splitlines() == [
        see("<b>🏆 {title} · leaderboard</b>", title="Green Valley"), "",
        see("🔥 <b>Current streaks</b> (days)"), "1. Bob · 2", "2. Carol · 1", "",
        see("⭐ <b>Points this month</b>"), "1. Bob · 11", "2. Carol · 5"]
    # Within the minute: no second group message; Bob can be reached and gets it in private.
    await say_at(e2e, carol, "/top", at + timedelta(seconds=20), group.chat)
    await say_at(e2e, bob, "/top", at + timedelta(seconds=40), group.chat)
    assert len(group_sends(e2e, group)) == sends + 1
    assert e2e.last(bob) == board
    await say_at(e2e, carol, "/top", at + timedelta(seconds=61), group.chat)
    assert len(group_sends(e2e, group)) == sends + 2


async def test_top_in_private_shows_ones_own_rank_in_each_community(e2e: E2E, group: Group) -> None:
    bob, carol = group.members
    other = await e2e.make_group("Hill Top", leader=e2e.emu.add_user("Hana"), members=[bob])
    await configure(e2e, group, tz=SH)
    await configure(e2e, other, tz=SH)
    await e2e.say(bob, "/start")
    await e2e.say(carol, "/start")
    today = now().astimezone(ZoneInfo(SH)).date()
    for person in (carol, bob):
        await say_at(e2e, person, "/checkin", local(SH, today.year, today.month, today.day, 0, 0, 1), group.chat)
    await e2e.say(bob, "/top")
    lines = e2e.last(bob).splitlines()
    assert lines[0] == see("<b>🏆 Your standing</b>")
    assert "Green Valley" in lines and "Hill Top" in lines
    assert see("🔥 Streak: day {streak} (best {best}), #{rank} of {members} members", streak=1, best=1, rank=1,
               members=3) in lines
    assert see("🔥 No streak right now (best {best}). /checkin starts one.", best=0) in lines


# --- reminders ----------------------------------------------------------------------------------------

async def test_a_streak_about_to_break_is_reminded_once_outside_quiet_hours(e2e: E2E, group: Group) -> None:
    bob, carol = group.members
    dan = e2e.emu.add_user("Dan")
    await e2e.act(lambda: e2e.emu.join(group.chat, dan))
    await configure(e2e, group, tz=SH, reminder_hour=20, quiet_start="21:30", quiet_end="08:00")
    for person in (bob, carol, dan):
        await e2e.say(person, "/start")
        for day in (1, 2, 3):
            await say_at(e2e, person, "/checkin", local(SH, 2026, 11, day, 9, 0), group.chat)
    await stop_promotions(e2e, carol)
    await say_at(e2e, dan, "/checkin", local(SH, 2026, 11, 4, 9, 0), group.chat)  # Dan checked in today

    async def remind(*parts: int) -> str:
        summary = await e2e.app.run_job("checkin_reminders", local(SH, *parts))
        await e2e.settle()
        return summary

    before = {p.id: len(e2e.bot_texts(p)) for p in (bob, carol, dan)}
    assert await remind(2026, 11, 4, 19, 59) == "0 sent, 0 failed"
    assert await remind(2026, 11, 4, 20, 5) == "1 sent, 0 failed"
    assert await remind(2026, 11, 4, 20, 10) == "0 sent, 0 failed"
    assert e2e.last(bob) == see("🔥 Your {streak}-day streak in {title} ends at midnight. Check in now to keep it!",
                                streak=3, title="Green Valley")
    assert [len(e2e.bot_texts(p)) - before[p.id] for p in (bob, carol, dan)] == [1, 0, 0]
    # The reminder's button checks in for the day it is pressed.
    clock = bot_clock(e2e)
    clock.at = local(SH, 2026, 11, 4, 20, 30)
    await e2e.press(bob, en("✅ Check in"))
    assert see("🔥 Streak: day {streak} (best {best})", streak=4, best=4) in e2e.last(bob)
    # The next evening Bob and Dan are on a 4-day streak; from 21:30 the quiet hours hold reminders back.
    assert await remind(2026, 11, 5, 21, 45) == "0 sent, 0 failed"
    assert await remind(2026, 11, 5, 21, 0) == "2 sent, 0 failed"
