"""Fixtures for the domain-service tests: a fixed clock, fresh read-back sessions, quick builders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

import pytest
from sqlmodel import func, select

from bot.core.db import session_factory
from bot.services import communities
from models import AuditLog, Community

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
ALL_RIGHTS = {"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True, "can_manage_chat": True}


@pytest.fixture
def t0() -> datetime:
    return T0


@pytest.fixture
def fresh(engine):
    """Sessions independent of the service's identity map: they see only what was committed."""
    return session_factory(engine)


@pytest.fixture
def add_community(session) -> Callable[..., Awaitable[Community]]:
    """Create a community the way production does: the bot is added to a group."""

    async def make(chat_id: int = -100, *, title: str = "Group", status: str = "administrator",
                   rights: dict | None = None, now: datetime = T0) -> Community:
        result = await communities.on_bot_status(
            session, chat_id=chat_id, title=title, status=status,
            rights=ALL_RIGHTS if rights is None else rights,
            default_locale="en", default_timezone="UTC", now=now,
        )
        return result.community

    return make


@pytest.fixture
def audit_rows(fresh) -> Callable[..., Awaitable[list[AuditLog]]]:
    async def rows(action: str | None = None) -> list[AuditLog]:
        async with fresh() as s:
            query = select(AuditLog).order_by(AuditLog.id)
            if action is not None:
                query = query.where(AuditLog.action == action)
            return list(await s.exec(query))

    return rows


@pytest.fixture
def count(fresh) -> Callable[..., Awaitable[int]]:
    async def count_rows(model, *where) -> int:
        async with fresh() as s:
            return (await s.exec(select(func.count()).select_from(model).where(*where))).one()

    return count_rows
