"""The running bot: every long-lived part, started and stopped in one place, in a fixed order."""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import asynccontextmanager
from datetime import datetime
from typing import AsyncIterator

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.config import ConfigError, Settings, StartupError
from bot.core.db import SessionFactory, check_connection, create_engine, session_factory
from bot.core.i18n import get_i18n
from bot.factory import create_bot, create_dispatcher
from bot.jobs import catalog
from bot.jobs.scheduler import Scheduler
from bot.services.activity import ActivityFlusher, ActivityTracker
from bot.services.activity_journal import ActivityJournal
from bot.telegram import commands, metrics
from bot.telegram.campaign_runner import CampaignRunner
from bot.telegram.context import BotContext
from bot.telegram.dedup import MemoryLedger, RedisLedger
from bot.telegram.flood import SpendGroupBudget
from bot.telegram.fsm_storage import CompactMemoryStorage, SharedRedisStorage
from bot.telegram.outbox import Journal, Recovery, worker_name
from bot.telegram.presence import Presence
from bot.telegram.send_budget import create_budget
from bot.telegram.sender import Sender
from bot.telegram.update_types import ALLOWED_UPDATES
from bot.views.winback_text import run_texts

log = logging.getLogger(__name__)


async def connect_redis(url: str, *, connections: int) -> Redis:
    # A pool that waits for a free connection under a burst, where redis-py's default one (100) raises.
    pool = BlockingConnectionPool.from_url(url, max_connections=connections, timeout=20, socket_connect_timeout=5,
                                           health_check_interval=30)
    redis = Redis(connection_pool=pool)
    try:
        await redis.ping()
    except Exception as exc:
        await redis.aclose()
        raise StartupError(f"Redis unreachable at {url}: {exc}") from None
    return redis


