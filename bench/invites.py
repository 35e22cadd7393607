"""Invites: joins through member links attributed by the real bot, and the qualification job at scale (issue 12).

    .venv/bin/python bench/invites.py [--database-url URL] [--redis-url URL] [--inviters 1000] [--joins 10000]
                                      [--pending 100000]

Part 1, attribution. The real bot (`python -m bot run`, a process of its own) polls the sandbox
Telegram emulator (in this process, Telegram's limits on), on PostgreSQL and Redis. A private
supergroup has `--inviters` members from before the bot came, each of whom has written there; each asks for a link with /invite in
private and is given one (createChatInviteLink). Then `--joins` new people join, each through the
link of an inviter drawn at random: the truth. The emulator queues them all at once, as a viral
post would bring them; the bot's referrals are compared with the truth.

Part 2, qualification. `--pending` invites are written straight into another community (their
invitees joined four days ago, their inviters have inviters of their own, so level 2 is paid too),
and the qualification job (`invite_rewards.qualify_due`, what the `qualify_invites` job runs) is
timed over all of them, every statement counted; then run again, which must change nothing.

Exit status 0 only when every target holds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cost import StatementCount  # noqa: E402
from orders_race import prepare_database, wait_until  # noqa: E402
from sqlalchemy import func, insert, text  # noqa: E402
from sqlmodel import select  # noqa: E402

from bot.core.db import create_engine, session_factory  # noqa: E402
from bot.services import communities, invite_rewards  # noqa: E402
from models import Community, Member, PointsEntry, Referral, User  # noqa: E402

TOKEN = "700800903:BENCH-invites-token"
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_invites"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/4"
INVITE_LINK = re.compile(r"https://t\.me/\+[A-Za-z0-9_-]+")
FIRST_INVITER, FIRST_JOINER = 8_000_000, 9_000_000
# Targets. Joins: a viral post bringing 10,000 people is handled within about three minutes.
JOINS_PER_SECOND_TARGET = 50.0
# Qualification: a nightly run over 100,000 pending invites finishes within a minute, in a few
# statements per thousand invites (set-based, not a statement per invite).
QUALIFY_SECONDS_TARGET = 60.0
QUALIFY_STATEMENTS_PER_1000_TARGET = 10.0


def line(label: str, value: str, target: str, ok: bool | None) -> str:
    verdict = "" if ok is None else ("PASS" if ok else "FAIL")
    return f"  {label:<34} {value:<22} {target:<26} {verdict}"


# ----- part 1: attribution through the real bot ---------------------------------------------------

async def attribution(args: argparse.Namespace, sessions) -> list[str]:
    from redis.asyncio import Redis

    from bot.sandbox import TelegramEmulator
    from bot.sandbox.state import ChatMemberState

    redis = Redis.from_url(args.redis_url)
    await redis.flushdb()
    await redis.aclose()
    emu = TelegramEmulator(TOKEN, "bench_invites_bot", limits=True, record_transcript=False)
    api_url = await emu.start()
    log_path = Path(tempfile.mkdtemp(prefix="bench-invites-")) / "bot.log"
    env = {**os.environ, "BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": api_url, "DATABASE_URL": args.database_url,
           "REDIS_URL": args.redis_url, "LOG_LEVEL": "WARNING"}
    with open(log_path, "w") as log:
        bot = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    print(f"part 1: {args.inviters:,} inviters, {args.joins:,} joins; bot log {log_path}")
    try:
        await wait_until(emu, lambda: "chat_member" in emu.updates.allowed or bot.poll() is not None,
                         what="the bot's first getUpdates", timeout=60)
        if bot.poll() is not None:
            raise SystemExit(f"the bot exited with {bot.returncode}; see {log_path}")
        leader = emu.add_user("Lin", username="lin_leads")
        group = emu.create_group("Invite Valley", leader)
        inviters = [emu.add_user(f"Inviter{i}", language_code="en", user_id=FIRST_INVITER + i)
                    for i in range(args.inviters)]
        for person in inviters:  # in the group before the bot came
            group.members[person.id] = ChatMemberState("member")
        emu.add_bot_to_group(group, by=leader, admin=True)

        async def community_id() -> int | None:
            async with sessions() as s:
                return (await s.exec(select(Community.id).where(Community.chat_id == group.id))).first()

        started = time.perf_counter()
        while await community_id() is None:
            if time.perf_counter() - started > 30:
                raise SystemExit("the bot never registered the group")
            await asyncio.sleep(0.1)
        cid = await community_id()
        # Inviters are members the bot knows: each has written in the group.
        emu.send_many((person, group, "hello") for person in inviters)
        started = time.perf_counter()
        while True:
            async with sessions() as s:
                known = (await s.exec(select(func.count()).select_from(Member).where(
                    Member.community_id == cid, Member.user_id >= FIRST_INVITER,
                    Member.user_id < FIRST_JOINER))).one()
            if known >= len(inviters):
                break
            if time.perf_counter() - started > 60:
                raise SystemExit("the inviters' messages were not recorded within 60 s")
            await asyncio.sleep(0.25)

        def link_of(person) -> str | None:
            for message in reversed(emu.bot_messages(person)):
                found = INVITE_LINK.search(message.visible)
                if found:
                    return found.group(0)
            return None

        for person in inviters:
            emu.send(person, None, "/invite")
        await wait_until(emu, lambda: all(link_of(p) for p in inviters), what="every inviter's link", timeout=300)
        links = {person.id: link_of(person) for person in inviters}

        rng = random.Random(20261206)
        truth: dict[int, int] = {}
        joiners = [emu.add_user(f"Friend{i}", language_code="en", user_id=FIRST_JOINER + i) for i in range(args.joins)]

        async def attributed() -> int:
            async with sessions() as s:
                return (await s.exec(select(func.count()).select_from(Referral)
                                     .where(Referral.community_id == cid))).one()

        joined_at = time.perf_counter()
        for person in joiners:
            inviter = rng.choice(inviters)
            truth[person.id] = inviter.id
            emu.join(group, person, invite_link=links[inviter.id])
        queued = time.perf_counter() - joined_at
        while (done := await attributed()) < args.joins:
            if time.perf_counter() - joined_at > args.timeout:
                break
            await asyncio.sleep(0.25)
        seconds = time.perf_counter() - joined_at
        async with sessions() as s:
            rows = list(await s.exec(select(Referral.invitee_id, Referral.inviter_id, Referral.via, Referral.state)
                                     .where(Referral.community_id == cid)))
        wrong = sum(1 for invitee, inviter, _, _ in rows if truth.get(invitee) != inviter)
        missing = args.joins - len(rows)
        states: dict[str, int] = {}
        for *_, state in rows:
            states[state] = states.get(state, 0) + 1
        rate = done / seconds
        print(f"  joins queued in {queued:.1f} s; states {states}")
        return [
            line("joins attributed", f"{len(rows):,} of {args.joins:,}", "all", missing == 0),
            line("attributed to the wrong inviter", f"{wrong:,}", "0", wrong == 0),
            line("joins handled per second", f"{rate:.0f}/s ({seconds:.1f} s)", f"≥ {JOINS_PER_SECOND_TARGET:g}/s",
                 rate >= JOINS_PER_SECOND_TARGET),
        ]
    finally:
        if bot.poll() is None:
            bot.send_signal(signal.SIGINT)
            try:
                bot.wait(timeout=20)
            except subprocess.TimeoutExpired:
                bot.kill()
                bot.wait()
        await emu.stop()


# ----- part 2: the qualification job over many pending invites -----------------------------------

async def qualification(args: argparse.Namespace, engine, sessions) -> list[str]:
    now = datetime.now(timezone.utc)
    joined = now - timedelta(days=4)
    first = 20_000_000
    async with sessions() as s:
        made = await communities.on_bot_status(
            s, chat_id=-987_654_321, title="Qualify Valley", status="administrator",
            rights={"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True},
            default_locale="en", default_timezone="UTC", now=joined)
        community = made.community
        community.settings = {**community.settings, "invites": {"level2": {"points": 5}}}
        cid = community.id
        await s.commit()
    # A root of 1,000 inviters nobody invited, each with a chain under it: every pending invitee's
    # inviter is an earlier invitee (or a root), so most invites pay level 1 and level 2.
    roots, pending = 1_000, args.pending
    people = roots + pending
    users = [{"id": first + i, "first_name": f"P{i}", "created_at": joined, "updated_at": joined, "can_dm": False,
              "marketing_opt_out": False, "erased": False} for i in range(people)]
    rng = random.Random(7)
    inviter_of = {first + roots + i: first + rng.randrange(roots + i) for i in range(pending)}
    members = [{"community_id": cid, "user_id": first + i, "status": "member", "is_leader": False,
                "joined_at": joined, "message_count": 1, "last_active_at": now, "invite_depth": 0,
                "invited_by": inviter_of.get(first + i)} for i in range(people)]
    referrals = [{"community_id": cid, "invitee_id": invitee, "inviter_id": inviter, "via": "member_link",
                  "depth": 1, "state": "pending", "flags": [], "joined_at": joined}
                 for invitee, inviter in inviter_of.items()]
    load_started = time.perf_counter()
    async with engine.begin() as conn:
        for table, rows in ((User.__table__, users), (Member.__table__, members), (Referral.__table__, referrals)):
            for start in range(0, len(rows), 5_000):
                await conn.execute(insert(table), rows[start:start + 5_000])
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execute(text("COMMIT"))
            await conn.execute(text("ANALYZE referrals"))
    print(f"part 2: {pending:,} pending invites loaded in {time.perf_counter() - load_started:.1f} s")

    count = StatementCount(engine)
    started, cpu = time.perf_counter(), time.process_time()
    async with sessions() as s:
        report = await invite_rewards.qualify_due(s, as_of=now, batch=1_000)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    statements = sum(count.by_task.values())
    count.by_task.clear()
    async with sessions() as s:
        again = await invite_rewards.qualify_due(s, as_of=now + timedelta(minutes=1), batch=1_000)
        entries = (await s.exec(select(func.count()).select_from(PointsEntry)
                                .where(PointsEntry.community_id == cid, PointsEntry.reason == "invite"))).one()
        left_pending = (await s.exec(select(func.count()).select_from(Referral)
                                     .where(Referral.community_id == cid, Referral.state == "pending"))).one()
    count.close()
    per_1000 = statements * 1000 / pending
    level2 = sum(1 for invitee, inviter in inviter_of.items() if inviter >= first + roots)
    expected_entries = pending + level2
    print(f"  {report.rewarded:,} rewarded in {report.batches} batches, {report.points:,} points; "
          f"CPU of this process {cpu:.1f} s")
    return [
        line("pending invites qualified", f"{report.qualified:,}", f"= {pending:,}", report.qualified == pending),
        line("ledger entries (level 1 + level 2)", f"{entries:,}", f"= {expected_entries:,}",
             entries == expected_entries),
        line("left pending", f"{left_pending:,}", "0", left_pending == 0),
        line("a second run", f"{again.qualified} qualified", "0", again.qualified == 0 and again.rewarded == 0),
        line("time for all", f"{seconds:.1f} s", f"≤ {QUALIFY_SECONDS_TARGET:g} s", seconds <= QUALIFY_SECONDS_TARGET),
        line("statements per 1,000 invites", f"{per_1000:.1f} ({statements:,} in all)",
             f"≤ {QUALIFY_STATEMENTS_PER_1000_TARGET:g}", per_1000 <= QUALIFY_STATEMENTS_PER_1000_TARGET),
    ]


async def main(args: argparse.Namespace) -> int:
    described = await prepare_database(args.database_url)
    print(f"bench/invites.py — database: {described} at {args.database_url}; redis {args.redis_url}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    engine = create_engine(args.database_url)
    sessions = session_factory(engine)
    try:
        checks = [] if args.skip_attribution else await attribution(args, sessions)
        checks += await qualification(args, engine, sessions)
    finally:
        await engine.dispose()
    print("\n".join(checks))
    ok = all(check.endswith("PASS") for check in checks)
    print(f"machine: load average {os.getloadavg()[0]:.2f} at end")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--inviters", type=int, default=1_000)
    parser.add_argument("--joins", type=int, default=10_000)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=600.0, help="give up waiting for the joins after this long")
    parser.add_argument("--skip-attribution", action="store_true", help="part 2 only")
    sys.exit(asyncio.run(main(parser.parse_args())))
