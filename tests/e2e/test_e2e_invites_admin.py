"""/admin → Invites against the real bot and emulator: the settings with good and bad answers, each
level's reward (a third level is neither configurable nor paid), the review queue (approve and
reject, rewarded once, audited, a double tap acting once, an invite another leader decided), the
leaderboard and totals, the chain view, the CSV export with erased people anonymous, and presses
forged by people who do not lead the community.

Invites are made through the services, the way the chat_member and join-request handlers record
them; the people invited are simulated users who never join the emulator's group, so the bot's own
handling of joins adds nothing to what is counted here.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone
from html import unescape

import pytest
from e2e_harness import E2E, Group, en, zh
from sqlmodel import col, select
from test_e2e_callbacks import NOT_MODIFIED, apologies, crawl

from bot.core.localtime import local_time
from bot.sandbox import SimUser
from bot.sandbox.serialize import user_json
from bot.services import invite_links, invite_rewards, invites, members, users
from bot.services.checkin_settings import CouponTerms
from bot.services.errors import DomainError
from bot.services.invite_settings import InviteSettings, LevelReward, Requirement, invite_settings
from bot.services.invite_settings import update_invite_settings as update_settings
from bot.services.users import Profile
from bot.views.keyboards import (
    AdminNav,
    InviteAdmin,
    InviteOp,
    InviteOption,
    InviteReview,
    InviteReviewOp,
    InviteSet,
    Section,
)
from models import Community, CouponKind, InviteLink, PointsEntry, Referral, Via

_TAG = re.compile(r"<[^>]+>")
NOT_LEADER = "Only this community's leaders can do that."
NAV = [en("« Back"), en("✖ Cancel")]
NUMBER = "“{value}” is not allowed. Send a whole number from {min} to {max}."
LAW = "A third level is never rewarded: Chinese law treats rewards on three or more levels as pyramid selling."
DAY = timedelta(days=1)
UNKNOWN_MEMBER = ("“{value}” has never been a member of this community. Send their @username or numeric Telegram id, "
                  "or forward a message they wrote.")
DONE = ("This invite is no longer held for review: another press or another leader decided it already "
        "(now: {state}).")
APPROVED = "Approved: the rewards were given."


def see(msgid: str, **kwargs: object) -> str:
    """A message as the emulator shows it: tags stripped, entities decoded."""
    return unescape(_TAG.sub("", en(msgid, **kwargs)))


def now() -> datetime:
    return datetime.now(timezone.utc)


# --- people and invites, made through the services -----------------------------------------------

def person(e2e: E2E, name: str) -> SimUser:
    """Someone the emulator knows who never joins its group: their invites are the services' alone."""
    return e2e.emu.add_user(name, username=f"{name.lower()}_inv")


def profile(user: SimUser) -> Profile:
    return Profile(id=user.id, first_name=user.first_name, last_name=user.last_name, username=user.username)


def label_of(user: SimUser) -> str:
    return f"{user.first_name} (@{user.username})"


async def seat(e2e: E2E, cid: int, user: SimUser, at: datetime) -> None:
    """A member who was there before invites were tracked."""
    async with e2e.db() as s:
        await members.on_member_status(s, community=await s.get(Community, cid), profile=profile(user),
                                       old_status="left", new_status="member", now=at)


async def link_of(e2e: E2E, cid: int, owner: SimUser, at: datetime) -> InviteLink:
    async with e2e.db() as s:
        return await invite_links.save_link(s, community_id=cid, user_id=owner.id, name=owner.first_name,
                                            url=f"https://t.me/+L{owner.id}x{cid}", creates_join_request=False, now=at)


async def arrive(e2e: E2E, cid: int, user: SimUser, at: datetime, link: InviteLink | None = None,
                 is_bot: bool = False) -> Referral:
    """A join as the chat_member handler records it: the attribution, then the membership change."""
    async with e2e.db() as s:
        community = await s.get(Community, cid)
        found = await invites.attribute_join(s, community=community, profile=profile(user), is_bot=is_bot,
                                             via=Via.MEMBER_LINK if link else Via.UNKNOWN,
                                             link_url=link.url if link else None, joined_at=at)
        if not is_bot:
            await members.on_member_status(s, community=community, profile=profile(user), old_status="left",
                                           new_status="member", now=at)
    assert found is not None and found.created
    return found.referral


async def depart(e2e: E2E, cid: int, user: SimUser, at: datetime) -> None:
    async with e2e.db() as s:
        await invites.member_left(s, community_id=cid, user_id=user.id, at=at)
        await members.on_member_status(s, community=await s.get(Community, cid), profile=profile(user),
                                       old_status="member", new_status="left", now=at)


async def qualify(e2e: E2E, cid: int) -> invite_rewards.QualifyReport:
    async with e2e.db() as s:
        return await invite_rewards.qualify_due(s, community=await s.get(Community, cid), as_of=now())


async def configure(e2e: E2E, group: Group, **changes: object) -> None:
    async with e2e.db() as s:
        await update_settings(s, community=await s.get(Community, group.community_id), actor_id=group.leader.id,
                              now=now(), **changes)


async def referral(e2e: E2E, referral_id: int) -> Referral:
    async with e2e.db() as s:
        return await s.get(Referral, referral_id)


async def ledger(e2e: E2E, cid: int, user: SimUser) -> list[tuple[str, int]]:
    async with e2e.db() as s:
        return [(e.reference, e.delta) for e in await s.exec(select(PointsEntry).where(
            PointsEntry.community_id == cid, PointsEntry.user_id == user.id).order_by(col(PointsEntry.id)))]


async def stored(e2e: E2E, cid: int) -> InviteSettings:
    return invite_settings(await e2e.community_by_id(cid))


# --- screens --------------------------------------------------------------------------------------

async def open_invites(e2e: E2E, leader: SimUser) -> None:
    await e2e.say(leader, "/admin")
    await e2e.press(leader, en("🤝 Invites"))


