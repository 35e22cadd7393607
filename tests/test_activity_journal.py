"""The activity journal (bot/services/activity_journal.py) on a real database: sightings a tracker
held when its process was killed are counted once by the next, an erasure stays erased, and of
processes racing for a dead one's journal exactly one takes it.

A kill is played by closing the dead tracker's journal without flushing: that is all the kernel
does to a SIGKILLed process's files (tests/test_activity_kill.py kills a real bot).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiogram.types import CallbackQuery, Message
from sqlalchemy import select, text

from bot.core.config import ROOT, load_settings
from bot.core.db import session_factory
from bot.services import users
from bot.services.activity import ActivityFlusher, ActivityTracker, Sighting
from bot.services.activity_journal import ActivityJournal
from bot.services.users import Profile
from bot.telegram.chatter import ChatterLane, RawChatter
from bot.telegram.dedup import MemoryLedger
from bot.telegram.middlewares.activity import ActivityMiddleware
from bot.telegram.middlewares.dedup import DedupMiddleware
from bot.telegram.middlewares.errors import ErrorsMiddleware
from models import Community, Member

CHAT = -100_200
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def tracker_for(root: Path, owner: str) -> tuple[ActivityTracker, ActivityJournal]:
    journal = ActivityJournal(root, owner)
    return ActivityTracker(default_locale="en", default_timezone="UTC", journal=journal), journal


def profile(uid: int) -> Profile:
    return Profile(id=uid, first_name=f"User {uid}", username=f"u{uid}", language_code="en")


def chatter(uid: int, messages: int, *, start: datetime = T0) -> list[Sighting]:
    return [Sighting(CHAT, "Group", profile(uid), start + timedelta(seconds=n)) for n in range(messages)]


async def counts(engine) -> dict[int, tuple[int, datetime]]:
    """user id → (message_count, last_active_at) in the group."""
    async with session_factory(engine)() as session:
        rows = (await session.execute(
            select(Member.user_id, Member.message_count, Member.last_active_at)
            .join(Community, Community.id == Member.community_id).where(Community.chat_id == CHAT))).all()
    return {uid: (count, last) for uid, count, last in rows}


async def flush(tracker: ActivityTracker, engine) -> int:
    async with session_factory(engine)() as session:
        return await tracker.flush(session)


def entries(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


async def test_a_killed_trackers_sightings_are_counted_once_by_the_next(engine, tmp_path):
    root = tmp_path / "journal"
    dead, dead_journal = tracker_for(root, "dead")
    for uid in range(1, 6):
        dead.record_many(chatter(uid, 3))
    await flush(dead, engine)
    for uid in range(1, 6):
        dead.record_many(chatter(uid, 2, start=T0 + timedelta(minutes=1)))
    # A button pressed in the group: the presser is there, without a message.
    dead.record(chat_id=CHAT, chat_title="Group", profile=profile(6), at=T0 + timedelta(minutes=2), messages=0)
    dead_journal.close()
    assert {uid: n for uid, (n, _) in (await counts(engine)).items()} == {uid: 3 for uid in range(1, 6)}

    alive, alive_journal = tracker_for(root, "alive")
    assert await ActivityFlusher(alive, session_factory(engine), 600).recover() == 11

    got = await counts(engine)
    assert {uid: n for uid, (n, _) in got.items()} == {**{uid: 5 for uid in range(1, 6)}, 6: 0}
    assert got[1][1] == T0 + timedelta(minutes=1, seconds=1)
    assert got[6][1] == T0 + timedelta(minutes=2)
    assert entries(root) == ["alive"], "the dead journal was taken over"
    assert entries(root / "alive") == ["lock"], "what the flush committed left the journal"
    assert await alive.adopt_dead() == 0
    alive_journal.close()
    assert entries(root) == [], "a journal with nothing left in it goes at close"


async def test_a_failed_flush_keeps_its_segments_until_one_commits(engine, tmp_path, monkeypatch):
    root = tmp_path / "journal"
    tracker, journal = tracker_for(root, "one")
    tracker.record_many(chatter(1, 4))

    async def failing(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(tracker, "_write", failing)
    with pytest.raises(RuntimeError):
        await flush(tracker, engine)
    assert entries(root / "one") == ["00000001.seg", "lock"]
    tracker.record_many(chatter(2, 1))
    with pytest.raises(RuntimeError):
        await flush(tracker, engine)
    assert entries(root / "one") == ["00000001.seg", "00000002.seg", "lock"]

    monkeypatch.undo()
    assert await flush(tracker, engine) == 2
    assert entries(root / "one") == ["lock"]
    assert {uid: n for uid, (n, _) in (await counts(engine)).items()} == {1: 4, 2: 1}
    journal.close()


async def test_killed_after_a_failed_flush_the_next_counts_it_all(engine, tmp_path, monkeypatch):
    root = tmp_path / "journal"
    dead, dead_journal = tracker_for(root, "dead")
    dead.record_many(chatter(1, 4))

    async def failing(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(dead, "_write", failing)
    with pytest.raises(RuntimeError):
        await flush(dead, engine)
    dead.record_many(chatter(1, 2, start=T0 + timedelta(minutes=5)))
    dead_journal.close()

    alive, alive_journal = tracker_for(root, "alive")
    assert await alive.adopt_dead() == 6
    await flush(alive, engine)
    assert (await counts(engine))[1] == (6, T0 + timedelta(minutes=5, seconds=1))
    alive_journal.close()


def test_of_two_processes_racing_for_a_dead_journal_one_takes_it(tmp_path):
    """Each round, two journals (threads: flock and rename behave as between processes) go for the
    same dead one at the same moment; a live one is never taken."""
    root = tmp_path / "journal"
    live_tracker, live = tracker_for(root, "live")
    live_tracker.record_many(chatter(999, 1))
    first, second = ActivityJournal(root, "first"), ActivityJournal(root, "second")
    taken: dict[str, list[list]] = {}
    for n in range(30):
        dying, journal = tracker_for(root, f"dead-{n:02d}")
        dying.record_many(chatter(n, n + 1))
        journal.close()
        start = threading.Barrier(2)

        def adopt(journal: ActivityJournal) -> None:
            start.wait()
            taken[journal.owner] = journal.adopt_dead()

        threads = [threading.Thread(target=adopt, args=(j,)) for j in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [owner for owner, rows in taken.items() if rows]
        assert len(winners) == 1, f"round {n}: {taken}"
        assert [row[2] for row in taken[winners[0]]] == [n] * (n + 1)
    assert sorted(entries(root)) == ["first", "live", "second"]
    assert entries(root / "live") == ["00000001.seg", "lock"]
    for journal in (first, second, live):
        journal.close()


async def test_two_trackers_sweeping_after_a_kill_count_it_once(engine, tmp_path):
    root = tmp_path / "journal"
    dead, dead_journal = tracker_for(root, "dead")
    for uid in (1, 2):
        dead.record_many(chatter(uid, 3))
    dead_journal.close()
    first, first_journal = tracker_for(root, "first")
    second, second_journal = tracker_for(root, "second")
    adopted = [await first.adopt_dead(), await second.adopt_dead()]
    assert sorted(adopted) == [0, 6]
    await flush(first, engine)
    await flush(second, engine)
    assert {uid: n for uid, (n, _) in (await counts(engine)).items()} == {1: 3, 2: 3}
    first_journal.close()
    second_journal.close()


async def test_an_erasure_stays_erased_after_a_kill(engine, tmp_path):
    root = tmp_path / "journal"
    dead, dead_journal = tracker_for(root, "dead")
    for uid in (1, 2, 3):
        dead.record_many(chatter(uid, 2))
    await flush(dead, engine)
    for uid in (1, 2, 3):
        dead.record_many(chatter(uid, 2, start=T0 + timedelta(minutes=1)))
    # /forgetme by 1 and 3, as handlers/member/privacy.py does it; 3 then writes in the group again.
    async with session_factory(engine)() as session:
        for uid in (1, 3):
            await dead.forget_user(uid)
            await users.forget(session, user_id=uid, now=T0 + timedelta(minutes=2))
    dead.record_many(chatter(3, 1, start=T0 + timedelta(minutes=3)))
    dead_journal.close()

    alive, alive_journal = tracker_for(root, "alive")
    assert await alive.adopt_dead() == 3
    await flush(alive, engine)
    assert {uid: n for uid, (n, _) in (await counts(engine)).items()} == {2: 4, 3: 1}
    async with engine.connect() as conn:
        erased = dict((await conn.execute(text("SELECT id, erased FROM users WHERE first_name = ''"))).all())
    assert erased == {1: True}
    alive_journal.close()


async def test_an_erasure_replayed_in_a_later_process_still_holds(engine, tmp_path):
    """Killed twice: the erasure travels with the journal it cancels sightings in."""
    root = tmp_path / "journal"
    first, first_journal = tracker_for(root, "first")
    first.record_many(chatter(1, 2) + chatter(2, 2))
    await first.forget_user(1)
    first_journal.close()
    second, second_journal = tracker_for(root, "second")
    assert await second.adopt_dead() == 2
    second.record_many(chatter(2, 1, start=T0 + timedelta(minutes=1)))
    second_journal.close()

    third, third_journal = tracker_for(root, "third")
    assert await third.adopt_dead() == 3
    await flush(third, engine)
    assert {uid: n for uid, (n, _) in (await counts(engine)).items()} == {2: 3}
    third_journal.close()


async def test_routed_sightings_are_journaled_before_the_handler_runs(engine, tmp_path):
    root = tmp_path / "journal"
    dead, dead_journal = tracker_for(root, "dead")
    activity = ActivityMiddleware(dead)
    chat = {"id": CHAT, "type": "supergroup", "title": "Group"}
    command = Message.model_validate({"message_id": 1, "date": int(T0.timestamp()), "chat": chat,
                                      "from": {"id": 1, "is_bot": False, "first_name": "Ann"}, "text": "/buy 3"})
    press = CallbackQuery.model_validate({"id": "q1", "chat_instance": "c", "data": "x", "message": {
        "message_id": 2, "date": int(T0.timestamp()), "chat": chat, "text": "card",
        "from": {"id": 42, "is_bot": True, "first_name": "Bot"}}, "from": {"id": 2, "is_bot": False, "first_name": "Ben"}})
    handled = []

    async def handler(event, data):
        on_disk = b"".join(p.read_bytes() for p in (root / "dead").glob("*.seg"))
        handled.append(f'"{event.from_user.first_name}"'.encode() in on_disk)

    await activity(handler, command, {})
    await activity(handler, press, {})
    assert handled == [True, True], "each sighting was on disk when its handler ran"
    dead_journal.close()

    alive, alive_journal = tracker_for(root, "alive")
    assert await alive.adopt_dead() == 2
    await flush(alive, engine)
    got = await counts(engine)
    assert {uid: n for uid, (n, _) in got.items()} == {1: 1, 2: 0}
    assert got[1][1] == T0
    alive_journal.close()


def raw_chatter(update_id: int, uid: int) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(T0.timestamp()), "text": "hello",
        "chat": {"id": CHAT, "type": "supergroup", "title": "Group"},
        "from": {"id": uid, "is_bot": False, "first_name": f"User {uid}"}}}


async def test_the_chatter_lane_journals_a_batch_in_one_line(engine, tmp_path):
    root = tmp_path / "journal"
    tracker, journal = tracker_for(root, "lane")
    lane = ChatterLane(dedup=DedupMiddleware(MemoryLedger()), errors=ErrorsMiddleware("en"),
                       activity=ActivityMiddleware(tracker), tasks=set())
    batch = [RawChatter(raw_chatter(1000 + n, 1 + n % 7)) for n in range(50)]
    await lane.handle(batch)
    await lane.handle(batch)  # delivered again: nothing new to journal
    [segment] = (root / "lane").glob("*.seg")
    lines = segment.read_bytes().splitlines()
    assert len(lines) == 1 and lines[0].count(b"[") == 51
    journal.close()

    alive, alive_journal = tracker_for(root, "alive")
    assert await alive.adopt_dead() == 50
    await flush(alive, engine)
    assert sum(n for n, _ in (await counts(engine)).values()) == 50
    alive_journal.close()


def test_a_line_cut_short_by_the_kill_is_skipped(tmp_path):
    root = tmp_path / "journal"
    dying, journal = tracker_for(root, "dead")
    dying.record_many(chatter(1, 2))
    dying.record_many(chatter(2, 2))
    journal.close()
    [segment] = (root / "dead").glob("*.seg")
    segment.write_bytes(segment.read_bytes()[:-20])  # the last write was not finished
    assert [row[2] for row in ActivityJournal(root, "alive").adopt_dead()] == [1, 1]


def test_one_journal_directory_per_database(tmp_path):
    def where(url: str, **extra) -> Path | None:
        return load_settings(DATABASE_URL=url, **extra).journal_dir()

    assert where(f"sqlite+aiosqlite:///{tmp_path}/bot.db") == tmp_path / "bot.db.journal"
    assert where("sqlite+aiosqlite://") is None
    assert where("sqlite+aiosqlite:///:memory:") is None
    assert where("postgresql+asyncpg://bot:pw@db.example:6543/shop") == ROOT / "data" / "journal" / "db.example-6543-shop"
    assert where("postgresql+asyncpg://bot@localhost/shop") == ROOT / "data" / "journal" / "localhost-5432-shop"
    assert where("sqlite+aiosqlite://", JOURNAL_DIR=str(tmp_path / "j")) == tmp_path / "j"
