"""Stopping the scheduler waits for the jobs that are running: a job cut off while the database
is closed under it would leave its work half done and log an error."""

from __future__ import annotations

import asyncio
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