async def refused(e2e: E2E, leader: SimUser, text: str, reason: str) -> None:
    """A refused answer: the reason above the same question, with the same buttons; the form stays open."""
    before = e2e.last_msg(leader)
    state = await e2e.fsm_state(leader)
    await e2e.say(leader, text)
    question = before.visible.split("\n\n")[-1]  # without the reason an earlier refusal put above it
    assert e2e.last(leader) == reason + "\n\n" + question
    assert e2e.last_msg(leader).buttons == before.buttons
    assert await e2e.fsm_state(leader) == state


def main_screen(*, off: bool = False, counts: str | None = None, level1: str | None = None,
                level2: str | None = None) -> str:
    return "\n".join([
        see("<b>Invites · {title}</b>", title="Green Valley"),
        *([en("Invites are off: joins are not tracked and nobody is rewarded.")] if off else []),
        counts or en("An invite counts once the new member has stayed {days} day(s).", days=3),
        en("Level 1, the inviter: {reward}", reward=level1 or en("{points} points", points=10)),
        en("Level 2, the inviter's inviter: {reward}", reward=level2 or en("off")),
        en(LAW),
        en("Held for review instead of rewarded: self-invites, rejoins, bots, people who leave within 72 h, more than "
           "{joins} joins through one link within {minutes} min, and new invites of an inviter with {min} or more "
           "invites of whom over {percent}% left.", joins=10, minutes=10, min=5, percent=50),
        en("Press an option to change it."),
    ])


def main_buttons(*, enabled: str = "on", approve: str = "off", held: int = 0) -> list[list[str]]:
    return [
        [en("✅ Invites: {state}", state=en(enabled))],
        [en("🚪 Approve joins: {state}", state=en(approve))],
        [en("⏳ Counts after {days} day(s)", days=3), en("📝 Requirement: {choice}", choice=en("just stay"))],
        [en("🥇 Level 1: {reward}", reward=en("{points} points", points=10)),
         en("🥈 Level 2: {reward}", reward=en("off"))],
        [en("💥 Burst: over {n} joins", n=10), en("⏱ Within {n} min", n=10)],
        [en("🏃 Leave rate: over {n}%", n=50), en("👥 From {n} invites", n=5)],
        [en("🏆 Leaderboard"), en("🔎 Review ({n})", n=held)],
        [en("🔗 Chain"), en("⬇️ CSV")],
        [en("« Back")],
    ]


def callback_of(e2e: E2E, user: SimUser, label: str) -> str:
    rows = e2e.last_msg(user).reply_markup["inline_keyboard"]
    return next(b["callback_data"] for row in rows for b in row if b["text"] == label)


# --- the settings ---------------------------------------------------------------------------------

async def test_screen_switches_and_the_requirement(e2e: E2E) -> None:
    group = await e2e.make_group(members=[])
    alice, cid = group.leader, group.community_id
    await e2e.say(alice, "/admin")
    assert [en("🤝 Invites")] in e2e.last_msg(alice).buttons
    await e2e.press(alice, en("🤝 Invites"))
    assert e2e.last(alice) == main_screen()
    assert e2e.last_msg(alice).buttons == main_buttons()

    for label, after, key in ((en("✅ Invites: {state}", state=en("on")), en("✅ Invites: {state}", state=en("off")),
                               "enabled"),
                              (en("🚪 Approve joins: {state}", state=en("off")),
                               en("🚪 Approve joins: {state}", state=en("on")), "approve_joins")):
        before = getattr(await stored(e2e, cid), key)
        data = callback_of(e2e, alice, label)
        assert e2e.answer(await e2e.press(alice, label)).text == en("Saved.")
        assert getattr(await stored(e2e, cid), key) is (not before)
        assert any(after in row for row in e2e.last_msg(alice).buttons)
        [entry] = await e2e.audit(cid, f"invites.{key}")
        assert (entry.actor_id, entry.details) == (alice.id, {"from": before, "to": not before})
        # The same press again (a double tap, a replay) sets the same state: it does not flip back.
        shown = e2e.last(alice)
        await e2e.press_data(alice, data)
        assert getattr(await stored(e2e, cid), key) is (not before)
        assert e2e.last(alice) == shown
        assert len(await e2e.audit(cid, f"invites.{key}")) == 1
    assert e2e.last(alice) == main_screen(off=True)
    assert e2e.last_msg(alice).buttons == main_buttons(enabled="off", approve="on")

    await e2e.press(alice, en("📝 Requirement: {choice}", choice=en("just stay")))
    assert e2e.last(alice) == en("What must a new member have done, besides staying {days} day(s), for the invite to "
                                 "count?", days=3)
    assert e2e.last_msg(alice).buttons == [["✓ " + en("just stay")], [en("wrote in the group")],
                                           [en("first paid order")], [en("« Back")]]
    assert e2e.answer(await e2e.press(alice, en("first paid order"))).text == en("Saved.")
    assert (await stored(e2e, cid)).require == Requirement.PAID_ORDER
    assert e2e.last(alice).splitlines()[2] == en("An invite counts once the new member has stayed {days} day(s) and "
                                                 "paid a first order.", days=3)
    [entry] = await e2e.audit(cid, "invites.require")
    assert entry.details == {"from": "none", "to": "paid_order"}
    # A requirement the bot does not offer, forged: refused with the service's reason, nothing stored.
    forged = InviteSet(option=InviteOption.REQUIRE, community_id=cid, value="level3").pack()
    answer = e2e.answer(await e2e.press_data(alice, forged))
    assert answer.show_alert and answer.text.startswith(en("That invitation setting is not allowed: {detail}.",
                                                           detail="")[:-1])
    assert (await stored(e2e, cid)).require == Requirement.PAID_ORDER
    assert len(await e2e.audit(cid, "invites.require")) == 1


