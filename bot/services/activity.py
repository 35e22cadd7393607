"""Member activity from group chatter, buffered in memory and written in batches.

A busy group sends thousands of messages a minute; writing a row per message would make the
database the bottleneck. The tracker keeps the latest sighting per (chat, user) and flushes all of
them every few seconds (and at shutdown) with a handful of multi-row upserts. Until a flush has
committed them, sightings are also in a journal on local disk (bot/services/activity_journal.py),
which the next start, or a peer on the same host, counts when the process was killed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from typing import NamedTuple

from sqlalchemy import case, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.activity_journal import ActivityJournal
from bot.services.upsert import insert_for, insert_rows, rows_params
from bot.services.users import Profile
from models import Community, Member, User
from models.community import BOT_STATUS_UNKNOWN

log = logging.getLogger(__name__)

PROFILE_CACHE_SIZE = 200_000
# How often a running bot looks for the journal of a process on this host that died (a peer worker).
SWEEP_SECONDS = 5.0


class Sighting(NamedTuple):
    """A member seen in a group: a message they wrote, or (`messages=0`) a button they pressed."""

    chat_id: int
    chat_title: str
    profile: Profile
    at: datetime
    messages: int = 1


def _row(s: Sighting) -> list:
    # The journal's line format (the user's id third: bot/services/activity_journal.py USER_ID).
    p = s.profile
    return [s.chat_id, s.chat_title, p.id, p.first_name, p.last_name, p.username, p.language_code,
            s.at.timestamp(), s.messages]


def _from_row(row: list) -> Sighting:
    chat_id, title, uid, first_name, last_name, username, language_code, at, messages = row
    if not (type(chat_id) is int and type(uid) is int and type(messages) is int and isinstance(title, str)
            and isinstance(first_name, str)):
        raise ValueError(f"not a sighting: {row!r}")
    return Sighting(chat_id, title, Profile(uid, first_name, last_name, username, language_code),
                    datetime.fromtimestamp(at, timezone.utc), messages)


@dataclass(slots=True)
class _Sighting:
    profile: Profile
    title: str
    first_at: datetime
    last_at: datetime
    count: int


_USER_COLUMNS = ("id", "first_name", "last_name", "username", "language_code", "created_at", "updated_at")
_MEMBER_COLUMNS = ("community_id", "user_id", "status", "is_leader", "joined_at", "last_active_at", "message_count",
                   "invite_depth")


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
        },
    )


class ActivityTracker:
    """Collects sightings from any number of handlers; `flush` writes them in one transaction."""

    def __init__(self, *, default_locale: str, default_timezone: str, journal: ActivityJournal | None = None) -> None:
        self._journal = journal
        self._buffer: dict[tuple[int, int], _Sighting] = {}
        self._community_ids: dict[int, int] = {}
        # Profiles already written unchanged: skipping them keeps steady chatter at zero user writes.
        self._written: OrderedDict[int, Profile] = OrderedDict()
        self._lock = asyncio.Lock()
        self._defaults = (default_locale, default_timezone)

    def record(self, *, chat_id: int, chat_title: str, profile: Profile, at: datetime, messages: int = 1) -> None:
        """A sighting of a member in a group: a message they wrote, or (`messages=0`) a button they pressed."""
        self.record_many((Sighting(chat_id, chat_title, profile, at, messages),))

    def record_many(self, sightings: Sequence[Sighting]) -> None:
        """Sightings journaled in one write, then buffered: once this returns, their updates may be
        acknowledged."""
        if not sightings:
            return
        if self._journal is not None:
            self._journal.write([_row(s) for s in sightings])
        for s in sightings:
            self._add(*s)

    def _add(self, chat_id: int, chat_title: str, profile: Profile, at: datetime, messages: int) -> None:
        key = (chat_id, profile.id)
        seen = self._buffer.get(key)
        if seen is None:
            self._buffer[key] = _Sighting(profile, chat_title, at, at, messages)
        else:
            seen.profile, seen.count = profile, seen.count + messages
            # Updates arrive out of order (concurrent handlers, late deliveries): keep the span.
            if at > seen.last_at:
                seen.last_at = at
            elif at < seen.first_at:
                seen.first_at = at

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
        return len(self._buffer)

    async def flush(self, session: AsyncSession) -> int:
        """Write everything buffered; returns the number of member rows touched."""
        async with self._lock:
            batch, self._buffer = self._buffer, {}
            journaled = self._journal.seal() if self._journal is not None else ()
            if not batch:
                if journaled:
                    self._journal.remove(journaled)  # erasures, and sightings they voided: nothing to write
                return 0
            try:
                written = await self._write(session, batch)
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
                        newer.count += seen.count
                        newer.first_at = min(newer.first_at, seen.first_at)
                        newer.last_at = max(newer.last_at, seen.last_at)
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

    async def _write(self, session: AsyncSession, batch: dict[tuple[int, int], _Sighting]) -> dict[int, Profile]:
        """Execute the upserts (no commit); returns the profiles written, for the cache once committed."""
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
        dialect = session.get_bind().dialect.name
        if user_rows:
            await session.execute(_users_upsert(dialect), rows_params(dialect, _USER_COLUMNS, user_rows))

        member_rows = [
            {"community_id": communities[chat_id], "user_id": user_id, "status": "member", "is_leader": False,
             "joined_at": s.first_at, "last_active_at": s.last_at, "message_count": s.count, "invite_depth": 0}
            for (chat_id, user_id), s in sorted(batch.items()) if chat_id in communities
        ]
        if member_rows:
            await session.execute(_members_upsert(dialect), rows_params(dialect, _MEMBER_COLUMNS, member_rows))
        return {uid: seen.profile for uid, seen in users.items()}

    async def _resolve_communities(self, session: AsyncSession, batch: dict[tuple[int, int], _Sighting]) -> dict[int, int]:
        unknown = {chat_id: s.title for (chat_id, _), s in batch.items() if chat_id not in self._community_ids}
        if unknown:
            rows = await session.execute(select(Community.chat_id, Community.id).where(Community.chat_id.in_(unknown)))
            self._community_ids.update(dict(rows.all()))
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
                rows = await session.execute(select(Community.chat_id, Community.id).where(Community.chat_id.in_(missing)))
                self._community_ids.update(dict(rows.all()))
        return {chat_id: self._community_ids[chat_id] for chat_id, _ in batch if chat_id in self._community_ids}

    def community_migrated(self, old_chat_id: int, new_chat_id: int) -> None:
        """Forget cached ids for both chats: the placeholder for the new one may have been merged away."""
        self._community_ids.pop(old_chat_id, None)
        self._community_ids.pop(new_chat_id, None)


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
