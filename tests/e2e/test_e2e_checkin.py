"""Checking in from the group against the real bot and the emulator: the daily card (posted once
at its local time, pinned in place of yesterday's, pressed for a toast, edited in place and
coalesced), /checkin typed in the group (answered in private, or in one digest for many), the
day each action counts for, and who cannot check in.

The scheduler is paused: the jobs run "as of" the moments the tests name, as `jobs run --at` does.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from checkin_helpers import (
    balance,
    bot_clock,
    card_messages,
    cards,
    checkin_rows,
    configure,
    coupons_of,
    edits,
    entries,
    group_sends,
    local,
    notices,
    now,
    say_at,
    see,
    stop_promotions,
)
from e2e_harness import E2E, Group, en

from bot.views.cards import visible_length

SH, NY = "Asia/Shanghai", "America/New_York"


@pytest.fixture(autouse=True)
def paused(e2e: E2E) -> None:
    e2e.app.scheduler._aps.pause()


async def post_card(e2e: E2E, at) -> str:
    summary = await e2e.app.run_job("post_checkin_cards", at)
    await e2e.settle()
    return summary


def toast(**kwargs: object) -> str:
    return en("✅ Checked in: +{points} points · 🔥 day {streak} · 💰 {balance} points", **kwargs)


# --- the daily card ---------------------------------------------------------------------------------

async def test_the_card_is_posted_once_at_its_local_time_and_replaces_yesterdays_pin(e2e: E2E, group: Group) -> None:
    await configure(e2e, group, tz=SH, card_time="08:00", pin_card=True)
    before = len(group_sends(e2e, group))
    assert await post_card(e2e, local(SH, 2026, 11, 1, 7, 59)) == "0 posted, 0 failed, 0 skipped"
    assert await post_card(e2e, local(SH, 2026, 11, 1, 8, 0, 30)) == "1 posted, 0 failed, 0 skipped"
    # Run again, late, or twice at once: the day's card is not posted again.
    assert await post_card(e2e, local(SH, 2026, 11, 1, 21, 0)) == "0 posted, 0 failed, 0 skipped"
    first = card_messages(e2e, group)[-1]
    assert first.pinned
    assert first.visible.startswith(see("<b>📅 Daily check-in · {day}</b>", day="Sun, Nov 1"))
    pins = [c for c in e2e.emu.requests if c.method == "pinChatMessage"]
    assert [p.params.get("disable_notification") in (True, "true", "True") for p in pins] == [True]

    assert await post_card(e2e, local(SH, 2026, 11, 2, 8, 0, 5)) == "1 posted, 0 failed, 0 skipped"
    second = card_messages(e2e, group)[-1]
    assert second is not first and second.pinned and not first.pinned
    assert [(c.day, c.pinned) for c in await cards(e2e, group)] == [(date(2026, 11, 1), False), (date(2026, 11, 2), True)]
    assert len(group_sends(e2e, group)) == before + 2


async def test_without_the_pin_right_the_card_is_posted_and_leaders_are_told_once(e2e: E2E, group: Group) -> None:
    await e2e.say(group.leader, "/start")
    await e2e.act(lambda: e2e.emu.promote_bot(group.chat, by=group.leader, rights={"can_pin_messages": False}))
    await configure(e2e, group, tz=SH, card_time="08:00", pin_card=True)
    assert await post_card(e2e, local(SH, 2026, 11, 2, 8, 1)) == "1 posted, 0 failed, 0 skipped"
    assert not card_messages(e2e, group)[-1].pinned
    assert [c for c in e2e.emu.requests if c.method == "pinChatMessage"] == []
    told = e2e.last(group.leader)
    assert see("The check-in card in {title} could not be pinned.", title="Green Valley") in told
    assert en("Pin messages") in told
    # The next day of the same week the card is posted again, and the leader is not told again.
    count = len(e2e.bot_texts(group.leader))
    assert await post_card(e2e, local(SH, 2026, 11, 3, 8, 1)) == "1 posted, 0 failed, 0 skipped"
    assert len(e2e.bot_texts(group.leader)) == count


async def test_a_press_is_answered_with_a_toast_and_a_double_tap_or_redelivery_checks_in_once(
        e2e: E2E, group: Group) -> None:
    clock = bot_clock(e2e)
    await configure(e2e, group, tz=SH, card_time="08:00")
    await post_card(e2e, local(SH, 2026, 11, 1, 8, 0))
    card, bob = card_messages(e2e, group)[-1], group.members[0]
    clock.at = local(SH, 2026, 11, 1, 9, 30)

    first = await e2e.press(bob, en("✅ Check in"), message=card)
    answer = e2e.answer(first)
    assert answer.text == toast(points=5, streak=1, balance=5) + "\n" + en(
        "🎯 {days} more days to the {streak}-day bonus: {reward}.", days=6, streak=7,
        reward=en("+{points} points", points=20))
    assert not answer.show_alert
    # Two taps at once and a redelivered press: one check-in, one ledger entry.
    e2e.clock.advance()
    taps = [e2e.emu.press(bob, card, en("✅ Check in")) for _ in range(2)]
    await e2e.settle()
    e2e.emu.redeliver(e2e.last_update_id("callback_query"))
    await e2e.settle()
    already = en("☑️ Already checked in today. 🔥 day {streak} · 💰 {balance} points", streak=1, balance=5)
    assert [e2e.answer(t).text.split("\n")[0] for t in taps] == [already, already]
    assert [(r.day, r.streak, r.points) for r in await checkin_rows(e2e, group, bob)] == [(date(2026, 11, 1), 1, 5)]
    assert [(e.reason, e.reference, e.delta) for e in await entries(e2e, group, bob)] == [("checkin", "2026-11-01", 5)]
    assert await balance(e2e, group, bob) == (5, 5)
    # The card answers in toasts only: nothing was written into the group for the presses.
    assert card_messages(e2e, group) == [card]


async def test_a_card_from_yesterday_pressed_today_checks_in_for_today(e2e: E2E, group: Group) -> None:
    clock = bot_clock(e2e)
    await configure(e2e, group, tz=NY, card_time="07:00")
    await post_card(e2e, local(NY, 2026, 11, 1, 7, 0))
    yesterdays, bob = card_messages(e2e, group)[-1], group.members[0]
    clock.at = local(NY, 2026, 11, 2, 6, 0)  # before today's card
    await e2e.press(bob, en("✅ Check in"), message=yesterdays)
    assert [r.day for r in await checkin_rows(e2e, group, bob)] == [date(2026, 11, 2)]


async def test_a_press_at_235959_handled_after_midnight_counts_for_its_day(e2e: E2E, group: Group) -> None:
    """A press has no date of its own: it counts for when the bot received it, which for a press
    made at 23:59:59 is that day even when its handling ends after midnight."""
    clock = bot_clock(e2e)
    await configure(e2e, group, tz=SH, card_time="08:00")
    await post_card(e2e, local(SH, 2026, 11, 1, 8, 0))
    card, bob = card_messages(e2e, group)[-1], group.members[0]
    clock.at = local(SH, 2026, 11, 1, 23, 59, 59)
    await e2e.press(bob, en("✅ Check in"), message=card)
    clock.at = local(SH, 2026, 11, 2, 0, 0, 1)
    await e2e.press(bob, en("✅ Check in"), message=card)
    assert [(r.day, r.streak) for r in await checkin_rows(e2e, group, bob)] == [
        (date(2026, 11, 1), 1), (date(2026, 11, 2), 2)]


async def test_card_edits_are_coalesced_and_never_unmodified(e2e: E2E, group: Group) -> None:
    clock = bot_clock(e2e)
    people = [e2e.emu.add_user(f"P{n}") for n in range(6)]
    for person in people:
        await e2e.act(lambda person=person: e2e.emu.join(group.chat, person))
    await configure(e2e, group, tz=SH, card_time="08:00")
    posted = local(SH, 2026, 11, 1, 8, 0)
    await post_card(e2e, posted)
    card = card_messages(e2e, group)[-1]
    clock.at = posted + timedelta(seconds=3)
    for person in people[:5]:
        await e2e.press(person, en("✅ Check in"), message=card)

    async def refresh(at) -> str:
        summary = await e2e.app.run_job("refresh_checkin_cards", at)
        await e2e.settle()
        return summary

    # Within 10 s of the card's last send nothing is edited; then one edit for five presses.
    assert await refresh(posted + timedelta(seconds=5)) == "0 edited, 0 unchanged, 0 failed, 0 skipped"
    assert await refresh(posted + timedelta(seconds=11)) == "1 edited, 0 unchanged, 0 failed, 0 skipped"
    assert see("✅ Checked in today: {count}", count=5) in card.visible
    assert await refresh(posted + timedelta(seconds=30)) == "0 edited, 0 unchanged, 0 failed, 0 skipped"
    # A press 4 s after the edit waits for the card's next slot.
    clock.at = posted + timedelta(seconds=15)
    await e2e.press(people[5], en("✅ Check in"), message=card)
    assert await refresh(posted + timedelta(seconds=15)) == "0 edited, 0 unchanged, 0 failed, 0 skipped"
    assert await refresh(posted + timedelta(seconds=21)) == "1 edited, 0 unchanged, 0 failed, 0 skipped"
    assert see("✅ Checked in today: {count}", count=6) in card.visible
    # A double tap changes nothing on the card: the redraw is compared and not sent.
    await e2e.press(people[5], en("✅ Check in"), message=card)
    assert await refresh(posted + timedelta(seconds=40)) == "0 edited, 1 unchanged, 0 failed, 0 skipped"
    assert len(edits(e2e, group)) == 2 and all(c.ok for c in edits(e2e, group))


# --- /checkin typed in the group ----------------------------------------------------------------------

async def test_checkin_in_the_group_is_answered_in_private_when_the_member_can_be_reached(
        e2e: E2E, group: Group) -> None:
    await configure(e2e, group, tz=SH)
    bob = group.members[0]
    await e2e.say(bob, "/start")
    sends = len(group_sends(e2e, group))
    await say_at(e2e, bob, "/checkin", local(SH, 2026, 11, 1, 9, 0), group.chat)
    private = e2e.last(bob)
    assert private.startswith(see("✅ <b>Checked in</b> · {title} · {day}", title="Green Valley", day="Sun, Nov 1"))
    assert see("💰 Balance: {balance} points", balance=5) in private
    assert len(group_sends(e2e, group)) == sends
    assert await notices(e2e, group) == []


async def test_members_out_of_reach_get_one_digest_for_many(e2e: E2E) -> None:
    people = [e2e.emu.add_user(f"M{n:02d}", username=f"m{n:02d}_ck") for n in range(30)]
    group = await e2e.make_group("Busy Street", members=people)
    await configure(e2e, group, tz=SH)
    stopped = people[0]
    await e2e.say(stopped, "/start")
    await stop_promotions(e2e, stopped)  # /stop: no private answers either
    sends = len(group_sends(e2e, group))
    at = local(SH, 2026, 11, 1, 9, 0)
    for n, person in enumerate(people):
        await say_at(e2e, person, "/checkin", at + timedelta(seconds=n), group.chat)
    await say_at(e2e, people[1], "/checkin", at + timedelta(seconds=40), group.chat)  # again: adds nothing
    assert len(group_sends(e2e, group)) == sends
    assert len(await notices(e2e, group)) == 30

    async def digest(at) -> str:
        summary = await e2e.app.run_job("checkin_digest", at)
        await e2e.settle()
        return summary

    assert await digest(now() + timedelta(seconds=5)) == "0 digests, 0 results"
    assert await digest(now() + timedelta(seconds=25)) == "1 digests, 30 results"
    assert await digest(now() + timedelta(seconds=60)) == "0 digests, 0 results"
    assert len(group_sends(e2e, group)) == sends + 1
    text = e2e.last(group.chat)
    assert text.splitlines()[1:3] == ["M00 ✅ +5 · 🔥1", "M01 ✅ +5 · 🔥1"]
    assert all(f"M{n:02d} ✅ +5" in text for n in range(30))
    assert e2e.last_msg(group.chat).buttons == [[en("🔔 My results in private")]]
    assert len(await checkin_rows(e2e, group)) == 30


async def test_a_member_who_blocked_the_bot_since_gets_the_digest(e2e: E2E, group: Group) -> None:
    await configure(e2e, group, tz=SH)
    bob = group.members[0]
    await e2e.say(bob, "/start")
    bob.blocked_bot = True  # without the update Telegram sends: the bot still thinks it can write
    await say_at(e2e, bob, "/checkin", local(SH, 2026, 11, 1, 9, 0), group.chat)
    e2e.allow_api_errors(403)
    assert [n.user_id for n in await notices(e2e, group)] == [bob.id]
    assert (await e2e.user_row(bob)).can_dm is False
    assert await e2e.app.run_job("checkin_digest", now() + timedelta(seconds=30)) == "1 digests, 1 results"
    await e2e.settle()
    assert "Bob ✅ +5 · 🔥1" in e2e.last(group.chat)


async def test_names_in_the_digest_are_escaped(e2e: E2E) -> None:
    sly = e2e.emu.add_user("<b>Sly</b> & co")
    group = await e2e.make_group(members=[sly])
    await configure(e2e, group, tz=SH)
    await say_at(e2e, sly, "/checkin", local(SH, 2026, 11, 1, 9, 0), group.chat)
    await e2e.app.run_job("checkin_digest", now() + timedelta(seconds=30))
    await e2e.settle()
    assert "<b>Sly</b> & co ✅ +5 · 🔥1" in e2e.last(group.chat)


async def test_anonymous_admins_and_channels_do_not_check_in(e2e: E2E, group: Group) -> None:
    await configure(e2e, group, tz=SH)
    e2e.clock.advance()
    e2e.emu.send_as_group(group.leader, group.chat, "/checkin")
    await e2e.settle()
    assert e2e.last(group.chat).startswith(en("I cannot tell who you are while you write anonymously, so commands "
                                              "do not work that way. Turn off “Remain anonymous” in your administrator "
                                              "rights, or use the leader menu in a private chat with me."))
    channel = e2e.emu.create_channel("News", group.members[0])
    e2e.clock.advance()
    e2e.emu.send_as_channel(group.members[0], channel, group.chat, "/checkin")
    await e2e.settle()
    assert await checkin_rows(e2e, group) == [] and await notices(e2e, group) == []


async def test_a_member_who_left_cannot_check_in(e2e: E2E, group: Group) -> None:
    clock = bot_clock(e2e)
    await configure(e2e, group, tz=SH, reminder_hour=20)
    bob = group.members[0]
    await e2e.say(bob, "/start")
    at = local(SH, 2026, 11, 1, 9, 0)
    for day in range(3):
        await say_at(e2e, bob, "/checkin", at + timedelta(days=day))
    await e2e.app.run_job("checkin_reminders", local(SH, 2026, 11, 4, 20, 5))
    await e2e.settle()
    reminder = e2e.last_msg(bob)
    assert reminder.visible == see("🔥 Your {streak}-day streak in {title} ends at midnight. Check in now to keep it!",
                                   streak=3, title="Green Valley")
    await e2e.act(lambda: e2e.emu.leave(group.chat, bob))
    clock.at = local(SH, 2026, 11, 4, 20, 30)
    await e2e.press(bob, en("✅ Check in"), message=reminder)
    assert e2e.last(bob) == see("Only members of {title} can check in there. Join the group first.",
                                title="Green Valley")
    await say_at(e2e, bob, "/checkin", local(SH, 2026, 11, 4, 20, 31))
    assert e2e.last(bob) == en("You are not in any group I run yet. Join your community's group, then check in there "
                               "or here.")
    assert len(await checkin_rows(e2e, group, bob)) == 3


# --- the day an action counts for ---------------------------------------------------------------------

@pytest.mark.parametrize(("tz", "days"), [
    (SH, [(2026, 10, 31), (2026, 11, 1), (2026, 11, 2)]),
    # America/New_York leaves daylight saving time at 02:00 on 2026-11-01: that day has 25 hours.
    (NY, [(2026, 10, 31), (2026, 11, 1), (2026, 11, 2)]),
])
async def test_a_message_at_235959_local_counts_for_that_day_across_dst(e2e: E2E, group: Group, tz: str,
                                                                          days: list) -> None:
    clock = bot_clock(e2e)
    await configure(e2e, group, tz=tz)
    bob = group.members[0]
    await e2e.say(bob, "/start")
    for year, month, day in days:
        sent = local(tz, year, month, day, 23, 59, 59)
        clock.at = sent + timedelta(seconds=3)  # handled after midnight
        await say_at(e2e, bob, "/checkin", sent, group.chat)
    # One second after midnight is the next day.
    clock.at = None
    await say_at(e2e, bob, "/checkin", local(tz, 2026, 11, 3, 0, 0, 1), group.chat)
    rows = await checkin_rows(e2e, group, bob)
    assert [(r.day, r.streak) for r in rows] == [
        (date(2026, 10, 31), 1), (date(2026, 11, 1), 2), (date(2026, 11, 2), 3), (date(2026, 11, 3), 4)]
    assert e2e.last(bob).startswith(see("✅ <b>Checked in</b> · {title} · {day}", title="Green Valley",
                                        day="Tue, Nov 3"))


async def test_the_toast_stays_within_telegrams_200_characters(e2e: E2E, group: Group) -> None:
    clock = bot_clock(e2e)
    await configure(e2e, group, tz=SH, card_time="08:00", freeze_enabled=True,
                    milestones={2: 1_000_000, 3: {"kind": "percent", "value": 15, "cap": 99_999_999,
                                                  "min_spend": 99_999_999, "valid_days": 30}})
    bob = group.members[0]
    answers = []
    for day in (1, 2, 3):
        await post_card(e2e, local(SH, 2026, 11, day, 8, 0))
        clock.at = local(SH, 2026, 11, day, 9, 0)
        answers.append(e2e.answer(await e2e.press(bob, en("✅ Check in"), message=card_messages(e2e, group)[-1])))
    assert all(visible_length(a.text) <= 200 for a in answers)
    assert [a.show_alert for a in answers] == [False, True, True]  # a milestone is worth a dialog
    assert en("🎁 {streak}-day bonus: +{points}", streak=2, points=1_000_000) in answers[1].text
    [coupon] = await coupons_of(e2e, bob)
    assert en("🎁 {streak}-day bonus: coupon {code} (see /coupons)", streak=3, code=coupon.code) in answers[2].text
