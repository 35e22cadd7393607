"""What a member's own check-in screens read: whether the bot may answer them in private, and the
days they may still make up (补签) with what that costs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import checkins, points
from bot.services.checkin_settings import checkin_settings, local_day
from models import CheckIn, Community, User


async def reachable(session: AsyncSession, *, user_id: int) -> bool:
    """The bot may write to them in private: they started it, have not blocked it, have not used
    /stop and are not erased."""
    user = await session.get(User, user_id, populate_existing=True)
    return user is not None and user.can_dm and not user.marketing_opt_out and not user.erased


@dataclass(frozen=True, slots=True)
class MakeUpChoice:
    community: Community
    today: date
    days: list[date]  # missed days that may be made up, newest first
    cost: int
    window: int  # K: how many days back
    left: int  # make-ups left this community-local month
    limit: int  # M
    balance: int

    @property
    def offered(self) -> bool:
        return self.window > 0 and self.limit > 0


async def makeup_choice(session: AsyncSession, *, community: Community, user_id: int, at: datetime) -> MakeUpChoice:
    """The days within the last K before today (community-local) the member has no check-in,
    freeze or make-up for, and the terms."""
    settings = checkin_settings(community)
    today = local_day(community, at)
    window = settings.makeup_days if settings.enabled else 0
    first = today - timedelta(days=window)
    taken = set((await session.exec(select(CheckIn.day).where(
        CheckIn.community_id == community.id, CheckIn.user_id == user_id, col(CheckIn.day) >= first,
        col(CheckIn.day) < today))).all())
    days = [today - timedelta(days=n) for n in range(1, window + 1) if today - timedelta(days=n) not in taken]
    made = await checkins.makeups_this_month(session, community=community, user_id=user_id, at=at)
    balance = await points.balance(session, community_id=community.id, user_id=user_id)
    return MakeUpChoice(community, today, days, settings.makeup_cost, window,
                        max(0, settings.makeups_per_month - made), settings.makeups_per_month, balance)
