"""Alembic migrations: every revision upgrades, downgrades and upgrades again on an empty database
(the "stairway"), and the migrated schema is exactly what the models declare.

SQLite always; PostgreSQL too when TEST_DATABASE_URL is set. tests/conftest.py migrates PostgreSQL
once per session and later tests only TRUNCATE, so a PostgreSQL test here starts by dropping the
public schema and always ends by leaving it migrated to head, empty.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables)
from bot.core.db import create_engine
from bot.core.migrate import alembic_config, downgrade, upgrade

PG_URL = os.environ.get("TEST_DATABASE_URL")
VERSION_TABLE = "alembic_version"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql",
                 marks=pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set")),
]


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def revisions() -> list[Script]:
    """Base first, head last."""
    return list(reversed(list(script_directory().walk_revisions())))


async def reset_pg_schema(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def empty_db_url(request, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables, no alembic_version)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    asyncio.run(reset_pg_schema(PG_URL))
    try:
        yield PG_URL
    finally:
        # Whatever the test left (even half-way down the stairs), later tests get a schema at head.
        asyncio.run(reset_pg_schema(PG_URL))
        upgrade(PG_URL)


def _snapshot_sync(conn) -> dict:
    """Everything a migration creates that the inspector can see, in comparable form."""
    insp = inspect(conn)
    shape: dict = {}
    for table in sorted(insp.get_table_names()):
        if table == VERSION_TABLE:
            continue
        shape[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
            "pk": sorted(insp.get_pk_constraint(table)["constrained_columns"]),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(table)),
            "uniques": sorted((u["name"] or "", tuple(u["column_names"])) for u in insp.get_unique_constraints(table)),
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                          for f in insp.get_foreign_keys(table)),
        }
    if conn.dialect.name == "postgresql":
        # A downgrade that drops a table but not its enum type breaks the next upgrade.
        shape["<enums>"] = sorted(e["name"] for e in insp.get_enums())
        shape["<sequences>"] = sorted(insp.get_sequence_names())
    version = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all() \
        if VERSION_TABLE in insp.get_table_names() else []
    return {"tables": shape, "version": version}


async def _run_sync(url: str, fn):
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def snapshot(url: str) -> dict:
    return asyncio.run(_run_sync(url, _snapshot_sync))


def test_one_linear_history() -> None:
    scripts = script_directory()
    assert len(scripts.get_heads()) == 1, f"several heads, merge them: {scripts.get_heads()}"
    assert len(scripts.get_bases()) == 1, f"several bases: {scripts.get_bases()}"
    assert revisions(), "no migrations at all"


def test_stairway(empty_db_url: str) -> None:
    """Each revision: up, down one step (back to exactly the schema before it), up again."""
    url = empty_db_url
    below = snapshot(url)
    assert below["version"] == [] and not any(below["tables"].values()), f"not an empty database: {below}"
    for script in revisions():
        rev = script.revision
        upgrade(url, rev)
        above = snapshot(url)
        assert above["version"] == [rev]

        downgrade(url, "-1")
        after_down = snapshot(url)
        expected_version = [script.down_revision] if script.down_revision else []
        assert after_down["version"] == expected_version, f"{rev}: downgrade left {after_down['version']}"
        assert after_down["tables"] == below["tables"], f"{rev}: downgrade did not restore the schema before it"

        upgrade(url, rev)
        again = snapshot(url)
        assert again == above, f"{rev}: upgrading again gave a different schema"
        below = above

    downgrade(url, "base")
    bottom = snapshot(url)
    assert bottom["version"] == [] and not any(bottom["tables"].values()), f"left behind at base: {bottom}"


def _compare_sync(conn) -> list:
    # The options the migration environment (migrations/env.py) autogenerates with.
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return compare_metadata(context, SQLModel.metadata)


def test_models_and_migrations_agree(empty_db_url: str) -> None:
    """`alembic revision --autogenerate` against a database at head would find nothing to write."""
    upgrade(empty_db_url)
    diffs = asyncio.run(_run_sync(empty_db_url, _compare_sync))
    assert diffs == [], "models and migrations disagree; write a migration:\n" + "\n".join(map(repr, diffs))
    tables = {t for t in snapshot(empty_db_url)["tables"] if not t.startswith("<")}
    assert tables == set(SQLModel.metadata.tables)
