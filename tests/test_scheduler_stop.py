"""Stopping the scheduler waits for the jobs that are running: a job cut off while the database
is closed under it would leave its work half done and log an error."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from types import SimpleNamespace

import pytest

from bot.jobs import JOBS, Job
from bot.scheduler import Scheduler


class SlowJob:
    """A registered job that takes 0.2 s; `started` is set when a run begins, `finished` lists runs done."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started, self.finished = asyncio.Event(), []
        self._monkeypatch = monkeypatch

    def register(self, **trigger: object) -> Job:
        async def slow(app, now: datetime) -> str:
            self.started.set()
            await asyncio.sleep(0.2)
            self.finished.append(now)
            return "done"

        job = Job("slow_test_job", "", slow, {"trigger": "interval", **trigger})
        self._monkeypatch.setitem(JOBS, job.name, job)
        return job


@pytest.fixture
def slow_job(monkeypatch: pytest.MonkeyPatch) -> SlowJob:
    return SlowJob(monkeypatch)


async def test_stop_waits_for_a_job_in_flight(slow_job: SlowJob) -> None:
    job = slow_job.register(hours=1)
    scheduler = Scheduler(SimpleNamespace(redis=None))
    scheduler.start()
    running = asyncio.create_task(scheduler._run(job))
    await slow_job.started.wait()
    await scheduler.stop()
    assert len(slow_job.finished) == 1 and running.done()


async def test_stop_lets_a_run_started_by_apscheduler_finish(slow_job: SlowJob, caplog: pytest.LogCaptureFixture) -> None:
    """APScheduler's own shutdown cancels the runs it started; stopping must not cut one off."""
    slow_job.register(seconds=0.05)
    scheduler = Scheduler(SimpleNamespace(redis=None))
    scheduler.start()
    await asyncio.wait_for(slow_job.started.wait(), timeout=5)
    await scheduler.stop()
    assert len(slow_job.finished) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