async def test_a_chinese_speaking_leader_reads_the_screens_in_chinese(e2e: E2E) -> None:
    mei = e2e.emu.add_user("梅", username="mei_leads", language_code="zh-hans")
    group = await e2e.make_group("绿谷", leader=mei, members=[])
    await e2e.say(mei, "/admin")
    await e2e.press(mei, zh("🤝 Invites"))
    lines = e2e.last(mei).splitlines()
    assert lines[0] == unescape(_TAG.sub("", zh("<b>Invites · {title}</b>", title="绿谷")))
    assert lines[4] == zh(LAW)
    await e2e.press(mei, zh("🥈 Level 2: {reward}", reward=zh("off")))
    await e2e.press(mei, zh("🎯 Points: {n}", n=0))
    await e2e.say(mei, "0.5")
    assert e2e.last(mei).startswith(zh(NUMBER, value="0.5", min=0, max=1_000_000) + "\n\n")
    assert (await stored(e2e, group.community_id)).level2 is None


@pytest.mark.parametrize(("label", "key", "bad", "low", "high", "good", "after"), [
    (("⏳ Counts after {days} day(s)", {"days": 3}), "qualify_days", "91", 1, 90, "7",
     ("⏳ Counts after {days} day(s)", {"days": 7})),
    (("💥 Burst: over {n} joins", {"n": 10}), "burst_joins", "0", 1, 10_000, "25",
     ("💥 Burst: over {n} joins", {"n": 25})),
    (("⏱ Within {n} min", {"n": 10}), "burst_minutes", "1441", 1, 1440, "30", ("⏱ Within {n} min", {"n": 30})),
    (("🏃 Leave rate: over {n}%", {"n": 50}), "leave_rate_percent", "60%", 1, 100, "60",
     ("🏃 Leave rate: over {n}%", {"n": 60})),
    (("👥 From {n} invites", {"n": 5}), "leave_rate_min_invites", "five", 1, 1000, "８",
     ("👥 From {n} invites", {"n": 8})),
])
async def test_number_options_refuse_what_is_out_of_range_and_save_the_rest(
        e2e: E2E, label: tuple, key: str, bad: str, low: int, high: int, good: str, after: tuple) -> None:
    group = await e2e.make_group(members=[])
    alice, cid = group.leader, group.community_id
    before = getattr(await stored(e2e, cid), key)
    await open_invites(e2e, alice)
    await e2e.press(alice, en(label[0], **label[1]))
    assert e2e.last(alice).endswith(f"\nNow: {before}")
    assert e2e.last_msg(alice).buttons == [NAV]
    assert await e2e.fsm_state(alice) == f"InviteSettingsForm:{key}"
    await refused(e2e, alice, bad, en(NUMBER, value=bad, min=low, max=high))
    assert getattr(await stored(e2e, cid), key) == before
    await refused(e2e, alice, str(high + 1), en(NUMBER, value=high + 1, min=low, max=high))

    await e2e.say(alice, good)
    value = getattr(await stored(e2e, cid), key)
    assert value == int(good.replace("８", "8")) and value != before
    assert e2e.last(alice).startswith(en("Saved.") + "\n\n" + see("<b>Invites · {title}</b>", title="Green Valley"))
    assert any(en(after[0], **after[1]) in row for row in e2e.last_msg(alice).buttons)
    [entry] = await e2e.audit(cid, f"invites.{key}")
    assert entry.details == {"from": before, "to": value}
    assert await e2e.fsm_state(alice) is None


async def test_back_and_cancel_leave_a_settings_form_without_saving(e2e: E2E) -> None:
    group = await e2e.make_group(members=[])
    alice, cid = group.leader, group.community_id
    await open_invites(e2e, alice)
    screen = e2e.last(alice)
    await e2e.press(alice, en("💥 Burst: over {n} joins", n=10))
    form = e2e.last_msg(alice)
    await e2e.send_raw(alice, service={"location": {"latitude": 31.23, "longitude": 121.47}})
    assert e2e.last(alice).startswith(en("Please answer with text.") + "\n\n")
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice) == screen
    assert await e2e.fsm_state(alice) is None
    # The closed form's buttons only say so, and leave its message as it is.
    shown = form.visible
    assert e2e.answer(await e2e.press(alice, en("✖ Cancel"), message=form)).text == en("This form is no longer open.")
    assert form.visible == shown

    await e2e.press(alice, en("💥 Burst: over {n} joins", n=10))
    await e2e.press(alice, en("✖ Cancel"))
    assert e2e.last(alice) == en("Cancelled. Nothing was changed. Send /admin to open the menu again.")
    await e2e.say(alice, "3")  # no form is open: nothing is saved
    assert (await stored(e2e, cid)).burst_joins == 10
    assert await e2e.audit(cid, "invites.burst_joins") == []


# --- rewards by level -----------------------------------------------------------------------------

def level_screen(level: int, points: int, coupon: str | None = None) -> str:
    about = (en("The inviter gets this once, when an invite counts.") if level == 1 else
             en("The inviter's inviter gets this once, when an invite counts. Off until you set points or a coupon."))
    return "\n".join([see("<b>Level {level} reward · {title}</b>", level=level, title="Green Valley"), about,
                      en("Points: {points}", points=points), en("Coupon: {terms}", terms=coupon or en("none")),
                      en(LAW)])


