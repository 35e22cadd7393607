"""A win-back run killed half-way (SIGKILL) is finished by the next start: nobody messaged twice,
nobody left out.

The bot (`python -m bot run`, a process of its own) starts with a campaign due, so its start-up
tick of the job plans the run and sends (30 a second, the emulator's limit). Once a third of the
offers have reached the emulator the process is killed. The next start finds the run held by a
worker that is gone and reads that worker's attempt journal: answers it had not yet written are
recorded, what Telegram never saw is put back, what it may have seen (in flight at the kill) is in
doubt; then it sends the rest. The emulator's log and the database
are compared: every member of the treatment got exactly one offer, except those in doubt, who
got at most one; the holdout got none.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert, select
from test_cli import START, TOKEN, bot_env, emu, eventually, processes, sqlite_url  # noqa: F401  (fixtures)

from bot.core.db import create_engine, session_factory
from bot.core.migrate import upgrade_async
from bot.services import campaigns, communities
from models import Arm, CampaignSend, Member, RunStatus, SendStatus, User
from models.campaign import CampaignRun

MEMBERS = 60
CODE = re.compile(r"\bWB[A-Z0-9]{8}\b")
RIGHTS = {"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True, "can_manage_chat": True}


def noon_zone(now: datetime) -> str:
    """A fixed-offset zone where it is about noon now: the default quiet hours (21:00–09:00) are
    far off, and a 09:00 run time has passed."""
    offset = 12 - now.hour
    offset = offset - 24 if offset > 14 else offset
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


async def seed(url: str, group, leader, people) -> int:
    """The community, its drifting members (started the bot, silent six weeks after a weekly
    rhythm) and an enabled win-back due now; the campaign's id."""
    now = datetime.now(timezone.utc)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            made = await communities.on_bot_status(s, chat_id=group.id, title=group.title, status="administrator",
                                                   rights=RIGHTS, default_locale="en", default_timezone=noon_zone(now),
                                                   now=now)
            community = made.community
            await s.execute(insert(User.__table__), [
                {"id": u.id, "first_name": u.first_name, "can_dm": True} for u in [leader, *people]])
            today = now.date()
            await s.execute(insert(Member.__table__), [
                {"community_id": community.id, "user_id": u.id, "status": "member", "joined_at": now - timedelta(days=300),
                 "first_active_on": today - timedelta(days=200), "last_active_on": today - timedelta(days=42),
                 "active_days": 23, "last_active_at": now - timedelta(days=42)} for u in people])
            await s.commit()
            campaign = await campaigns.create_winback(s, community=community, owner_id=leader.id, name="Kill test",
                                                      now=now)
            await campaigns.update_config(s, campaign=campaign, changes={"audience": "active", "send_time": "09:00",
                                                                         "holdout_percent": 10},
                                          actor_id=leader.id, now=now)
            await campaigns.set_enabled(s, campaign=campaign, enabled=True, actor_id=leader.id, now=now)
            return campaign.id
    finally:
        await engine.dispose()


async def rows(url: str) -> tuple[list[CampaignSend], list[CampaignRun]]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            return (list((await s.execute(select(CampaignSend))).scalars()),
                    list((await s.execute(select(CampaignRun))).scalars()))
    finally:
        await engine.dispose()


async def test_a_run_killed_half_way_is_finished_after_restart_without_doubles_or_gaps(emu, processes,  # noqa: F811
                                                                                       redis_url, tmp_path: Path):
    db = tmp_path / "winback.db"
    url = sqlite_url(db)
    env = bot_env(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=emu.url, DATABASE_URL=url, REDIS_URL=redis_url,
                  LOG_LEVEL="WARNING", JOURNAL_DIR=tmp_path / "journal",
                  # With Redis the run is taken over once the killed worker's heartbeat lapses (10 s):
                  # looked for every second rather than every 15.
                  CAMPAIGN_WATCH_SECONDS=1)
    await upgrade_async(url)
    leader = emu.add_user("Lee")
    group = emu.create_group("Quiet Street", leader)
    people = [emu.add_user(f"Member {n}") for n in range(MEMBERS)]
    for person in [leader, *people]:
        person.started_bot = True
    await seed(url, group, leader, people)

    def offers() -> Counter[int]:
        return Counter(int(c.params["chat_id"]) for c in emu.requests
                       if c.method == "sendMessage" and c.ok and CODE.search(c.params.get("text", "")))

    first = await processes(env, tmp_path, "first")
    await first.until(eventually(lambda: sum(offers().values()) >= MEMBERS // 3, START, "a third of the offers"),
                      START, "the run to get going")
    await first.kill()
    at_kill = sum(offers().values())
    assert at_kill < MEMBERS * 0.85, "the run had nearly finished before the kill: the test proves nothing"

    second = await processes(env, tmp_path, "second")

    async def finished() -> bool:
        _sends, runs = await rows(url)
        return bool(runs) and runs[0].status == RunStatus.DONE

    deadline = asyncio.get_running_loop().time() + START
    while not await finished():
        assert asyncio.get_running_loop().time() < deadline, second.stderr[-3000:]
        assert second.proc.returncode is None, second.stderr[-3000:]
        await asyncio.sleep(0.2)
    assert await second.stop() == 0, second.stderr[-3000:]

    sends, (run,) = await rows(url)
    got = offers()
    treatment = {s.user_id: s for s in sends if s.arm == Arm.TREATMENT}
    holdout = {s.user_id for s in sends if s.arm == Arm.HOLDOUT}
    assert len(treatment) + len(holdout) == MEMBERS and holdout
    assert not holdout & set(got), "a held-out member was messaged"
    doubles = [uid for uid, n in got.items() if n > 1]
    assert doubles == [], f"messaged twice: {doubles}"
    statuses = Counter(s.status for s in treatment.values())
    assert set(statuses) <= {SendStatus.SENT, SendStatus.IN_DOUBT}, statuses
    # Sent means Telegram has it; in doubt means the killed worker had handed it over: at most once.
    assert all(got[uid] == 1 for uid, s in treatment.items() if s.status == SendStatus.SENT)
    assert statuses[SendStatus.IN_DOUBT] <= 8, statuses  # the sender's workers: what was in flight
    assert "taken over" in second.stderr, second.stderr[-3000:]
