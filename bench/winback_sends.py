"""Win-back benchmark parts (b) and (c): runs through the real bot and sender, over the emulator
with Telegram's limits on. bench/winback.py runs them after part (a).

(b) A community of `--recipients` drifting members who all started the bot, and an enabled
    win-back (holdout 0 %, so every one of them is messaged) due now. The real bot (`python -m
    bot run`, a process of its own, on PostgreSQL and Redis) starts, and its start-up tick of
    the job plans the run and sends it. The emulator (in this process) notes when each offer
    arrived and every 429. Achieved rate = offers after the first ÷ seconds from the first to
    the last, against Telegram's 30 a second. Then the same with ALLOW_PAID_BROADCAST to
    `--paid-recipients` members, against the 1,000 a second Telegram allows a paid broadcast.
(c) (b) again, the bot SIGKILLed once half of the offers have arrived, and started again. From
    the emulator's log and the database: members messaged twice (target 0) and members of the
    treatment neither sent nor in doubt (target 0); "in doubt" (a send the killed bot had handed
    to Telegram and not recorded; never sent again) is printed beside them.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from orders_race import empty_database, process_cpu
from sqlalchemy import text

from bot.core.db import create_engine, session_factory
from bot.services import campaigns, communities
from models import Arm, CampaignRun, CampaignSend, RunStatus, SendStatus

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "700800913:BENCH-winback-token"
CHAT_ID = -1001300000000
LEADER = 60_000_000
FIRST = 61_000_000
CODE = re.compile(r"WB[A-Z0-9]{8}")
RIGHTS = {"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True, "can_manage_chat": True}
# Targets (issue 13): the run uses what Telegram allows, and never makes it say 429.
RATE_SHARE_TARGET = 0.95
FREE_RATE, PAID_RATE = 30.0, 1000.0

SEED = """
INSERT INTO users (id, first_name, can_dm, marketing_opt_out, erased, created_at, updated_at)
SELECT CAST(:first AS bigint) + i, 'M' || i, true, false, false, :now, :now FROM generate_series(0, :n - 1) AS i;
INSERT INTO members (community_id, user_id, status, is_leader, joined_at, last_active_at, message_count,
                     first_active_on, last_active_on, active_days, invite_depth)
SELECT :community, CAST(:first AS bigint) + i, 'member', false, CAST(:now AS timestamptz) - interval '300 days',
       CAST(:now AS timestamptz) - interval '42 days', 50, CAST(:today AS date) - 200, CAST(:today AS date) - 42, 23, 0
