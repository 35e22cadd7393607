"""bot.services.seen_users on a real database: the senders of concurrent updates written together."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core.db import WriteCounter, create_engine, session_factory
from bot.services import users
from bot.services.seen_users import SeenUser, SeenUsers
from bot.services.users import Profile
from models import User

ANN = Profile(id=1001, first_name="Ann", last_name="Lee", username="ann", language_code="en")
BOB = Profile(id=1002, first_name="Bob", language_code="zh-hans")


@pytest.fixture
def seen(fresh) -> SeenUsers:
    return SeenUsers(fresh)


async def _row(fresh, user_id: int) -> User | None:
    async with fresh() as s:
        return await s.get(User, user_id)


async def test_concurrent_new_users_are_written_in_one_batch(seen, fresh, t0):
    profiles = [Profile(id=5000 + i, first_name=f"U{i}", language_code="en") for i in range(40)]
    got = await asyncio.gather(*(seen.remember(p, now=t0, opens_dm=i % 2 == 0) for i, p in enumerate(profiles)))

    assert seen.batches == 1
    assert [u.id for u in got] == [p.id for p in profiles]
    assert got[0] == SeenUser(id=5000, first_name="U0", last_name=None, username=None, language_code="en",
                              locale=None, can_dm=True)
    assert got[1].can_dm is False
    row = await _row(fresh, 5039)
    assert (row.first_name, row.can_dm, row.erased, row.created_at, row.updated_at) == ("U39", False, False, t0, t0)


async def test_a_known_unchanged_user_is_read_not_rewritten(seen, session, fresh, t0):
    await seen.remember(ANN, now=t0, opens_dm=True)
    await users.set_locale(session, user_id=ANN.id, locale="zh_Hans", now=t0)

    later = t0 + timedelta(hours=1)
    again = await seen.remember(ANN, now=later, opens_dm=False)

    assert (again.locale, again.can_dm, again.first_name) == ("zh_Hans", True, "Ann")
    row = await _row(fresh, ANN.id)
    assert row.updated_at == t0, "nothing changed, so nothing was written"
    assert row.can_dm is True, "a group message does not close the private chat"


async def test_a_changed_profile_is_written_and_keeps_what_the_user_chose(seen, session, fresh, t0):
    await seen.remember(ANN, now=t0, opens_dm=False)
    await users.set_locale(session, user_id=ANN.id, locale="zh_Hans", now=t0)
    later = t0 + timedelta(minutes=5)

    renamed = Profile(id=ANN.id, first_name="Annie", last_name=None, username=None, language_code="en")
    got = await seen.remember(renamed, now=later, opens_dm=True)

    assert (got.first_name, got.last_name, got.username, got.locale, got.can_dm) == ("Annie", None, None, "zh_Hans", True)
    row = await _row(fresh, ANN.id)
    assert (row.first_name, row.last_name, row.username, row.locale) == ("Annie", None, None, "zh_Hans")
    assert (row.can_dm, row.created_at, row.updated_at) == (True, t0, later)


async def test_a_blocked_user_writing_in_private_is_reachable_again(seen, session, fresh, t0):
    await seen.remember(BOB, now=t0, opens_dm=True)
    await users.set_can_dm(session, user_id=BOB.id, can_dm=False, now=t0)

    assert (await seen.remember(BOB, now=t0, opens_dm=False)).can_dm is False
    assert (await seen.remember(BOB, now=t0, opens_dm=True)).can_dm is True
    assert (await _row(fresh, BOB.id)).can_dm is True


async def test_two_updates_of_one_user_in_a_batch_share_one_row_and_the_newest_profile(seen, fresh, t0):
    older = Profile(id=ANN.id, first_name="Old Ann")
    first, second = await asyncio.gather(
        seen.remember(ANN, now=t0 + timedelta(seconds=2), opens_dm=False),
        seen.remember(older, now=t0 + timedelta(seconds=1), opens_dm=True),
    )

    assert seen.batches == 1
    assert first == second
    assert (first.first_name, first.can_dm) == ("Ann", True)
    row = await _row(fresh, ANN.id)
    assert (row.first_name, row.can_dm, row.updated_at) == ("Ann", True, t0 + timedelta(seconds=2))


async def test_an_erased_user_who_comes_back_is_stored_again(seen, session, fresh, t0):
    await seen.remember(ANN, now=t0, opens_dm=True)
    await users.forget(session, user_id=ANN.id, now=t0)
    later = t0 + timedelta(days=1)

    got = await seen.remember(ANN, now=later, opens_dm=True)

    assert (got.first_name, got.username, got.locale) == ("Ann", "ann", None)
    row = await _row(fresh, ANN.id)
    assert (row.erased, row.first_name, row.username, row.updated_at) == (False, "Ann", "ann", later)
    assert row.erased_at == t0, "the erasure stays on record: what came before it keeps no name"
    assert row.marketing_opt_out is True, "consent given before the erasure is not assumed back"


async def test_one_row_the_database_refuses_fails_only_its_own_update(seen, fresh, t0):
    bad = Profile(id=2**63, first_name="Too big")  # beyond BIGINT and SQLite's integers
    results = await asyncio.gather(seen.remember(ANN, now=t0, opens_dm=True), seen.remember(bad, now=t0, opens_dm=True),
                                   seen.remember(BOB, now=t0, opens_dm=True), return_exceptions=True)

    assert isinstance(results[1], Exception)
    assert [results[0].id, results[2].id] == [ANN.id, BOB.id]
    assert (await _row(fresh, ANN.id)) is not None and (await _row(fresh, BOB.id)) is not None


async def test_a_cancelled_update_does_not_cancel_the_batch_of_the_others(seen, fresh, t0):
    waiting = asyncio.create_task(seen.remember(ANN, now=t0, opens_dm=True))
    other = asyncio.create_task(seen.remember(BOB, now=t0, opens_dm=True))
    await asyncio.sleep(0)  # both have joined the batch
    waiting.cancel()

    assert (await other).id == BOB.id
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (await _row(fresh, ANN.id)).first_name == "Ann", "the cancelled update's user was written all the same"


async def test_updates_arriving_during_a_write_form_the_next_batch(seen, fresh, t0):
    first = asyncio.create_task(seen.remember(ANN, now=t0, opens_dm=True))
    await asyncio.sleep(0)  # the writer has taken ANN's batch
    late = [Profile(id=7000 + i, first_name=f"L{i}") for i in range(5)]
    rest = await asyncio.gather(*(seen.remember(p, now=t0, opens_dm=False) for p in late))
    await first

    assert seen.batches == 2
    assert [u.first_name for u in rest] == [p.first_name for p in late]


async def test_a_batch_is_written_in_statements_of_a_few_fixed_sizes(seen, engine, fresh, t0):
    writes = WriteCounter(engine)
    await asyncio.gather(*(seen.remember(Profile(id=9000 + i, first_name=f"P{i}"), now=t0, opens_dm=True)
                           for i in range(43)))
    assert writes.count == 4  # 32 + 8 + 2 + 1 rows: nine statement texts serve every batch size

    async with fresh() as s:
        assert await s.scalar(select(func.count()).select_from(User).where(User.id >= 9000)) == 43


async def test_a_failing_database_fails_the_batch_once_not_row_by_row(t0, tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/empty.db")  # never migrated: no users table
    seen = SeenUsers(session_factory(engine))
    try:
        results = await asyncio.gather(*(seen.remember(Profile(id=i, first_name="x"), now=t0, opens_dm=True)
                                         for i in range(1, 6)), return_exceptions=True)
    finally:
        await engine.dispose()
    assert all(isinstance(r, Exception) for r in results)
    assert seen.batches == 1, "a missing table is not a bad row: no retry one by one"
