"""Activity by day (models.ActivityDay): what a member did on each community-local day, and the
member's rhythm (first and last day active, days active) that churn risk reads.

Both are written in the activity tracker's batches (bot/services/activity.py): group messages and
presses, check-ins and orders alike, one statement per flush. Every writer adds to the counters
and widens [first_at, last_at], so batches can come in any order.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, case, update

from bot.services.upsert import insert_rows
from models import ActivityDay, Member

COLUMNS = ("community_id", "user_id", "day", "messages", "checkins", "orders", "first_at", "last_at")
# Every UTC offset in use is a multiple of 15 minutes, so a 15-minute slot of UTC falls within one
# local day in any timezone: a sighting keeps its slot, and the day is worked out once per slot.
SLOT_SECONDS = 900
SLOT = timedelta(seconds=SLOT_SECONDS)

_table = ActivityDay.__table__
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
UTC = ZoneInfo("UTC")


@cache
def rows_upsert(dialect: str):
    """Many rows in one statement, with `upsert.rows_params(dialect, COLUMNS, rows)`. The rows must
    be unique by (community, user, day): PostgreSQL refuses to update one row twice in a statement."""
    stmt = insert_rows(dialect, _table, COLUMNS)
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


def rhythm_values(current, first, last, days) -> dict:
    """How a member's rhythm columns take a batch's days [first, last], `days` of them distinct
    (`current`: the member's columns; the others the batch's, as SQL expressions).

    Days already counted are not counted again: a batch usually holds one day, at most the member's
    last day counted and the ones after it (a flush across midnight), or days before the first
    (a late journal replay)."""
    c_first, c_last, c_days = current
    added = case((c_last.is_(None), days), (first > c_last, days), (last > c_last, days - 1),
                 (last < c_first, days), else_=0)
    return {
        "first_active_on": case((c_first.is_(None), first), (first < c_first, first), else_=c_first),
        "last_active_on": case((c_last.is_(None), last), (last > c_last, last), else_=c_last),
        "active_days": c_days + added,
    }


_m = Member.__table__.c
# Activity outside the group (a check-in or an order in the private chat) on members the bot knows:
# it never makes anyone a member.
ACTIVE_ELSEWHERE = (
    update(Member.__table__)
    .where(_m.community_id == bindparam("b_community"), _m.user_id == bindparam("b_user"))
    .values(
        last_active_at=case((_m.last_active_at.is_(None), bindparam("b_at")),
                            (bindparam("b_at") > _m.last_active_at, bindparam("b_at")), else_=_m.last_active_at),
        **rhythm_values((_m.first_active_on, _m.last_active_on, _m.active_days), bindparam("b_first", type_=_m.first_active_on.type),
                        bindparam("b_last", type_=_m.last_active_on.type), bindparam("b_days")),
    )
)


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
