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
from aiogram import Dispatcher as AiogramDispatcher
from sqlalchemy import text
from sqlmodel import SQLModel

import models  # noqa: F401
from bot.core.db import create_engine, session_factory
from bot.core.migrate import upgrade


def _per_worker(url: str | None, kind: str) -> str | None:
    """Under pytest-xdist each worker gets its own PostgreSQL database and Redis db, because every
    test empties them; the environment is rewritten so that test modules see the same URLs."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    from sqlalchemy.engine import make_url

    index = int(worker.removeprefix("gw"))
    parsed = make_url(url)
    if kind == "pg":
        return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)
    base, _, db = url.rpartition("/")
    return f"{base}/{int(db or 0) - 1 - index}"


_BASE_PG_URL = os.environ.get("TEST_DATABASE_URL")
PG_URL = _per_worker(_BASE_PG_URL, "pg")
REDIS_URL = _per_worker(os.environ.get("REDIS_URL"), "redis")
for _name, _value in (("TEST_DATABASE_URL", PG_URL), ("REDIS_URL", REDIS_URL)):
    if _value:
        os.environ[_name] = _value
REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true" and bool(PG_URL or REDIS_URL)
TOKEN = "123456:TEST-token_for-emulator"


def _check_services() -> None:
    async def check() -> list[str]:
        problems = []
        if PG_URL and PG_URL != _BASE_PG_URL:
            await _create_worker_database()
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


async def _create_worker_database() -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = make_url(PG_URL).database
    engine = create_async_engine(_BASE_PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:
        pass  # reported as unreachable by the check that follows
    finally:
        await engine.dispose()


def pytest_sessionstart(session) -> None:
    if REQUIRE or PG_URL or REDIS_URL:
        _check_services()


# What reaches PostgreSQL or Redis in a test: these fixtures, or the URLs read from the environment.
_BACKEND_FIXTURES = frozenset({"db_url", "redis_url", "migrated_template"})
_BACKEND_NAMES = ("TEST_DATABASE_URL", "REDIS_URL", "PG_URL")


def pytest_collection_modifyitems(config, items) -> None:
    """The PostgreSQL + Redis pass runs only the tests those services can change: one that reaches
    neither (the emulator's own rules, views, catalogs, layering, a bot on a SQLite file it names)
    behaves exactly as it did in the SQLite pass, and running it twice cost CI minutes, not coverage."""
    if not (PG_URL or REDIS_URL):
        return
    sources: dict[str, bool] = {}

    def reaches_services(item) -> bool:
        if _BACKEND_FIXTURES & set(getattr(item, "fixturenames", ())):
            return True
        path = str(item.path)
        if path not in sources:
            text = item.path.read_text() if item.path.suffix == ".py" else ""
            sources[path] = any(name in text for name in _BACKEND_NAMES)
        return sources[path]

    same = [item for item in items if not reaches_services(item)]
    if same:
        config.hook.pytest_deselected(items=same)
        items[:] = [item for item in items if reaches_services(item)]


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


# Every table emptied, dependents first, and every sequence back at 1, in one command. A test's
# tables hold a handful of rows: DELETE takes about 20 ms where TRUNCATE (new files for 32 tables)
# took 120 ms on a quiet machine and up to 900 ms beside the other workers.
_EMPTY_PG = text(
    "DO $$ BEGIN "
    + " ".join(f"DELETE FROM {table.name};" for table in reversed(SQLModel.metadata.sorted_tables))
    + " PERFORM setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
      " WHERE c.relkind = 'S' AND n.nspname = 'public'; END $$")


@pytest.fixture
async def db_url(migrated_template: str, tmp_path: Path) -> AsyncIterator[str]:
    if PG_URL:
        engine = create_engine(PG_URL)
        async with engine.begin() as conn:
            await conn.execute(_EMPTY_PG)
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


@pytest.fixture
def routed_updates(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Ids of the updates that went through aiogram's own feed_update (routing)."""
    seen: list[int] = []
    original = AiogramDispatcher.feed_update

    async def counting(self, bot, update, **kwargs):
        seen.append(update.update_id)
        return await original(self, bot, update, **kwargs)

    monkeypatch.setattr(AiogramDispatcher, "feed_update", counting)
    return seen
