"""The PostgreSQL pool pings a connection only after it sat idle, and replaces one that died meanwhile."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from bot.core import db
from bot.core.db import create_engine


@pytest.fixture
def pg_url():
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL not set: SQLite has no server connection to lose")
    return url


async def _backend_pid(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()


async def test_a_connection_killed_while_idle_is_replaced_without_an_error(pg_url, monkeypatch):
    engine, killer = create_engine(pg_url), create_engine(pg_url)
    try:
        first = await _backend_pid(engine)
        assert await _backend_pid(engine) == first  # the pool hands the same connection back
        async with killer.connect() as conn:
            await conn.execute(text(f"SELECT pg_terminate_backend({first})"))
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # as if it had sat idle for long
        replaced = await _backend_pid(engine)
        assert replaced != first
    finally:
        await engine.dispose()
        await killer.dispose()


async def test_only_a_connection_idle_for_a_while_is_pinged(pg_url, monkeypatch):
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

    pings = []
    real_ping = AsyncAdapt_asyncpg_connection.ping
    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", lambda self: (pings.append(1), real_ping(self))[1])
    engine = create_engine(pg_url)
    try:
        await _backend_pid(engine)
        await _backend_pid(engine)
        assert pings == []  # used a moment ago: a ping would only cost round trips
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
        await _backend_pid(engine)
        assert pings == [1]
    finally:
        await engine.dispose()