async def test_level_rewards_points_and_a_coupon_and_no_third_level(e2e: E2E) -> None:
    group = await e2e.make_group(members=[])
    alice, cid = group.leader, group.community_id
    await open_invites(e2e, alice)
    await e2e.press(alice, en("🥇 Level 1: {reward}", reward=en("{points} points", points=10)))
    assert e2e.last(alice) == level_screen(1, 10)
    assert e2e.last_msg(alice).buttons == [[en("🎯 Points: {n}", n=10)], [en("🎟 Set a coupon")], [en("« Back")]]

    await e2e.press(alice, en("🎯 Points: {n}", n=10))
    assert e2e.last(alice).endswith("\nNow: 10")
    await refused(e2e, alice, "-5", en(NUMBER, value="-5", min=0, max=1_000_000))
    await refused(e2e, alice, "1000001", en(NUMBER, value="1000001", min=0, max=1_000_000))
    await e2e.say(alice, "25")
    assert e2e.last(alice) == en("Saved.") + "\n\n" + level_screen(1, 25)
    assert (await stored(e2e, cid)).level1 == LevelReward(points=25)

    await e2e.press(alice, en("🎟 Set a coupon"))
    assert e2e.last(alice) == en("The coupon it gives: a fixed amount off, or a percentage?")
    assert e2e.last_msg(alice).buttons == [[en("Fixed amount"), en("Percent")], NAV]
    await refused(e2e, alice, "10", en("Please choose with the buttons."))
    await e2e.press(alice, en("Percent"))
    await refused(e2e, alice, "101", en("A percentage must be from 1 to 100."))
    await e2e.say(alice, "10")
    assert e2e.last_msg(alice).buttons == [[en("Skip")], NAV]
    await refused(e2e, alice, "0", en("The amount must be more than zero."))
    await refused(e2e, alice, "5.001", en("{currency} has {digits} decimal places; send the amount with no more than "
                                          "that.", currency="USD", digits=2))
    await e2e.say(alice, "5")
    await e2e.say(alice, "20")
    await refused(e2e, alice, "0", en(NUMBER, value="0", min=1, max=3650))
    await e2e.say(alice, "14")
    terms = " · ".join([en("{percent}% off, up to {cap}", percent=10, cap="$5.00"),
                        en("minimum spend {amount}", amount="$20.00"), en("valid {days} days", days=14)])
    assert e2e.last(alice) == "\n".join([see("<b>Level {level} coupon</b> — check and save", level=1),
                                         en("Coupon: {terms}", terms=terms)])
    assert (await stored(e2e, cid)).level1.coupon is None  # nothing before Save
    assert e2e.answer(await e2e.press(alice, en("💾 Save"))).text == en("Saved.")
    coupon = CouponTerms(kind=CouponKind.PERCENT, value=10, cap=500, min_spend=2000, valid_days=14)
    assert (await stored(e2e, cid)).level1 == LevelReward(points=25, coupon=coupon)
    assert e2e.last(alice) == en("Saved.") + "\n\n" + level_screen(1, 25, terms)
    assert e2e.last_msg(alice).buttons == [[en("🎯 Points: {n}", n=25)], [en("🎟 Change the coupon"), en("🗑 No coupon")],
                                           [en("« Back")]]
    assert [a.details["to"]["points"] for a in await e2e.audit(cid, "invites.level1")] == [25, 25]
    assert e2e.answer(await e2e.press(alice, en("🗑 No coupon"))).text == en("Saved.")
    assert (await stored(e2e, cid)).level1 == LevelReward(points=25)

    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice) == main_screen(level1=en("{points} points", points=25))
    await e2e.press(alice, en("🥈 Level 2: {reward}", reward=en("off")))
    assert e2e.last(alice) == level_screen(2, 0)
    await e2e.press(alice, en("🎯 Points: {n}", n=0))
    await e2e.say(alice, "3")
    assert (await stored(e2e, cid)).level2 == LevelReward(points=3)
    assert e2e.last_msg(alice).buttons == [[en("🎯 Points: {n}", n=3)], [en("🎟 Set a coupon")],
                                           [en("⛔ Turn level 2 off")], [en("« Back")]]
    off = callback_of(e2e, alice, en("⛔ Turn level 2 off"))
    await e2e.press(alice, en("⛔ Turn level 2 off"))
    assert (await stored(e2e, cid)).level2 is None
    assert e2e.last(alice) == level_screen(2, 0)
    await e2e.press_data(alice, off)  # replayed: still off, nothing more audited
    assert [a.details["to"] for a in await e2e.audit(cid, "invites.level2")] == [{"points": 3, "coupon": None}, None]

    # A third level has no button, and forged presses for one meet the law.
    settings_before = (await stored(e2e, cid)).model_dump()
    for op in (InviteOp.LEVEL, InviteOp.LEVEL_POINTS, InviteOp.LEVEL_COUPON, InviteOp.LEVEL_NO_COUPON):
        answer = e2e.answer(await e2e.press_data(alice, InviteAdmin(op=op, community_id=cid, item=3).pack()))
        assert (answer.text, answer.show_alert) == (en(LAW), True)
        assert await e2e.fsm_state(alice) is None
    async with e2e.db() as s:
        with pytest.raises(DomainError) as refusal:
            await update_settings(s, community=await s.get(Community, cid), actor_id=alice.id, now=now(),
                                  level3={"points": 5})
    assert refusal.value.code == "invite_setting_invalid"
    assert (await stored(e2e, cid)).model_dump() == settings_before


# --- chains: rewards stop at level 2, the chain view shows every level ------------------------------

