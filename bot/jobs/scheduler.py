"""APScheduler wiring. The database is the source of truth; the scheduler only triggers jobs.

With REDIS_URL set several workers may run; a Redis lease makes exactly one of them the active
scheduler, and another takes over when the lease lapses (within LEASE_SECONDS of the holder's death).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Mapping
from datetime import datetime, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.asyncio import Redis

from bot.jobs.registry import Job
from bot.telegram.context import BotContext
from bot.telegram.metrics import JOBS_RUN, LEASE_HELD

log = logging.getLogger(__name__)

LEASE_KEY = "ccb:scheduler:lease"
# A killed holder is replaced within LEASE_SECONDS (README, "Webhook mode"): it renews three times
# per lease, and a waiting worker tries again the moment the lease it saw lapses, not on a fixed tick.
LEASE_SECONDS = 10.0
# After the lapse Redis reports, so that the key is gone when the waiting worker asks.
TAKEOVER_SLACK = 0.05

# Renew our own lease, or take a free one; otherwise report how long the current one has left.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, 0}
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, 0}
end
return {0, redis.call('PTTL', KEYS[1])}
"""


class Lease:
    """Who runs the jobs. Without Redis this process always does.

    A holder counts its lease from before the renewal it sent, so it stops running jobs no later
    than Redis lets another worker take over, even when it cannot reach Redis to learn it lost.
    """

    def __init__(self, redis: Redis | None, *, seconds: float = LEASE_SECONDS, clock=time.monotonic) -> None:
        self._redis, self.seconds, self._clock = redis, seconds, clock
        self._token = secrets.token_hex(8)
        self._valid_until = 0.0
        self._script = redis.register_script(_RENEW) if redis else None
        self._was_held = False

    @property
    def held(self) -> bool:
        return self._redis is None or self._clock() < self._valid_until

    async def renew(self) -> float:
        """Renew or try to take the lease; the seconds to wait before the next call."""
        if self._script is None:
            return self.seconds / 3
        asked = self._clock()
        try:
            held, left_ms = await self._script(keys=[LEASE_KEY], args=[self._token, int(self.seconds * 1000)])
        except Exception:
            self._valid_until = 0.0
            self._changed()
            raise
        self._valid_until = asked + self.seconds if held else 0.0
        self._changed()
        if held:
            return self.seconds / 3
        # A key without expiry (-1) or gone meanwhile (-2): try again at the holder's pace.
        return left_ms / 1000 + TAKEOVER_SLACK if left_ms > 0 else self.seconds / 3

    def _changed(self) -> None:
        held = self.held
        if held != self._was_held:
            self._was_held = held
            LEASE_HELD.set(1 if held else 0)
            log.info("scheduler lease %s", "taken" if held else "lost")

    async def release(self) -> None:
        if self._redis is not None and self.held:
            await self._redis.eval(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                1, LEASE_KEY, self._token,
            )
            self._valid_until = 0.0
            self._changed()


class Scheduler:
    def __init__(self, redis: Redis | None, jobs: Mapping[str, Job]) -> None:
        self._redis, self._jobs = redis, jobs
        self._aps = AsyncIOScheduler(timezone=timezone.utc)
        self.lease = Lease(redis)
        self._lease_task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self._ctx: BotContext | None = None

    def start(self, ctx: BotContext) -> None:
        self._ctx = ctx
        for job in self._jobs.values():
            self._aps.add_job(self._run, kwargs={"job": job}, id=job.name, name=job.name, coalesce=True,
                              max_instances=1, misfire_grace_time=300, **job.trigger)
        self._aps.start()
        LEASE_HELD.set(1 if self.lease.held else 0)
        if self._redis is not None:
            self._lease_task = asyncio.create_task(self._keep_lease(), name="scheduler-lease")
        for job in self._jobs.values():
            if job.at_start:
                # Every worker, lease or not: the job's effects are claimed in the database.
                self._running.add(asyncio.create_task(self._run(job, at_start=True), name=f"{job.name}-at-start"))
        log.info("scheduled jobs: %s", ", ".join(f"{j.name} {j.describe_trigger()}" for j in self._jobs.values()) or "none")

    async def _keep_lease(self) -> None:
        while True:
            try:
                wait = await self.lease.renew()
            except Exception:
                log.warning("could not renew the scheduler lease", exc_info=True)
                wait = self.lease.seconds / 3
            await asyncio.sleep(wait)

    async def _run(self, job: Job, *, at_start: bool = False) -> None:
        if not (self.lease.held or at_start):
            return
        task = asyncio.current_task()
        self._running.add(task)
        try:
            await job.run(self._ctx, datetime.now(timezone.utc))
        except Exception:
            JOBS_RUN.labels(job.name, "failed").inc()
            if not at_start:
                raise
            # Logged by the job; the scheduled runs try again.
        else:
            JOBS_RUN.labels(job.name, "ok").inc()
        finally:
            self._running.discard(task)

    async def stop(self) -> None:
        # Runs in flight finish before the database and the sender they use are closed. APScheduler's
        # shutdown cancels whatever is still running, so it comes after them: paused, no run starts;
        # one turn of the loop lets a run it has just handed over register in `_running`.
        self._aps.pause()
        await asyncio.sleep(0)
        if self._running:
            await asyncio.wait(set(self._running), timeout=15)
        self._aps.shutdown(wait=False)
        if self._lease_task is not None:
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)
            await self.lease.release()
        LEASE_HELD.set(0)

