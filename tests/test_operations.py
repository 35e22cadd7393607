"""Running several workers: migrations started together, the scheduler lease's timing, and the
README that states it.

The PostgreSQL test runs in the PostgreSQL pass only (TEST_DATABASE_URL); it leaves the schema at
head, empty, as tests/conftest.py expects of tests that drop it.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time

import pytest
from sqlalchemy import text
from test_cli import bot_env
from test_migrations import reset_pg_schema

from bot.core.config import ROOT
from bot.core.db import create_engine
from bot.core.migrate import upgrade
from bot.jobs.scheduler import LEASE_SECONDS, TAKEOVER_SLACK, Lease
from bot.telegram.fsm_storage import SharedRedisStorage
from bot.telegram.middlewares.throttle import ThrottleMiddleware

PG_URL = os.environ.get("TEST_DATABASE_URL")


async def _migrate_process(url: str) -> tuple[int, str]:
    env = bot_env(DATABASE_URL=url)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "migrate", env=env, cwd=ROOT,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, err.decode()


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")
async def test_workers_started_together_migrate_a_fresh_database_once():
    """Four `migrate` processes at once on an empty PostgreSQL database: without a lock all but one
    failed with a duplicate pg_type row; now each waits its turn and finds the schema at head."""
    await reset_pg_schema(PG_URL)
    try:
        results = await asyncio.gather(*(_migrate_process(PG_URL) for _ in range(4)))
        assert [code for code, _ in results] == [0, 0, 0, 0], "\n".join(err[-1500:] for _, err in results)
        # One of them created the schema; the others had nothing left to do.
        assert sum("Running upgrade" in err for _, err in results) == 1, [err[-500:] for _, err in results]
        engine = create_engine(PG_URL)
        try:
            async with engine.connect() as conn:
                assert len((await conn.execute(text("SELECT version_num FROM alembic_version"))).all()) == 1
        finally:
            await engine.dispose()
    finally:
        await reset_pg_schema(PG_URL)
        await asyncio.to_thread(upgrade, PG_URL)


# ----- the scheduler lease -------------------------------------------------------------------------


def test_the_readme_states_the_lease_timing_the_code_has():
    """The README promised 30 s while renewal every 10 s of a 30 s lease allowed 40."""
    readme = (ROOT / "README.md").read_text()
    stated = re.search(r"takes over within (\d+) s", readme)
    assert stated, "the README no longer says how fast another worker takes over"
    assert int(stated.group(1)) == LEASE_SECONDS


def test_without_redis_this_worker_always_holds_the_lease():
    assert Lease(None).held


async def test_a_waiting_worker_takes_over_when_the_lease_lapses(redis_url):
    """The holder dies (stops renewing); the other worker's next attempt is timed by the lease's own
    expiry, not by a fixed tick that could add a renewal period on top."""
    if redis_url is None:
        pytest.skip("REDIS_URL is not set")
    from redis.asyncio import Redis

    seconds = 0.4
    redis = Redis.from_url(redis_url)
    try:
        holder, waiting = Lease(redis, seconds=seconds), Lease(redis, seconds=seconds)
        assert await holder.renew() == pytest.approx(seconds / 3) and holder.held
        died = time.monotonic()
        wait = await waiting.renew()
        assert not waiting.held and 0 < wait <= seconds + TAKEOVER_SLACK
        await asyncio.sleep(wait)  # Redis's clock decides the lapse; nothing here can move it
        await waiting.renew()
        assert waiting.held and time.monotonic() - died <= seconds + 2 * TAKEOVER_SLACK + 0.1
        # The dead holder's own view lapsed as well: it would not run a job beside the new one.
        assert not holder.held
    finally:
        await redis.aclose()


# ----- the per-user throttle -------------------------------------------------------------------------


async def test_the_throttle_is_one_budget_per_user_across_workers(redis_url):
    """Two workers' throttles on the same Redis: a user's burst is spent once, not once per worker."""
    if redis_url is None:
        pytest.skip("REDIS_URL is not set: the throttle is per worker (README)")
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    storage = SharedRedisStorage(redis)
    try:
        first, second = ThrottleMiddleware(rate=0.01, burst=4), ThrottleMiddleware(rate=0.01, burst=4)
        taken = [await (first if i % 2 else second)._take_shared(storage.redis, 42) for i in range(6)]
        assert taken == [(True, False)] * 4 + [(False, True), (False, False)]
        assert await first._take_shared(storage.redis, 43) == (True, False), "another user has their own budget"
    finally:
        await redis.aclose()
