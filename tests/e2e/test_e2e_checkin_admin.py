"""/admin → Check-in & points against the real bot and emulator: every kind of setting with good and
bad answers, milestones with points and coupons, the rewards catalogue, manual adjustments (a double
tap writes once), today's figures, and presses forged by people who do not lead the community."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html import unescape

import pytest
from e2e_harness import E2E, Group, en
from sqlmodel import col, select

from bot.sandbox import SimUser
from bot.sandbox.serialize import user_json
from bot.services import checkins, points
from bot.services.checkin_settings import CheckinSettings, CouponTerms, checkin_settings
from bot.services.errors import DomainError
from bot.services.points import RewardDraft
from models import CouponKind, PointsEntry
from models.points import PointsReward

_TAG = re.compile(r"<[^>]+>")
NOT_LEADER = "Only this community's leaders can do that."
CANCELLED = "Cancelled. Nothing was changed. Send /admin to open the menu again."
NAV = [en("« Back"), en("✖ Cancel")]
NUMBER = "“{value}” is not allowed. Send a whole number from {min} to {max}."
CARD_PROMPT = ("At what time ({tz}) should I post the daily check-in card in the group? Send HH:MM, for example 08:00, "
               "or off for no card.\nNow: {value}")
MILESTONES_PROMPT = ("Send the point milestones as streak days and bonus points, for example 7:20, 30:100 (days {min_day} to "
                     "{max_day}, 1 to {max_points} points, at most {max} milestones), or off for none. Coupon milestones stay "
                     "as they are.\nNow: {value}")
ADJUST_MEMBER = "Whose points? Send the member's @username or numeric Telegram id, or forward me a message they wrote."
ADJUST_DELTA = "{member} has {balance} points. How many to add or take? Send for example +50 or -20."
ADJUST_NOTE = "Why? Send the reason (up to {max} characters); it is kept with the entry and in the audit log."


def see(msgid: str, **kwargs: object) -> str:
    """A message as the emulator shows it: tags stripped, entities decoded."""
    return unescape(_TAG.sub("", en(msgid, **kwargs)))


def now() -> datetime:
    return datetime.now(timezone.utc)


async def open_checkin(e2e: E2E, leader: SimUser) -> None:
    await e2e.say(leader, "/admin")
    await e2e.press(leader, en("✅ Check-in & points"))


async def stored(e2e: E2E, community_id: int) -> CheckinSettings:
    return checkin_settings(await e2e.community_by_id(community_id))


async def refused(e2e: E2E, leader: SimUser, text: str, reason: str) -> None:
    """A refused answer: the reason above the same question, with the same buttons; the form stays open."""
    before = e2e.last_msg(leader)
    state = await e2e.fsm_state(leader)
    await e2e.say(leader, text)
    question = before.visible.split("\n\n")[-1]  # without the reason an earlier refusal put above it
    assert e2e.last(leader) == reason + "\n\n" + question
    assert e2e.last_msg(leader).buttons == before.buttons
    assert await e2e.fsm_state(leader) == state


def main_screen(title: str = "Green Valley", curve: str | None = None, milestones: str | None = None) -> str:
    return "\n".join([
        see("<b>Check-in &amp; points · {title}</b>", title=title),
        curve or en("Day 1 of a streak earns {base} points, each next day {step} more, up to {top} from day {cap} on.",
                    base=5, step=1, top=11, cap=7),
        en("Milestones: {list}", list=milestones or ", ".join([en("Day {day}: +{points} points", day=7, points=20),
                                                               en("Day {day}: +{points} points", day=30, points=100)])),
        en("Press an option to change it. Times are in {tz}.", tz="UTC"),
    ])


async def add_reward(e2e: E2E, group: Group, title: str = "Coffee", cost: int = 500) -> PointsReward:
    async with e2e.db() as s:
        return await points.add_reward(s, community_id=group.community_id, actor_id=group.leader.id, now=now(), draft=RewardDraft(
            title=title, cost=cost, kind=CouponKind.FIXED, value=500, min_spend=2000, valid_days=30))


async def entries(e2e: E2E, community_id: int, user: SimUser) -> list[PointsEntry]:
    async with e2e.db() as s:
        return list(await s.exec(select(PointsEntry).where(
            PointsEntry.community_id == community_id, PointsEntry.user_id == user.id).order_by(col(PointsEntry.id))))


async def balance(e2e: E2E, community_id: int, user: SimUser) -> int:
    async with e2e.db() as s:
        return await points.balance(s, community_id=community_id, user_id=user.id)


# --- the screen and its settings ------------------------------------------------------------------

async def test_screen_shows_the_settings_and_toggles_change_at_a_press(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await e2e.say(alice, "/admin")
    assert [en("✅ Check-in & points")] in e2e.last_msg(alice).buttons
    await e2e.press(alice, en("✅ Check-in & points"))
    assert e2e.last(alice) == main_screen()
    assert e2e.last_msg(alice).buttons == [
        [en("✅ Check-in: {state}", state="on")],
        [en("🗓 Daily card: {time}", time="off"), en("📌 Pin the card: {state}", state="off")],
        [en("🎯 Day 1: {n} points", n=5), en("📈 Each day: +{n}", n=1)],
        [en("⛰ Growth stops at day {n}", n=7), en("🏅 Milestones ({n})", n=2)],
        [en("↩️ Make-up: last {n} days", n=3), en("💸 Make-up cost: {n}", n=20)],
        [en("🔢 Make-ups a month: {n}", n=2), en("🧊 Streak freezes: {state}", state="off")],
        [en("🛍 Points per {currency} spent: {n}", currency="USD", n=0)],
        [en("⏰ Reminder: {time}", time="20:00"), en("🌙 Quiet hours: {hours}", hours="off")],
        [en("⌛ Points expire: {when}", when="never")],
        [en("🎁 Rewards ({n})", n=0), en("✍️ Adjust points")],
        [en("📊 Today")],
        [en("« Back")],
    ]

    for label, after, key in ((en("✅ Check-in: {state}", state="on"), en("✅ Check-in: {state}", state="off"), "enabled"),
                              (en("📌 Pin the card: {state}", state="off"), en("📌 Pin the card: {state}", state="on"), "pin_card"),
                              (en("🧊 Streak freezes: {state}", state="off"), en("🧊 Streak freezes: {state}", state="on"),
                               "freeze_enabled")):
        before = getattr(await stored(e2e, cid), key)
        answer = e2e.answer(await e2e.press(alice, label))
        assert answer.text == en("Saved.")
        assert getattr(await stored(e2e, cid), key) is (not before)
        assert any(after in row for row in e2e.last_msg(alice).buttons)
        [entry] = await e2e.audit(cid, f"checkin.{key}")
        assert (entry.actor_id, entry.details) == (alice.id, {"from": before, "to": not before})
    assert await e2e.fsm_state(alice) is None


@pytest.mark.parametrize(("label", "key", "bad", "low", "high", "good", "after"), [
    (("🎯 Day 1: {n} points", {"n": 5}), "base_points", "10001", 0, 10_000, "12", ("🎯 Day 1: {n} points", {"n": 12})),
    (("📈 Each day: +{n}", {"n": 1}), "daily_increment", "-1", 0, 10_000, "0", ("📈 Each day: +{n}", {"n": 0})),
    (("⛰ Growth stops at day {n}", {"n": 7}), "increment_cap_days", "0", 1, 365, "10", ("⛰ Growth stops at day {n}", {"n": 10})),
    (("↩️ Make-up: last {n} days", {"n": 3}), "makeup_days", "31", 0, 30, "5", ("↩️ Make-up: last {n} days", {"n": 5})),
    (("💸 Make-up cost: {n}", {"n": 20}), "makeup_cost", "lots", 0, 1_000_000, "35", ("💸 Make-up cost: {n}", {"n": 35})),
    (("🔢 Make-ups a month: {n}", {"n": 2}), "makeups_per_month", "32", 0, 31, "4", ("🔢 Make-ups a month: {n}", {"n": 4})),
    (("🛍 Points per {currency} spent: {n}", {"currency": "USD", "n": 0}), "purchase_points_per_unit", "1.5", 0, 10_000, "２",
     ("🛍 Points per {currency} spent: {n}", {"currency": "USD", "n": 2})),
])
async def test_number_options_refuse_what_is_out_of_range_and_save_the_rest(
        e2e: E2E, group: Group, label: tuple, key: str, bad: str, low: int, high: int, good: str, after: tuple) -> None:
    alice, cid = group.leader, group.community_id
    before = getattr(await stored(e2e, cid), key)
    await open_checkin(e2e, alice)
    await e2e.press(alice, en(label[0], **label[1]))
    assert e2e.last(alice).endswith(f"\nNow: {before}")
    assert e2e.last_msg(alice).buttons == [NAV]
    assert await e2e.fsm_state(alice) == f"CheckinSettingsForm:{key}"
    await refused(e2e, alice, bad, en(NUMBER, value=bad, min=low, max=high))
    assert getattr(await stored(e2e, cid), key) == before

    await e2e.say(alice, good)
    value = getattr(await stored(e2e, cid), key)
    assert value == int(good.replace("２", "2")) and value != before
    assert e2e.last(alice).startswith(en("Saved.") + "\n\n" + see("<b>Check-in &amp; points · {title}</b>", title="Green Valley"))
    assert any(en(after[0], **after[1]) in row for row in e2e.last_msg(alice).buttons)
    [entry] = await e2e.audit(cid, f"checkin.{key}")
    assert entry.details == {"from": before, "to": value}
    assert await e2e.fsm_state(alice) is None


async def test_curve_line_follows_the_settings(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await open_checkin(e2e, alice)
    await e2e.press(alice, en("📈 Each day: +{n}", n=1))
    await e2e.say(alice, "0")
    assert e2e.last(alice) == en("Saved.") + "\n\n" + main_screen(curve=en("Every check-in earns {points} points.", points=5))
    await e2e.press(alice, en("📈 Each day: +{n}", n=0))
    await e2e.say(alice, "3")
    await e2e.press(alice, en("⛰ Growth stops at day {n}", n=7))
    await e2e.say(alice, "4")
    assert (await stored(e2e, cid)).points_for(10) == 14
    assert e2e.last(alice).splitlines()[3] == en(
        "Day 1 of a streak earns {base} points, each next day {step} more, up to {top} from day {cap} on.",
        base=5, step=3, top=14, cap=4)


async def test_times_hours_and_switches_that_turn_off(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await open_checkin(e2e, alice)

    await e2e.press(alice, en("🗓 Daily card: {time}", time="off"))
    assert e2e.last(alice) == en(CARD_PROMPT, tz="UTC", value="off")
    assert e2e.last_msg(alice).buttons == [[en("No card")], NAV]
    for bad in ("25:00", "8.30", "morning"):
        await refused(e2e, alice, bad, en("“{value}” is not a time. Send HH:MM (for example 08:00), or off.", value=bad))
    await e2e.say(alice, "8:30")
    assert (await stored(e2e, cid)).card_time == "08:30"
    await e2e.press(alice, en("🗓 Daily card: {time}", time="08:30"))
    assert e2e.last(alice) == en(CARD_PROMPT, tz="UTC", value="08:30")
    assert e2e.answer(await e2e.press(alice, en("No card"))).text == en("Saved.")
    assert (await stored(e2e, cid)).card_time is None
    assert any(en("🗓 Daily card: {time}", time="off") in row for row in e2e.last_msg(alice).buttons)

    await e2e.press(alice, en("⏰ Reminder: {time}", time="20:00"))
    assert e2e.last_msg(alice).buttons == [[en("No reminders")], NAV]
    await refused(e2e, alice, "24", en(NUMBER, value="24", min=0, max=23))
    await e2e.say(alice, "off")
    assert (await stored(e2e, cid)).reminder_hour is None
    await e2e.press(alice, en("⏰ Reminder: {time}", time="off"))
    await e2e.say(alice, "7")
    assert (await stored(e2e, cid)).reminder_hour == 7
    assert any(en("⏰ Reminder: {time}", time="07:00") in row for row in e2e.last_msg(alice).buttons)

    await e2e.press(alice, en("🌙 Quiet hours: {hours}", hours="off"))
    await refused(e2e, alice, "22:00", en("“{value}” is not a range of hours. Send the start and the end, for example "
                                          "22:00-08:00, or off.", value="22:00"))
    await refused(e2e, alice, "22:00-22:00", en("Quiet hours must start and end at different times."))
    await refused(e2e, alice, "22:00-24:00", en("“{value}” is not a time. Send HH:MM (for example 08:00), or off.", value="24:00"))
    await e2e.say(alice, "22:30-7:00")
    opts = await stored(e2e, cid)
    assert (opts.quiet_start, opts.quiet_end) == ("22:30", "07:00")
    assert [a.action for a in await e2e.audit(cid)][-2:] == ["checkin.quiet_start", "checkin.quiet_end"]
    await e2e.press(alice, en("🌙 Quiet hours: {hours}", hours="22:30–07:00"))
    await e2e.press(alice, en("No quiet hours"))
    opts = await stored(e2e, cid)
    assert (opts.quiet_start, opts.quiet_end) == (None, None)

    await e2e.press(alice, en("⌛ Points expire: {when}", when="never"))
    await refused(e2e, alice, "121", en(NUMBER, value="121", min=0, max=120))
    await e2e.say(alice, "12")
    assert (await stored(e2e, cid)).points_expiry_months == 12
    await e2e.press(alice, en("⌛ Points expire: {when}", when=en("after {n} months", n=12)))
    await e2e.say(alice, "off")
    assert (await stored(e2e, cid)).points_expiry_months == 0


async def test_back_cancel_and_leaving_a_settings_form(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    audit_before = await e2e.audit(cid)
    await open_checkin(e2e, alice)
    screen = e2e.last(alice)
    await e2e.press(alice, en("💸 Make-up cost: {n}", n=20))
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice) == screen
    assert await e2e.fsm_state(alice) is None

    await e2e.press(alice, en("💸 Make-up cost: {n}", n=20))
    await e2e.send_raw(alice, service={"location": {"latitude": 31.23, "longitude": 121.47}})
    assert e2e.last(alice).startswith(en("Please answer with text.") + "\n\n")
    await e2e.say(alice, "/cancel")
    assert e2e.last(alice) == en(CANCELLED)
    assert await e2e.fsm_state(alice) is None

    # The closed form's buttons only say so, and leave its message as it is.
    form = e2e.emu.bot_messages(alice)[-3]
    shown = form.visible
    assert e2e.answer(await e2e.press(alice, en("« Back"), message=form)).text == en("This form is no longer open.")
    assert form.visible == shown

    await open_checkin(e2e, alice)
    await e2e.press(alice, en("💸 Make-up cost: {n}", n=20))
    await e2e.press(alice, en("✖ Cancel"))
    assert e2e.last(alice) == en(CANCELLED)
    await e2e.say(alice, "99")  # no form is open any more: nothing is saved
    assert (await stored(e2e, cid)).makeup_cost == 20
    assert [a.id for a in await e2e.audit(cid)] == [a.id for a in audit_before]


# --- milestones -----------------------------------------------------------------------------------

async def test_point_and_coupon_milestones(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await open_checkin(e2e, alice)
    await e2e.press(alice, en("🏅 Milestones ({n})", n=2))
    await e2e.press(alice, en("🎟 Add a coupon milestone"))
    assert e2e.last(alice) == en("A coupon milestone copies the coupon of a reward in the catalogue. Add a reward first.")
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice) == "\n".join([see("<b>Milestones · {title}</b>", title="Green Valley"),
                                         en("A bonus given once, when a streak reaches the day."),
                                         en("Day {day}: +{points} points", day=7, points=20),
                                         en("Day {day}: +{points} points", day=30, points=100)])
    assert e2e.last_msg(alice).buttons == [[en("✏️ Point milestones"), en("🎟 Add a coupon milestone")],
                                           [en("🗑 Day {day}", day=7), en("🗑 Day {day}", day=30)], [en("« Back")]]

    await e2e.press(alice, en("✏️ Point milestones"))
    assert e2e.last(alice) == en(MILESTONES_PROMPT, min_day=2, max_day=3650, max_points=1_000_000, max=20, value="7:20, 30:100")
    await refused(e2e, alice, "7:x", en("“{value}” is not a milestone. Send streak days and bonus points, for example "
                                        "7:20, 30:100.", value="7:x"))
    await refused(e2e, alice, "1:5", en("“{value}” is not a milestone day. A milestone is a streak of {min} to {max} days.",
                                        value=1, min=2, max=3650))
    await refused(e2e, alice, "7:0", en("A milestone gives {min} to {max} bonus points, not {value}.",
                                        value=0, min=1, max=1_000_000))
    await refused(e2e, alice, ", ".join(f"{d}:1" for d in range(2, 23)),
                  en("At most {max} milestones in all, coupon milestones included.", max=20))
    await e2e.say(alice, "5:10，14=50")
    assert (await stored(e2e, cid)).milestones == {5: 10, 14: 50}
    assert e2e.last(alice).startswith(en("Saved.") + "\n\n" + see("<b>Milestones · {title}</b>", title="Green Valley"))

    reward = await add_reward(e2e, group)
    await e2e.press(alice, en("🎟 Add a coupon milestone"))
    assert e2e.last_msg(alice).buttons == [[en("🎁 {title}", title="Coffee")], [en("« Back")]]
    await e2e.press(alice, en("🎁 {title}", title="Coffee"))
    assert await e2e.fsm_state(alice) == "CheckinSettingsForm:milestone_day"
    await refused(e2e, alice, "1", en("“{value}” is not a milestone day. A milestone is a streak of {min} to {max} days.",
                                      value="1", min=2, max=3650))
    await e2e.say(alice, "30")
    terms = CouponTerms(kind=CouponKind.FIXED, value=500, min_spend=2000, valid_days=30)
    assert (await stored(e2e, cid)).milestones == {5: 10, 14: 50, 30: terms}
    coupon_line = en("Day {day}: a coupon, {terms}", day=30, terms=" · ".join([
        en("{amount} off", amount="$5.00"), en("minimum spend {amount}", amount="$20.00"), en("valid {days} days", days=30)]))
    assert e2e.last(alice).splitlines()[-1] == coupon_line
    # Typed point milestones leave the coupon milestone alone...
    await e2e.press(alice, en("✏️ Point milestones"))
    await e2e.press(alice, en("No point milestones"))
    assert (await stored(e2e, cid)).milestones == {30: terms}
    # ...and a button removes it.
    assert e2e.answer(await e2e.press(alice, en("🗑 Day {day}", day=30))).text == en("Removed.")
    assert (await stored(e2e, cid)).milestones == {}
    assert e2e.last(alice).splitlines()[-1] == en("No milestones yet.")
    assert await e2e.fsm_state(alice) is None
    # A reward deleted between the choice and the day: refused, nothing saved.
    await e2e.press(alice, en("🎟 Add a coupon milestone"))
    await e2e.press(alice, en("🎁 {title}", title="Coffee"))
    async with e2e.db() as s:
        await points.delete_reward(s, community_id=cid, actor_id=alice.id, reward_id=reward.id, now=now())
    await e2e.say(alice, "7")
    assert (await stored(e2e, cid)).milestones == {}
    assert await e2e.fsm_state(alice) is None


# --- rewards --------------------------------------------------------------------------------------

async def test_rewards_add_edit_delete(e2e: E2E, group: Group) -> None:
    alice, bob, cid = group.leader, group.members[0], group.community_id
    await open_checkin(e2e, alice)
    await e2e.press(alice, en("🎁 Rewards ({n})", n=0))
    assert e2e.last(alice) == see("<b>Rewards · {title}</b>", title="Green Valley") + "\n" + en("No rewards yet.")
    await e2e.press(alice, en("➕ New reward"))
    assert e2e.last(alice) == en("The reward's title, as members see it in /points (up to {max} characters)?", max=64)
    await refused(e2e, alice, "x" * 65, en("The title is too long (at most {max} characters).", max=64))
    await e2e.say(alice, "Coffee <voucher>")
    assert e2e.last(alice) == en("How many points does it cost? Send a whole number from 1 to {max}.", max=10_000_000)
    for bad in ("abc", "0", "10000001"):
        await refused(e2e, alice, bad, en("The cost is a whole number of points from {min} to {max}.", min=1, max=10_000_000))
    await e2e.say(alice, "500")
    assert e2e.last_msg(alice).buttons == [[en("Fixed amount"), en("Percent")], NAV]
    await refused(e2e, alice, "5", en("Please choose with the buttons."))
    await e2e.press(alice, en("Fixed amount"))
    await refused(e2e, alice, "0", en("The amount must be more than zero."))
    await refused(e2e, alice, "5.001", en("{currency} has {digits} decimal places; send the amount with no more than that.",
                                          currency="USD", digits=2))
    await e2e.say(alice, "5")
    await refused(e2e, alice, "-1", en("The amount cannot be negative."))
    await e2e.say(alice, "20")
    await refused(e2e, alice, "0", en("Send the number of days as a whole number from {min} to {max}.", min=1, max=3650))
    await e2e.say(alice, "30")
    terms = " · ".join([en("{amount} off", amount="$5.00"), en("minimum spend {amount}", amount="$20.00"),
                        en("valid {days} days", days=30)])
    assert e2e.last(alice) == "\n".join([see("<b>New reward</b> — check and save"), en("Title: {title}", title="Coffee <voucher>"),
                                         en("Costs {cost} points.", cost=500), en("Coupon: {terms}", terms=terms)])
    async with e2e.db() as s:
        assert await points.rewards(s, community_id=cid) == []  # nothing before Save
    assert e2e.answer(await e2e.press(alice, en("💾 Save"))).text == en("Saved.")
    async with e2e.db() as s:
        [reward] = await points.rewards(s, community_id=cid)
    assert (reward.title, reward.cost, reward.kind, reward.value, reward.cap, reward.min_spend, reward.valid_days) == (
        "Coffee <voucher>", 500, "fixed", 500, None, 2000, 30)
    assert e2e.last(alice).splitlines()[:2] == [en("Reward “{title}” saved.", title="Coffee <voucher>"), ""]
    assert e2e.last(alice).splitlines()[-1] == en("{title}: {cost} points → {terms}", title="Coffee <voucher>", cost=500, terms=terms)
    assert [a.action for a in await e2e.audit(cid)][-1] == "points.reward_add"

    # Edit: keep the title, a new cost, a percentage with a cap, no minimum spend, no expiry.
    await e2e.press(alice, en("🎁 {title} · {cost}", title="Coffee <voucher>", cost=500))
    await e2e.press(alice, en("✏️ Edit"))
    assert e2e.last(alice).endswith("\n" + en("Now: {value}", value="Coffee <voucher>"))
    await e2e.press(alice, en("Keep as is"))
    await e2e.say(alice, "400")
    await e2e.press(alice, en("Percent"))
    assert e2e.last_msg(alice).buttons == [NAV]  # 5.00 off is no percentage: the value is asked again
    await refused(e2e, alice, "101", en("A percentage must be from 1 to 100."))
    await e2e.say(alice, "10")
    await refused(e2e, alice, "0", en("The amount must be more than zero."))
    await e2e.say(alice, "3")
    await e2e.press(alice, en("Skip"))
    await e2e.press(alice, en("Skip"))
    assert e2e.last(alice).splitlines()[0] == see("<b>Edit reward</b> — check and save")
    await e2e.press(alice, en("💾 Save"))
    async with e2e.db() as s:
        reward = await points.get_reward(s, community_id=cid, reward_id=reward.id)
    assert (reward.title, reward.cost, reward.kind, reward.value, reward.cap, reward.min_spend, reward.valid_days) == (
        "Coffee <voucher>", 400, "percent", 10, 300, 0, None)

    # Delete (soft): gone from the catalogue; a member redeeming it is refused by the service.
    await e2e.press(alice, en("🎁 {title} · {cost}", title="Coffee <voucher>", cost=400))
    await e2e.press(alice, en("🗑 Delete"))
    assert e2e.last(alice) == en("Delete “{title}”? Members can no longer redeem it; coupons already issued stay valid.",
                                 title="Coffee <voucher>")
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice).splitlines()[0] == "Coffee <voucher>"
    await e2e.press(alice, en("🗑 Delete"))
    assert e2e.answer(await e2e.press(alice, en("Yes, delete it"))).text == en("Deleted.")
    assert e2e.last(alice).splitlines()[0] == en("“{title}” was deleted.", title="Coffee <voucher>")
    async with e2e.db() as s:
        assert await points.rewards(s, community_id=cid) == []
        assert (await s.get(PointsReward, reward.id)).deleted_at is not None
        community = await e2e.community_by_id(cid)
        with pytest.raises(DomainError) as exc:
            await points.redeem(s, community=community, user_id=bob.id, reward_id=reward.id, now=now())
        assert exc.value.code == "points_reward_deleted"


async def test_editing_a_reward_deleted_meanwhile_is_refused_at_save(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    reward = await add_reward(e2e, group, "Tea", 300)
    await open_checkin(e2e, alice)
    await e2e.press(alice, en("🎁 Rewards ({n})", n=1))
    await e2e.press(alice, en("🎁 {title} · {cost}", title="Tea", cost=300))
    await e2e.press(alice, en("✏️ Edit"))
    await e2e.say(alice, "Green tea")
    for _ in range(5):  # cost, kind, value, minimum spend, valid days: as they were
        await e2e.press(alice, en("Keep as is"))
    async with e2e.db() as s:
        await points.delete_reward(s, community_id=cid, actor_id=alice.id, reward_id=reward.id, now=now())
    await e2e.press(alice, en("💾 Save"))
    assert e2e.last(alice).endswith(en("No rewards yet."))
    assert not e2e.last(alice).startswith(en("Reward “{title}” saved.", title="Green tea"))
    async with e2e.db() as s:
        assert (await s.get(PointsReward, reward.id)).title == "Tea"
    assert await e2e.fsm_state(alice) is None


# --- manual adjustment ----------------------------------------------------------------------------

async def test_manual_adjustment_refusals_then_a_double_tap_writes_once(e2e: E2E, group: Group) -> None:
    alice, bob, cid = group.leader, group.members[0], group.community_id
    bob_label = f"Bob (@{bob.username})"
    await open_checkin(e2e, alice)
    await e2e.press(alice, en("✍️ Adjust points"))
    assert e2e.last(alice) == en(ADJUST_MEMBER)
    assert e2e.last_msg(alice).buttons == [NAV]
    await refused(e2e, alice, "@nobody", en("“{value}” is not a member of this community. Send their @username or numeric "
                                            "Telegram id, or forward a message they wrote.", value="@nobody"))
    await e2e.say(alice, f"@{bob.username.upper()}")
    assert e2e.last(alice) == en(ADJUST_DELTA, member=bob_label, balance=0)
    await refused(e2e, alice, "lots", en("“{value}” is not a number of points. Send a whole number with + or -, for example "
                                         "+50 or -20.", value="lots"))
    await refused(e2e, alice, "+0", en("The change cannot be zero. Send for example +50 or -20."))
    await refused(e2e, alice, "+2000000", en("At most {max} points in one adjustment.", max=1_000_000))
    await e2e.say(alice, "-5")
    assert e2e.last(alice) == en(ADJUST_NOTE, max=200)
    # A missing reason: clients never send an empty message; whitespace only is the closest.
    prompt = e2e.last(alice)
    await e2e.send_raw(alice, text="   ", html="   ")
    assert e2e.last(alice) == en("A reason is required. Send a few words saying why.") + "\n\n" + prompt
    await e2e.send_raw(alice, service={"location": {"latitude": 1.0, "longitude": 2.0}})
    assert e2e.last(alice) == en("Please answer with text.") + "\n\n" + prompt
    await refused(e2e, alice, "x" * 201, en("The reason is too long (at most {max} characters).", max=200))
    await e2e.say(alice, "Oops  <fix>")
    assert e2e.last(alice) == "\n".join([
        see("<b>Adjust points</b> — check and confirm"), en("Member: {member}", member=bob_label),
        en("Change: {delta} points", delta="-5"), en("Balance: {before} → {after}", before=0, after=-5),
        en("Reason: {note}", note="Oops <fix>")])
    assert e2e.last_msg(alice).buttons == [[en("✅ Confirm")], NAV]
    await e2e.press(alice, en("✅ Confirm"))
    assert e2e.last(alice) == (en("That would take the balance below zero: the member has {balance} points.", balance=0)
                               + "\n\n" + en(ADJUST_DELTA, member=bob_label, balance=0))
    assert await entries(e2e, cid, bob) == []

    await e2e.say(alice, "+50")
    await e2e.say(alice, "Welcome gift")
    confirm = e2e.last_msg(alice)
    confirm_data = confirm.reply_markup["inline_keyboard"][0][0]["callback_data"]
    # Two taps on Confirm before the bot answers either.
    e2e.clock.advance()
    first = e2e.emu.press(alice, confirm, en("✅ Confirm"))
    second = e2e.emu.press(alice, confirm, en("✅ Confirm"))
    await e2e.settle()
    e2e.answer(first)
    e2e.answer(second)
    [entry] = await entries(e2e, cid, bob)
    assert (entry.delta, entry.reason, entry.note, entry.created_by) == (50, "adjust", "Welcome gift", alice.id)
    assert await balance(e2e, cid, bob) == 50
    [logged] = await e2e.audit(cid, "points.adjust")
    assert logged.actor_id == alice.id and logged.details == {"user_id": bob.id, "delta": 50, "note": "Welcome gift",
                                                              "balance": 50}
    result = en("Done: {delta} points for {member}. Balance now: {balance}.", delta="+50", member=bob_label, balance=50)
    assert e2e.last(alice) == result
    # The confirmation delivered again, and a third tap later: nothing more.
    e2e.emu.redeliver(e2e.last_update_id("callback_query"))
    await e2e.settle()
    third = await e2e.press_data(alice, confirm_data)
    assert e2e.answer(third).text == en("This form is no longer open.")
    assert e2e.last(alice) == result
    assert len(await entries(e2e, cid, bob)) == 1

    # The next adjustment starts from the same message and still writes: it has a key of its own.
    await e2e.press(alice, en("✍️ Adjust another"))
    assert e2e.last_msg(alice).message_id == confirm.message_id
    await e2e.say(alice, str(bob.id))
    assert e2e.last(alice) == en(ADJUST_DELTA, member=bob_label, balance=50)
    await e2e.say(alice, "+50")
    await e2e.say(alice, "Welcome gift")
    await e2e.press(alice, en("✅ Confirm"))
    assert [e.delta for e in await entries(e2e, cid, bob)] == [50, 50]
    assert await balance(e2e, cid, bob) == 100


async def test_adjustment_member_by_forward_and_back_steps(e2e: E2E, group: Group) -> None:
    alice, carol, cid = group.leader, group.members[1], group.community_id
    carol_label = f"Carol (@{carol.username})"
    await open_checkin(e2e, alice)
    await e2e.press(alice, en("✍️ Adjust points"))
    hidden = {"type": "hidden_user", "sender_user_name": "Someone", "date": int(now().timestamp())}
    await e2e.send_raw(alice, text="hi", html="hi", forward_origin=hidden)
    assert e2e.last(alice).startswith(en("That forward does not show who wrote it (their privacy settings hide it). Send "
                                         "their @username or numeric Telegram id instead."))
    origin = {"type": "user", "sender_user": user_json(carol), "date": int(now().timestamp())}
    await e2e.send_raw(alice, text="see you at 8", html="see you at 8", forward_origin=origin)
    assert e2e.last(alice) == en(ADJUST_DELTA, member=carol_label, balance=0)
    await e2e.say(alice, "+7")
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice) == en(ADJUST_DELTA, member=carol_label, balance=0)
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice) == en(ADJUST_MEMBER)
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice) == main_screen()
    assert await e2e.fsm_state(alice) is None
    assert await entries(e2e, cid, carol) == []


# --- today ----------------------------------------------------------------------------------------

async def test_today_counts_check_ins_and_charts_streaks(e2e: E2E) -> None:
    group = await e2e.make_group(members=4)
    alice, cid = group.leader, group.community_id
    bob, carol, dan, eve = group.members
    community = await e2e.community_by_id(cid)
    t = now()
    async with e2e.db() as s:
        for user, days_ago in ((bob, 2), (bob, 1), (bob, 0), (carol, 1), (dan, 0)):
            result = await checkins.check_in(s, community=community, user_id=user.id, at=t - timedelta(days=days_ago))
            assert result.status == checkins.CheckInStatus.DONE
    await open_checkin(e2e, alice)
    await e2e.press(alice, en("📊 Today"))
    head = [see("<b>Today · {title}</b> ({day}, {tz})", title="Green Valley", day=t.date().isoformat(), tz="UTC")]
    chart = ["0     ██████████ 2", "1–2   ██████████ 2", "3–6   █████ 1", "7–13   0", "14–29  0", "30+    0"]
    assert e2e.last(alice) == "\n".join([
        *head, en("Checked in: {checked} of {members} members ({percent}%)", checked=2, members=5, percent=40),
        en("Members by current streak (days):"), *chart])
    assert e2e.last_msg(alice).buttons == [[en("🔄 Refresh")], [en("« Back")]]

    async with e2e.db() as s:
        await checkins.check_in(s, community=community, user_id=eve.id, at=now())
    await e2e.press(alice, en("🔄 Refresh"))
    assert e2e.last(alice).splitlines()[1:3] == [
        en("Checked in: {checked} of {members} members ({percent}%)", checked=3, members=5, percent=60),
        en("Members by current streak (days):")]
    assert e2e.last(alice).splitlines()[3:5] == ["0     ███ 1", "1–2   ██████████ 3"]
    # Pressed again with nothing new: the screen is not edited to itself.
    edits = [c for c in e2e.emu.requests if c.method == "editMessageText"]
    await e2e.press(alice, en("🔄 Refresh"))
    assert [c for c in e2e.emu.requests if c.method == "editMessageText"] == edits


# --- security -------------------------------------------------------------------------------------

async def test_forged_presses_by_a_member_or_a_stranger_change_nothing(e2e: E2E, group: Group) -> None:
    alice, bob, cid = group.leader, group.members[0], group.community_id
    zoe = e2e.emu.add_user("Zoe", username="zoe_elsewhere")
    await e2e.make_group("Hill Side", leader=zoe, members=[])
    reward = await add_reward(e2e, group)
    async with e2e.db() as s:
        await points.adjust(s, community_id=cid, user_id=bob.id, delta=40, note="seed", actor_id=alice.id, now=now())
    settings_before = (await stored(e2e, cid)).model_dump()
    audit_before = [a.id for a in await e2e.audit(cid)]
    forged = [f"an:{cid}:ci", f"cks:on:{cid}:1", f"cks:bp:{cid}:", f"cks:qh:{cid}:", f"cka:t:{cid}:0", f"cka:ms:{cid}:0",
              f"cka:mr:{cid}:7", f"cka:mk:{cid}:{reward.id}", f"cka:r:{cid}:0", f"cka:rn:{cid}:0",
              f"cka:re:{cid}:{reward.id}", f"cka:ry:{cid}:{reward.id}", f"cka:a:{cid}:0"]
    for person in (bob, zoe):
        await e2e.say(person, "/start")
        screen = e2e.last(person)
        for data in forged:
            answer = e2e.answer(await e2e.press_data(person, data))
            assert (answer.text, answer.show_alert) == (en(NOT_LEADER), True), (person.first_name, data)
            assert await e2e.fsm_state(person) is None, data
        # A form button with no form open is only a toast.
        answer = e2e.answer(await e2e.press_data(person, "ckf:y:confirm"))
        assert answer.text == en("This form is no longer open.")
        assert e2e.last(person) == screen
        await e2e.say(person, "+500")
        assert e2e.last(person) == en("I did not understand that. Send /help to see what I can do.")

    assert (await stored(e2e, cid)).model_dump() == settings_before
    assert [a.id for a in await e2e.audit(cid)] == audit_before
    assert await balance(e2e, cid, bob) == 40
    async with e2e.db() as s:
        assert [r.id for r in await points.rewards(s, community_id=cid)] == [reward.id]


async def test_a_leader_demoted_mid_adjustment_cannot_confirm(e2e: E2E, group: Group) -> None:
    emu, chat, alice, bob, carol, cid = e2e.emu, group.chat, group.leader, *group.members, group.community_id
    await e2e.act(lambda: emu.promote(chat, bob, by=alice))
    await open_checkin(e2e, bob)
    await e2e.press(bob, en("✍️ Adjust points"))
    await e2e.say(bob, f"@{carol.username}")
    await e2e.say(bob, "+100")
    await e2e.say(bob, "for me")
    await e2e.act(lambda: emu.demote(chat, bob, by=alice))
    answer = e2e.answer(await e2e.press(bob, en("✅ Confirm")))
    assert (answer.text, answer.show_alert) == (en(NOT_LEADER), True)
    assert await e2e.fsm_state(bob) is None
    assert await entries(e2e, cid, carol) == []
    assert await e2e.audit(cid, "points.adjust") == []
    # A typed answer to a settings form he opened before is refused the same way.
    await e2e.act(lambda: emu.promote(chat, bob, by=alice))
    await open_checkin(e2e, bob)
    await e2e.press(bob, en("🎯 Day 1: {n} points", n=5))
    await e2e.act(lambda: emu.demote(chat, bob, by=alice))
    await e2e.say(bob, "99")
    assert e2e.last(bob) == en(NOT_LEADER)
    assert (await stored(e2e, cid)).base_points == 5


async def test_a_leader_cannot_reach_into_another_communitys_rewards(e2e: E2E, group: Group) -> None:
    zoe = e2e.emu.add_user("Zoe", username="zoe_elsewhere")
    other = await e2e.make_group("Hill Side", leader=zoe, members=[])
    theirs = await add_reward(e2e, group, "Green Valley tea", 300)
    await e2e.say(zoe, "/admin")
    # Her own community's id with the other community's reward: not found there, nothing changes.
    for op in ("ry", "re", "ro", "mk"):
        answer = e2e.answer(await e2e.press_data(zoe, f"cka:{op}:{other.community_id}:{theirs.id}"))
        assert answer.show_alert and answer.text != en(NOT_LEADER), op
        assert await e2e.fsm_state(zoe) is None, op
    async with e2e.db() as s:
        assert [r.id for r in await points.rewards(s, community_id=group.community_id)] == [theirs.id]
    assert await e2e.audit(group.community_id, "points.reward_delete") == []
    assert (await stored(e2e, other.community_id)).milestones == {7: 20, 30: 100}
