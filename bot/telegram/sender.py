"""The one way out for bot-initiated messages and for replies in groups.

Replies to a user's own command in a private chat go straight through the bot; everything the
bot starts by itself, and every reply it owes a group (bot/telegram/group_reply.py), goes through
a `Sender`, so that Telegram's limits, its errors and its 403s are handled in one place:

- Before every attempt the shared `SendBudget` is asked; Telegram should never have to say 429.
  A method sent with `allow_paid_broadcast=True` (Telegram charges 0.1 Star a message) asks for
  the paid overall limit, 1,000 a second instead of 30, and still waits for its chat's limit.
- Each chat has its own queue (a lane) served by at most one worker at a time, so messages into
  one chat keep their order. Lanes with work wait in a FIFO of ready lanes; a lane that must
  wait (its budget, a 429, a back-off) is parked on a timer and leaves the workers free for the
  others. Workers sleep on the ready queue when there is nothing to do.
- 429 pauses the chat in the shared budget and is retried; 5xx and network failures are retried
  with exponential back-off and jitter up to `max_attempts`; a group upgraded to a supergroup is
  followed once; 403 marks the user unreachable or the group inactive; other 4xx fail at once.
  Every outcome resolves the caller's `Delivery` and is counted in `Sender.stats`; nothing raises.
- A durable message (`submit(..., durable=True)`) is also written to the outbox table (its
  `Journal`, bot/telegram/outbox.py) and deleted when it finished for good, so that a message
  queued by an update already acknowledged is sent even if this process dies first.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import EditMessageText, SendDocument, SendMessage, SendPhoto
from aiogram.methods.base import TelegramMethod
from aiogram.types import BufferedInputFile, InputFile, LinkPreviewOptions, Message

from bot.core.db import SessionFactory
from bot.services import communities, users
from bot.telegram.outbox import Entry, Journal, Orphan, serialize
from bot.telegram.send_budget import SendBudget
from models.types import utcnow

logger = logging.getLogger(__name__)

# 429s do not count as failed attempts (the budget was only too optimistic), but a chat that
# keeps answering 429 is given up on eventually rather than held forever.
MAX_FLOOD_WAITS = 10

# Failures worth another attempt: the request may not have reached Telegram, or Telegram broke.
# ClientDecodeError covers a proxy in front of the Bot API answering with an HTML error page.
_TRANSIENT = (TelegramNetworkError, TelegramServerError, ClientDecodeError, aiohttp.ClientError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a send ended. `error` is 'forbidden', 'bad_request', 'not_found', 'gave_up' or 'withdrawn'."""

    ok: bool
    message: Message | None = None
    error: str | None = None
    description: str | None = None


@dataclass(slots=True)
class SenderStats:
    """Counters for logs and benchmarks. `retried` counts every attempt made again (429s too)."""

    sent: int = 0
    retried: int = 0
    rate_limited: int = 0
    failed: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True, eq=False)
class _Job:
    method: TelegramMethod[Any]
    future: asyncio.Future[Delivery]
    entry: Entry | None = None  # its outbox row, for a durable message
    attempts: int = 0  # failed attempts, counted against max_attempts
    flood_waits: int = 0
    migrated: bool = False
    # Called just before each request: a caller that must know whether Telegram may have the
    # message (a campaign's journal) learns it here, not when it queued the message; returning
    # False withdraws it (a campaign's quiet hours began while it waited for the budget).
    on_attempt: Callable[[], bool | None] | None = None

    @property
    def chat_id(self) -> int:
        return int(self.method.chat_id)

    @property
    def paid(self) -> bool:
        return getattr(self.method, "allow_paid_broadcast", None) is True