async def test_a_four_deep_chain_rewards_two_levels_and_the_chain_view_shows_it(e2e: E2E) -> None:
    group = await e2e.make_group(members=[])
    alice, cid = group.leader, group.community_id
    await configure(e2e, group, level2={"points": 3})
    ann, ben, cat, don, eli = (person(e2e, name) for name in ("Ann", "Ben", "Cat", "Don", "Eli"))
    t0 = now() - 10 * DAY
    await seat(e2e, cid, ann, t0 - DAY)
    chain, inviter = {}, ann
    for n, invitee in enumerate((ben, cat, don, eli)):
        chain[invitee.id] = await arrive(e2e, cid, invitee, t0 + n * timedelta(hours=1),
                                         link=await link_of(e2e, cid, inviter, t0))
        inviter = invitee
    await qualify(e2e, cid)
    await depart(e2e, cid, don, now() - DAY)  # after the reward: it stays, counted as left

    rb, rc, rd, re_ = (chain[u.id].id for u in (ben, cat, don, eli))
    assert await ledger(e2e, cid, ann) == [(f"referral:{rb}", 10), (f"referral:{rc}:2", 3)]
    assert await ledger(e2e, cid, ben) == [(f"referral:{rc}", 10), (f"referral:{rd}:2", 3)]
    assert await ledger(e2e, cid, cat) == [(f"referral:{rd}", 10), (f"referral:{re_}:2", 3)]
    assert await ledger(e2e, cid, don) == [(f"referral:{re_}", 10)]
    assert await ledger(e2e, cid, eli) == []

    await open_invites(e2e, alice)
    await e2e.press(alice, en("🔗 Chain"))
    prompt = en("Whose invite chain? Send the member's @username or numeric Telegram id, or forward me a message they "
                "wrote.")
    assert e2e.last(alice) == prompt
    assert e2e.last_msg(alice).buttons == [NAV]
    await refused(e2e, alice, "@nobody", en(UNKNOWN_MEMBER, value="@nobody"))
    await e2e.say(alice, f"@{cat.username.upper()}")
    rewarded = en("rewarded")
    joined = en("Joined {when} · source: {via} · {state} · depth {depth}", via=en("member link"), state=rewarded,
                when=local_time(t0 + timedelta(hours=1), "UTC"), depth=2)
    assert e2e.last(alice) == "\n".join([
        see("<b>Invite chain · {person}</b>", person=label_of(cat)), joined,
        en("Invited by: {chain}", chain=f"{label_of(ben)} ← {label_of(ann)}"), "",
        see("<b>Their invites by level</b>"),
        en("Level {level} ({count}): {people}", level=1, count=1,
           people=f"{label_of(don)} ({en('{state}, left since', state=rewarded)})"),
        en("Level {level} ({count}): {people}", level=2, count=1, people=f"{label_of(eli)} ({rewarded})"),
        en("Times in {tz}.", tz="UTC")])
    assert e2e.last_msg(alice).buttons == [[en("🔗 Another member")], [en("« Back")]]
    assert await e2e.fsm_state(alice) is None

    # The top of the chain, named by a forwarded message: levels 3 and 4 recorded, never rewarded.
    await e2e.press(alice, en("🔗 Another member"))
    hidden = {"type": "hidden_user", "sender_user_name": "Someone", "date": int(now().timestamp())}
    await e2e.send_raw(alice, text="hi", html="hi", forward_origin=hidden)
    assert e2e.last(alice).startswith(en("That forward does not show who wrote it (their privacy settings hide it). "
                                         "Send their @username or numeric Telegram id instead."))
    origin = {"type": "user", "sender_user": user_json(ann), "date": int(now().timestamp())}
    await e2e.send_raw(alice, text="thanks", html="thanks", forward_origin=origin)
    never = " " + en("— recorded, never rewarded")
    assert e2e.last(alice).splitlines()[1:] == [
        en("No invite is recorded for them: they were here before invites were tracked, or invites were off."),
        en("Invited by: nobody"), "", see("<b>Their invites by level</b>"),
        en("Level {level} ({count}): {people}", level=1, count=1, people=f"{label_of(ben)} ({rewarded})"),
        en("Level {level} ({count}): {people}", level=2, count=1, people=f"{label_of(cat)} ({rewarded})"),
        en("Level {level} ({count}): {people}", level=3, count=1,
           people=f"{label_of(don)} ({en('{state}, left since', state=rewarded)})") + never,
        en("Level {level} ({count}): {people}", level=4, count=1, people=f"{label_of(eli)} ({rewarded})") + never,
        en("Times in {tz}.", tz="UTC")]

    # The bottom of the chain by id; Don, who left, can still be looked up.
    await e2e.press(alice, en("🔗 Another member"))
    await e2e.say(alice, str(eli.id))
    assert e2e.last(alice).splitlines()[2] == en("Invited by: {chain}", chain=" ← ".join(
        label_of(u) for u in (don, cat, ben, ann)))
    await e2e.press(alice, en("🔗 Another member"))
    await e2e.say(alice, f"@{don.username}")
    assert e2e.last(alice).splitlines()[0] == see("<b>Invite chain · {person}</b>", person=label_of(don))
    await e2e.press(alice, en("🔗 Another member"))
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice).splitlines()[0] == see("<b>Invites · {title}</b>", title="Green Valley")
    assert await e2e.fsm_state(alice) is None


# --- the review queue -----------------------------------------------------------------------------

def item_lines(n: int, invitee: SimUser, inviter: SimUser, at: datetime, reasons: str) -> list[str]:
    return ["", en("{n}. {invitee}, invited by {inviter}", n=n, invitee=label_of(invitee), inviter=label_of(inviter)),
            en("Joined {when} · source: {via} · held for: {reasons}", when=local_time(at, "UTC"), via=en("member link"),
               reasons=reasons)]


