"""/admin → 📊 Stats through the emulator: a chart per screen as a photo with its key numbers in the
caption, switched in place, a CSV per screen, refusals of forged presses, and the weekly digest."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from e2e_harness import E2E, Group, en, zh
from sqlmodel import select

from bot.services import users
from bot.views.keyboards import DigestOp, DigestOption, StatsOp, StatsScreen, StatsView
from models import ActivityDay, Community, JobMark, Member

NOT_LEADER = "Only this community's leaders can do that."


def now() -> datetime:
    return datetime.now(timezone.utc)


async def open_stats(e2e: E2E, group: Group) -> None:
    alice = group.leader
    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("📊 Stats"))


def csv_rows(e2e: E2E) -> list[list[str]]:
    return list(csv.reader(io.StringIO(e2e.emu.documents[-1].text().lstrip("\ufeff"))))


async def test_leader_opens_stats_switches_screens_and_gets_csv(e2e: E2E, group: Group) -> None:
    alice, bob, carol = group.leader, *group.members
    await e2e.say(bob, "Morning all", group.chat)
    await e2e.say(carol, "Hi!", group.chat)
    await e2e.say(bob, "Any bread today?", group.chat)
    await e2e.act(lambda: e2e.emu.leave(group.chat, carol))

    async def flushed():
        async with e2e.db() as s:
            rows = (await s.exec(select(ActivityDay).where(ActivityDay.community_id == group.community_id))).all()
        return rows if sum(r.messages for r in rows) == 3 else None

    await e2e.eventually(flushed, what="the activity flush")

    await open_stats(e2e, group)
    chart = e2e.last_msg(alice)
    assert chart.photo is not None and chart.photo.data.startswith(b"\x89PNG")
    lines = chart.caption.splitlines()
    assert lines[0] == en("<b>📊 {screen} · {title}</b>", screen=en("Overview"), title="Green Valley").replace(
        "<b>", "").replace("</b>", "")
    # Alice (who made the group) and Bob are in it now; Bob and Carol joined this week and Carol left.
    assert lines[2].startswith("1️⃣ " + en("Members now") + ": 2 ")
    assert lines[3] == "2️⃣ " + en("Joins") + ": 2 (" + en("{change} vs {previous}", change="+2", previous="0") + ")"
    assert lines[4].startswith("3️⃣ " + en("Leaves") + ": 1 ")
    assert lines[9].startswith("8️⃣ " + en("Messages") + ": 3 ")
    assert chart.buttons[0][0] == "• " + en("Overview")

    await e2e.press(alice, en("Growth"), message=chart)
    assert e2e.last_msg(alice) is chart  # the same message, its photo replaced in place
    assert chart.edited == 1 and chart.caption.splitlines()[0].startswith("📊 " + en("Growth"))
    assert en("Joins <b>{joins}</b> · leaves <b>{leaves}</b> · net <b>{net}</b>", joins=2, leaves=1,
              net="+1").replace("<b>", "").replace("</b>", "") in chart.caption
    assert e2e.failed_requests() == []

    await e2e.press(alice, en("⬇️ CSV"), message=chart)
    document = e2e.last_msg(alice)
    assert document.document is not None and document.document.file_name.startswith("stats-growth-")
    rows = csv_rows(e2e)
    assert rows[0][0] == "day" and rows[0][-2:] == ["joins", "leaves"] and len(rows) == 1 + 28
    assert (sum(int(row[-2]) for row in rows[1:]), sum(int(row[-1]) for row in rows[1:])) == (2, 1)
    assert chart.edited == 1  # the chart stays as it was

    # Back to the menu: a photo cannot become a text menu, so the menu comes as a message of its own.
    await e2e.press(alice, en("« Back"), message=chart)
    assert e2e.last(alice).startswith("Green Valley\n") and [en("📊 Stats")] in e2e.last_msg(alice).buttons


async def test_a_forged_press_from_a_member_is_refused(e2e: E2E, group: Group) -> None:
    bob = group.members[0]
    await e2e.say(bob, "/start")
    before = len(e2e.emu.bot_messages(bob))
    for op in StatsOp:
        forged = StatsView(community_id=group.community_id, screen=StatsScreen.SALES, op=op).pack()
        callback = await e2e.press_data(bob, forged, message=e2e.last_msg(bob))
        assert e2e.answer(callback).text == en(NOT_LEADER)
    off = DigestOption(community_id=group.community_id, op=DigestOp.OFF).pack()
    assert e2e.answer(await e2e.press_data(bob, off, message=e2e.last_msg(bob))).text == en(NOT_LEADER)
    assert len(e2e.emu.bot_messages(bob)) == before
    assert e2e.emu.documents == []
    # A leader's forged choice outside what the buttons offer changes nothing either.
    alice = group.leader
    await e2e.say(alice, "/start")
    for op, value in ((DigestOp.TIME, 3), (DigestOp.WEEKDAY, 8)):
        forged = DigestOption(community_id=group.community_id, op=op, value=value).pack()
        callback = await e2e.press_data(alice, forged, message=e2e.last_msg(alice))
        assert e2e.answer(callback).text == en("That choice is not on offer.")
    assert (await e2e.community_by_id(group.community_id)).settings.get("stats_digest") is None


async def test_a_leader_who_lost_the_role_is_refused(e2e: E2E, group: Group) -> None:
    alice = group.leader
    await open_stats(e2e, group)
    chart = e2e.last_msg(alice)
    async with e2e.db() as s:
        member = (await s.exec(select(Member).where(Member.community_id == group.community_id,
                                                   Member.user_id == alice.id))).one()
        member.is_leader = False
        await s.commit()
    callback = await e2e.press(alice, en("Sales"), message=chart)
    assert e2e.answer(callback).text == en(NOT_LEADER)
    assert chart.edited == 0


async def test_weekly_digest_once_a_week_at_the_local_time_and_off_in_settings(e2e: E2E, group: Group) -> None:
    alice, bob = group.leader, group.members[0]
    async with e2e.db() as s:
        community = await s.get(Community, group.community_id)
        community.timezone = "Asia/Shanghai"
        await s.commit()
    await e2e.say(alice, "/start")
    await e2e.say(bob, "/start")
    before = len(e2e.emu.bot_messages(alice))
    shanghai = ZoneInfo("Asia/Shanghai")
    # The group is younger than a week at the first Monday 09:00 after now: nothing to report on yet.
    local_now = datetime.now(shanghai)
    first = datetime.combine(local_now.date() + timedelta(days=-local_now.weekday() % 7), time(9, 0), tzinfo=shanghai)
    if first <= local_now:
        first += timedelta(days=7)
    first_monday = first.date()
    assert await e2e.app.run_job("stats_digest", first + timedelta(hours=1)) == "0 communities, 0 messages"
    monday = datetime.combine(first_monday + timedelta(days=7), time(8, 59), tzinfo=shanghai)
    assert await e2e.app.run_job("stats_digest", monday) == "0 communities, 0 messages"
    at = monday + timedelta(minutes=1)
    assert await e2e.app.run_job("stats_digest", at) == "1 communities, 1 messages"
    assert await e2e.app.run_job("stats_digest", at + timedelta(days=2)) == "0 communities, 0 messages"
    await e2e.settle()
    digest = e2e.emu.bot_messages(alice)[before:]
    assert len(digest) == 1 and digest[0].photo is not None
    assert digest[0].caption.splitlines()[0] == en("<b>🗓 Your week · {title}</b>", title="Green Valley").replace(
        "<b>", "").replace("</b>", "")
    assert e2e.emu.bot_messages(bob)[-1].photo is None  # members get no digest

    # In Chinese for a leader who reads Chinese; then off from Settings.
    async with e2e.db() as s:
        await users.set_locale(s, user_id=alice.id, locale="zh_Hans", now=now())
    assert await e2e.app.run_job("stats_digest", at + timedelta(days=7)) == "1 communities, 1 messages"
    await e2e.settle()
    assert e2e.last_msg(alice).caption.splitlines()[0] == zh("<b>🗓 Your week · {title}</b>",
                                                             title="Green Valley").replace("<b>", "").replace("</b>", "")
    await e2e.say(alice, "/admin")
    await e2e.press(alice, zh("⚙️ Settings"))
    await e2e.press(alice, zh("🗓 Weekly stats digest"))
    await e2e.press(alice, zh("Turn it off"))
    assert zh("Your digest: off.") in e2e.last(alice)
    assert await e2e.app.run_job("stats_digest", at + timedelta(days=14)) == "0 communities, 0 messages"
    await e2e.press(alice, zh("Turn it on"))
    await e2e.press(alice, "21:00")
    assert "21:00" in e2e.last(alice)
    assert await e2e.app.run_job("stats_digest", at + timedelta(days=14)) == "0 communities, 0 messages"
    evening = datetime.combine(first_monday + timedelta(days=21), time(21, 0), tzinfo=shanghai)
    assert await e2e.app.run_job("stats_digest", evening) == "1 communities, 1 messages"


async def open_digest_settings(e2e: E2E, user) -> None:
    await e2e.say(user, "/admin")
    await e2e.press(user, en("⚙️ Settings"))
    await e2e.press(user, en("🗓 Weekly stats digest"))


async def test_each_leader_gets_the_digest_at_their_own_time_and_turns_only_their_own_off(e2e: E2E,
                                                                                          group: Group) -> None:
    emu, alice, bob, cid = e2e.emu, group.leader, group.members[0], group.community_id
    async with e2e.db() as s:
        community = await s.get(Community, cid)
        community.timezone = "Asia/Shanghai"
        await s.commit()
    await e2e.act(lambda: emu.promote(group.chat, bob, by=alice))
    await e2e.say(alice, "/start")
    await e2e.say(bob, "/start")
    mine = en("These choices are yours alone: each leader picks their own day and hour, or turns theirs off.")

    # Bob moves his digest to Wednesday 20:00; Alice's stays at the default.
    await open_digest_settings(e2e, bob)
    assert mine in e2e.last(bob)
    assert en("Your digest: every {day} at {time} ({tz}).", day="Monday", time="09:00", tz="Asia/Shanghai") in e2e.last(bob)
    await e2e.press(bob, "Wed")
    await e2e.press(bob, "20:00")
    assert en("Your digest: every {day} at {time} ({tz}).", day="Wednesday", time="20:00",
              tz="Asia/Shanghai") in e2e.last(bob)
    assert ["• 20:00"] == [b for row in e2e.last_msg(bob).buttons for b in row if b.startswith("•") and ":" in b]
    await open_digest_settings(e2e, alice)
    assert en("Your digest: every {day} at {time} ({tz}).", day="Monday", time="09:00", tz="Asia/Shanghai") in e2e.last(
        alice)
    alice_screen = e2e.last_msg(alice)
    alice_before, bob_before = len(emu.bot_messages(alice)), len(emu.bot_messages(bob))

    def digests(user, before: int) -> int:
        return sum(1 for m in emu.bot_messages(user)[before:] if m.photo is not None)

    shanghai = ZoneInfo("Asia/Shanghai")
    today = datetime.now(shanghai).date()
    monday = today + timedelta(days=7 - today.weekday() + 7)  # a week after the group's first whole week
    wednesday = monday + timedelta(days=2)
    at_nine = datetime.combine(monday, time(9, 0), tzinfo=shanghai)
    assert await e2e.app.run_job("stats_digest", at_nine) == "1 communities, 1 messages"
    # The same minute again, as after a restart: nothing twice.
    assert await e2e.app.run_job("stats_digest", at_nine) == "0 communities, 0 messages"
    await e2e.settle()
    assert (digests(alice, alice_before), digests(bob, bob_before)) == (1, 0)
    assert await e2e.app.run_job("stats_digest", datetime.combine(wednesday, time(19, 59), tzinfo=shanghai)) == (
        "0 communities, 0 messages")
    # Two workers run the job at Bob's moment at once: one of them sends his digest.
    at_eight = datetime.combine(wednesday, time(20, 0), tzinfo=shanghai)
    results = await asyncio.gather(e2e.app.run_job("stats_digest", at_eight), e2e.app.run_job("stats_digest", at_eight))
    assert sorted(results) == ["0 communities, 0 messages", "1 communities, 1 messages"]
    await e2e.settle()
    assert (digests(alice, alice_before), digests(bob, bob_before)) == (1, 1)
    year, week, _ = monday.isocalendar()
    async with e2e.db() as s:
        keys = set((await s.exec(select(JobMark.key).where(JobMark.job == "stats_digest"))).all())
    assert keys == {f"{cid}:{alice.id}:{year}-W{week:02d}", f"{cid}:{bob.id}:{year}-W{week:02d}"}

    # Alice turns hers off: Bob's goes on.
    await e2e.press(alice, en("Turn it off"), message=alice_screen)
    assert en("Your digest: off.") in alice_screen.visible
    next_monday, next_wednesday = monday + timedelta(days=7), wednesday + timedelta(days=7)
    assert await e2e.app.run_job("stats_digest", datetime.combine(next_monday, time(10, 0), tzinfo=shanghai)) == (
        "0 communities, 0 messages")
    assert await e2e.app.run_job("stats_digest", datetime.combine(next_wednesday, time(20, 5), tzinfo=shanghai)) == (
        "1 communities, 1 messages")
    await e2e.settle()
    assert (digests(alice, alice_before), digests(bob, bob_before)) == (1, 2)
    community = await e2e.community_by_id(cid)
    assert community.settings["stats_digest"] == {
        str(alice.id): {"enabled": False, "weekday": 1, "time": "09:00"},
        str(bob.id): {"enabled": True, "weekday": 3, "time": "20:00"},
    }
    changes = await e2e.audit(cid, "stats_digest.time")
    assert [(c.actor_id, c.details) for c in changes] == [
        (bob.id, {"entry": str(bob.id), "from": "09:00", "to": "20:00"})]


async def test_an_owner_who_leads_nothing_has_no_digest_to_set(e2e: E2E, group: Group) -> None:
    owner = e2e.owner
    not_yours = en("You are not one of this community's leaders, so no digest is sent to you.")
    await open_digest_settings(e2e, owner)
    assert not_yours in e2e.last(owner)
    assert e2e.last_msg(owner).buttons == [[en("« Back")]]
    forged = DigestOption(community_id=group.community_id, op=DigestOp.OFF).pack()
    assert e2e.answer(await e2e.press_data(owner, forged, message=e2e.last_msg(owner))).text == not_yours
    assert (await e2e.community_by_id(group.community_id)).settings.get("stats_digest") is None
