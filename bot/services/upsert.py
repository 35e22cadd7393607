"""INSERT ... ON CONFLICT for both backends, one statement for many rows."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlmodel.ext.asyncio.session import AsyncSession


def insert_for(session: AsyncSession, table: Table):
    """The dialect's own `insert`, which knows ON CONFLICT."""
    return insert_in(session.get_bind().dialect.name, table)


def insert_in(name: str, table: Table):
    """`insert_for` by dialect name, for statements built once per dialect."""
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database dialect {name!r}")


def on_conflict_update(stmt: Insert, *, keys: Sequence[str], set_: dict) -> Insert:
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=set_)