async def test_review_approve_and_reject_once_each_whoever_presses(e2e: E2E) -> None:
    group = await e2e.make_group(members=[])
    emu, alice, cid = e2e.emu, group.leader, group.community_id
    lee = emu.add_user("Lee", username="lee_leads")
    await e2e.act(lambda: emu.join(group.chat, lee))
    await e2e.act(lambda: emu.promote(group.chat, lee, by=alice))
    bob, carol, dan, eve = (person(e2e, name) for name in ("Bob", "Carol", "Dan", "Eve"))
    t0 = now() - 5 * DAY
    for someone in (bob, carol, dan):
        await seat(e2e, cid, someone, t0 - 30 * DAY)
    carols = await link_of(e2e, cid, carol, t0 - 30 * DAY)
    for someone in (carol, dan):
        await depart(e2e, cid, someone, t0 - 20 * DAY)
    bobs = await link_of(e2e, cid, bob, t0)
    held_dan = await arrive(e2e, cid, dan, t0, link=bobs)  # a rejoin
    held_eve = await arrive(e2e, cid, eve, t0 + timedelta(minutes=1), link=bobs, is_bot=True)
    held_carol = await arrive(e2e, cid, carol, t0 + timedelta(minutes=2), link=carols)  # back through her own link
    assert [r.flags for r in (held_dan, held_eve, held_carol)] == [["rejoin"], ["bot"], ["rejoin", "self_invite"]]

    await open_invites(e2e, alice)
    assert [en("🏆 Leaderboard"), en("🔎 Review ({n})", n=3)] in e2e.last_msg(alice).buttons
    await e2e.press(alice, en("🔎 Review ({n})", n=3))
    head = [see("<b>Review · {title}</b>", title="Green Valley"),
            en("{count} invite(s) held: nobody is rewarded for them unless you approve. A rejected invite is never "
               "rewarded.", count=3)]
    assert e2e.last(alice) == "\n".join([
        *head, *item_lines(1, dan, bob, t0, en("rejoin")),
        *item_lines(2, eve, bob, t0 + timedelta(minutes=1), en("bot")),
        *item_lines(3, carol, carol, t0 + timedelta(minutes=2), en("rejoin") + ", " + en("self-invite")), "",
        en("Times in {tz}.", tz="UTC")])
    assert e2e.last_msg(alice).buttons == [[en("✅ Approve {n}", n=n), en("❌ Reject {n}", n=n)] for n in (1, 2, 3)] + [
        [en("« Back")]]

    # Approve: rewarded now, once, audited, and the inviter told as the qualification job tells them.
    await e2e.act(lambda: emu.send(bob, None, "/start"))
    assert e2e.answer(await e2e.press(alice, en("✅ Approve {n}", n=1))).text == en(APPROVED)
    await e2e.settle()
    assert await ledger(e2e, cid, bob) == [(f"referral:{held_dan.id}", 10)]
    told = [m.visible for m in emu.bot_messages(bob) if "Green Valley" in m.visible]
    assert len(told) == 1 and told[0].startswith("🎉"), told
    done = await referral(e2e, held_dan.id)
    assert (done.state, done.reviewed_by) == ("rewarded", alice.id)
    [logged] = await e2e.audit(cid, "invites.approve")
    assert logged.actor_id == alice.id and logged.details["referral_id"] == held_dan.id
    assert e2e.last(alice).splitlines()[1] == en(
        "{count} invite(s) held: nobody is rewarded for them unless you approve. A rejected invite is never rewarded.",
        count=2)

    # Two taps on Approve before the bot answers either: one reward, one audit row, the other tap told.
    screen = e2e.last_msg(alice)
    e2e.clock.advance()
    first = emu.press(alice, screen, en("✅ Approve {n}", n=1))
    second = emu.press(alice, screen, en("✅ Approve {n}", n=1))
    await e2e.settle()
    assert sorted([e2e.answer(first).text, e2e.answer(second).text]) == sorted(
        [en(APPROVED), en(DONE, state=en("rewarded"))])
    assert await ledger(e2e, cid, bob) == [(f"referral:{held_dan.id}", 10), (f"referral:{held_eve.id}", 10)]
    assert len(await e2e.audit(cid, "invites.approve")) == 2
    alices_screen = e2e.last_msg(alice)
    assert alices_screen.visible.splitlines()[3] == en("{n}. {invitee}, invited by {inviter}", n=1,
                                                       invitee=label_of(carol), inviter=label_of(carol))

    # Another leader rejects Carol's self-invite; Alice, on her screen from before, is told and changes nothing.
    await open_invites(e2e, lee)
    await e2e.press(lee, en("🔎 Review ({n})", n=1))
    assert e2e.answer(await e2e.press(lee, en("❌ Reject {n}", n=1))).text == en("Rejected: it will never be rewarded.")
    assert e2e.last(lee).splitlines()[1] == en("Nothing is held for review.")
    answer = e2e.answer(await e2e.press(alice, en("✅ Approve {n}", n=1), message=alices_screen))
    assert (answer.text, answer.show_alert) == (en(DONE, state=en("rejected")), True)
    rejected = await referral(e2e, held_carol.id)
    assert (rejected.state, rejected.reviewed_by) == ("rejected", lee.id)
    assert await ledger(e2e, cid, carol) == []
    [logged] = await e2e.audit(cid, "invites.reject")
    assert logged.actor_id == lee.id and logged.details["referral_id"] == held_carol.id
    assert len(await e2e.audit(cid, "invites.approve")) == 2
    assert e2e.last(alice).splitlines()[1] == en("Nothing is held for review.")
    assert e2e.last_msg(alice).buttons == [[en("« Back")]]


async def test_the_review_queue_pages(e2e: E2E) -> None:
    group = await e2e.make_group(members=[])
    alice, cid = group.leader, group.community_id
    await configure(e2e, group, burst_joins=1)
    bob = person(e2e, "Bob")
    t0 = now() - DAY
    await seat(e2e, cid, bob, t0 - DAY)
    bobs = await link_of(e2e, cid, bob, t0)
    crowd = [person(e2e, f"P{n}") for n in range(7)]
    for n, someone in enumerate(crowd):
        await arrive(e2e, cid, someone, t0 + timedelta(seconds=n), link=bobs)
    await open_invites(e2e, alice)
    await e2e.press(alice, en("🔎 Review ({n})", n=7))
    lines = e2e.last(alice).splitlines()
    assert lines[3] == en("{n}. {invitee}, invited by {inviter}", n=1, invitee=label_of(crowd[0]),
                          inviter=label_of(bob))
    assert lines[-1] == en("Page {page} of {pages} · times in {tz}", page=1, pages=2, tz="UTC")
    assert e2e.last_msg(alice).buttons[-2:] == [[en("Next »")], [en("« Back")]]
    await e2e.press(alice, en("Next »"))
    assert e2e.last(alice).splitlines()[3] == en("{n}. {invitee}, invited by {inviter}", n=6,
                                                 invitee=label_of(crowd[5]), inviter=label_of(bob))
    assert e2e.last_msg(alice).buttons[-2:] == [[en("« Previous")], [en("« Back")]]
    # Rejecting the page's last two leaves one page: the screen shows it.
    await e2e.press(alice, en("❌ Reject {n}", n=6))
    await e2e.press(alice, en("❌ Reject {n}", n=6))
    assert e2e.last(alice).splitlines()[-1] == en("Times in {tz}.", tz="UTC")
    assert len(e2e.last_msg(alice).buttons) == 6
    # A page number no client would send is only a page number.
    await e2e.press_data(alice, InviteAdmin(op=InviteOp.REVIEW, community_id=cid, item=10**30).pack())
    assert e2e.last(alice).splitlines()[3] == en("{n}. {invitee}, invited by {inviter}", n=1,
                                                 invitee=label_of(crowd[0]), inviter=label_of(bob))


