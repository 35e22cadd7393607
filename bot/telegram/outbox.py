"""The outbox table as the sender's journal: a fire-and-forget message outlives the process that
queued it.

A handler's reply into a group waits in the sender for the group's budget, up to a minute after the
update was acknowledged to Telegram, which will not deliver it again. A message queued as durable
is therefore written to the `outbox` table before its update counts as handled (the de-dup
middleware awaits `Journal.persisted()` before recording the update done), and its row is deleted
once the message is sent or refused for good. A message still queued when the sender stops keeps
its row. Rows whose owner died are taken over by another worker (`Recovery`) and sent.

Cost: entries queued while a write is under way go together in the next one, a single INSERT of
many rows, and every waiter awaits the write that holds its own entries; deletes are gathered for a
second, or ride along with the next write. A message sent before its write began is never written.
With nothing durable pending, an update pays one attribute check (`Journal.writing`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiogram.methods
from aiogram.methods.base import TelegramMethod
from pydantic_core import PydanticSerializationError
from redis.asyncio import Redis
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from models.outbox import OutboxMessage
from models.types import utcnow

log = logging.getLogger(__name__)

TABLE = OutboxMessage.__table__
# Deletes wait this long for company; a crash in between sends those messages once more.
DELETE_EVERY = 1.0
# Ids per DELETE: well under SQLite's limit on bound parameters.
DELETE_CHUNK = 500
# A dead peer's heartbeat lapses within 10 s (bot/telegram/presence.py); its rows go out this soon after.
RECOVERY_EVERY = 4.0


class JournalError(RuntimeError):
    """The journal could not be written: the update that queued the message must not count as handled."""


def worker_name() -> str:
    """A name for a process without Redis (and so without a Presence): unique per start."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def serialize(method: TelegramMethod[Any]) -> str:
    """The method's JSON for the table. Fields left at their defaults stay out, so aiogram's
    `Default(...)` placeholders (the bot's parse mode...) are resolved by the bot that sends it, and a
    value set to None stays None. A method that uploads a file cannot be rebuilt from JSON."""
    try:
        return method.model_dump_json(exclude_defaults=True)
    except PydanticSerializationError as exc:
        raise ValueError(f"{type(method).__name__} cannot be durable: only a method without uploaded files "
                         f"(InputFile) can be written to the outbox ({exc})") from None


def rebuild(method: str, payload: str) -> TelegramMethod[Any]:
    kind = getattr(aiogram.methods, method, None)
    if not (isinstance(kind, type) and issubclass(kind, TelegramMethod)):
        raise ValueError(f"{method!r} is not a Bot API method")
    return kind.model_validate_json(payload)


class Entry:
    """One durable message: written (`row_id`), waiting to be, or `done` (sent or refused for good)."""

    __slots__ = ("chat_id", "method", "payload", "row_id", "done")

    def __init__(self, chat_id: int, method: str, payload: str, row_id: int | None = None) -> None:
        self.chat_id, self.method, self.payload, self.row_id = chat_id, method, payload, row_id
        self.done = False


@dataclass(frozen=True, slots=True)
class Orphan:
    """A row taken over from a dead worker: its message, rebuilt, and its entry (already written)."""

    method: TelegramMethod[Any]
    entry: Entry


