"""Stopping the scheduler waits for the jobs that are running: a job cut off while the database
is closed under it would leave its work half done and log an error."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import pytest

from bot.jobs.registry import Job
from bot.jobs.scheduler import Scheduler


class SlowJob:
    """A job that takes 0.2 s; `started` is set when a run begins, `finished` lists runs done."""

    def __init__(self) -> None:
        self.started, self.finished = asyncio.Event(), []

    def scheduler(self, **trigger: object) -> tuple[Scheduler, Job]:
        async def slow(ctx, now: datetime) -> str:
            self.started.set()
            await asyncio.sleep(0.2)
            self.finished.append(now)
            return "done"

        job = Job("slow_test_job", "", slow, {"trigger": "interval", **trigger})
        return Scheduler(None, {job.name: job}), job


@pytest.fixture
def slow_job() -> SlowJob:
    return SlowJob()


async def test_stop_waits_for_a_job_in_flight(slow_job: SlowJob) -> None:
    scheduler, job = slow_job.scheduler(hours=1)
    scheduler.start(None)
    running = asyncio.create_task(scheduler._run(job))
    await slow_job.started.wait()
    await scheduler.stop()
    assert len(slow_job.finished) == 1 and running.done()


async def test_stop_lets_a_run_started_by_apscheduler_finish(slow_job: SlowJob, caplog: pytest.LogCaptureFixture) -> None:
    """APScheduler's own shutdown cancels the runs it started; stopping must not cut one off."""
    scheduler, _ = slow_job.scheduler(seconds=0.05)
    scheduler.start(None)
    await asyncio.wait_for(slow_job.started.wait(), timeout=5)
    await scheduler.stop()
    assert len(slow_job.finished) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