# --- leaderboard and totals -----------------------------------------------------------------------

async def test_leaderboard_and_totals_from_the_invites(e2e: E2E) -> None:
    group = await e2e.make_group(members=[])
    alice, cid = group.leader, group.community_id
    await configure(e2e, group, level2={"points": 3})
    bob, carol, dan, eve, frank, gus, hank = (person(e2e, n) for n in ("Bob", "Carol", "Dan", "Eve", "Frank", "Gus",
                                                                       "Hank"))
    t0 = now() - 10 * DAY
    await seat(e2e, cid, bob, t0 - DAY)
    bobs = await link_of(e2e, cid, bob, t0)
    await arrive(e2e, cid, carol, t0, link=bobs)
    await arrive(e2e, cid, dan, t0 + timedelta(hours=1), link=bobs)
    await arrive(e2e, cid, eve, t0 + timedelta(hours=2), link=bobs)
    await depart(e2e, cid, eve, t0 + DAY)  # before qualifying
    await arrive(e2e, cid, frank, t0 + timedelta(hours=3), link=bobs, is_bot=True)  # held
    await arrive(e2e, cid, gus, t0 + timedelta(hours=4), link=await link_of(e2e, cid, carol, t0))
    await arrive(e2e, cid, hank, now() - DAY, link=bobs)  # still waiting
    await qualify(e2e, cid)

    await open_invites(e2e, alice)
    await e2e.press(alice, en("🏆 Leaderboard"))
    line = "{rank}. {name} — {regular} regular · {left} left · {fake} fake · {bonus} bonus · {pending} pending"
    present = [m for m in await e2e.members_of(cid) if m.status == "member"]
    assert {m.user_id for m in present} >= {bob.id, carol.id, dan.id, gus.id, hank.id}
    assert e2e.last(alice) == "\n".join([
        see("<b>Top inviters · {title}</b>", title="Green Valley"),
        en("Ranked by regular invites: those that counted. Left, fake (held or rejected), bonus (level 2) and pending "
           "beside them."),
        en(line, rank=1, name=label_of(bob), regular=2, left=1, fake=1, bonus=1, pending=1),
        en(line, rank=2, name=label_of(carol), regular=1, left=0, fake=0, bonus=0, pending=0),
        "",
        see("<b>All invites: {total}</b>", total=6),
        en("Counted: {qualified} · waiting: {pending} · held: {held} · rejected: {rejected} · left before qualifying: "
           "{left}", qualified=3, pending=1, held=1, rejected=0, left=1),
        en("By source: {sources}", sources=f"{en('member link')} 6"),
        en("Inviters: {inviters} · members now: {members} · K-factor: {k}", inviters=2, members=len(present),
           k=f"{3 / len(present):.2f}"),
        en("The K-factor is invites that counted per member now."),
    ])
    assert e2e.last_msg(alice).buttons == [[en("🔄 Refresh")], [en("« Back")]]

    # Hank's invite counts a few days later: Refresh shows it; pressed again, nothing is edited.
    async with e2e.db() as s:
        await invite_rewards.qualify_due(s, community=await s.get(Community, cid), as_of=now() + 3 * DAY)
    await e2e.press(alice, en("🔄 Refresh"))
    assert e2e.last(alice).splitlines()[2] == en(line, rank=1, name=label_of(bob), regular=3, left=1, fake=1, bonus=1,
                                                 pending=0)
    edits = len(e2e.emu.calls("editMessageText"))
    await e2e.press(alice, en("🔄 Refresh"))
    assert len(e2e.emu.calls("editMessageText")) == edits


# --- the CSV export -------------------------------------------------------------------------------

async def test_csv_export_leaves_erased_people_anonymous(e2e: E2E) -> None:
    group = await e2e.make_group(members=[])
    alice, cid = group.leader, group.community_id
    await open_invites(e2e, alice)
    answer = e2e.answer(await e2e.press(alice, en("⬇️ CSV")))
    assert (answer.text, answer.show_alert) == (en("No invites yet."), True)
    assert e2e.emu.documents == []

    bob, carol, dan, erin, finn = (person(e2e, n) for n in ("Bob", "Carol", "Dan", "Erin", "Finn"))
    t0 = now() - 10 * DAY
    for someone in (bob, erin):
        await seat(e2e, cid, someone, t0 - DAY)
    bobs = await link_of(e2e, cid, bob, t0)
    r_carol = await arrive(e2e, cid, carol, t0, link=bobs)
    r_dan = await arrive(e2e, cid, dan, t0 + timedelta(hours=1), link=bobs)
    r_finn = await arrive(e2e, cid, finn, t0 + timedelta(hours=2), link=await link_of(e2e, cid, erin, t0))
    await qualify(e2e, cid)
    async with e2e.db() as s:  # /forgetme: an invitee and an inviter
        await users.forget(s, user_id=dan.id, now=now())
        await users.forget(s, user_id=erin.id, now=now())

    await e2e.press(alice, en("⬇️ CSV"))
    message = e2e.last_msg(alice)
    assert message.document.file_name == f"invites-{cid}-{local_time(now(), 'UTC', '%Y-%m-%d')}.csv"
    assert message.caption == en("{count} invites · times in {tz}", count=3, tz="UTC")
    raw = message.document.data
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == [en(h) for h in ("Joined", "Invitee ID", "Invitee", "Inviter ID", "Inviter", "Source", "State",
                                       "Depth", "Flags", "Qualified at", "Rewarded at", "Left at")]
    async with e2e.db() as s:
        done = {r.id: r for r in await s.exec(select(Referral).where(Referral.community_id == cid))}

    def when(moment: datetime | None) -> str:
        return local_time(moment, "UTC") if moment else ""

    def expected(r: Referral, invitee: list[str], inviter: list[str]) -> list[str]:
        r = done[r.id]
        return [when(r.joined_at), *invitee, *inviter, en("member link"), en("rewarded"), "1", "",
                when(r.qualified_at), when(r.rewarded_at), ""]

    erased = en("Erased member")
    assert rows[1:] == [
        expected(r_carol, [str(carol.id), "Carol"], [str(bob.id), "Bob"]),
        expected(r_dan, ["", erased], [str(bob.id), "Bob"]),
        expected(r_finn, [str(finn.id), "Finn"], ["", erased]),
    ]
    cells = {cell for row in rows for cell in row}
    for gone in (dan, erin):
        assert str(gone.id) not in cells and not any(gone.first_name in cell for cell in cells)


