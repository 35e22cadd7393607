"""Database engine and sessions."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection, AsyncAdapt_aiosqlite_cursor
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.config import StartupError

SessionFactory = async_sessionmaker[AsyncSession]


class DatabaseUnavailable(StartupError):
    """The database cannot be reached; the message is one line for the operator."""


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    parsed = make_url(url)
    kwargs: dict = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One writer at a time: wait for the lock instead of failing with "database is locked".
        kwargs["connect_args"] = {"timeout": 30}
        # Rolled back on return only when a transaction is open: see _sqlite_reset.
        kwargs["pool_reset_on_return"] = None
    else:
        # Connections beyond the pool are closed when returned: in a rush each new one cost a
        # connect and cold prepared-statement caches, so the pool holds what a worker's rush uses.
        kwargs.update(pool_size=20, max_overflow=10)
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "reset", _sqlite_reset)
    else:
        event.listen(engine.sync_engine.pool, "checkin", _note_returned)
        event.listen(engine.sync_engine.pool, "checkout", _ping_if_idle)
    return engine


# SQLAlchemy's pool_pre_ping pings on every checkout, and a session checks out once per
# transaction: two of the dozen round trips of a Confirm (bench/orders_race.py --e2e) were pings.
# A connection used a moment ago is alive unless the server went away in that moment, which fails
# one update that Telegram then delivers again; one idle for longer is pinged first.
PING_AFTER_IDLE_SECONDS = 10.0


def _note_returned(_dbapi_connection, record) -> None:
    record.info["returned_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
    returned_at = record.info.get("returned_at")
    if returned_at is None or time.monotonic() - returned_at < PING_AFTER_IDLE_SECONDS:
        return
    try:
        dbapi_connection.ping()
    except Exception as exc:
        # The pool throws this connection away and checks out another (or connects anew).
        raise DisconnectionError(f"database connection lost while idle: {exc}") from exc


class _OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A statement in one trip to aiosqlite's thread instead of four.

    SQLAlchemy's aiosqlite cursor creates the cursor, executes, fetches and closes in separate
    trips, each a queue hand-off to the connection's thread and a wake-up of the event loop.
    Those hand-offs, not SQLite, were most of a short transaction's cost: /start for a new user
    (a SELECT, an INSERT ... RETURNING, a COMMIT) took nine of them, about 0.4 ms of CPU each
    (bench/foundation.py, (b)). The same sqlite3 calls run, in the same order, on the same thread.
    """

    __slots__ = ()
    # The sqlite3 cursor is closed in the thread once its rows are fetched; rowcount, lastrowid
    # and description stay readable after that.
    _awaitable_cursor_close = False

    def __init__(self, adapt_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None
        self._soft_closed_memoized = {}
        self._rows = deque()

    async def _execute_async(self, operation, parameters):
        async with self._adapt_connection._execute_mutex:
            self._cursor, rows = await self._connection._execute(_run_one, self._connection._conn, operation,
                                                                 () if parameters is None else parameters, False)
            self._rows = deque(rows)

    async def _executemany_async(self, operation, seq_of_parameters):
        async with self._adapt_connection._execute_mutex:
            self._cursor, _ = await self._connection._execute(_run_one, self._connection._conn, operation,
                                                              seq_of_parameters, True)

    def close(self) -> None:
        self._rows.clear()


def _run_one(conn, operation, parameters, many: bool):
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
            return cursor, ()
        cursor.execute(operation, parameters)
        return cursor, (cursor.fetchall() if cursor.description else ())
    finally:
        cursor.close()


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _OneTripCursor

    # sqlite3 opens a transaction only before a write, so a session that only read (an existing
    # user's /start) has nothing to end; the COMMIT or ROLLBACK would still cost a trip to the
    # connection's thread. The connection's thread is idle here: SQLAlchemy ends a transaction
    # only after its last statement returned.
    def commit(self) -> None:
        if self._connection._connection and self._connection.in_transaction:
            super().commit()

    def rollback(self) -> None:
        if self._connection._connection and self._connection.in_transaction:
            super().rollback()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.__class__ = _OneTripConnection
    # WAL with synchronous=NORMAL doubles write throughput and lets readers run beside the writer.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_reset(dbapi_connection, _record, state) -> None:
    """The pool's reset-on-return, minus the ROLLBACK after a COMMIT.

    SQLAlchemy rolls back every connection it takes back, also right after a session committed.
    On aiosqlite each statement is a round trip to the connection's thread (the dearest part of a
    short transaction), and a session that commits then returns its connection paid one more for a
    ROLLBACK with nothing to roll back. SQLite knows whether a transaction is open; roll back then.
    """
    if state.terminate_only or not state.asyncio_safe:
        return  # the connection is being thrown away (or cannot be awaited here): nothing to reset
    if dbapi_connection.driver_connection.in_transaction:
        dbapi_connection.rollback()


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def check_connection(engine: AsyncEngine) -> None:
    """Raise DatabaseUnavailable with a one-line reason when the database cannot be reached."""
    from sqlalchemy import text

    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # every driver raises its own family; the operator needs one line
        url = make_url(str(engine.url)).render_as_string(hide_password=True)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(f"database unreachable at {url}: {reason}") from None


class WriteCounter:
    """Counts statements that write (INSERT/UPDATE/DELETE); the benchmark reports writes per message."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, _conn, _cursor, statement: str, *_args) -> None:
        if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.count += 1
