"""Activity by day (bot/services/activity_days.py, models.ActivityDay) and the members' rhythm on a
real database: chatter split at community-local midnight, a replayed journal giving the same days,
check-ins and orders counted through the tracker."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from checkin_builders import join, local, make_group
from shop_builders import make_users
from sqlalchemy import update
from sqlmodel import select

from bot.core.db import WriteCounter
from bot.services import activity, users
from bot.services.activity import ActivityTracker, Sighting
from bot.services.activity_journal import ActivityJournal
from bot.services.users import Profile
from models import ActivityDay, Community, Member

SH, NY = "Asia/Shanghai", "America/New_York"
A, B = 11, 12


def profile(uid: int) -> Profile:
    return Profile(id=uid, first_name=f"User {uid}", username=f"u{uid}", language_code="en")


async def rhythm(fresh, community_id: int) -> dict[int, tuple]:
    """user → (first day active, last day active, days active, last active at), members only."""
    async with fresh() as s:
        rows = await s.exec(select(Member).where(Member.community_id == community_id))
        return {m.user_id: (m.first_active_on, m.last_active_on, m.active_days, m.last_active_at) for m in rows
                if m.active_days}


async def day_rows(fresh, community_id: int) -> dict[tuple[int, date], tuple]:
    """(user, day) → (messages, check-ins, orders, first_at, last_at)."""
    async with fresh() as s:
        rows = await s.exec(select(ActivityDay).where(ActivityDay.community_id == community_id))
        return {(r.user_id, r.day): (r.messages, r.checkins, r.orders, r.first_at, r.last_at) for r in rows}


def around_midnight(tz: str, chat_id: int) -> list[Sighting]:
    """A: 3 messages on the 7th (the last at 23:59:59 local), 2 on the 8th (the first at 00:00:01);
    B: one message at 23:59:59 and a button press at 00:00:01."""
    late, early = local(tz, 2026, 3, 7, 23, 59, 59), local(tz, 2026, 3, 8, 0, 0, 1)
    s = [Sighting(chat_id, "Group", profile(A), late - timedelta(hours=20)),
         Sighting(chat_id, "Group", profile(A), early),
         Sighting(chat_id, "Group", profile(A), late),
         Sighting(chat_id, "Group", profile(B), late),
         Sighting(chat_id, "Group", profile(A), late - timedelta(minutes=1)),
         Sighting(chat_id, "Group", profile(B), early, 0),
         Sighting(chat_id, "Group", profile(A), early + timedelta(seconds=5))]
    return s


def expected(tz: str) -> dict[tuple[int, date], tuple]:
    late, early = local(tz, 2026, 3, 7, 23, 59, 59), local(tz, 2026, 3, 8, 0, 0, 1)
    d7, d8 = date(2026, 3, 7), date(2026, 3, 8)
    return {(A, d7): (3, 0, 0, late - timedelta(hours=20), late), (A, d8): (2, 0, 0, early, early + timedelta(seconds=5)),
            (B, d7): (1, 0, 0, late, late), (B, d8): (0, 0, 0, early, early)}


@pytest.mark.parametrize("tz", [SH, NY])
async def test_chatter_is_split_at_local_midnight_in_one_statement(session, engine, fresh, t0, tz):
    group = await make_group(session, now=t0, tz=tz)
    tracker = ActivityTracker(default_locale="en", default_timezone="UTC")
    tracker.record_many(around_midnight(tz, group.chat_id))

    writes = WriteCounter(engine)
    await tracker.flush(session)

    assert writes.count == 4  # users, members, days, the community's hours: one statement each
    assert await day_rows(fresh, group.id) == expected(tz)
    # A later flush adds to the same days and widens their span.
    late = local(tz, 2026, 3, 7, 23, 59, 59)
    tracker.record(chat_id=group.chat_id, chat_title="Group", profile=profile(A), at=late + timedelta(seconds=0.5))
    tracker.record(chat_id=group.chat_id, chat_title="Group", profile=profile(A), at=late - timedelta(hours=21))
    await tracker.flush(session)
    rows = await day_rows(fresh, group.id)
    assert rows[(A, date(2026, 3, 7))] == (5, 0, 0, late - timedelta(hours=21), late + timedelta(seconds=0.5))
    assert rows[(A, date(2026, 3, 8))] == expected(tz)[(A, date(2026, 3, 8))]


async def test_a_replayed_journal_gives_the_same_days(session, engine, fresh, t0, tmp_path):
    group = await make_group(session, now=t0, tz=NY)
    dead_journal = ActivityJournal(tmp_path, "dead")
    dead = ActivityTracker(default_locale="en", default_timezone="UTC", journal=dead_journal)
    dead.record_many(around_midnight(NY, group.chat_id))
    dead_journal.close()  # killed before any flush

    alive = ActivityTracker(default_locale="en", default_timezone="UTC", journal=ActivityJournal(tmp_path, "alive"))
    assert await alive.adopt_dead() == 7
    await alive.flush(session)

    assert await day_rows(fresh, group.id) == expected(NY)


async def test_a_failed_flush_is_retried_with_its_days(session, engine, fresh, t0, monkeypatch):
    group = await make_group(session, now=t0, tz=SH)
    tracker = ActivityTracker(default_locale="en", default_timezone="UTC")
    sightings = around_midnight(SH, group.chat_id)
    tracker.record_many(sightings[:4])

    async def broken(*_args, **_kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(ActivityTracker, "_write", broken)
    with pytest.raises(RuntimeError):
        await tracker.flush(session)
    monkeypatch.undo()
    tracker.record_many(sightings[4:])  # newer sightings meet the batch put back
    await tracker.flush(session)

    assert await day_rows(fresh, group.id) == expected(SH)


async def test_a_timezone_change_counts_once_the_cache_is_read_again(session, fresh, t0, monkeypatch):
    group = await make_group(session, now=t0, tz="UTC")
    tracker = ActivityTracker(default_locale="en", default_timezone="UTC")
    at = local(SH, 2026, 3, 8, 0, 0, 1)  # the 7th in UTC, the 8th in Shanghai
    tracker.record(chat_id=group.chat_id, chat_title="Group", profile=profile(A), at=at)
    await tracker.flush(session)
    await session.execute(update(Community).where(Community.id == group.id).values(timezone=SH))
    await session.commit()

    monkeypatch.setattr(activity, "COMMUNITY_CACHE_SECONDS", -1.0)
    tracker.record(chat_id=group.chat_id, chat_title="Group", profile=profile(A), at=at)
    await tracker.flush(session)

    assert set(await day_rows(fresh, group.id)) == {(A, date(2026, 3, 7)), (A, date(2026, 3, 8))}


async def test_check_ins_and_orders_count_for_the_day_and_never_make_a_member(session, engine, fresh, t0):
    """Deeds come through the tracker like chatter: the member's day and rhythm, one statement more
    per flush; someone with no membership (B bought after leaving) gets their day, not a membership."""
    group = await make_group(session, now=t0, tz=SH)
    await join(session, group, A, now=t0)
    await make_users(session, [B], now=t0)
    late, early = local(SH, 2026, 3, 7, 23, 59, 59), local(SH, 2026, 3, 8, 0, 0, 1)
    tracker = ActivityTracker(default_locale="en", default_timezone="UTC")
    tracker.record(chat_id=group.chat_id, chat_title="Group", profile=profile(A), at=late - timedelta(hours=2))
    tracker.record_deed(chat_id=group.chat_id, chat_title="Group", profile=profile(A), at=late, checkins=1)
    tracker.record_deed(chat_id=group.chat_id, chat_title="Group", profile=profile(A), at=early, orders=1)
    tracker.record_deed(chat_id=group.chat_id, chat_title="Group", profile=profile(B), at=early, orders=1)

    writes = WriteCounter(engine)
    await tracker.flush(session)

    assert writes.count == 5  # users, A's membership (chatter), B's rhythm (no row: nothing), days, hours
    assert await day_rows(fresh, group.id) == {
        (A, date(2026, 3, 7)): (1, 1, 0, late - timedelta(hours=2), late),
        (A, date(2026, 3, 8)): (0, 0, 1, early, early),
        (B, date(2026, 3, 8)): (0, 0, 1, early, early)}
    assert await rhythm(fresh, group.id) == {A: (date(2026, 3, 7), date(2026, 3, 8), 2, early)}


async def test_the_rhythm_counts_each_local_day_once(session, fresh, t0):
    group = await make_group(session, now=t0, tz=NY)
    await join(session, group, A, now=t0)
    tracker = ActivityTracker(default_locale="en", default_timezone="UTC")
    days = [local(NY, 2026, 3, d, h) for d, h in ((1, 9), (1, 22), (2, 8), (5, 12), (5, 13), (9, 23))]
    for at in days[:2]:  # one day in two flushes
        tracker.record(chat_id=group.chat_id, chat_title="Group", profile=profile(A), at=at)
        await tracker.flush(session)
    tracker.record_deed(chat_id=group.chat_id, chat_title="Group", profile=profile(A), at=days[2], checkins=1)
    await tracker.flush(session)
    for at in days[3:]:  # two days in one flush, one of them twice
        tracker.record(chat_id=group.chat_id, chat_title="Group", profile=profile(A), at=at)
    await tracker.flush(session)

    assert await rhythm(fresh, group.id) == {A: (date(2026, 3, 1), date(2026, 3, 9), 4, days[-1])}
    assert len(await day_rows(fresh, group.id)) == 4


async def test_an_erased_users_days_go(session, fresh, t0):
    group = await make_group(session, now=t0, tz=SH)
    tracker = ActivityTracker(default_locale="en", default_timezone="UTC")
    tracker.record_many(around_midnight(SH, group.chat_id))
    await tracker.flush(session)

    await users.forget(session, user_id=A, now=t0 + timedelta(days=30))

    assert {uid for uid, _ in await day_rows(fresh, group.id)} == {B}