FROM generate_series(0, :n - 1) AS i;
"""


def noon_zone(now: datetime) -> str:
    """A fixed-offset zone where it is about noon now: the default quiet hours are far off."""
    offset = 12 - now.hour
    offset = offset - 24 if offset > 14 else offset
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def _emulator(recipients: int):
    from bot.sandbox import TelegramEmulator

    class OfferLog(TelegramEmulator):
        """Counts offers per member and when they arrived, and every 429; keeps no call log."""

        def __init__(self) -> None:
            super().__init__(TOKEN, "bench_winback_bot", limits=True, record_transcript=False)
            self.offers: Counter[int] = Counter()
            self.first_at: float | None = None
            self.last_at = 0.0
            self.too_many = 0

        def _record(self, name, params, error) -> None:
            self.counters[name] += 1
            if error is not None:
                self.counters["errors"] += 1
                if error.code == 429:
                    self.too_many += 1
            elif name.lower() == "sendmessage" and params is not None:
                chat_id = params.get_int("chat_id")
                if chat_id is not None and chat_id >= FIRST and CODE.search(params.get_str("text") or ""):
                    self.offers[chat_id] += 1
                    now = time.perf_counter()
                    self.first_at = self.first_at if self.first_at is not None else now
                    self.last_at = now
            self.touch()

        @property
        def delivered(self) -> int:
            return sum(self.offers.values())

    emu = OfferLog()
    leader = emu.add_user("Lee", user_id=LEADER)
    leader.started_bot = True
    for n in range(recipients):
        emu.add_user(f"M{n}", user_id=FIRST + n).started_bot = True
    return emu


async def seed(url: str, recipients: int) -> int:
    """The community, its drifting members and an enabled win-back due now; the campaign's id."""
    await empty_database(url)
    now = datetime.now(timezone.utc)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            made = await communities.on_bot_status(s, chat_id=CHAT_ID, title="Bench Street", status="administrator",
                                                   rights=RIGHTS, default_locale="en", default_timezone=noon_zone(now),
                                                   now=now)
            community = made.community
            await s.execute(text("INSERT INTO users (id, first_name, can_dm, marketing_opt_out, erased, created_at, "
                                 "updated_at) VALUES (:id, 'Lee', true, false, false, :now, :now)"),
                            {"id": LEADER, "now": now})
            for statement in SEED.strip().split(";\n"):
                await s.execute(text(statement), {"first": FIRST, "n": recipients, "community": community.id,
                                                  "now": now, "today": now.date()})
            await s.commit()
            campaign = await campaigns.create_winback(s, community=community, owner_id=LEADER, name="Bench", now=now)
            await campaigns.update_config(s, campaign=campaign, changes={"audience": "active", "send_time": "09:00",
                                                                         "holdout_percent": 0},
                                          actor_id=LEADER, now=now)
            await campaigns.set_enabled(s, campaign=campaign, enabled=True, actor_id=LEADER, now=now)
            return campaign.id
    finally:
        await engine.dispose()


