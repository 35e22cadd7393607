"""bot.services.activity: buffered sightings written in batches, on a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import select

from bot.core.db import WriteCounter
from bot.services import members, users
from bot.services.activity import ActivityFlusher, ActivityTracker
from bot.services.users import Profile
from models import Community, Member, MemberStatus, User

CHAT = -100


@pytest.fixture
def tracker() -> ActivityTracker:
    return ActivityTracker(default_locale="zh_Hans", default_timezone="Asia/Shanghai")


@pytest.fixture
def statements(engine) -> list[str]:
    """Every write statement the engine runs from now on."""
    seen: list[str] = []

    def on_execute(_conn, _cursor, statement, *_args):
        if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            seen.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    yield seen
    event.remove(engine.sync_engine, "before_cursor_execute", on_execute)


def profile(uid: int, **changes) -> Profile:
    fields = {"first_name": f"User {uid}", "last_name": None, "username": f"u{uid}", "language_code": "en"} | changes
    return Profile(id=uid, **fields)


async def member_rows(fresh, community_id: int | None = None) -> dict[int, Member]:
    async with fresh() as s:
        query = select(Member)
        if community_id is not None:
            query = query.where(Member.community_id == community_id)
        return {m.user_id: m for m in await s.exec(query)}


async def test_many_sightings_flush_in_a_few_statements(session, engine, fresh, count, tracker, add_community, t0):
    community = await add_community(CHAT)
    for i in range(2000):
        uid = 1 + i % 500
        tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(uid), at=t0 + timedelta(seconds=i))
    assert tracker.pending == 500

    writes = WriteCounter(engine)
    assert await tracker.flush(session) == 500

    assert writes.count <= 6
    assert tracker.pending == 0
    assert await count(User) == 500
    rows = await member_rows(fresh, community.id)
    assert len(rows) == 500
    assert {m.message_count for m in rows.values()} == {4}
    assert {m.status for m in rows.values()} == {MemberStatus.MEMBER}
    # User n was seen at seconds n-1, n+499, n+999 and n+1499.
    assert rows[1].joined_at == t0 and rows[1].last_active_at == t0 + timedelta(seconds=1500)
    assert rows[500].joined_at == t0 + timedelta(seconds=499)
    assert rows[500].last_active_at == t0 + timedelta(seconds=1999)
    async with fresh() as s:
        user = await s.get(User, 42)
    assert (user.first_name, user.username, user.language_code, user.erased) == ("User 42", "u42", "en", False)


async def test_message_count_accumulates_and_last_active_keeps_the_max(session, fresh, tracker, add_community, t0):
    community = await add_community(CHAT)
    for minute in (10, 11, 12):
        tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0 + timedelta(minutes=minute))
    await tracker.flush(session)

    # A late delivery from before the last flush's newest sighting.
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0 + timedelta(minutes=5))
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0 + timedelta(minutes=6))
    await tracker.flush(session)

    row = (await member_rows(fresh, community.id))[1]
    assert row.message_count == 5
    assert row.last_active_at == t0 + timedelta(minutes=12)
    assert row.joined_at == t0 + timedelta(minutes=10), "the first flush's insert set joined_at"

    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0 + timedelta(hours=1))
    await tracker.flush(session)
    row = (await member_rows(fresh, community.id))[1]
    assert (row.message_count, row.last_active_at) == (6, t0 + timedelta(hours=1))


async def test_out_of_order_sightings_keep_the_earliest_as_first_seen(session, fresh, tracker, add_community, t0):
    community = await add_community(CHAT)
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0 + timedelta(minutes=5))
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0)
    await tracker.flush(session)

    row = (await member_rows(fresh, community.id))[1]
    assert (row.joined_at, row.last_active_at, row.message_count) == (t0, t0 + timedelta(minutes=5), 2)


async def test_a_member_who_left_and_speaks_again_is_a_member_again(session, fresh, tracker, add_community, t0):
    community = await add_community(CHAT)
    for uid in (1, 2):
        await members.on_member_status(session, community=community, profile=profile(uid), old_status="left",
                                       new_status="member", now=t0)
        await members.on_member_status(session, community=community, profile=profile(uid), old_status="member",
                                       new_status="left", now=t0 + timedelta(hours=1))

    # User 1 is seen after leaving (re-joined without a chat_member update reaching us);
    # user 2's message was written before they left and arrives late.
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0 + timedelta(hours=2))
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(2), at=t0 + timedelta(minutes=30))
    await tracker.flush(session)

    rows = await member_rows(fresh, community.id)
    assert (rows[1].status, rows[1].left_at, rows[1].last_active_at) == (MemberStatus.MEMBER, None, t0 + timedelta(hours=2))
    assert (rows[2].status, rows[2].left_at) == (MemberStatus.LEFT, t0 + timedelta(hours=1))
    assert rows[2].message_count == 1


async def test_unknown_chat_gets_a_community(session, fresh, count, tracker, t0):
    tracker.record(chat_id=-777, chat_title="Fresh group", profile=profile(1), at=t0 + timedelta(minutes=1))
    tracker.record(chat_id=-777, chat_title="Fresh group", profile=profile(2), at=t0)
    await tracker.flush(session)

    async with fresh() as s:
        community = (await s.exec(select(Community).where(Community.chat_id == -777))).one()
    assert (community.title, community.active, community.default_locale, community.timezone) == (
        "Fresh group", True, "zh_Hans", "Asia/Shanghai")
    assert community.created_at == t0
    assert set(await member_rows(fresh, community.id)) == {1, 2}

    # The id is cached: the next flush neither looks it up again nor creates a second one.
    tracker.record(chat_id=-777, chat_title="Fresh group", profile=profile(3), at=t0 + timedelta(minutes=2))
    await tracker.flush(session)
    assert await count(Community) == 1
    assert set(await member_rows(fresh, community.id)) == {1, 2, 3}


async def test_unchanged_profiles_are_not_written_again(session, fresh, tracker, statements, add_community, t0):
    await add_community(CHAT)
    for uid in (1, 2, 3):
        tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(uid), at=t0)
    await tracker.flush(session)

    statements.clear()
    for uid in (1, 2, 3):
        tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(uid), at=t0 + timedelta(minutes=1))
    await tracker.flush(session)
    # The members' statement, the days' (models.ActivityDay) and the community's hours', no users'.
    assert [st.split("(")[0] for st in statements] == ["INSERT INTO members ", "INSERT INTO activity_days ",
                                                      "INSERT INTO community_hours "]

    # A changed profile is written (and only then).
    statements.clear()
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(2, username="renamed"), at=t0 + timedelta(minutes=2))
    await tracker.flush(session)
    assert sum(s.startswith("INSERT INTO users") for s in statements) == 1
    async with fresh() as s:
        assert (await s.get(User, 2)).username == "renamed"
        assert (await s.get(User, 1)).username == "u1"


async def test_forget_user_drops_buffered_sightings(session, fresh, count, tracker, add_community, t0):
    community = await add_community(CHAT)
    await add_community(-200)
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0)
    tracker.record(chat_id=-200, chat_title="Other", profile=profile(1), at=t0)
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(2), at=t0)

    await tracker.forget_user(1)
    assert tracker.pending == 1
    await tracker.flush(session)

    assert await count(User, User.id == 1) == 0
    assert await count(Member, Member.user_id == 1) == 0
    assert set(await member_rows(fresh, community.id)) == {2}


async def test_forget_user_after_a_flush_writes_the_profile_again_when_seen(session, fresh, tracker, add_community, t0):
    await add_community(CHAT)
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0)
    await tracker.flush(session)
    await tracker.forget_user(1)
    await users.forget(session, user_id=1, now=t0 + timedelta(minutes=1))

    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0 + timedelta(minutes=2))
    await tracker.flush(session)

    async with fresh() as s:
        user = await s.get(User, 1)
    assert (user.first_name, user.erased) == ("User 1", False)


async def _failing_commit():
    raise RuntimeError("database went away")


async def test_failed_flush_keeps_the_sightings(session, fresh, count, tracker, add_community, monkeypatch, t0):
    # The rollback expires the session's objects: keep the id, not the object.
    cid = (await add_community(CHAT)).id
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0)
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0 + timedelta(minutes=1))

    monkeypatch.setattr(session, "commit", _failing_commit)
    with pytest.raises(RuntimeError):
        await tracker.flush(session)
    assert tracker.pending == 1
    assert await count(User) == 0 and await count(Member) == 0, "the failed flush was rolled back"

    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0 + timedelta(minutes=2))
    async with fresh() as retry:
        assert await tracker.flush(retry) == 1

    row = (await member_rows(fresh, cid))[1]
    assert (row.message_count, row.joined_at, row.last_active_at) == (3, t0, t0 + timedelta(minutes=2))
    async with fresh() as s:
        assert (await s.get(User, 1)).first_name == "User 1"


async def test_failed_flush_in_an_unknown_chat_creates_the_community_on_retry(session, fresh, tracker, monkeypatch, t0):
    tracker.record(chat_id=-777, chat_title="New", profile=profile(1), at=t0)

    monkeypatch.setattr(session, "commit", _failing_commit)
    with pytest.raises(RuntimeError):
        await tracker.flush(session)

    async with fresh() as retry:
        await tracker.flush(retry)

    async with fresh() as s:
        community = (await s.exec(select(Community).where(Community.chat_id == -777))).one()
    assert set(await member_rows(fresh, community.id)) == {1}


async def test_failed_flush_then_a_late_sighting_keeps_the_latest_activity(session, fresh, tracker, add_community,
                                                                          monkeypatch, t0):
    cid = (await add_community(CHAT)).id
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0 + timedelta(minutes=10))
    monkeypatch.setattr(session, "commit", _failing_commit)
    with pytest.raises(RuntimeError):
        await tracker.flush(session)

    # Recorded after the failure, but sent earlier (a delayed update).
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0 + timedelta(minutes=3))
    async with fresh() as retry:
        await tracker.flush(retry)

    row = (await member_rows(fresh, cid))[1]
    assert (row.message_count, row.joined_at, row.last_active_at) == (2, t0 + timedelta(minutes=3),
                                                                     t0 + timedelta(minutes=10))


async def test_flusher_flushes_at_stop_and_survives_errors(engine, fresh, count, tracker, add_community, t0):
    from bot.core.db import session_factory

    await add_community(CHAT)
    flusher = ActivityFlusher(tracker, session_factory(engine), interval=3600)
    flusher.start()
    # Stopped before its first interval (or mid-flush): what was recorded is still written.
    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(1), at=t0)
    await flusher.stop()
    assert tracker.pending == 0
    assert await count(Member) == 1

    def broken():
        raise RuntimeError("no database")

    tracker.record(chat_id=CHAT, chat_title="Group", profile=profile(2), at=t0)
    await ActivityFlusher(tracker, broken, interval=1).flush_now()  # logged, not raised
    assert tracker.pending == 1
