"""Win-back runs against the real bot and the emulator: the scheduled job in the community's own
calendar and quiet hours, the members' messages with their coupon and a "Stop offers" button,
the holdout left alone, /stop, a member who blocked the bot (403), Telegram's 429s, and the
leader's progress card edited in place.

The scheduler is paused: the job runs "as of" the moments the tests name, as `jobs run --at` does.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from e2e_harness import E2E, Group, en
from sqlalchemy import select, update

from bot.sandbox import SimUser
from bot.services import campaigns
from bot.telegram.campaign_runner import QUIET_LEAD
from models import Arm, CampaignRun, CampaignSend, Community, Coupon, Member, RunStatus, SendStatus, User

SH = "Asia/Shanghai"
CODE = re.compile(r"\bWB[A-Z0-9]{8}\b")


@pytest.fixture(autouse=True)
def paused(e2e: E2E) -> None:
    e2e.app.scheduler._aps.pause()


def shanghai(day: date, hour: int, minute: int = 0, second: float = 0) -> datetime:
    whole = int(second)
    return datetime(day.year, day.month, day.day, hour, minute, whole, round((second - whole) * 1e6),
                    tzinfo=ZoneInfo(SH)).astimezone(timezone.utc)


async def drifting_members(e2e: E2E, group: Group, count: int, *, started: bool = True) -> list[SimUser]:
    """Members who joined long ago, were active weekly, and have been silent for six weeks."""
    people = [e2e.emu.add_user(f"Member{n}") for n in range(count)]
    for person in people:
        e2e.emu.join(group.chat, person)
        if started:
            await e2e.say(person, "/start")
    await e2e.settle()
    today = datetime.now(timezone.utc).date()
    async with e2e.db() as s:
        await s.execute(update(Member).where(Member.community_id == group.community_id,
                                             Member.user_id.in_([p.id for p in people])).values(
            joined_at=datetime.now(timezone.utc) - timedelta(days=400), first_active_on=today - timedelta(days=200),
            last_active_on=today - timedelta(days=42), active_days=23))
        await s.commit()
    return people


async def campaign_for(e2e: E2E, group: Group, **config) -> campaigns.Campaign:
    """The community in Shanghai's time, and an enabled win-back; the replies to everyone's /start
    are seconds old by the time it runs (Telegram counts them in its per-second limit too)."""
    e2e.clock.advance(2)
    async with e2e.db() as s:
        community = await s.get(Community, group.community_id)
        community.timezone = SH
        await s.commit()
        made = await campaigns.create_winback(s, community=community, owner_id=group.leader.id, name="Miss you",
                                              now=datetime.now(timezone.utc))
        await campaigns.update_config(s, campaign=made, changes={"audience": "active", **config},
                                      actor_id=group.leader.id, now=datetime.now(timezone.utc))
        await campaigns.set_enabled(s, campaign=made, enabled=True, actor_id=group.leader.id,
                                    now=datetime.now(timezone.utc))
        return made


async def send_rows(e2e: E2E) -> dict[int, CampaignSend]:
    async with e2e.db() as s:
        return {r.user_id: r for r in (await s.execute(select(CampaignSend))).scalars()}


def offers_to(e2e: E2E, person: SimUser) -> list:
    return [m for m in e2e.emu.bot_messages(person) if CODE.search(m.visible)]


async def test_a_scheduled_run_messages_the_treatment_once_each_and_leaves_the_holdout_alone(e2e: E2E, group: Group):
    await e2e.say(group.leader, "/start")
    people = await drifting_members(e2e, group, 24)
    never_started = await drifting_members(e2e, group, 2, started=False)
    campaign = await campaign_for(e2e, group, holdout_percent=25, send_time="10:00")
    # The arms are a hash of campaign, run and member: the first run of this fresh database is
    # number 1, so a member the hash puts in the treatment can be chosen to block the bot.
    stopped = people[0]
    blocker = next(p for p in people[1:] if campaigns.arm_for(campaign.id, 1, p.id, 25) is Arm.TREATMENT)
    await e2e.say(stopped, "/stop")
    # Blocked while the bot was not listening (the update never came): found out at the send, a 403.
    await e2e.act(lambda: e2e.emu.block_bot(blocker))
    await e2e.settle()
    async with e2e.db() as s:
        await s.execute(update(User).where(User.id == blocker.id).values(can_dm=True))
        await s.commit()
    e2e.allow_api_errors(403)
    day = datetime.now(timezone.utc).astimezone(ZoneInfo(SH)).date() + timedelta(days=1)

    # Before 10:00 in Shanghai (02:00 UTC) nothing is due; at 10:00 the run starts and sends.
    assert await e2e.app.run_job("winback_campaigns", shanghai(day, 9, 59)) == "0 run(s) started, 0 resumed"
    assert await e2e.app.run_job("winback_campaigns", shanghai(day, 10, 0)) == "1 run(s) started, 0 resumed"
    await e2e.settle()

    rows = await send_rows(e2e)
    assert stopped.id not in rows and all(p.id not in rows for p in never_started)
    treated = [p for p in people if p.id in rows and rows[p.id].arm == Arm.TREATMENT]
    held = [p for p in people if p.id in rows and rows[p.id].arm == Arm.HOLDOUT]
    assert held and len(treated) + len(held) == 23
    assert all(rows[p.id].arm == campaigns.arm_for(campaign.id, rows[p.id].run_id, p.id, 25) for p in treated + held)
    async with e2e.db() as s:
        coupons = {c.owner_id: c for c in (await s.execute(select(Coupon).where(Coupon.source == "winback"))).scalars()}
        blocked = await s.get(User, blocker.id)
        run = (await s.execute(select(CampaignRun))).scalar_one()
    for person in treated:
        if person is blocker:
            continue
        offers = offers_to(e2e, person)
        assert len(offers) == 1, person.first_name
        assert CODE.search(offers[0].visible).group() == coupons[person.id].code
        assert en("Stop offers") in offers[0].buttons[0]
        assert rows[person.id].status == SendStatus.SENT and rows[person.id].message_id == offers[0].message_id
    for person in held:
        assert offers_to(e2e, person) == [] and person.id not in coupons
    assert blocker in treated and rows[blocker.id].status == SendStatus.BLOCKED and not blocked.can_dm
    assert (run.id, run.status, run.scheduled_on) == (1, RunStatus.DONE, day)
    assert run.skipped == {"opted_out": 1, "unreachable": 2}

    # The leader's one card, edited in place to its final state.
    cards = [m for m in e2e.emu.bot_messages(group.leader) if "Miss you" in m.visible]
    assert len(cards) == 1
    sent = sum(r.status == SendStatus.SENT for r in rows.values())
    assert en("Sent: {sent} · failed: {failed} · remaining: {remaining}", sent=sent, failed=0, remaining=0) \
        in cards[0].visible
    assert "Done in" in cards[0].visible

    # Once a day: a second tick that day starts nothing and messages nobody again.
    assert await e2e.app.run_job("winback_campaigns", shanghai(day, 15, 0)) == "0 run(s) started, 0 resumed"
    await e2e.settle()
    assert all(len(offers_to(e2e, p)) == 1 for p in treated if p is not blocker)

    # "Stop offers" under the offer: opted out, the offer stays readable, the button offers the way back.
    taker = next(p for p in treated if p is not blocker)
    offer = offers_to(e2e, taker)[0]
    await e2e.press(taker, en("Stop offers"), taker)
    async with e2e.db() as s:
        assert (await s.get(User, taker.id)).marketing_opt_out
    assert offer.visible == offers_to(e2e, taker)[0].visible
    assert en("Send me promotions again") in e2e.emu.last_bot_message(taker).buttons[0]
    # Telegram delivers that press again: handled once (no second answer, no second edit).
    answers, edits = len(e2e.emu.calls("answerCallbackQuery")), len(e2e.emu.calls("editMessageReplyMarkup"))
    e2e.emu.redeliver(e2e.last_update_id("callback_query"))
    await e2e.settle()
    assert (len(e2e.emu.calls("answerCallbackQuery")), len(e2e.emu.calls("editMessageReplyMarkup"))) == (answers, edits)

    # The frequency cap holds across campaigns: another one the next day messages none of them.
    other = await campaign_for(e2e, group, holdout_percent=0, send_time="10:00")
    assert await e2e.app.run_job("winback_campaigns", shanghai(day + timedelta(days=1), 10, 0)) == \
        "2 run(s) started, 0 resumed"
    await e2e.settle()
    async with e2e.db() as s:
        later = (await s.execute(select(CampaignRun).where(CampaignRun.campaign_id == other.id))).scalar_one()
        capped = (await s.execute(select(CampaignSend).where(CampaignSend.run_id == later.id))).scalars().all()
    assert capped == [] and later.skipped["capped"] == len(treated) + len(held)
    assert all(len(offers_to(e2e, p)) == 1 for p in treated if p is not blocker)


async def test_quiet_hours_pause_a_run_in_the_communitys_night_and_it_resumes_in_the_morning(e2e: E2E, group: Group):
    await e2e.say(group.leader, "/start")
    people = await drifting_members(e2e, group, 40)
    await campaign_for(e2e, group, holdout_percent=0, send_time="20:00")
    day = datetime.now(timezone.utc).astimezone(ZoneInfo(SH)).date() + timedelta(days=1)

    # Started a moment before 21:00 in Shanghai: about half a second of sending (30 a second) until
    # QUIET_LEAD before it, then quiet.
    await e2e.app.run_job("winback_campaigns", shanghai(day, 21, 0) - QUIET_LEAD - timedelta(seconds=0.6))
    await e2e.settle()
    rows = await send_rows(e2e)
    before = {uid for uid, r in rows.items() if r.status == SendStatus.SENT}
    assert 0 < len(before) < 40
    assert all(r.sent_at < shanghai(day, 21, 0) for r in rows.values() if r.sent_at is not None)
    card = next(m for m in e2e.emu.bot_messages(group.leader) if "Miss you" in m.visible)
    assert en("Paused for quiet hours; goes on at {time}.", time="09:00") in card.visible

    # Quiet all night: nothing is resumed; at 09:00 the rest go, and nobody twice.
    assert await e2e.app.run_job("winback_campaigns", shanghai(day + timedelta(days=1), 8, 59)) == \
        "0 run(s) started, 0 resumed"
    assert await e2e.app.run_job("winback_campaigns", shanghai(day + timedelta(days=1), 9, 0)) == \
        "0 run(s) started, 1 resumed"
    await e2e.settle()
    rows = await send_rows(e2e)
    assert Counter(r.status for r in rows.values()) == {SendStatus.SENT: 40}
    assert all(len(offers_to(e2e, p)) == 1 for p in people)
    assert all(r.sent_at >= shanghai(day + timedelta(days=1), 9, 0) for uid, r in rows.items() if uid not in before)


async def test_429s_are_waited_out_and_every_member_gets_one_message(e2e: E2E, group: Group):
    people = await drifting_members(e2e, group, 6)
    await campaign_for(e2e, group, holdout_percent=0)
    e2e.emu.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1, times=3)
    e2e.allow_api_errors(429)
    day = datetime.now(timezone.utc).astimezone(ZoneInfo(SH)).date() + timedelta(days=1)

    await e2e.app.run_job("winback_campaigns", shanghai(day, 10, 0))
    await e2e.settle()

    assert len(e2e.failed_requests(429)) == 3
    assert all(len(offers_to(e2e, p)) == 1 for p in people)
    assert Counter(r.status for r in (await send_rows(e2e)).values()) == {SendStatus.SENT: 6}
