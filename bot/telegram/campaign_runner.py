"""Sends win-back runs through the sender, resumes the ones a dead worker left, and keeps the
leader's progress card up to date.

A run's rows are claimed in chunks (bot/services/campaigns.py `claim`) while the previous chunk is
still going out, so the sender always has the next messages queued and the budget, not the
database, sets the pace. Just before Telegram is asked to send a row, its id goes into this
worker's attempt journal (a file in JOURNAL_DIR, appended, not synced: it survives the process,
which is what a kill takes). A worker that takes over a dead one's run reads that journal: rows
the dead worker had claimed but never handed to Telegram go back to pending; the ones it had
handed over and not recorded are in doubt and never sent again. Without the journal (another
host, no JOURNAL_DIR) every row left `sending` is in doubt: a member is never messaged twice.

Quiet hours stop a run where it is; it lets go of the run, and the scheduled job picks it up when
they end. With Redis, a run's worker is dead once its presence heartbeat is gone; without it
there is one process, and a run it does not hold at start was left by the previous one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from aiogram.types import InlineKeyboardMarkup

from bot.core.db import SessionFactory
from bot.services import campaigns
from bot.services.campaign_config import WinbackConfig, winback_config
from bot.services.campaigns import Outgoing, Progress, Result
from bot.telegram.send_budget import TELEGRAM_LIMITS
from bot.telegram.sender import Delivery, Sender
from models import Campaign, CampaignRun, Community, SendStatus, User
from models.types import utcnow

log = logging.getLogger(__name__)

# Rows claimed at a time: about a second of sending at the free rate; paid broadcasts take more.
CHUNK_FREE, CHUNK_PAID = 30, 300
# How often the results of finished sends are written, and the leader's card edited.
RECORD_EVERY = 0.5
PROGRESS_EVERY = 3.0
# How often a worker looks for runs whose worker is gone (the job's ticks are minutes apart).
WATCH_EVERY = 15.0
# How far behind its even pace a run may hand over messages at once: a timer's lateness, and the
# moments its own claims and records hold the event loop (at 1,000 a second a claim costs tens of
# messages). The budget keeps the bunch within Telegram's limits.
CATCH_UP = 0.25
# Sending stops this long before the quiet hours begin: a message asked for at 20:59:59.9 would
# reach the member after 21:00 on a busy machine.
QUIET_LEAD = timedelta(seconds=2)
# The even pace's interval, as a share of the bot-wide limit's.
PACE_SHARE = 0.97

MessageText = Callable[[Outgoing, Community, WinbackConfig], tuple[str, InlineKeyboardMarkup]]
ProgressText = Callable[..., str]


@dataclass(frozen=True, slots=True)
class RunTexts:
    """The views' words, handed down (this layer does not import views)."""

    message: MessageText
    progress: ProgressText  # (campaign, run, community, progress, locale, *, eta_seconds, paused_until, now)
    locale_of: Callable[[User | None, Community], str]