# --- forged presses -------------------------------------------------------------------------------

async def test_forged_presses_by_a_member_or_a_stranger_change_nothing(e2e: E2E, group: Group) -> None:
    bob, cid = group.members[0], group.community_id
    zoe = e2e.emu.add_user("Zoe", username="zoe_elsewhere")
    hill = await e2e.make_group("Hill Side", leader=zoe, members=[])
    sam, tom = person(e2e, "Sam"), person(e2e, "Tom")
    t0 = now() - DAY
    await seat(e2e, cid, sam, t0 - 30 * DAY)
    await seat(e2e, cid, tom, t0 - 30 * DAY)
    await depart(e2e, cid, tom, t0 - 20 * DAY)
    held = await arrive(e2e, cid, tom, t0, link=await link_of(e2e, cid, sam, t0))
    assert held.state == "flagged"
    settings_before = (await stored(e2e, cid)).model_dump()
    audit_before = [a.id for a in await e2e.audit(cid)]
    forged = [AdminNav(community_id=cid, section=Section.INVITES).pack(),
              InviteSet(option=InviteOption.ENABLED, community_id=cid, turn_on=False).pack(),
              InviteSet(option=InviteOption.APPROVE_JOINS, community_id=cid, turn_on=True).pack(),
              InviteSet(option=InviteOption.REQUIRE, community_id=cid, value="message").pack(),
              InviteSet(option=InviteOption.QUALIFY_DAYS, community_id=cid).pack(),
              *(InviteAdmin(op=op, community_id=cid, item=item).pack() for op, item in (
                  (InviteOp.LEVEL, 1), (InviteOp.LEVEL_POINTS, 1), (InviteOp.LEVEL_COUPON, 2),
                  (InviteOp.LEVEL_NO_COUPON, 1), (InviteOp.LEVEL_OFF, 2), (InviteOp.TOP, 0), (InviteOp.REVIEW, 0),
                  (InviteOp.CHAIN, 0), (InviteOp.EXPORT, 0))),
              InviteReview(op=InviteReviewOp.APPROVE, community_id=cid, referral_id=held.id).pack(),
              InviteReview(op=InviteReviewOp.REJECT, community_id=cid, referral_id=held.id).pack()]
    for someone in (bob, zoe):
        await e2e.say(someone, "/start")
        screen = e2e.last(someone)
        for data in forged:
            answer = e2e.answer(await e2e.press_data(someone, data))
            assert (answer.text, answer.show_alert) == (en(NOT_LEADER), True), (someone.first_name, data)
            assert await e2e.fsm_state(someone) is None, data
        answer = e2e.answer(await e2e.press_data(someone, "ivf:v:preview"))
        assert answer.text == en("This form is no longer open.")
        assert e2e.last(someone) == screen

    # Zoe leads a community of her own: through it, Alice's invite is nobody's to decide.
    for op in InviteReviewOp:
        data = InviteReview(op=op, community_id=hill.community_id, referral_id=held.id).pack()
        answer = e2e.answer(await e2e.press_data(zoe, data))
        assert (answer.text, answer.show_alert) == (en("That invite does not exist in this community."), True)

    assert (await stored(e2e, cid)).model_dump() == settings_before
    assert [a.id for a in await e2e.audit(cid)] == audit_before
    assert (await referral(e2e, held.id)).state == "flagged"
    assert await ledger(e2e, cid, sam) == []
    assert e2e.emu.documents == []


# --- replayed presses -----------------------------------------------------------------------------

async def test_replayed_presses_on_every_invites_screen_edit_nothing_twice(e2e: E2E) -> None:
    group = await e2e.make_group(members=[])
    alice, cid = group.leader, group.community_id
    await configure(e2e, group, level2={"points": 3, "coupon": {"kind": "fixed", "value": 500}})
    sam, tom = person(e2e, "Sam"), e2e.emu.add_user("Tom", last_name='"T" <&>', username="tom_inv")
    t0 = now() - DAY
    await seat(e2e, cid, sam, t0 - 30 * DAY)
    await seat(e2e, cid, tom, t0 - 30 * DAY)
    await depart(e2e, cid, tom, t0 - 20 * DAY)
    await arrive(e2e, cid, tom, t0, link=await link_of(e2e, cid, sam, t0))
    await open_invites(e2e, alice)
    screen = e2e.last_msg(alice)
    pressed = await crawl(e2e, alice, screen, depth=2, limit=40)
    assert len(pressed) >= 25
    refused = [c for c in e2e.emu.requests if NOT_MODIFIED in (c.description or "")]
    assert refused == [], [c.params.get("text", "")[:80] for c in refused]
    assert apologies(e2e, alice) == []
