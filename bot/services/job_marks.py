"""Exactly-once guards for scheduled work, shared by every worker through the database."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.upsert import insert_for
from models import JobMark


async def claim(session: AsyncSession, *, job: str, key: str, now: datetime) -> bool:
    """True for exactly one caller per (job, key), ever; the claim commits with the caller's work."""
    result = await session.execute(
        insert_for(session, JobMark.__table__).values(job=job, key=key, created_at=now)
        .on_conflict_do_nothing(index_elements=["job", "key"])
    )
    return result.rowcount == 1


async def claimed(session: AsyncSession, *, job: str, keys: list[str]) -> set[str]:
    """Which of `keys` some caller has already claimed for `job` (a cheap pre-check; `claim` decides)."""
    if not keys:
        return set()
    result = await session.exec(select(JobMark.key).where(JobMark.job == job, col(JobMark.key).in_(keys)))
    return set(result)
