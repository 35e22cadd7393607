"""The audit trail of administrative changes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import AuditLog


def record(
    session: AsyncSession,
    *,
    community_id: int | None,
    actor_id: int | None,
    action: str,
    details: dict,
    now: datetime,
) -> AuditLog:
    """Add an entry to the session; it commits with the change it describes."""
    entry = AuditLog(community_id=community_id, actor_id=actor_id, action=action, details=details, created_at=now)
    session.add(entry)
    return entry


async def record_many(session: AsyncSession, entries: list[dict], *, now: datetime) -> None:
    """Entries (community_id, actor_id, action, details) written in one INSERT, now: a close that
    settles thousands of orders would spend more CPU on ORM objects than on the rest of its work."""
    if entries:
        await session.execute(insert(AuditLog.__table__), [{**entry, "created_at": now} for entry in entries])


async def recent(session: AsyncSession, *, community_id: int, limit: int = 20) -> list[AuditLog]:
    result = await session.exec(
        select(AuditLog)
        .where(AuditLog.community_id == community_id)
        .order_by(col(AuditLog.created_at).desc(), col(AuditLog.id).desc())
        .limit(limit)
    )
    return list(result)
