"""The statistics' own counters, kept by the activity tracker and written with its flushes
(bot/services/activity.py): group messages and orders per community-local hour (the weekday x hour
heat map), and the funnel steps that leave no row of their own (a Buy press, a checkout started).

Both are summed in memory and upserted once per flush, one statement each, rows in key order so
that two workers' flushes lock them in the same order. A counter is added to, never set, so flushes
may come in any order.
"""

from __future__ import annotations

from datetime import date
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from bot.services.activity_days import slot_start
from bot.services.upsert import insert_rows
from models import CommunityHour, FunnelDay

HOUR_COLUMNS = ("community_id", "day", "hour", "messages", "orders")
FUNNEL_COLUMNS = ("community_id", "product_id", "day", "step", "count")
# Hour counters: (community, local day, local hour) -> [messages, orders].
Hours = dict[tuple[int, date, int], list[int]]
# Funnel counters: (community, product, step, local day) -> count.
Steps = dict[tuple[int, int, str, date], int]


@lru_cache(maxsize=8192)
def slot_hour(tz: ZoneInfo, slot: int) -> tuple[date, int]:
    """The local day and hour of a 15-minute slot of UTC (activity_days.SLOT_SECONDS): every UTC
    offset in use is a multiple of 15 minutes, so a slot lies within one local hour."""
    local = slot_start(slot).astimezone(tz)
    return local.date(), local.hour


@cache
def hours_upsert(dialect: str):
    table = CommunityHour.__table__
    stmt = insert_rows(dialect, table, HOUR_COLUMNS)
    return stmt.on_conflict_do_update(
        index_elements=["community_id", "day", "hour"],
        set_={"messages": table.c.messages + stmt.excluded.messages, "orders": table.c.orders + stmt.excluded.orders},
    )


@cache
def funnel_upsert(dialect: str):
    table = FunnelDay.__table__
    stmt = insert_rows(dialect, table, FUNNEL_COLUMNS)
    return stmt.on_conflict_do_update(index_elements=["community_id", "day", "product_id", "step"],
                                      set_={"count": table.c["count"] + stmt.excluded["count"]})


def hour_rows(hours: Hours) -> list[dict]:
    return [{"community_id": c, "day": d, "hour": h, "messages": n[0], "orders": n[1]}
            for (c, d, h), n in sorted(hours.items()) if n[0] or n[1]]


def step_rows(steps: Steps) -> list[dict]:
    return [{"community_id": c, "product_id": p, "day": d, "step": s, "count": n}
            for (c, p, s, d), n in sorted(steps.items(), key=lambda kv: (kv[0][0], kv[0][3], kv[0][1], kv[0][2]))]
