"""The senders of incoming updates, written in batches: one upsert for all the updates in flight.

Every handled update upserts its sender (the profile Telegram sent, and `can_dm` once they write in
private). A statement and a commit per update cost more than most handlers do (bench/foundation.py,
(b): /start from 20,000 new users). Updates handled at the same moment therefore share one
transaction: an INSERT … ON CONFLICT DO UPDATE that writes only rows that changed, a SELECT of the
unchanged ones, a COMMIT. Each caller waits for that commit, so the user's row exists before the
handler runs, as it did when every update wrote its own.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import bindparam, or_, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.services.upsert import insert_in
from bot.services.users import Profile, new_user_row
from models import User

log = logging.getLogger(__name__)

# Users per transaction: bounds how long one batch holds its rows.
MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class SeenUser:
    """The user row as it stands after the update's upsert: plain values, no ORM object to track."""

    id: int
    first_name: str
    last_name: str | None
    username: str | None
    language_code: str | None
    locale: str | None
    can_dm: bool

    display_name = property(User.display_name.fget)

    @property
    def profile(self) -> Profile:
        return Profile(self.id, self.first_name, self.last_name, self.username, self.language_code)


_users = User.__table__
_SEEN = (_users.c.id, _users.c.first_name, _users.c.last_name, _users.c.username, _users.c.language_code,
         _users.c.locale, _users.c.can_dm)
_READ_SEEN = select(*_SEEN).where(_users.c.id.in_(bindparam("ids", expanding=True)))
_PROFILE = ("first_name", "last_name", "username", "language_code")


@cache
def _upsert(dialect: str):
    """Insert new users; for known ones, write only when something changed (an unchanged user's
    /start reads, it does not write). Rows come back for inserted and updated users only."""
    stmt = insert_in(dialect, _users)
    new = stmt.excluded
    changed = or_(*(_users.c[name].is_distinct_from(new[name]) for name in _PROFILE),
                  new.can_dm & ~_users.c.can_dm, _users.c.erased)
    return stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={**{name: new[name] for name in _PROFILE}, "can_dm": _users.c.can_dm | new.can_dm,
              "erased": False, "updated_at": new.updated_at},
        where=changed,
    ).returning(*_SEEN)


@dataclass(slots=True)
class _Ask:
    profile: Profile
    now: datetime
    opens_dm: bool
    future: asyncio.Future

    def merge(self, profile: Profile, now: datetime, opens_dm: bool) -> None:
        """A second update from the same user before the batch was written: the newest profile wins."""
        if now >= self.now:
            self.profile, self.now = profile, now
        self.opens_dm = self.opens_dm or opens_dm


class SeenUsers:
    """`remember` the sender of each update; concurrent calls are written together.

    One batch is written at a time; what arrives meanwhile forms the next. The first caller of an
    idle moment starts the writer task, which runs after the updates already scheduled on the loop,
    so the updates of one getUpdates answer join the same batch.
    """

    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions
        self._pending: dict[int, _Ask] = {}
        self._writer: asyncio.Task | None = None
        self.batches = 0  # transactions written, for tests

    async def remember(self, profile: Profile, *, now: datetime, opens_dm: bool) -> SeenUser:
        """The user's row after writing what Telegram says of them now. Writing to the bot in
        private (`opens_dm`) is what allows bot-initiated messages to them."""
        ask = self._pending.get(profile.id)
        if ask is None:
            ask = self._pending[profile.id] = _Ask(profile, now, opens_dm, asyncio.get_running_loop().create_future())
        else:
            ask.merge(profile, now, opens_dm)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all(), name="seen-users")
        # Shielded: a cancelled update must not cancel the batch the others are waiting for.
        return await asyncio.shield(ask.future)

    async def _write_all(self) -> None:
        batch: list[_Ask] = []
        try:
            while self._pending:
                ids = list(self._pending)[:MAX_BATCH]
                batch = [self._pending.pop(i) for i in ids]
                await self._write(batch)
        finally:
            self._writer = None
            # Only when the writer itself was cancelled (shutdown): nobody may wait forever.
            for ask in [*batch, *self._pending.values()]:
                if not ask.future.done():
                    ask.future.cancel()

    async def _write(self, batch: list[_Ask]) -> None:
        try:
            seen = await self._upsert(batch)
        except Exception as exc:
            if len(batch) == 1 or _unreachable(exc):
                for ask in batch:
                    ask.future.set_exception(exc)
                return
            # One bad row must not fail every update of the batch: write them one by one.
            log.warning("writing %d users at once failed (%s); writing them one by one", len(batch), exc)
            for ask in batch:
                await self._write([ask])
            return
        for ask in batch:
            ask.future.set_result(seen[ask.profile.id])

    async def _upsert(self, batch: list[_Ask]) -> dict[int, SeenUser]:
        self.batches += 1
        async with self._sessions() as session:
            return await session.run_sync(_upsert_sync, batch)


def _upsert_sync(session, batch: list[_Ask]) -> dict[int, SeenUser]:
    conn = session.connection()
    upsert = _upsert(conn.dialect.name)
    # In id order, as the activity flusher writes users: two batches never wait on each other's
    # rows in opposite orders (a deadlock on PostgreSQL).
    rows = [new_user_row(ask.profile, now=ask.now, can_dm=ask.opens_dm) for ask in sorted(batch, key=lambda a: a.profile.id)]
    got = {}
    for piece in _pieces(rows):
        got.update((row.id, row) for row in conn.execute(upsert, piece))
    unchanged = [r["id"] for r in rows if r["id"] not in got]
    for piece in _pieces(unchanged):
        got.update((row.id, row) for row in conn.execute(_READ_SEEN, {"ids": piece}))
    session.commit()
    return {uid: SeenUser(**row._asdict()) for uid, row in got.items()}


def _pieces(items: list) -> list[list]:
    """`items` cut into runs whose lengths are powers of two, longest first.

    Each distinct number of rows is a distinct SQL text, and the drivers keep every text they
    prepared (sqlite3 up to 128 per connection, asyncpg 100, each with its plan on PostgreSQL's
    side too): batches of every size from 1 to 500 grew the bot by about 0.5 KB per update until
    those caches filled (bench/foundation.py, (b)). Powers of two make nine texts of each.
    """
    pieces, start = [], 0
    while start < len(items):
        size = 1 << (len(items) - start).bit_length() - 1
        pieces.append(items[start:start + size])
        start += size
    return pieces


def _unreachable(exc: Exception) -> bool:
    """The database, not a row, failed: writing the rows one by one would fail each in turn."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, OSError, TimeoutError))

