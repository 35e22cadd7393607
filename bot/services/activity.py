"""Member activity from group chatter, buffered in memory and written in batches.

A busy group sends thousands of messages a minute; writing a row per message would make the
database the bottleneck. The tracker keeps the latest sighting per (chat, user) and flushes all of
them every few seconds (and at shutdown) with a handful of multi-row upserts. Until a flush has
committed them, sightings are also in a journal on local disk (bot/services/activity_journal.py),
which the next start, or a peer on the same host, counts when the process was killed.

Check-ins and orders come through the tracker too, and every sighting counts for the member's
community-local day (models.ActivityDay, bot/services/activity_days.py): the buffer keeps counts
per 15-minute slot of UTC, and the flush turns slots into days in the community's timezone, read
with its id and read again every few minutes. The same flush adds the community's messages and
orders per local hour, and the funnel steps counted here (bot/services/stats_counters.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import case, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import activity_days, stats_counters
from bot.services.activity_days import EPOCH, SLOT, SLOT_SECONDS, UTC, rhythm_values, slot_day, slot_start, zone
from bot.services.activity_journal import ActivityJournal
from bot.services.upsert import execute_rows, insert_for, insert_rows
from bot.services.users import Profile
from models import Community, FunnelStep, Member, User
from models.community import BOT_STATUS_UNKNOWN

log = logging.getLogger(__name__)

PROFILE_CACHE_SIZE = 200_000
# How often a running bot looks for the journal of a process on this host that died (a peer worker).
SWEEP_SECONDS = 5.0
# How long communities' ids and timezones are trusted: a timezone changed by a leader counts for
# the days of sightings flushed after that (days already written keep theirs).
COMMUNITY_CACHE_SECONDS = 300.0


class Sighting(NamedTuple):
    """A member active in a community: in its group (`in_group`) a message they wrote or, with
    `messages=0`, a button they pressed; anywhere, a check-in or an order placed."""

    chat_id: int
    chat_title: str
    profile: Profile
    at: datetime
    messages: int = 1
    checkins: int = 0
    orders: int = 0
    in_group: bool = True


def _row(s: Sighting) -> list:
    # The journal's line format (the user's id third: bot/services/activity_journal.py USER_ID).
    p = s.profile
    return [s.chat_id, s.chat_title, p.id, p.first_name, p.last_name, p.username, p.language_code,
            s.at.timestamp(), s.messages, s.checkins, s.orders, int(s.in_group)]


def _from_row(row: list) -> Sighting:
    if len(row) == 9:  # written before check-ins and orders were journaled
        row = [*row, 0, 0, 1]
    chat_id, title, uid, first_name, last_name, username, language_code, at, messages, checkins, orders, in_group = row
    if not (type(chat_id) is int and type(uid) is int and isinstance(title, str) and isinstance(first_name, str)
            and all(type(n) is int for n in (messages, checkins, orders, in_group))):
        raise ValueError(f"not a sighting: {row!r}")
    return Sighting(chat_id, title, Profile(uid, first_name, last_name, username, language_code),
                    datetime.fromtimestamp(at, timezone.utc), messages, checkins, orders, bool(in_group))


# A slot's counts: messages, check-ins, orders, first and last time.
MESSAGES, CHECKINS, ORDERS, FIRST, LAST = range(5)


@dataclass(slots=True)
class _Sighting:
    profile: Profile
    title: str
    first_at: datetime
    last_at: datetime
    count: int
    in_group: bool
    slots: dict[int, list]  # slot of UTC (activity_days.SLOT_SECONDS) -> counts

    def merge(self, other: _Sighting) -> None:
        self.count += other.count
        self.in_group = self.in_group or other.in_group
        self.first_at = min(self.first_at, other.first_at)
        self.last_at = max(self.last_at, other.last_at)
        for slot, counts in other.slots.items():
            mine = self.slots.get(slot)
            if mine is None:
                self.slots[slot] = list(counts)
            else:
                _add_counts(mine, counts)


def _add_counts(into: list, counts: list) -> None:
    into[MESSAGES] += counts[MESSAGES]
    into[CHECKINS] += counts[CHECKINS]
    into[ORDERS] += counts[ORDERS]
    into[FIRST], into[LAST] = min(into[FIRST], counts[FIRST]), max(into[LAST], counts[LAST])


_USER_COLUMNS = ("id", "first_name", "last_name", "username", "language_code", "created_at", "updated_at")
_MEMBER_COLUMNS = ("community_id", "user_id", "status", "is_leader", "joined_at", "last_active_at", "message_count",
                   "invite_depth", "first_active_on", "last_active_on", "active_days")


@cache
def _users_upsert(dialect: str):
    stmt = insert_rows(dialect, User.__table__, _USER_COLUMNS)
    return stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={c: stmt.excluded[c] for c in ("first_name", "last_name", "username", "language_code", "updated_at")}
        | {"erased": False},
    )


@cache
def _members_upsert(dialect: str):
    mt = Member.__table__
    stmt = insert_rows(dialect, mt, _MEMBER_COLUMNS)
    ex = stmt.excluded
    came_back = (mt.c.left_at.is_(None)) | (ex.last_active_at > mt.c.left_at)
    return stmt.on_conflict_do_update(
        index_elements=["community_id", "user_id"],
        set_={
            "last_active_at": case((mt.c.last_active_at.is_(None), ex.last_active_at),
                                   (ex.last_active_at > mt.c.last_active_at, ex.last_active_at),
                                   else_=mt.c.last_active_at),
            "message_count": mt.c.message_count + ex.message_count,
            "status": case((came_back, "member"), else_=mt.c.status),
            "left_at": case((came_back, None), else_=mt.c.left_at),
            "joined_at": case((mt.c.left_at.is_not(None) & (ex.last_active_at > mt.c.left_at), ex.joined_at),
                              else_=mt.c.joined_at),
            **rhythm_values((mt.c.first_active_on, mt.c.last_active_on, mt.c.active_days), ex.first_active_on,
                            ex.last_active_on, ex.active_days),
        },
    )


class ActivityTracker:
    """Collects sightings from any number of handlers; `flush` writes them in one transaction."""

    def __init__(self, *, default_locale: str, default_timezone: str, journal: ActivityJournal | None = None) -> None:
        self._journal = journal
        self._buffer: dict[tuple[int, int], _Sighting] = {}
        self._steps: stats_counters.Steps = {}
        self._community_ids: dict[int, int] = {}
        self._zones: dict[int, ZoneInfo] = {}  # by chat id, read with the community's id
        self._communities_read = time.monotonic()
        self._slot = (EPOCH, EPOCH, 0)  # the last sighting's slot of UTC: [start, end), number
        # Profiles already written unchanged: skipping them keeps steady chatter at zero user writes.
        self._written: OrderedDict[int, Profile] = OrderedDict()
        self._lock = asyncio.Lock()
        self._defaults = (default_locale, default_timezone)

    def record(self, *, chat_id: int, chat_title: str, profile: Profile, at: datetime, messages: int = 1) -> None:
        """A sighting of a member in a group: a message they wrote, or (`messages=0`) a button they pressed."""
        self.record_many((Sighting(chat_id, chat_title, profile, at, messages),))

    def record_deed(self, *, chat_id: int, chat_title: str, profile: Profile, at: datetime, checkins: int = 0,
                    orders: int = 0) -> None:
        """A check-in or an order placed, in the group or in private, once its transaction committed.
        It counts for the day and the member's rhythm; it does not make anyone a member."""
        self.record_many((Sighting(chat_id, chat_title, profile, at, 0, checkins, orders, False),))

    def count_step(self, *, community_id: int, tz_name: str, product_id: int, step: FunnelStep, at: datetime) -> None:
        """A funnel step that leaves no row of its own (a Buy press, a checkout opened), counted for
        the community-local day of `at` and written with the next flush. Not journaled: a process
        killed between flushes loses a few seconds of these counts, never a member's activity."""
        key = (community_id, product_id, step.value, at.astimezone(zone(tz_name)).date())
        self._steps[key] = self._steps.get(key, 0) + 1

    def record_many(self, sightings: Sequence[Sighting]) -> None:
        """Sightings journaled in one write, then buffered: once this returns, their updates may be
        acknowledged."""
        if not sightings:
            return
        if self._journal is not None:
            self._journal.write([_row(s) for s in sightings])
        for s in sightings:
            self._add(*s)

    def _add(self, chat_id: int, chat_title: str, profile: Profile, at: datetime, messages: int, checkins: int = 0,
             orders: int = 0, in_group: bool = True) -> None:
        key = (chat_id, profile.id)
        seen = self._buffer.get(key)
        start, end, slot = self._slot
        if not start <= at < end:  # datetime.timestamp() would cost most of this method's time
            slot = int(at.timestamp() // SLOT_SECONDS)
            start = slot_start(slot)
            self._slot = start, start + SLOT, slot
        if seen is None:
            self._buffer[key] = _Sighting(profile, chat_title, at, at, messages, in_group,
                                          {slot: [messages, checkins, orders, at, at]})
            return
        seen.profile, seen.count = profile, seen.count + messages
        if in_group:
            seen.in_group = True
        # Updates arrive out of order (concurrent handlers, late deliveries): keep the span.
        if at > seen.last_at:
            seen.last_at = at
        elif at < seen.first_at:
            seen.first_at = at
        counts = seen.slots.get(slot)
        if counts is None:
            seen.slots[slot] = [messages, checkins, orders, at, at]
            return
        counts[MESSAGES] += messages
        if checkins or orders:
            counts[CHECKINS] += checkins
            counts[ORDERS] += orders
        if at > counts[LAST]:
            counts[LAST] = at
        elif at < counts[FIRST]:
            counts[FIRST] = at

    async def forget_user(self, user_id: int) -> None:
        """Drop anything buffered for a user who is being erased, and journal that their earlier
        sightings are void (a replay after a crash skips them).

        Waits for a flush in progress, so that it cannot write their membership back after the
        erasure that follows this call.
        """
        async with self._lock:
            self._forget_buffered(user_id)
            if self._journal is not None:
                self._journal.write_erasure(user_id)

    def _forget_buffered(self, user_id: int) -> None:
        for key in [k for k in self._buffer if k[1] == user_id]:
            del self._buffer[key]
        self._written.pop(user_id, None)

    @property
    def pending(self) -> int:
        return len(self._buffer) + len(self._steps)

    async def flush(self, session: AsyncSession) -> int:
        """Write everything buffered; returns the number of member rows touched."""
        async with self._lock:
            batch, self._buffer = self._buffer, {}
            steps, self._steps = self._steps, {}
            journaled = self._journal.seal() if self._journal is not None else ()
            if not batch and not steps:
                if journaled:
                    self._journal.remove(journaled)  # erasures, and sightings they voided: nothing to write
                return 0
            try:
                written = await self._write(session, batch, steps)
                await session.commit()
            except Exception:
                await session.rollback()
                # Community ids learned in the rolled-back transaction may not exist: look them up again.
                self._community_ids.clear()
                # Put the batch back so the next flush retries it; newer sightings win.
                for key, seen in batch.items():
                    newer = self._buffer.get(key)
                    if newer is None:
                        self._buffer[key] = seen
                    else:
                        newer.merge(seen)
                for key, n in steps.items():
                    self._steps[key] = self._steps.get(key, 0) + n
                # The journal keeps what was sealed: the next flush holds it again and removes it.
                raise
            if journaled:
                self._journal.remove(journaled)
            # Only once committed do these profiles count as written (else the retry would skip them).
            for uid, written_profile in written.items():
                self._written[uid] = written_profile
                self._written.move_to_end(uid)
            while len(self._written) > PROFILE_CACHE_SIZE:
                self._written.popitem(last=False)
            return len(batch)

    async def adopt_dead(self) -> int:
        """Count what processes on this host journaled and never flushed before they died (at start,
        and every few seconds for a peer); how many sightings. They go into the buffer, and out of
        the journal with the next flush that commits."""
        if self._journal is None:
            return 0
        async with self._lock:
            adopted = 0
            for row in self._journal.adopt_dead():
                try:
                    sighting = _from_row(row)
                except (TypeError, ValueError, OverflowError, OSError) as exc:
                    log.warning("skipping a sighting in the activity journal that cannot be read: %s", exc)
                    continue
                self._add(*sighting)
                adopted += 1
            return adopted

    async def _write(self, session: AsyncSession, batch: dict[tuple[int, int], _Sighting],
                     steps: stats_counters.Steps) -> dict[int, Profile]:
        """Execute the upserts (no commit); returns the profiles written, for the cache once committed."""
        dialect = session.get_bind().dialect.name
        written = await self._write_sightings(session, batch, dialect) if batch else {}
        if steps:
            await execute_rows(session, stats_counters.funnel_upsert(dialect), stats_counters.FUNNEL_COLUMNS,
                               stats_counters.step_rows(steps))
        return written

    async def _write_sightings(self, session: AsyncSession, batch: dict[tuple[int, int], _Sighting],
                               dialect: str) -> dict[int, Profile]:
        communities = await self._resolve_communities(session, batch)
        users: dict[int, _Sighting] = {}
        for seen in batch.values():
            if self._written.get(seen.profile.id) != seen.profile and seen.profile.id not in users:
                users[seen.profile.id] = seen
        user_rows = [
            {"id": uid, "first_name": s.profile.first_name[:128], "last_name": s.profile.last_name,
             "username": s.profile.username, "language_code": s.profile.language_code,
             "created_at": s.first_at, "updated_at": s.last_at}
            for uid, s in sorted(users.items())
        ]
        # Rows in key order, as every batch writer of users orders them (bot/services/seen_users.py):
        # two batches never lock the same rows in opposite orders, which deadlocks on PostgreSQL.
        # One statement built once per dialect for all the rows (bot/services/upsert.py): a
        # multi-row VALUES literal would be compiled afresh on every flush, which took most of a
        # flush's CPU (about 1 s for 5,000 members) while the event loop waits.
        if user_rows:
            await execute_rows(session, _users_upsert(dialect), _USER_COLUMNS, user_rows)

        hours: stats_counters.Hours = {}
        days = self._days(batch, communities, hours)
        member_rows, elsewhere = [], []
        for (chat_id, user_id), s in sorted(batch.items()):
            community_id = communities.get(chat_id)
            if community_id is None:
                continue
            member_days = days[community_id, user_id]
            if s.in_group:
                member_rows.append({
                    "community_id": community_id, "user_id": user_id, "status": "member", "is_leader": False,
                    "joined_at": s.first_at, "last_active_at": s.last_at, "message_count": s.count,
                    "invite_depth": 0, "first_active_on": min(member_days), "last_active_on": max(member_days),
                    "active_days": len(member_days)})
            else:
                elsewhere.append({"b_community": community_id, "b_user": user_id, "b_at": s.last_at,
                                  "b_first": min(member_days), "b_last": max(member_days), "b_days": len(member_days)})
        if member_rows:
            await execute_rows(session, _members_upsert(dialect), _MEMBER_COLUMNS, member_rows)
        if elsewhere:
            await session.execute(activity_days.ACTIVE_ELSEWHERE, elsewhere)
        day_rows = [{"community_id": c, "user_id": u, "day": d, "messages": n[MESSAGES], "checkins": n[CHECKINS],
                     "orders": n[ORDERS], "first_at": n[FIRST], "last_at": n[LAST]}
                    for (c, u), by_day in sorted(days.items()) for d, n in sorted(by_day.items())]
        if day_rows:
            await execute_rows(session, activity_days.rows_upsert(dialect), activity_days.COLUMNS, day_rows)
        # Last: every worker's flush updates the same few hour rows, so they are held the shortest time.
        hour_rows = stats_counters.hour_rows(hours)
        if hour_rows:
            await execute_rows(session, stats_counters.hours_upsert(dialect), stats_counters.HOUR_COLUMNS, hour_rows)
        return {uid: seen.profile for uid, seen in users.items()}

    def _days(self, batch: dict[tuple[int, int], _Sighting], communities: dict[int, int],
              hours: stats_counters.Hours) -> dict[tuple[int, int], dict[date, list]]:
        """(community, user) -> local day -> counts; two chats folded into one community (a group
        that became a supergroup) add up. Adds each community's messages and orders per local hour
        to `hours`."""
        days: dict[tuple[int, int], dict[date, list]] = {}
        for (chat_id, user_id), seen in batch.items():
            community_id = communities.get(chat_id)
            if community_id is None:
                continue
            tz = self._zones.get(chat_id, UTC)
            by_day = days.setdefault((community_id, user_id), {})
            for slot, counts in seen.slots.items():
                day = slot_day(tz, slot)
                row = by_day.get(day)
                if row is None:
                    by_day[day] = list(counts)
                else:
                    _add_counts(row, counts)
                if counts[MESSAGES] or counts[ORDERS]:
                    key = (community_id, *stats_counters.slot_hour(tz, slot))
                    hour = hours.get(key)
                    if hour is None:
                        hours[key] = [counts[MESSAGES], counts[ORDERS]]
                    else:
                        hour[0] += counts[MESSAGES]
                        hour[1] += counts[ORDERS]
        return days

    async def _resolve_communities(self, session: AsyncSession, batch: dict[tuple[int, int], _Sighting]) -> dict[int, int]:
        if time.monotonic() - self._communities_read > COMMUNITY_CACHE_SECONDS:
            self._community_ids.clear()
            self._communities_read = time.monotonic()
        unknown = {chat_id: s.title for (chat_id, _), s in batch.items() if chat_id not in self._community_ids}
        if unknown:
            self._learn(await session.execute(select(Community.chat_id, Community.id, Community.timezone)
                                              .where(Community.chat_id.in_(unknown))))
            missing = [c for c in unknown if c not in self._community_ids]
            if missing:
                # Messages from a group the bot never saw being added to (it was down, or the update
                # expired): the bot is evidently there, so the community starts now.
                locale, tz = self._defaults
                now = min(s.first_at for s in batch.values())
                stmt = insert_for(session, Community.__table__).values([
                    {"chat_id": c, "title": unknown[c][:255], "timezone": tz, "currency": "USD", "default_locale": locale,
                     "active": True, "bot_status": BOT_STATUS_UNKNOWN, "bot_rights": {}, "settings": {},
                     "created_at": now, "updated_at": now}
                    for c in missing
                ]).on_conflict_do_nothing(index_elements=["chat_id"])
                await session.execute(stmt)
                self._learn(await session.execute(select(Community.chat_id, Community.id, Community.timezone)
                                                  .where(Community.chat_id.in_(missing))))
        return {chat_id: self._community_ids[chat_id] for chat_id, _ in batch if chat_id in self._community_ids}

    def _learn(self, rows) -> None:
        for chat_id, community_id, tz in rows:
            self._community_ids[chat_id] = community_id
            self._zones[chat_id] = zone(tz)

    def community_migrated(self, old_chat_id: int, new_chat_id: int) -> None:
        """Forget cached ids for both chats: the placeholder for the new one may have been merged away."""
        for chat_id in (old_chat_id, new_chat_id):
            self._community_ids.pop(chat_id, None)
            self._zones.pop(chat_id, None)


class ActivityFlusher:
    """Runs `tracker.flush` every `interval` seconds until stopped, and once more at stop; with
    `recover`, also counts what dead processes left in the journal, every `sweep_every` seconds."""

    def __init__(self, tracker: ActivityTracker, session_factory, interval: float, *,
                 sweep_every: float = SWEEP_SECONDS) -> None:
        self._tracker, self._sessions, self._interval = tracker, session_factory, interval
        self._sweep_every = sweep_every
        self._task: asyncio.Task | None = None
        self._sweeper: asyncio.Task | None = None
        self._stopping = asyncio.Event()

    async def recover(self) -> int:
        """Count the sightings dead processes journaled and did not flush, and flush them now."""
        adopted = await self._tracker.adopt_dead()
        if adopted:
            log.warning("counting %d sighting(s) that a stopped process journaled and did not write", adopted)
            await self.flush_now()
        return adopted

    def start(self, *, recover: bool = False) -> None:
        self._task = asyncio.create_task(self._loop(), name="activity-flusher")
        if recover:
            self._sweeper = asyncio.create_task(self._sweep(), name="activity-journal-sweep")

    async def _sweep(self) -> None:
        # Never cancelled: a flush cut off mid-way would lose its batch.
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self._sweep_every)
            except TimeoutError:
                try:
                    await self.recover()
                except Exception:  # noqa: BLE001 - looked at again next time
                    log.warning("could not look for activity journals left by stopped processes", exc_info=True)

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)
            except TimeoutError:
                await self.flush_now()
        # Once more at stop, also when stop came during a flush (sightings recorded meanwhile).
        await self.flush_now()

    async def flush_now(self) -> None:
        try:
            async with self._sessions() as session:
                await self._tracker.flush(session)
        except Exception:
            log.exception("activity flush failed; %d sightings kept for the next attempt", self._tracker.pending)

    async def stop(self) -> None:
        self._stopping.set()
        if self._sweeper is not None:
            await self._sweeper
            self._sweeper = None
        if self._task is not None:
            await self._task
