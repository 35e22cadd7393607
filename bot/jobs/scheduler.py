"""APScheduler wiring. The database is the source of truth; the scheduler only triggers jobs.

With REDIS_URL set several workers may run; a Redis lease makes exactly one of them the active
scheduler, and another takes over when the lease lapses.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.asyncio import Redis

from bot.jobs.registry import Job
from bot.telegram.context import BotContext

log = logging.getLogger(__name__)

LEASE_KEY = "ccb:scheduler:lease"
LEASE_SECONDS = 30
# Renew, or try to take over, three times per lease period.
LEASE_RENEW = LEASE_SECONDS / 3

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""


class Lease:
    """Who runs the jobs. Without Redis this process always does."""

    def __init__(self, redis: Redis | None) -> None:
        self._redis = redis
        self._token = secrets.token_hex(8)
        self.held = redis is None
        self._script = redis.register_script(_RENEW) if redis else None

    async def renew(self) -> bool:
        if self._script is not None:
            was = self.held
            self.held = bool(await self._script(keys=[LEASE_KEY], args=[self._token, int(LEASE_SECONDS * 1000)]))
            if self.held != was:
                log.info("scheduler lease %s", "taken" if self.held else "lost")
        return self.held

    async def release(self) -> None:
        if self._redis is not None and self.held:
            await self._redis.eval(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                1, LEASE_KEY, self._token,
            )
            self.held = False


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
                await self.lease.renew()
            except Exception:
                log.warning("could not renew the scheduler lease", exc_info=True)
                self.lease.held = False
            await asyncio.sleep(LEASE_RENEW)

    async def _run(self, job: Job, *, at_start: bool = False) -> None:
        if not (self.lease.held or at_start):
            return
        task = asyncio.current_task()
        self._running.add(task)
        try:
            await job.run(self._ctx, datetime.now(timezone.utc))
        except Exception:
            if not at_start:
                raise
            # Logged by the job; the scheduled runs try again.
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