class App:
    """Owns the engine, Redis, the Bot, the Dispatcher, the sender and its outbox, the activity flusher,
    the scheduler."""

    # Known once start() has asked Telegram who the bot is.
    context: BotContext

    def __init__(self, settings: Settings, *, engine: AsyncEngine, redis: Redis | None, bot: Bot) -> None:
        self.settings, self.engine, self.redis, self.bot = settings, engine, redis, bot
        self.sessions: SessionFactory = session_factory(engine)
        self.presence = Presence(redis, bot_id=bot.id) if redis is not None else None
        owner = self.presence.name if self.presence is not None else worker_name()
        journal_dir = settings.journal_dir()
        self.activity_journal = ActivityJournal(journal_dir, owner) if journal_dir is not None else None
        self.tracker = ActivityTracker(default_locale=settings.DEFAULT_LOCALE, default_timezone=settings.DEFAULT_TIMEZONE,
                                       journal=self.activity_journal)
        self.flusher = ActivityFlusher(self.tracker, self.sessions, settings.ACTIVITY_FLUSH_SECONDS)
        self.sender_bot = create_bot(settings, bot.token, wait_out_flood=False)
        self.journal = Journal(engine, owner)
        self.sender = Sender(self.sender_bot, self.sessions, create_budget(redis), journal=self.journal)
        self.recovery = Recovery(self.journal, self.sender.adopt, redis=redis,
                                 alive_prefix=self.presence.key_prefix if self.presence is not None else "")
        # What handlers still send into groups themselves draws from the sender's budget too.
        bot.session.middleware(SpendGroupBudget(self.sender))
        self.dp: Dispatcher = create_dispatcher(
            settings=settings,
            sessions=self.sessions,
            storage=SharedRedisStorage(redis) if redis is not None else CompactMemoryStorage(),
            ledger=RedisLedger(redis, self.presence, bot_id=bot.id) if self.presence is not None else MemoryLedger(),
            tracker=self.tracker,
            i18n=get_i18n(),
            sender=self.sender,
        )
        # Every App is counted (the CLI's workers, tests, benchmarks): it costs microseconds per update.
        metrics.instrument(dp=self.dp, bots=(self.bot, self.sender_bot), sender=self.sender)
        self.scheduler = Scheduler(redis, catalog.JOBS)
        self.campaigns = self._campaign_runner(owner, journal_dir, recover=True)
        self._started: list[str] = []

    def _campaign_runner(self, worker: str, journal_dir, *, recover: bool) -> CampaignRunner:
        # With Redis a peer's runs are taken over once its heartbeat stops. Without Redis there is
        # one serving process, whose leftovers are this one's; a process that only runs a job
        # beside it (recover=False) must never take them.
        dead = self.presence.gone if self.presence is not None else (None if recover else _nobody)
        return CampaignRunner(sessions=self.sessions, sender=self.sender, texts=run_texts(self.settings.DEFAULT_LOCALE),
                              worker=worker, journal_dir=journal_dir, dead=dead,
                              paid_broadcast=self.settings.ALLOW_PAID_BROADCAST)

    @classmethod
    async def connect(cls, settings: Settings, *, bot: Bot | None = None) -> App:
        """Reach the database and Redis (clear errors if not there) and build the parts."""
        token = settings.bot_token() if bot is None else bot.token
        engine = create_engine(settings.DATABASE_URL)
        try:
            await check_connection(engine)
        except Exception as exc:
            await engine.dispose()
            raise StartupError(str(exc)) from None
        # Every update in hand may use one, and the sender, the flusher and the scheduler a few more.
        redis = await connect_redis(settings.REDIS_URL, connections=settings.UPDATES_IN_FLIGHT + 20) \
            if settings.REDIS_URL else None
        return cls(settings, engine=engine, redis=redis, bot=bot or create_bot(settings, token))

    async def start(self, *, scheduler: bool = True, publish_commands: bool = True, recover: bool = True) -> None:
        """1. who we are  2. commands  3. sender, and what dead workers left in the outbox  4. activity
        flusher, after counting what dead processes left in the activity journal  5. scheduler.

        `recover=False` for a process that only runs a job beside a serving bot: without Redis it
        could not tell the bot's rows in the outbox from a dead one's."""
        try:
            me = await self.bot.get_me()
        except TelegramUnauthorizedError:
            raise ConfigError("BOT_TOKEN was rejected by the Bot API (401 Unauthorized)") from None
        except TelegramNetworkError as exc:
            raise StartupError(f"Bot API unreachable at {self.settings.TELEGRAM_API_URL}: {exc}") from None
        if not recover:
            self.campaigns = self._campaign_runner(self.campaigns.worker, self.settings.journal_dir(), recover=False)
        self.context = BotContext(settings=self.settings, sessions=self.sessions, bot=self.bot, sender=self.sender,
                                  bot_username=me.username or "", campaigns=self.campaigns)
        self.dp["bot_username"] = self.context.bot_username
        self.dp["ctx"] = self.context
        if self.presence is not None:
            await self.presence.start()
            self._started.append("presence")
        if publish_commands:
            await commands.publish(self.bot)
        self.sender.start()
        self._started.append("sender")
        if recover:
            await self.recovery.sweep()
            self.recovery.start()
            self._started.append("recovery")
            try:
                await self.flusher.recover()
            except OSError as exc:
                raise StartupError(f"the activity journal in {self.activity_journal.root} cannot be used: {exc} "
                                   f"(set JOURNAL_DIR to a writable directory)") from None
        self.flusher.start(recover=recover)
        self._started.append("flusher")
        if recover:
            self.campaigns.watch(self.settings.CAMPAIGN_WATCH_SECONDS)
        if scheduler:
            self.scheduler.start(self.context)
            self._started.append("scheduler")
        log.info("bot @%s ready (database %s, redis %s)", self.context.bot_username, self.engine.url.get_backend_name(),
                 "on" if self.redis else "off")

    @staticmethod
    def keep_startup_objects() -> None:
        """For a serving process, once started: what is alive now (aiogram's models, the routers,
        compiled statements; most of the process's 200 MB) lives as long as the process, so the
        garbage collector's full passes stop walking it. They ran while a flush or a burst
        allocated: the foundation benchmark's final flush took 0.35–0.40 s with them, 0.19–0.23 s
        without. Not in App.start: a test process starts many Apps whose objects must be freed."""
        gc.freeze()

    async def run_job(self, name: str, at: datetime) -> str:
        """One scheduled job, now, as of `at` (`jobs run`, the demo and tests)."""
        return await catalog.run_job(self.context, name, at)

    async def feed_polling(self) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)
        await self.dp.start_polling(
            self.bot,
            allowed_updates=ALLOWED_UPDATES,
            tasks_concurrency_limit=self.settings.UPDATES_IN_FLIGHT,
            handle_signals=False,
            close_bot_session=False,
        )

    async def poll_until(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set or polling ends by itself; the caller's stop() drains the rest."""
        task = asyncio.create_task(self.feed_polling())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not task.done():
            await self._end_polling(task)
        if not task.cancelled():
            task.result()  # polling's own failure, if it ended by one

    async def _end_polling(self, task: asyncio.Task) -> None:
        if self.dp._running_lock.locked():
            await self.dp.stop_polling()
        else:  # still deleting the webhook: nothing fetched yet
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def drain_updates(self, timeout: float = 15) -> None:
        """Wait for handlers still running after polling stopped (aiogram does not)."""
        tasks = set(self.dp._handle_update_tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def settle(self, emu, *, timeout: float = 20.0) -> None:
        """Wait until the emulator has delivered every update, every handler has finished and the
        outbox is empty (demo and tests). Handlers may be sleeping out flood control, which the
        emulator cannot see, so quiet on the wire alone is not enough."""
        async def loop() -> None:
            while True:
                await emu.settle(quiet=0.1, timeout=timeout)
                busy = set(self.dp._handle_update_tasks)
                if not busy and self.sender.pending == 0:
                    return
                if busy:
                    await asyncio.wait(busy)
                await self.sender.wait_idle()

        await asyncio.wait_for(loop(), timeout)

    async def stop(self) -> None:
        """Reverse order of start; the activity buffer and the outbox are flushed, not dropped."""
        await self.drain_updates()
        try:
            await self.dp.confirm_handled(self.bot)
        except Exception as exc:  # noqa: BLE001 - Telegram sends them again; the ledger knows them
            log.warning("could not confirm the last handled updates: %s", exc)
        # Before the scheduler (a job may be waiting for a run) and the sender: the sends in hand
        # finish and are recorded.
        await self.campaigns.stop()
        if "scheduler" in self._started:
            await self.scheduler.stop()
        if "flusher" in self._started:
            await self.flusher.stop()
        if self.activity_journal is not None:
            # Removed when the last flush wrote everything; else kept for the next start.
            self.activity_journal.close()
        if "recovery" in self._started:
            await self.recovery.stop()
        if "sender" in self._started:
            await self.sender.stop(drain=True)
        if "presence" in self._started:
            await self.presence.stop()
        self._started.clear()
        await self.bot.session.close()
        await self.sender_bot.session.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


async def _nobody(_workers: list[str]) -> set[str]:
    return set()


@asynccontextmanager
async def polling(app: App) -> AsyncIterator[App]:
    """Run polling in the background for tests and the demo; stop and drain on exit."""
    task = asyncio.create_task(app.feed_polling())
    try:
        yield app
    finally:
        await app._end_polling(task)
        await app.stop()