class AttemptJournal:
    """`<dir>/campaign-attempts-<worker>.log`: "a run send" before each attempt, and "o run send
    status at message" once Telegram answered, so a worker taking over knows what was sent even
    before the results reached the database (they are written every half second)."""

    def __init__(self, root: Path, worker: str) -> None:
        self.root = root
        self.path = root / f"campaign-attempts-{_safe(worker)}.log"
        self._file = None

    def _write(self, line: str) -> None:
        if self._file is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", buffering=1, encoding="ascii")  # noqa: SIM115 - kept open
        self._file.write(line)

    def attempt(self, run_id: int, send_id: int) -> None:
        self._write(f"a {run_id} {send_id}\n")

    def outcome(self, run_id: int, result: Result) -> None:
        self._write(f"o {run_id} {result.send_id} {result.status} {result.at.timestamp()} {result.message_id or 0}\n")

    def read(self, worker: str, run_id: int) -> tuple[set[int], list[Result]] | None:
        """What `worker` handed to Telegram for this run with no answer yet, and the answers it
        had; None when its journal is not on this host."""
        path = self.root / f"campaign-attempts-{_safe(worker)}.log"
        try:
            lines = path.read_text(encoding="ascii").splitlines()
        except FileNotFoundError:
            return None
        attempted: set[int] = set()
        answered: dict[int, Result] = {}
        run = str(run_id)
        for line in lines:
            parts = line.split()
            try:
                if len(parts) == 3 and parts[0] == "a" and parts[1] == run:
                    attempted.add(int(parts[2]))
                elif len(parts) == 6 and parts[0] == "o" and parts[1] == run:
                    send_id, message_id = int(parts[2]), int(parts[5]) or None
                    answered[send_id] = Result(send_id, SendStatus(parts[3]),
                                               datetime.fromtimestamp(float(parts[4]), timezone.utc), message_id)
            except ValueError:  # a line cut short by the kill
                continue
        return attempted - set(answered), list(answered.values())

    def close(self, *, remove: bool) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if remove:
            self.path.unlink(missing_ok=True)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class CampaignRunner:
    """One task per run this worker sends. `start` a run, `resume` what needs a worker, `stop`."""

    def __init__(self, *, sessions: SessionFactory, sender: Sender, texts: RunTexts, worker: str,
                 journal_dir: Path | None, dead: Callable[[list[str]], Awaitable[set[str]]] | None,
                 paid_broadcast: bool, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions, self._sender, self._texts = sessions, sender, texts
        self.worker = worker
        self._journal = AttemptJournal(journal_dir, worker) if journal_dir is not None else None
        # With Redis: which of these workers are gone. Without: every other worker is (one process).
        self._dead = dead
        self._paid = paid_broadcast
        # Messages are handed to the sender evenly, a little faster than the bot-wide limit allows:
        # the budget sets the rate, and a run never hands over a second's worth at once, which would
        # keep the leader's card and group replies waiting behind it.
        limit = TELEGRAM_LIMITS.paid_overall if paid_broadcast else TELEGRAM_LIMITS.overall
        self._pace = limit.window / limit.count * PACE_SHARE
        self._clock = clock
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stopping = False
        self._watcher: asyncio.Task[None] | None = None

    @property
    def running(self) -> set[int]:
        return set(self._tasks)

    async def start(self, *, campaign: Campaign, community: Community, now: datetime,
                    scheduled_on: date | None = None, started_by: int | None = None,
                    clock: Callable[[], datetime] | None = None) -> CampaignRun | None:
        """Plan a run and start sending it; None if the campaign already ran that day. `clock`: the
        time its quiet hours are judged by (a job run as of a moment moves it)."""
        async with self._sessions() as session:
            run = await campaigns.start_run(session, campaign=campaign, community=community, now=now,
                                            runner=self.worker, scheduled_on=scheduled_on, started_by=started_by)
        if run is not None:
            self._launch(run.id, clock or self._clock)
        return run

    async def resume(self, *, clock: Callable[[], datetime] | None = None, released: bool = True) -> list[int]:
        """Take over the runs whose worker is gone and, with `released`, the ones nobody holds (let
        go at quiet hours: the scheduled job, on its clock, picks those up), outside quiet hours."""
        clock = clock or self._clock
        async with self._sessions() as session:
            runs = [r for r in await campaigns.unfinished(session)
                    if r.id not in self._tasks and (released or r.runner is not None)]
        holders = sorted({r.runner for r in runs if r.runner is not None and r.runner != self.worker})
        gone = set(holders) if self._dead is None else await self._dead(holders)
        taken = []
        for run in runs:
            if run.runner is not None and run.runner != self.worker and run.runner not in gone:
                continue
            config = winback_config(run.config)
            async with self._sessions() as session:
                community = await session.get(Community, run.community_id)
                if community is None or config.quiet_at(clock(), community.timezone):
                    continue
                if run.runner != self.worker and not await campaigns.take_over(
                        session, run_id=run.id, runner=self.worker, previous=run.runner):
                    continue
                attempted, answered = None, []
                if run.runner is None:
                    attempted = set()  # let go cleanly (quiet hours): nothing was in Telegram's hands
                elif self._journal is not None and (read := self._journal.read(run.runner, run.id)) is not None:
                    attempted, answered = read
                back, doubt = await campaigns.recover(session, run_id=run.id, attempted=attempted, answered=answered)
            if back or doubt or answered:
                log.warning("campaign run %d taken over from %s: %d answer(s) recorded from its journal, %d send(s) "
                            "put back, %d in doubt (not sent again)", run.id, run.runner, len(answered), back, doubt)
            self._launch(run.id, clock)
            taken.append(run.id)
        return taken

    def _launch(self, run_id: int, clock: Callable[[], datetime]) -> None:
        task = asyncio.create_task(self._drive(run_id, clock), name=f"campaign-run-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(run_id, None))

    async def wait(self, run_id: int) -> None:
        task = self._tasks.get(run_id)
        if task is not None:
            await asyncio.shield(task)

    def watch(self, every: float = WATCH_EVERY) -> None:
        """Take over dead workers' runs every `every` seconds (a worker that serves updates)."""
        self._watcher = asyncio.create_task(self._watch(every), name="campaign-watch")

    async def _watch(self, every: float) -> None:
        while not self._stopping:
            await asyncio.sleep(every)
            try:
                await self.resume(released=False)
            except Exception:  # noqa: BLE001 - looked at again next time
                log.warning("could not look for campaign runs left by stopped workers", exc_info=True)

    async def stop(self) -> None:
        """Stop claiming; the sends in hand finish and are recorded, then the runs are let go."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if self._journal is not None:
            self._journal.close(remove=True)

    # --- one run --------------------------------------------------------------------------------

    async def _drive(self, run_id: int, clock: Callable[[], datetime]) -> None:
        try:
            await _Run(self, run_id, clock).go()
        except Exception:
            # The run stays this worker's: taking it up again (the watcher, the job) reads this
            # worker's journal like a dead one's, so what Telegram may have is not sent twice.
            log.exception("campaign run %d stopped on an error; it is taken up again shortly", run_id)


class _Run:
    def __init__(self, runner: CampaignRunner, run_id: int, clock: Callable[[], datetime]) -> None:
        self.r, self.run_id, self.clock = runner, run_id, clock
        self.results: list[Result] = []
        self.in_flight: set[asyncio.Future[Delivery]] = set()
        self.started = time.monotonic()
        self.sent_here = 0
        self.card_at = 0.0
        self.paused: datetime | None = None  # when the quiet hours that stopped the run end
        self.next_at = 0.0  # loop time at which the next message may be handed to the sender
        self.attempted: set[int] = set()  # sends handed to Telegram

    async def go(self) -> None:
        r = self.r
        async with r._sessions() as session:
            run = await session.get(CampaignRun, self.run_id)
            campaign = await session.get(Campaign, run.campaign_id)
            community = await session.get(Community, run.community_id)
            leader = await session.get(User, run.started_by or campaign.owner_id)
        config = winback_config(run.config)
        self.context = (campaign, community, leader, config)
        chunk = CHUNK_PAID if r._paid else CHUNK_FREE
        recorder = asyncio.create_task(self._record_loop())
        try:
            await self._card(force=True)
            await self._send_all(run, community, config, chunk)
        except BaseException:
            # Withdraw what the sender has not handed to Telegram yet: whoever takes the run up again
            # sends those rows, and must not meet these copies still queued.
            for future in self.in_flight:
                future.cancel()
            raise
        finally:
            recorder.cancel()
            await asyncio.gather(recorder, return_exceptions=True)
            await self._flush()
        paused = self.paused
        async with r._sessions() as session:
            if paused is None and not r._stopping:
                state = await campaigns.progress(session, run=run)
                if state.remaining == 0:
                    await campaigns.finish(session, run=run, now=self.clock())
            await campaigns.release(session, run_id=self.run_id, runner=r.worker)
        await self._card(force=True, paused_until=paused)

    async def _send_all(self, run: CampaignRun, community: Community, config: WinbackConfig, chunk: int) -> None:
        """Claim and send until the run is done, the quiet hours begin (`self.paused`) or the bot stops."""
        r = self.r
        while not r._stopping:
            now = self.clock()
            if (quiet := _quiet_from(config, now, community.timezone)) is not None:
                self.paused = config.quiet_ends(quiet, community.timezone)
                break
            # Keep about one chunk queued beyond what is in flight.
            if len(self.in_flight) > chunk:
                await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            async with r._sessions() as session:
                outgoing = await campaigns.claim(session, run=run, community=community, limit=chunk, now=now)
            if not outgoing:
                break
            for item in outgoing:
                await self._paced()
                self._send(item, community, config)
        if self.in_flight:
            await asyncio.wait(set(self.in_flight))
        quiet = _quiet_from(config, self.clock(), community.timezone)
        if self.paused is None and not r._stopping and quiet is not None:
            self.paused = config.quiet_ends(quiet, community.timezone)  # began while the last ones waited

    async def _paced(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.next_at < now - CATCH_UP:  # the sender kept us waiting: no burst to make up for it
            self.next_at = now
        elif self.next_at > now:
            await asyncio.sleep(self.next_at - now)
        self.next_at += self.r._pace

    def _send(self, item: Outgoing, community: Community, config: WinbackConfig) -> None:
        r = self.r
        text, markup = r._texts.message(item, community, config)

        def attempt() -> bool:
            # Judged when Telegram is about to be asked, not when the message was queued: a message
            # that waited into the quiet hours is withdrawn and goes back to pending.
            if _quiet_from(config, self.clock(), community.timezone) is not None:
                return False
            if r._journal is not None:
                r._journal.attempt(self.run_id, item.send_id)
            self.attempted.add(item.send_id)
            return True

        future = r._sender.send_message(item.user_id, text, reply_markup=markup, paid_broadcast=r._paid,
                                        on_attempt=attempt)
        self.in_flight.add(future)
        future.add_done_callback(lambda done, send_id=item.send_id: self._done(send_id, done))

    def _done(self, send_id: int, done: asyncio.Future[Delivery]) -> None:
        self.in_flight.discard(done)
        at = self.clock()
        if done.cancelled():
            if send_id in self.attempted:
                return  # stays `sending`: in doubt for whoever takes the run up
            result = Result(send_id, SendStatus.PENDING, at)  # withdrawn before Telegram saw it
        elif (delivery := done.result()).error == "withdrawn":
            result = Result(send_id, SendStatus.PENDING, at)
        elif delivery.ok:
            self.sent_here += 1
            message_id = delivery.message.message_id if delivery.message is not None else None
            result = Result(send_id, SendStatus.SENT, at, message_id=message_id)
        elif delivery.error == "forbidden":
            result = Result(send_id, SendStatus.BLOCKED, at, error=delivery.description)
        else:
            result = Result(send_id, SendStatus.FAILED, at, error=delivery.description or delivery.error)
        if self.r._journal is not None:
            self.r._journal.outcome(self.run_id, result)
        self.results.append(result)

    async def _record_loop(self) -> None:
        while True:
            await asyncio.sleep(RECORD_EVERY)
            await self._flush()
            await self._card()

    async def _flush(self) -> None:
        if not self.results:
            return
        batch, self.results = self.results, []
        try:
            async with self.r._sessions() as session:
                await campaigns.record(session, batch)
        except Exception:
            self.results[:0] = batch  # written with the next batch
            raise

    async def _card(self, *, force: bool = False, paused_until: datetime | None = None) -> None:
        """The leader's progress card: sent once, then edited in place (at most every few seconds)."""
        if not force and time.monotonic() - self.card_at < PROGRESS_EVERY:
            return
        self.card_at = time.monotonic()
        campaign, community, leader, _config = self.context
        if leader is None or not leader.can_dm:
            return
        r = self.r
        async with r._sessions() as session:
            run = await session.get(CampaignRun, self.run_id, populate_existing=True)
            state = await campaigns.progress(session, run=run)
        eta = self._eta(state)
        locale = r._texts.locale_of(leader, community)
        text = r._texts.progress(campaign, run, community, state, locale, eta_seconds=eta, paused_until=paused_until,
                                 now=self.clock())
        if run.progress_message_id is None:
            delivery = await r._sender.send_message(leader.id, text)
            if delivery.ok and delivery.message is not None:
                async with r._sessions() as session:
                    await campaigns.set_progress_message(session, run_id=run.id, chat_id=leader.id,
                                                         message_id=delivery.message.message_id)
        else:
            # Not awaited: a card edit must not hold the sends back.
            r._sender.edit_message_text(run.progress_chat_id, run.progress_message_id, text)

    def _eta(self, state: Progress) -> float | None:
        elapsed = time.monotonic() - self.started
        if self.sent_here < 5 or elapsed <= 0:
            return None
        return state.remaining / (self.sent_here / elapsed)


def _quiet_from(config: WinbackConfig, now: datetime, tz: str) -> datetime | None:
    """A moment of the quiet hours that `now` is in, or that begin within QUIET_LEAD; else None."""
    for moment in (now, now + QUIET_LEAD):
        if config.quiet_at(moment, tz):
            return moment
    return None
