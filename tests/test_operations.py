"""Running several workers: migrations started together, the scheduler lease's timing, and the
README that states it.

The PostgreSQL test runs in the PostgreSQL pass only (TEST_DATABASE_URL); it leaves the schema at
head, empty, as tests/conftest.py expects of tests that drop it.
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from sqlalchemy import text

from bot.core.config import ROOT
from bot.core.db import create_engine
from bot.core.migrate import upgrade

PG_URL = os.environ.get("TEST_DATABASE_URL")
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


async def _reset_pg_schema(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def _migrate_process(url: str) -> tuple[int, str]:
    env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ} | {"DATABASE_URL": url}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "migrate", env=env, cwd=ROOT,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, err.decode()


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")
async def test_workers_started_together_migrate_a_fresh_database_once():
    """Four `migrate` processes at once on an empty PostgreSQL database: without a lock all but one
    failed with a duplicate pg_type row; now each waits its turn and finds the schema at head."""
    await _reset_pg_schema(PG_URL)
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
        await _reset_pg_schema(PG_URL)
        await asyncio.to_thread(upgrade, PG_URL)