class Journal:
    """Writes and deletes outbox rows in batches for the sender; `owner` names this worker."""

    def __init__(self, engine: AsyncEngine, owner: str, *, delete_every: float = DELETE_EVERY) -> None:
        self.owner = owner
        self._engine, self._delete_every = engine, delete_every
        self._queued: list[Entry] = []
        # Resolve (to None or the write's error) when the write that takes `_queued`, or the one
        # under way, is committed.
        self._queued_write: asyncio.Future[BaseException | None] | None = None
        self._current_write: asyncio.Future[BaseException | None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._doomed: list[int] = []  # row ids to delete
        self._deleter: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def writing(self) -> bool:
        """Entries are queued or being written: `persisted()` would wait."""
        return self._writer is not None

    def record(self, chat_id: int, method: TelegramMethod[Any], payload: str) -> Entry:
        entry = Entry(chat_id, type(method).__name__, payload)
        self._queued.append(entry)
        if self._queued_write is None:
            self._queued_write = asyncio.get_running_loop().create_future()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name="outbox-writer")
        return entry

    async def persisted(self) -> None:
        """Until every entry recorded so far is written; JournalError if its write failed."""
        write = self._queued_write or self._current_write
        if write is None:
            return
        # Shielded: a waiter cancelled (a shutdown) must not cancel the write for the others.
        error = await asyncio.shield(write)
        if error is not None:
            raise JournalError(f"the outbox could not be written: {error!r}") from error

    def finished(self, entry: Entry) -> None:
        """The message was sent or refused for good: its row goes, or is never written."""
        entry.done = True
        if entry.row_id is not None:
            self._doom([entry.row_id])

    async def close(self) -> None:
        """Write what is still queued (messages the sender gave up on at shutdown keep their rows)
        and delete what is finished, now."""
        self._closing = True
        while self._writer is not None:
            await asyncio.shield(self._writer)
        if self._deleter is not None:
            self._deleter.cancel()
            await asyncio.gather(self._deleter, return_exceptions=True)
        await self._delete()
        self._closing = False  # a sender started again journals again

    # --- recovery -----------------------------------------------------------------------------

    async def owners(self) -> list[str]:
        """Every worker with rows, this one included."""
        async with self._engine.connect() as conn:
            return list((await conn.execute(select(TABLE.c.owner).distinct())).scalars())

    async def take_over(self, owner: str) -> list[Orphan]:
        """Make `owner`'s rows this worker's, atomically: of workers racing for them, one gets them.
        Rows that no longer make a Bot API call (a method renamed since) are deleted and logged."""
        async with self._engine.begin() as conn:
            rows = (await conn.execute(
                update(TABLE).where(TABLE.c.owner == owner).values(owner=self.owner)
                .returning(TABLE.c.id, TABLE.c.chat_id, TABLE.c.method, TABLE.c.payload))).all()
        orphans, unusable = [], []
        for row_id, chat_id, method, payload in sorted(rows):
            try:
                orphans.append(Orphan(rebuild(method, payload), Entry(chat_id, method, payload, row_id)))
            except ValueError as exc:
                log.error("outbox row %s (%s to %s) cannot be sent and is dropped: %s", row_id, method, chat_id, exc)
                unusable.append(row_id)
        self._doom(unusable)
        return orphans

    # --- writing and deleting -----------------------------------------------------------------

    async def _write(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                self._current_write, self._queued_write = self._queued_write, None
                error: BaseException | None = None
                try:
                    await self._insert(batch)
                except Exception as exc:  # noqa: BLE001 - the waiters are told; their updates are not recorded done
                    log.error("could not write %d message(s) to the outbox: %r", len(batch), exc)
                    error = exc
                self._current_write.set_result(error)
                self._current_write = None
        finally:
            self._writer = None
            for write in (self._current_write, self._queued_write):  # only when cancelled mid-write
                if write is not None and not write.done():
                    write.set_result(JournalError("the outbox writer was stopped"))

    async def _insert(self, batch: list[Entry]) -> None:
        live = [entry for entry in batch if not entry.done]
        if not live and not self._doomed:
            return
        doomed, self._doomed = self._doomed, []
        written = []
        try:
            async with self._engine.begin() as conn:
                if live:
                    now = utcnow()
                    # Ids in no promised order (asking SQLAlchemy for the parameters' order costs one
                    # INSERT per row on SQLite): rows are told apart by what they hold. Rows that
                    # hold the same message to the same chat are interchangeable.
                    written = (await conn.execute(
                        insert(TABLE).returning(TABLE.c.id, TABLE.c.method, TABLE.c.payload),
                        [{"owner": self.owner, "chat_id": e.chat_id, "method": e.method, "payload": e.payload,
                          "created_at": now} for e in live])).all()
                await _delete_rows(conn, doomed)
        except BaseException:
            self._doomed[:0] = doomed
            raise
        ids: dict[tuple[str, str], list[int]] = {}
        for row_id, method, payload in sorted(written, key=lambda row: row[0], reverse=True):
            ids.setdefault((method, payload), []).append(row_id)
        sent_meanwhile = []
        for entry in live:
            entry.row_id = ids[entry.method, entry.payload].pop()  # the lowest id left: alike rows keep their order
            if entry.done:
                sent_meanwhile.append(entry.row_id)
        self._doom(sent_meanwhile)

    def _doom(self, row_ids: list[int]) -> None:
        if not row_ids:
            return
        self._doomed.extend(row_ids)
        if self._deleter is None and not self._closing:
            self._deleter = asyncio.create_task(self._delete_later(), name="outbox-deleter")

    async def _delete_later(self) -> None:
        try:
            await asyncio.sleep(self._delete_every)
            await self._delete()
        finally:
            self._deleter = None
            if self._doomed and not self._closing:  # more came meanwhile, or the delete failed
                self._deleter = asyncio.create_task(self._delete_later(), name="outbox-deleter")

    async def _delete(self) -> None:
        doomed, self._doomed = self._doomed, []
        if not doomed:
            return
        try:
            async with self._engine.begin() as conn:
                await _delete_rows(conn, doomed)
        except Exception as exc:  # noqa: BLE001 - tried again with the next delete
            log.warning("could not delete %d sent message(s) from the outbox: %r", len(doomed), exc)
            self._doomed[:0] = doomed
        except BaseException:
            self._doomed[:0] = doomed
            raise


async def _delete_rows(conn, row_ids: list[int]) -> None:
    for start in range(0, len(row_ids), DELETE_CHUNK):
        await conn.execute(delete(TABLE).where(TABLE.c.id.in_(row_ids[start:start + DELETE_CHUNK])))


class Recovery:
    """Sends what dead workers left in the outbox: at start, and with Redis every `every` seconds.

    Without Redis there is one process, so every row that is not this process's own is an orphan.
    With Redis a worker is dead once its heartbeat key (`alive_prefix` + its name) is gone.
    `adopt` queues the rows taken over, oldest first (the sender's `adopt`).
    """

    def __init__(self, journal: Journal, adopt: Callable[[list[Orphan]], None], *, redis: Redis | None = None,
                 alive_prefix: str = "", every: float = RECOVERY_EVERY) -> None:
        self._journal, self._adopt = journal, adopt
        self._redis, self._alive_prefix, self._every = redis, alive_prefix, every
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """Take over and queue every dead worker's rows; how many."""
        others = [owner for owner in await self._journal.owners() if owner != self._journal.owner]
        taken: list[Orphan] = []
        for owner in await self._dead(others):
            orphans = await self._journal.take_over(owner)
            if orphans:
                log.warning("sending %d message(s) that worker %s queued and did not send", len(orphans), owner)
            taken.extend(orphans)
        taken.sort(key=lambda orphan: orphan.entry.row_id)
        self._adopt(taken)
        return len(taken)

    async def _dead(self, owners: list[str]) -> list[str]:
        if self._redis is None or not owners:
            return owners
        async with self._redis.pipeline(transaction=False) as pipe:
            for owner in owners:
                pipe.exists(self._alive_prefix + owner)
            alive = await pipe.execute()
        return [owner for owner, beating in zip(owners, alive) if not beating]

    def start(self) -> None:
        """Keep looking for peers that died (only with Redis: without it no peer exists)."""
        if self._redis is not None:
            self._task = asyncio.create_task(self._watch(), name="outbox-recovery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001 - looked at again next time
                log.warning("could not look for messages left by dead workers", exc_info=True)
