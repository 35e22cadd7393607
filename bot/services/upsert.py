"""INSERT ... ON CONFLICT for both backends, one statement for many rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
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


async def execute_rows(session: AsyncSession, stmt: Insert, columns: Sequence[str], rows: list[dict]) -> None:
    """Run `insert_rows(...)`'s statement (or an ON CONFLICT made from it) for `rows`.

    On SQLite the rows go to the driver's executemany as tuples, each value through the bind
    processor SQLAlchemy itself would use: SQLAlchemy's own executemany builds and processes a
    parameter dict per row, which cost twice what SQLite took to write them (5,000 members:
    about 75 ms against 27 ms). `stmt` must be built once (cached), as its driver form is kept."""
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        await session.execute(stmt, rows_params(dialect.name, columns, rows))
        return
    sql, slots = _driver_form(stmt, tuple(columns), dialect)
    params = [tuple(take(row) for take in slots) for row in rows]
    connection = await session.connection()
    await connection.exec_driver_sql(sql, params)


_DRIVER_FORMS: dict[tuple[int, tuple[str, ...], str], tuple[Insert, str, list[Callable[[dict], Any]]]] = {}


def _driver_form(stmt: Insert, columns: tuple[str, ...], dialect: Dialect) -> tuple[str, list[Callable[[dict], Any]]]:
    """The statement's SQL for these columns, and per placeholder how a row gives its value."""
    key = (id(stmt), columns, dialect.name)
    known = _DRIVER_FORMS.get(key)
    if known is not None and known[0] is stmt:
        return known[1], known[2]
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
    table = stmt.table
    slots: list[Callable[[dict], Any]] = []
    for name in compiled.positiontup:
        process = compiled.binds[name].type._cached_bind_processor(dialect) or (lambda value: value)
        if name in columns:
            slots.append(lambda row, name=name, process=process: process(row[name]))
            continue
        column = table.c.get(name)
        if column is not None and column.default is not None:
            if column.default.is_callable:
                raise ValueError(f"{table.name}.{name} needs its default computed per row: give it in the rows")
            value = process(column.default.arg)
        else:
            value = process(compiled.params[name])
        slots.append(lambda row, value=value: value)
    _DRIVER_FORMS[key] = (stmt, compiled.string, slots)
    return compiled.string, slots