class Sender:
    """An outbox with per-chat order, shared rate limits, retries and 403 bookkeeping.

    `clock` gives the time recorded with database changes (a user who blocked the bot, a group
    that removed it). Call `start()` before sending and `stop()` before closing the database;
    `stats` holds the counters; `budget` is the shared budget every attempt asks first. Without a
    `journal` durable messages are checked but kept in memory only (tests, benchmarks).
    """

    def __init__(
        self,
        bot: Bot,
        sessions: SessionFactory,
        budget: SendBudget,
        *,
        max_attempts: int = 5,
        base_backoff: float = 0.5,
        workers: int = 8,
        clock: Callable[[], datetime] = utcnow,
        journal: Journal | None = None,
    ) -> None:
        self.stats = SenderStats()
        self.journal = journal
        self._bot = bot
        self._sessions = sessions
        self.budget = budget
        self._max_attempts = max_attempts
        self._base_backoff = base_backoff
        self._worker_count = workers
        self._clock = clock
        self._lanes: dict[int, deque[_Job]] = {}  # only lanes with work; keyed by the chat submitted to
        self._ready: asyncio.Queue[int] = asyncio.Queue()
        self._parked: dict[int, asyncio.TimerHandle] = {}
        # Loop time before which no lane may ask the budget, for free sends (False) and paid
        # broadcasts (True): each has its own overall limit, so neither holds the other back.
        self._hold_until: dict[bool, float] = {False: 0.0, True: 0.0}
        self._workers: list[asyncio.Task[None]] = []
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopped = False

    # --- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._workers:
            raise RuntimeError("sender already started")
        self._stopped = False
        self._workers = [
            asyncio.create_task(self._work(), name=f"sender-worker-{n}") for n in range(self._worker_count)
        ]

    async def stop(self, drain: bool = True, timeout: float = 10) -> None:
        """Refuse new messages; with `drain`, wait up to `timeout` for queued ones to finish.

        Whatever is still queued afterwards resolves as 'gave_up', so no caller waits forever.
        """
        self._stopped = True
        if drain and self._workers:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except TimeoutError:
                logger.warning("sender: %d message(s) still queued after %.1fs; dropping them", self._pending, timeout)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        for handle in self._parked.values():
            handle.cancel()
        self._parked.clear()
        self._ready = asyncio.Queue()
        leftover = [job for lane in self._lanes.values() for job in lane]
        self._lanes.clear()
        for job in leftover:
            job.entry = None  # a durable message keeps its row: the next start sends it
            self._resolve(job, Delivery(ok=False, error="gave_up", description="sender stopped before delivery"))
        if self.journal is not None:
            await self.journal.close()

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def persisting(self) -> bool:
        """Durable messages are being written to the outbox: `persisted()` would wait."""
        return self.journal is not None and self.journal.writing

    async def persisted(self) -> None:
        """Until every durable message submitted so far is in the outbox (JournalError if it could
        not be written). An update's handling ends here before the update is recorded as handled."""
        if self.journal is not None:
            await self.journal.persisted()

    async def wait_idle(self) -> None:
        """Until nothing is queued or in flight (tests and the demo wait for the bot to settle)."""
        await self._idle.wait()

    def wake(self) -> None:
        """Ask the budget again now for every chat waiting on a timer, as after the budget's clock
        jumped ahead: tests move that clock instead of sleeping through a minute's window."""
        self._hold_until = {False: 0.0, True: 0.0}
        for lane_id, handle in list(self._parked.items()):
            handle.cancel()
            self._unpark(lane_id)

    async def reserve(self, chat_id: int) -> float:
        """Wait until the shared budget grants one send into `chat_id`, for a send the caller makes
        itself because it needs Telegram's answer now. It is counted like the sender's own, so
        the budget knows of every message that goes into a group. Returns the grant, for
        `budget.answered` once Telegram answered."""
        while (wait := await self._acquire(chat_id)) > 0:
            await asyncio.sleep(wait)
        return wait

    # --- sending ----------------------------------------------------------------------------------
    # Each call queues at once and returns a future: `await` it for the Delivery, or drop it to
    # fire and forget. Messages into one chat go out in the order of the calls.

    def submit(self, method: TelegramMethod[Any], *, durable: bool = False,
               on_attempt: Callable[[], bool | None] | None = None) -> asyncio.Future[Delivery]:
        """Queue any chat-addressed Bot API call; the future resolves when it finished for good.

        `durable`: for a message nobody awaits, queued while handling an update; it is written to
        the outbox and survives a crash (ValueError for a method that uploads a file). Cancelling
        the future withdraws the message if it has not been sent yet. A method with
        `allow_paid_broadcast=True` is paced by the paid overall limit (and keeps the flag in the outbox).
        """
        if self._stopped:
            raise RuntimeError("sender is stopped")
        entry = None
        if durable:
            payload = serialize(method)  # also without a journal: a call site that cannot be durable fails in tests
            if self.journal is not None:
                entry = self.journal.record(int(method.chat_id), method, payload)
        return self._queue(method, entry, on_attempt)

    def adopt(self, orphans: list[Orphan]) -> None:
        """Queue messages taken over from the outbox (their rows are written already), in order."""
        for orphan in orphans:
            self._queue(orphan.method, orphan.entry)

    def _queue(self, method: TelegramMethod[Any], entry: Entry | None,
               on_attempt: Callable[[], bool | None] | None = None) -> asyncio.Future[Delivery]:
        job = _Job(method, asyncio.get_running_loop().create_future(), entry, on_attempt=on_attempt)
        lane = self._lanes.setdefault(job.chat_id, deque())
        lane.append(job)
        self._pending += 1
        self._idle.clear()
        if len(lane) == 1:  # the lane was idle: neither queued, parked nor held by a worker
            self._ready.put_nowait(job.chat_id)
        return job.future

    def send_message(
        self,
        chat_id: int,
        text: str,
        *,
        reply_markup: Any = None,
        parse_mode: str | None = "HTML",
        disable_web_page_preview: bool = True,
        durable: bool = False,
        paid_broadcast: bool = False,
        on_attempt: Callable[[], bool | None] | None = None,
    ) -> asyncio.Future[Delivery]:
        """`paid_broadcast`: send with `allow_paid_broadcast` (0.1 Star from the bot's balance), at up
        to 1,000 messages a second instead of 30; operators turn it on with ALLOW_PAID_BROADCAST."""
        return self.submit(
            SendMessage(
                chat_id=chat_id,
                text=text,
                reply_markup=reply_markup,
                parse_mode=parse_mode,
                link_preview_options=_link_preview(disable_web_page_preview),
                allow_paid_broadcast=True if paid_broadcast else None,
            ),
            durable=durable,
            on_attempt=on_attempt,
        )

    def send_photo(
        self,
        chat_id: int,
        photo: str | InputFile,
        *,
        caption: str | None = None,
        reply_markup: Any = None,
        parse_mode: str | None = "HTML",
    ) -> asyncio.Future[Delivery]:
        return self.submit(
            SendPhoto(chat_id=chat_id, photo=photo, caption=caption, reply_markup=reply_markup, parse_mode=parse_mode)
        )

    def send_document(
        self,
        chat_id: int,
        document: BufferedInputFile,
        *,
        caption: str | None = None,
        parse_mode: str | None = "HTML",
    ) -> asyncio.Future[Delivery]:
        return self.submit(
            SendDocument(chat_id=chat_id, document=document, caption=caption, parse_mode=parse_mode)
        )

    def edit_message_text(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        *,
        reply_markup: Any = None,
        parse_mode: str | None = "HTML",
        disable_web_page_preview: bool = True,
    ) -> asyncio.Future[Delivery]:
        """Edits count against the same limits. An edit to identical content succeeds (message None)."""
        return self.submit(
            EditMessageText(
                chat_id=chat_id,
                message_id=message_id,
                text=text,
                reply_markup=reply_markup,
                parse_mode=parse_mode,
                link_preview_options=_link_preview(disable_web_page_preview),
            )
        )

    # --- workers ----------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            lane_id = await self._ready.get()
            try:
                await self._serve(lane_id)
            except Exception:  # a bug here must neither kill the worker nor strand the lane
                logger.exception("sender: chat %s: unexpected error", lane_id)
                if lane_id in self._lanes:
                    self._finish(lane_id, Delivery(ok=False, error="gave_up", description="internal error"))

    async def _serve(self, lane_id: int) -> None:
        """Make one attempt at the head of a lane, then finish it, or park the lane to retry."""
        job = self._lanes[lane_id][0]
        if job.future.cancelled():
            self._finish(lane_id, None)
            return
        try:
            wait = await self._acquire(job.chat_id, paid=job.paid)
        except Exception as exc:  # the shared budget (Redis) is unreachable: same as a network failure
            logger.warning("sender: chat %s: send budget unavailable: %r", job.chat_id, exc)
            outcome: Delivery | float = self._transient(job, f"send budget unavailable: {exc!r}")
        else:
            if wait > 0:
                self._park(lane_id, wait)
                return
            try:
                outcome = await self._attempt(job)
            finally:
                self.budget.answered(wait)
        if isinstance(outcome, Delivery):
            self._finish(lane_id, outcome)
        else:
            self.stats.retried += 1
            self._park(lane_id, outcome)

    async def _acquire(self, chat_id: int, *, paid: bool = False) -> float:
        """The grant (0.0) once the budget grants a send; otherwise how long this chat alone must wait.

        When the bot-wide limit is what holds, every worker sleeps until it lifts instead of
        asking once for each of possibly thousands of queued chats; the worker keeps its lane.
        """
        loop = asyncio.get_running_loop()
        while True:
            hold = self._hold_until[paid] - loop.time()
            if hold > 0:
                await asyncio.sleep(hold)
                continue
            wait = await self.budget.acquire(chat_id, paid=paid)
            if wait <= 0:
                return wait
            overall = getattr(wait, "overall", 0.0)
            if overall > 0:
                self._hold_until[paid] = max(self._hold_until[paid], loop.time() + overall)
            if wait > overall:
                return wait

    async def _attempt(self, job: _Job) -> Delivery | float:
        """Send once. A Delivery when done; otherwise the seconds to wait before trying again."""
        chat_id = job.chat_id
        if job.on_attempt is not None and job.on_attempt() is False:
            return Delivery(ok=False, error="withdrawn", description="withdrawn by its caller before the attempt")
        try:
            result = await self._bot(job.method)
        except TelegramRetryAfter as exc:
            self.stats.rate_limited += 1
            job.flood_waits += 1
            if job.flood_waits > MAX_FLOOD_WAITS:
                return Delivery(ok=False, error="gave_up", description=exc.message)
            logger.info("sender: chat %s: 429, retrying in %ss", chat_id, exc.retry_after)
            await self.budget.pause(chat_id, exc.retry_after)
            return float(exc.retry_after)
        except TelegramMigrateToChat as exc:
            if job.migrated:
                return Delivery(ok=False, error="gave_up", description=exc.message)
            logger.warning("sender: chat %s moved to %s; resending there", chat_id, exc.migrate_to_chat_id)
            job.migrated = True
            job.method = job.method.model_copy(update={"chat_id": exc.migrate_to_chat_id})
            return 0.0
        except TelegramForbiddenError as exc:
            await self._unreachable(chat_id)
            return Delivery(ok=False, error="forbidden", description=exc.message)
        except TelegramEntityTooLarge as exc:  # a TelegramNetworkError, but resending cannot help
            return Delivery(ok=False, error="bad_request", description=exc.message)
        except _TRANSIENT as exc:
            return self._transient(job, getattr(exc, "message", None) or repr(exc))
        except TelegramNotFound as exc:
            return Delivery(ok=False, error="not_found", description=exc.message)
        except TelegramBadRequest as exc:
            if "message is not modified" in exc.message:
                return Delivery(ok=True)
            error = "not_found" if "not found" in exc.message else "bad_request"
            return Delivery(ok=False, error=error, description=exc.message)
        except TelegramAPIError as exc:  # 401 and the like: resending the same request cannot help
            return Delivery(ok=False, error="bad_request", description=exc.message)
        except Exception as exc:
            logger.exception("sender: chat %s: unexpected error from %s", chat_id, type(job.method).__name__)
            return Delivery(ok=False, error="gave_up", description=repr(exc))
        return Delivery(ok=True, message=result if isinstance(result, Message) else None)

    def _transient(self, job: _Job, description: str) -> Delivery | float:
        """Count a failed attempt: give up after max_attempts, else back off exponentially with jitter."""
        job.attempts += 1
        if job.attempts >= self._max_attempts:
            return Delivery(ok=False, error="gave_up", description=description)
        delay = self._base_backoff * 2 ** (job.attempts - 1)
        logger.info("sender: chat %s: %s; attempt %d failed", job.chat_id, description, job.attempts)
        # Jitter spreads retries out so that chats failing together do not retry together.
        return delay / 2 + random.uniform(0, delay / 2)

    async def _unreachable(self, chat_id: int) -> None:
        """Record a 403: the user blocked the bot (or never started it), or the bot left the group."""
        try:
            async with self._sessions() as session:
                if chat_id > 0:
                    await users.set_can_dm(session, user_id=chat_id, can_dm=False, now=self._clock())
                else:
                    await communities.deactivate(session, chat_id=chat_id, now=self._clock())
        except Exception:
            logger.exception("sender: chat %s: could not record that it refused the bot", chat_id)

    # --- lanes ------------------------------------------------------------------------------------

    def _park(self, lane_id: int, delay: float) -> None:
        self._parked[lane_id] = asyncio.get_running_loop().call_later(delay, self._unpark, lane_id)

    def _unpark(self, lane_id: int) -> None:
        del self._parked[lane_id]
        self._ready.put_nowait(lane_id)

    def _finish(self, lane_id: int, delivery: Delivery | None) -> None:
        """Resolve the head of a lane (None: it was withdrawn) and pass the lane on."""
        lane = self._lanes[lane_id]
        job = lane.popleft()
        if delivery is not None:
            self._resolve(job, delivery)
        else:
            self._forget(job)
            self._done()
        if lane:
            self._ready.put_nowait(lane_id)  # to the back: chats take turns
        else:
            del self._lanes[lane_id]

    def _resolve(self, job: _Job, delivery: Delivery) -> None:
        self._forget(job)
        if delivery.ok:
            self.stats.sent += 1
        else:
            self.stats.failed[delivery.error] += 1
            level = logging.INFO if delivery.error == "forbidden" else logging.WARNING
            logger.log(level, "sender: chat %s: %s: %s", job.chat_id, delivery.error, delivery.description)
        if not job.future.done():
            job.future.set_result(delivery)
        self._done()

    def _forget(self, job: _Job) -> None:
        if job.entry is not None:
            self.journal.finished(job.entry)

    def _done(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()


# One instance for every message: building it cost a broadcast about 5 % of its CPU.
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def _link_preview(disabled: bool) -> LinkPreviewOptions | None:
    return _NO_PREVIEW if disabled else None