def start_bot(url: str, redis_url: str, api_url: str, journal: Path, log: Path, *, paid: bool) -> subprocess.Popen:
    env = {**os.environ, "BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": api_url, "DATABASE_URL": url, "REDIS_URL": redis_url,
           "LOG_LEVEL": "WARNING", "JOURNAL_DIR": str(journal), "ALLOW_PAID_BROADCAST": "true" if paid else "false"}
    with open(log, "a") as out:
        return subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def stop_bot(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def run_state(url: str) -> tuple[list[CampaignSend], CampaignRun | None]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            sends = list((await s.execute(CampaignSend.__table__.select())).all())
            run = (await s.execute(CampaignRun.__table__.select())).first()
            return sends, run
    finally:
        await engine.dispose()


async def until(condition, *, what: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if proc.poll() is not None:
            raise SystemExit(f"the bot exited ({proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        await asyncio.sleep(0.25)


async def one_run(url: str, redis_url: str, *, recipients: int, paid: bool, kill_at: float | None):
    """Seed, start the bot, (kill it once `kill_at` of the offers arrived and start it again,) wait
    for the run to finish. Returns the emulator, the final rows, and the seconds the run took."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    await redis.aclose()
    await seed(url, recipients)
    emu = _emulator(recipients)
    if paid:
        emu.bot_star_balance = recipients / 10 + 10
    api_url = await emu.start()
    work = Path(tempfile.mkdtemp(prefix="bench-winback-"))
    log = work / "bot.log"
    engine = create_engine(url)
    started = time.perf_counter()
    emulator_cpu = time.process_time()
    bot = start_bot(url, redis_url, api_url, work / "journal", log, paid=paid)
    try:
        async def done() -> bool:
            # Only the run's status: reading every row each time took most of this process's CPU
            # (the emulator's), and a starved emulator reads requests in bursts that look like 429s.
            async with engine.connect() as conn:
                status = (await conn.execute(CampaignRun.__table__.select().with_only_columns(
                    CampaignRun.__table__.c.status))).scalar_one_or_none()
            return status == RunStatus.DONE

        if kill_at is not None:
            async def half() -> bool:
                return emu.delivered >= recipients * kill_at

            await until(half, what="half of the offers", timeout=recipients / 10 + 120, proc=bot, log=log)
            bot.kill()
            bot.wait()
            print(f"  SIGKILL after {emu.delivered:,} offers; starting again")
            bot = start_bot(url, redis_url, api_url, work / "journal", log, paid=paid)
        await until(done, what="the end of the run", timeout=recipients / 10 + 300, proc=bot, log=log)
        took = time.perf_counter() - started
        emu.cpu = {"bot": process_cpu(bot.pid), "emulator": time.process_time() - emulator_cpu}
    finally:
        stop_bot(bot)
        await emu.stop()
        await engine.dispose()
    sends, _run = await run_state(url)
    return emu, sends, took


def rate_figures(label: str, emu, allowed: float, recipients: int, figure) -> list:
    span = emu.last_at - (emu.first_at or emu.last_at)
    achieved = (emu.delivered - 1) / span if span > 0 else 0.0
    share = achieved / allowed
    return [
        figure(f"{label}: offers delivered", f"{emu.delivered:,}", f"= {recipients:,}", emu.delivered == recipients),
        figure(f"{label}: CPU per offer", f"bot {emu.cpu['bot'] / recipients * 1000:.2f} ms (start-up included), "
               f"emulator {emu.cpu['emulator'] / recipients * 1000:.2f} ms", "for information"),
        figure(f"{label}: achieved rate", f"{achieved:,.1f}/s over {span:.1f} s", f"of {allowed:,.0f}/s allowed"),
        figure(f"{label}: achieved ÷ allowed", f"{share:.3f}", f">= {RATE_SHARE_TARGET}", share >= RATE_SHARE_TARGET),
        figure(f"{label}: 429 answers", f"{emu.too_many}", "0", emu.too_many == 0),
    ]


async def sending(args, figure) -> list:
    """Part (b): the free run and the paid broadcast."""
    figures = []
    for label, recipients, paid, allowed in (("(b) free", args.recipients, False, FREE_RATE),
                                             ("(b) paid broadcast", args.paid_recipients, True, PAID_RATE)):
        if recipients <= 0:
            continue
        print(f"part {label}: {recipients:,} recipients")
        emu, _sends, took = await one_run(args.sends_database_url, args.redis_url, recipients=recipients, paid=paid,
                                          kill_at=None)
        print(f"  run finished {took:.0f} s after the bot was started")
        figures += rate_figures(label, emu, allowed, recipients, figure)
    return figures


async def kill_and_resume(args, figure) -> list:
    """Part (c): a SIGKILL half-way through the free run, and a restart."""
    recipients = args.recipients
    print(f"part (c): {recipients:,} recipients, SIGKILL half-way")
    emu, sends, _took = await one_run(args.sends_database_url, args.redis_url, recipients=recipients, paid=False,
                                      kill_at=0.5)
    treatment = {row.user_id: row for row in sends if row.arm == Arm.TREATMENT}
    doubles = sum(1 for n in emu.offers.values() if n > 1)
    statuses = Counter(row.status for row in treatment.values())
    in_doubt = [uid for uid, row in treatment.items() if row.status == SendStatus.IN_DOUBT]
    sent_not_there = sum(1 for uid, row in treatment.items() if row.status == SendStatus.SENT and emu.offers[uid] != 1)
    lost = sum(n for status, n in statuses.items() if status not in (SendStatus.SENT, SendStatus.IN_DOUBT)) \
        + sent_not_there + (recipients - len(treatment))
    return [
        figure("(c) members messaged twice", f"{doubles}", "0", doubles == 0),
        figure("(c) members lost (neither sent nor in doubt)", f"{lost}", "0", lost == 0),
        figure("(c) in doubt (in flight at the kill; never sent again)",
               f"{len(in_doubt)} (of which Telegram got {sum(emu.offers[u] for u in in_doubt)})", "for information"),
        figure("(c) offers delivered", f"{emu.delivered:,}", f"{recipients:,} less those in doubt and not delivered",
               emu.delivered == recipients - sum(1 for u in in_doubt if emu.offers[u] == 0)),
    ]
