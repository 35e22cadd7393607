"""Activity by day (models.ActivityDay): what a member did on each community-local day.

Group messages come in the activity tracker's batches (bot/services/activity.py), one statement
per flush; a check-in and an order each add their one row in their own transaction (`count`).
Every writer adds to the counters and widens [first_at, last_at], so they can come in any order.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.upsert import insert_in, insert_rows
from models import ActivityDay, Community

COLUMNS = ("community_id", "user_id", "day", "messages", "checkins", "orders", "first_at", "last_at")
# Every UTC offset in use is a multiple of 15 minutes, so a 15-minute slot of UTC falls within one
# local day in any timezone: a sighting keeps its slot, and the day is worked out once per slot.
SLOT_SECONDS = 900
SLOT = timedelta(seconds=SLOT_SECONDS)

_table = ActivityDay.__table__
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
UTC = ZoneInfo("UTC")


def _on_conflict(stmt):
    t, ex = _table.c, stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["community_id", "user_id", "day"],
        set_={
            "messages": t.messages + ex.messages,
            "checkins": t.checkins + ex.checkins,
            "orders": t.orders + ex.orders,
            "first_at": case((ex.first_at < t.first_at, ex.first_at), else_=t.first_at),
            "last_at": case((ex.last_at > t.last_at, ex.last_at), else_=t.last_at),
        },
    )


@cache
def rows_upsert(dialect: str):
    """Many rows in one statement, with `upsert.rows_params(dialect, COLUMNS, rows)`. The rows must
    be unique by (community, user, day): PostgreSQL refuses to update one row twice in a statement."""
    return _on_conflict(insert_rows(dialect, _table, COLUMNS))


@cache
def _one_upsert(dialect: str):
    return _on_conflict(insert_in(dialect, _table))


def slot_start(slot: int) -> datetime:
    return EPOCH + slot * SLOT


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC  # a community's timezone is validated when set; this is only a last resort


@lru_cache(maxsize=8192)
def slot_day(tz: ZoneInfo, slot: int) -> date:
    """The local day of a UTC slot in `tz`."""
    return slot_start(slot).astimezone(tz).date()


async def count(session: AsyncSession, *, community: Community, user_id: int, at: datetime, checkins: int = 0,
                orders: int = 0) -> None:
    """Add to the member's row for the community-local day of `at`, in the caller's transaction
    (one statement, no commit)."""
    day = at.astimezone(zone(community.timezone)).date()
    await session.execute(_one_upsert(session.get_bind().dialect.name), {
        "community_id": community.id, "user_id": user_id, "day": day, "messages": 0, "checkins": checkins,
        "orders": orders, "first_at": at, "last_at": at})
