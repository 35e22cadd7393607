"""The SQLite engine's one-trip cursor (bot/core/db.py) behaves as SQLAlchemy's own aiosqlite cursor."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from bot.core.db import create_engine

things = Table("things", MetaData(), Column("id", Integer, primary_key=True), Column("name", String, unique=True))


async def test_statements_results_counts_and_errors(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one_trip.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(things.metadata.create_all)
            assert type((await conn.get_raw_connection()).dbapi_connection).__name__ == "_OneTripConnection"
            first = await conn.execute(insert(things).values(name="a").returning(things.c.id, things.c.name))
            assert first.all() == [(1, "a")]
            plain = await conn.execute(insert(things).values(name="b"))
            assert plain.inserted_primary_key == (2,)
            await conn.execute(insert(things), [{"name": "c"}, {"name": "d"}, {"name": "e"}])  # executemany
            changed = await conn.execute(update(things).where(things.c.id > 3).values(name=things.c.name + "!"))
            assert changed.rowcount == 2
            rows = await conn.execute(select(things.c.name).order_by(things.c.id))
            assert rows.scalars().all() == ["a", "b", "c", "d!", "e!"]
            assert (await conn.execute(text("SELECT count(*) FROM things WHERE 0"))).scalar_one() == 0
        async with engine.connect() as conn:
            with pytest.raises(IntegrityError):
                await conn.execute(insert(things).values(name="a"))
            await conn.rollback()
            streamed = await conn.stream(select(things.c.id).order_by(things.c.id))
            assert [r async for r in streamed.scalars()] == [1, 2, 3, 4, 5]
    finally:
        await engine.dispose()
