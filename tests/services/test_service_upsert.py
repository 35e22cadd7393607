"""bot.services.upsert.execute_rows: the driver's executemany on SQLite writes what SQLAlchemy's would."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from bot.core.db import create_engine, session_factory
from bot.core.migrate import upgrade_async
from bot.services.activity import _MEMBER_COLUMNS, _USER_COLUMNS, _members_upsert, _users_upsert
from bot.services.upsert import execute_rows, insert_in, rows_params
from models import Member, User
from models.types import UTCDateTime

SHANGHAI = timezone(timedelta(hours=8))
T0 = datetime(2025, 3, 1, 12, 0, 0, 0, tzinfo=timezone.utc)


def user_rows(first_id: int, at: datetime) -> list[dict]:
    return [{"id": first_id + i, "first_name": f"User {i}", "last_name": None if i % 2 else "L",
             "username": f"u{i}" if i % 3 else None, "language_code": "en", "created_at": at,
             "updated_at": at + timedelta(microseconds=i)} for i in range(5)]


def member_rows(community_id: int, first_id: int, at: datetime) -> list[dict]:
    return [{"community_id": community_id, "user_id": first_id + i, "status": "member", "is_leader": False,
             "joined_at": at, "last_active_at": at + timedelta(seconds=i), "message_count": i + 1, "invite_depth": 0,
             "first_active_on": date(2025, 3, 1), "last_active_on": date(2025, 3, 1 + i), "active_days": i + 1}
            for i in range(5)]


def shape(rows, first_id: int) -> list[tuple]:
    """Rows as read back, their users' ids made relative so that two batches compare."""
    return [tuple((k, v - first_id if k in ("id", "user_id") else v) for k, v in sorted(r._mapping.items()))
            for r in rows]


async def test_execute_rows_writes_what_sqlalchemy_writes(session, fresh, add_community):
    community = await add_community()
    dialect = session.get_bind().dialect.name
    for first_id, at in ((1_000, T0), (2_000, T0.astimezone(SHANGHAI))):
        # Through SQLAlchemy's own executemany, then through execute_rows, a second time as an update.
        for write in range(2):
            when = at + timedelta(hours=write)
            await session.execute(_users_upsert(dialect), rows_params(dialect, _USER_COLUMNS, user_rows(first_id, when)))
            await session.execute(_members_upsert(dialect),
                                  rows_params(dialect, _MEMBER_COLUMNS, member_rows(community.id, first_id, when)))
            await execute_rows(session, _users_upsert(dialect), _USER_COLUMNS, user_rows(first_id + 500, when))
            await execute_rows(session, _members_upsert(dialect), _MEMBER_COLUMNS,
                               member_rows(community.id, first_id + 500, when))
            await session.commit()
        async with fresh() as s:
            users = list(await s.execute(select(User.__table__).where(User.id >= first_id, User.id < first_id + 1_000)
                                         .order_by(User.id)))
            members = list(await s.execute(select(Member.__table__.c[*[c for c in Member.__table__.c.keys() if c != "id"]])
                                           .where(Member.user_id >= first_id, Member.user_id < first_id + 1_000)
                                           .order_by(Member.user_id)))
        assert len(users) == 10 and len(members) == 10
        assert shape(users[:5], first_id) == shape(users[5:], first_id + 500)
        assert shape(members[:5], first_id) == shape(members[5:], first_id + 500)
        # Defaults the rows left out were applied, and times read back as the same instants.
        assert all(u.can_dm is False and u.erased is False for u in users)
        assert members[5].joined_at == at and members[5].last_active_at == at + timedelta(hours=1)
        assert members[5].invite_depth == 0


async def test_a_default_computed_per_row_must_be_given(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as s:
            stmt = insert_in("sqlite", User.__table__)
            with pytest.raises(ValueError, match="users.created_at"):
                await execute_rows(s, stmt, ("id", "first_name", "updated_at"),
                                   [{"id": 1, "first_name": "A", "updated_at": T0}])
    finally:
        await engine.dispose()


@pytest.mark.parametrize("value", [
    T0, T0.replace(microsecond=345), T0.astimezone(SHANGHAI), datetime(1, 1, 1, tzinfo=timezone.utc),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone.utc), None,
])
def test_sqlite_datetime_text_is_sqlalchemys(value):
    dialect = sqlite.dialect()
    # What SQLAlchemy does without the one-step processor: the column's own conversion, then the
    # text of SQLite's DATETIME.
    stored = UTCDateTime().process_bind_param(value, dialect)
    assert UTCDateTime()._cached_bind_processor(dialect)(value) == sqlite.DATETIME().bind_processor(dialect)(stored)


def test_naive_datetimes_are_refused_on_sqlite():
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime()._cached_bind_processor(sqlite.dialect())(datetime(2025, 3, 1))
