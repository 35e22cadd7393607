"""Activity by day (bot/services/activity_days.py, models.ActivityDay) on a real database: chatter
split at community-local midnight, a replayed journal giving the same days, check-ins and orders
counted in their own transactions."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from checkin_builders import join, local, make_group
from shop_builders import buy, make_product, make_shop, make_users
from sqlalchemy import update
from sqlmodel import select

from bot.core.db import WriteCounter
from bot.services import activity, checkins, users
from bot.services.activity import ActivityTracker, Sighting
from bot.services.activity_journal import ActivityJournal
from bot.services.checkins import CheckInStatus
from bot.services.users import Profile
from models import ActivityDay, Community

SH, NY = "Asia/Shanghai", "America/New_York"
A, B = 11, 12


def profile(uid: int) -> Profile:
    return Profile(id=uid, first_name=f"User {uid}", username=f"u{uid}", language_code="en")


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

    assert writes.count == 3  # users, members, days: one statement each
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


async def test_a_check_in_counts_once_a_day(session, fresh, t0):
    group = await make_group(session, now=t0, tz=SH)
    await join(session, group, A, now=t0)
    late, early = local(SH, 2026, 3, 7, 23, 59, 59), local(SH, 2026, 3, 8, 0, 0, 1)

    results = [await checkins.check_in(session, community=group, user_id=A, at=at)
               for at in (late, late + timedelta(seconds=0.5), early, early + timedelta(hours=3))]

    assert [r.status for r in results] == [CheckInStatus.DONE, CheckInStatus.ALREADY] * 2
    assert await day_rows(fresh, group.id) == {(A, date(2026, 3, 7)): (0, 1, 0, late, late),
                                               (A, date(2026, 3, 8)): (0, 1, 0, early, early)}


async def test_an_order_counts_for_its_local_day_beside_the_chatter(session, fresh, t0):
    shop = await make_shop(session, now=t0)
    shop.community.timezone = NY
    await session.commit()
    await make_users(session, [A], now=t0)
    product = await make_product(session, shop, now=t0, price=500, stock=10)
    late = local(NY, 2026, 3, 7, 23, 59, 59)

    tracker = ActivityTracker(default_locale="en", default_timezone="UTC")
    tracker.record(chat_id=shop.community.chat_id, chat_title="Group", profile=profile(A), at=late - timedelta(hours=1))
    await tracker.flush(session)
    await buy(session, shop, user_id=A, product=product, now=late, key="k-late")
    await buy(session, shop, user_id=A, product=product, now=late, key="k-late")  # a double tap: one order
    await buy(session, shop, user_id=A, product=product, now=late + timedelta(seconds=2), key="k-next")

    assert await day_rows(fresh, shop.id) == {
        (A, date(2026, 3, 7)): (1, 0, 1, late - timedelta(hours=1), late),
        (A, date(2026, 3, 8)): (0, 0, 1, late + timedelta(seconds=2), late + timedelta(seconds=2))}


async def test_an_erased_users_days_go(session, fresh, t0):
    group = await make_group(session, now=t0, tz=SH)
    tracker = ActivityTracker(default_locale="en", default_timezone="UTC")
    tracker.record_many(around_midnight(SH, group.chat_id))
    await tracker.flush(session)

    await users.forget(session, user_id=A, now=t0 + timedelta(days=30))

    assert {uid for uid, _ in await day_rows(fresh, group.id)} == {B}
