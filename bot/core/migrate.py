"""Apply Alembic migrations from code: `run` and `migrate` share this."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.core.config import ROOT

# One key for the whole project: pg_advisory_lock takes a bigint, scoped to the current database.
MIGRATION_LOCK = 0x63636276_6D696772  # "ccbvmigr"


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Synchronous; env.py runs its own event loop, so call it outside one (or in a thread)."""
    _locked(url, lambda: command.upgrade(alembic_config(url), revision))


def downgrade(url: str, revision: str) -> None:
    _locked(url, lambda: command.downgrade(alembic_config(url), revision))


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)


def _locked(url: str, migrate: Callable[[], None]) -> None:
    """Workers started together on a fresh PostgreSQL database would each create the same tables and
    types, and all but one fail ("duplicate key value violates unique constraint
    pg_type_typname_nsp_index"). Under a session advisory lock they take turns: the first migrates,
    the others find the schema at head. The lock dies with its connection, so a worker killed
    mid-migration never blocks the next. SQLite has one writer at a time already."""
    if make_url(url).get_backend_name() != "postgresql":
        migrate()
        return
    asyncio.run(_with_advisory_lock(url, migrate))


async def _with_advisory_lock(url: str, migrate: Callable[[], None]) -> None:
    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            await conn.commit()
            try:
                # Alembic's env.py runs its own event loop: off this one, in a thread.
                await asyncio.to_thread(migrate)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                await conn.commit()
    finally:
        await engine.dispose()
