"""INSERT ... ON CONFLICT for both backends, one statement for many rows."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, bindparam, func, select
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


def insert_rows(name: str, table: Table, columns: Sequence[str]) -> Insert:
    """An INSERT of many rows into `columns`, for `rows_params`. PostgreSQL gets the rows as one
    array per column and unnests them on the server: one statement whose parameters asyncpg encodes
    in C, where an executemany encodes and sends row by row (5,000 member rows: 0.14 s against
    0.07 s). Elsewhere it is an executemany of the plain INSERT."""
    stmt = insert_in(name, table)
    if name != "postgresql":
        return stmt
    arrays = [bindparam(f"rows_{c}", type_=postgresql.ARRAY(table.c[c].type)) for c in columns]
    return stmt.from_select(list(columns), select(func.unnest(*arrays).table_valued(*columns).render_derived()))


def rows_params(name: str, columns: Sequence[str], rows: list[dict]) -> list[dict] | dict:
    """The parameters of `insert_rows` for `rows`."""
    if name != "postgresql":
        return rows
    return {f"rows_{c}": [row[c] for row in rows] for c in columns}
