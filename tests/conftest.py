"""Shared fixtures: a clean real database per test (SQLite, or PostgreSQL when TEST_DATABASE_URL is
set), real Redis when REDIS_URL is set, the Telegram emulator, and the real bot polling it over HTTP.

With REQUIRE_SERVICES=1 (CI) an unreachable PostgreSQL or Redis fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

import models  # noqa: F401
from bot.db import create_engine, session_factory
from bot.migrate import upgrade

PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("REDIS_URL")
REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true" and bool(PG_URL or REDIS_URL)
TOKEN = "123456:TEST-token_for-emulator"


def _check_services() -> None:
    async def check() -> list[str]:
        problems = []
        if PG_URL:
            engine = create_engine(PG_URL)
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            except Exception as exc:
                problems.append(f"PostgreSQL at {PG_URL}: {exc}")
            finally:
                await engine.dispose()
        if REDIS_URL:
            from redis.asyncio import Redis

            redis = Redis.from_url(REDIS_URL, socket_connect_timeout=3)
            try:
                await redis.ping()
            except Exception as exc:
                problems.append(f"Redis at {REDIS_URL}: {exc}")
            finally:
                await redis.aclose()
        return problems

    problems = asyncio.run(check())
    if problems:
        pytest.exit("required services unreachable: " + "; ".join(problems), returncode=3)


def pytest_sessionstart(session) -> None:
    if REQUIRE or PG_URL or REDIS_URL:
        _check_services()


def pytest_report_header(config) -> str:
    return f"database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite'}; redis: {REDIS_URL or 'in-process'}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> str:
    """Run the real migrations once; each SQLite test copies the result, PostgreSQL truncates."""
    if PG_URL:
        async def reset() -> None:
            engine = create_engine(PG_URL)
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await engine.dispose()

        asyncio.run(reset())
        upgrade(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return str(path)


@pytest.fixture
async def db_url(migrated_template: str, tmp_path: Path) -> AsyncIterator[str]:
    if PG_URL:
        engine = create_engine(PG_URL)
        tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await engine.dispose()
        yield PG_URL
    else:
        path = tmp_path / "bot.db"
        shutil.copy(migrated_template, path)
        yield f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def engine(db_url: str):
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine):
    async with session_factory(engine)() as session:
        yield session


@pytest.fixture
async def redis_url() -> AsyncIterator[str | None]:
    """The test Redis, emptied, or None when tests run in-process."""
    if not REDIS_URL:
        yield None
        return
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    yield REDIS_URL
