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


async def test_stop_waits_for_a_job_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    started, finished = asyncio.Event(), []

    async def slow(app, now: datetime) -> str:
        started.set()
        await asyncio.sleep(0.2)
        finished.append(now)
        return "done"

    monkeypatch.setitem(JOBS, "slow_test_job", Job("slow_test_job", "", slow, {"trigger": "interval", "hours": 1}))
    scheduler = Scheduler(SimpleNamespace(redis=None))
    scheduler.start()
    running = asyncio.create_task(scheduler._run(JOBS["slow_test_job"]))
    await started.wait()
    await scheduler.stop()
    assert len(finished) == 1 and running.done()


async def test_stop_lets_a_run_started_by_apscheduler_finish(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """APScheduler's own shutdown cancels the runs it started; stopping must not cut one off."""
    started, finished = asyncio.Event(), []

    async def slow(app, now: datetime) -> str:
        started.set()
        await asyncio.sleep(0.2)
        finished.append(now)
        return "done"

    monkeypatch.setitem(JOBS, "slow_test_job", Job("slow_test_job", "", slow, {"trigger": "interval", "seconds": 0.05}))
    scheduler = Scheduler(SimpleNamespace(redis=None))
    scheduler.start()
    await asyncio.wait_for(started.wait(), timeout=5)
    await scheduler.stop()
    assert len(finished) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
