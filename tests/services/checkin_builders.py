"""Builders for the check-in and points service tests: a community in a timezone with check-in
options, members joining and leaving through the real services, local wall-clock moments, and
what the database holds read back in a session of its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.db import SessionFactory
from bot.services import communities, members
from bot.services.checkin_settings import CheckinSettings
from bot.services.users import Profile
from models import CheckIn, Community, PointsAccount, PointsEntry

ALL_RIGHTS = {"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True, "can_manage_chat": True}


def local(tz: str, *parts: int) -> datetime:
    """The UTC instant of a community-local wall-clock time: local("Asia/Shanghai", 2026, 3, 7, 23, 59, 59)."""
    return datetime(*parts, tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


async def make_group(session: AsyncSession, *, now: datetime, tz: str = "UTC", chat_id: int = -500,
                     **options: object) -> Community:
    """A community the bot administers, in `tz`, with `options` as its check-in settings."""
    result = await communities.on_bot_status(
        session, chat_id=chat_id, title=f"Group {chat_id}", status="administrator", rights=ALL_RIGHTS,
        default_locale="en", default_timezone=tz, now=now)
    community = result.community
    community.timezone = tz
    community.settings = {**community.settings, "checkin": CheckinSettings(**options).model_dump(mode="json")}
    await session.commit()
    return community


async def join(session: AsyncSession, community: Community, *user_ids: int, now: datetime) -> None:
    for uid in user_ids:
        await members.on_member_status(session, community=community, profile=Profile(id=uid, first_name=f"U{uid}"),
                                       old_status="left", new_status="member", now=now)


async def leave(session: AsyncSession, community: Community, user_id: int, *, now: datetime,
                status: str = "left") -> None:
    await members.on_member_status(session, community=community, profile=Profile(id=user_id, first_name=f"U{user_id}"),
                                   old_status="member", new_status=status, now=now)


@dataclass(frozen=True, slots=True)
class Held:
    """One member's rows in one community, as committed."""

    days: list[tuple[date, str, int, int]]  # (day, kind, streak, points)
    entries: list[tuple[str, str, int]]  # (reason, reference, delta), in order written
    account: PointsAccount | None
    ledger_total: int


async def held(fresh: SessionFactory, community_id: int, user_id: int) -> Held:
    async with fresh() as s:
        days = [(c.day, c.kind, c.streak, c.points) for c in await s.exec(
            select(CheckIn).where(CheckIn.community_id == community_id, CheckIn.user_id == user_id)
            .order_by(CheckIn.day))]
        entries = [(e.reason, e.reference, e.delta) for e in await s.exec(
            select(PointsEntry).where(PointsEntry.community_id == community_id, PointsEntry.user_id == user_id)
            .order_by(PointsEntry.id))]
        account = (await s.exec(select(PointsAccount).where(PointsAccount.community_id == community_id,
                                                            PointsAccount.user_id == user_id))).first()
        total = (await s.exec(select(func.coalesce(func.sum(PointsEntry.delta), 0)).where(
            PointsEntry.community_id == community_id, PointsEntry.user_id == user_id))).one()
    return Held(days, entries, account, int(total))
