"""The leaders' weekly stats digest: when each community's is due, and its options.

Options live in `community.settings["stats_digest"]` (see feature_settings.py): on by default, on
a community-local weekday (ISO, Monday = 1) at a local HH:MM. A digest is due once that moment of
the current ISO week has passed; the job claims (community, ISO week) so that restarts, late runs
and several workers send it once a week, and a bot that was down at the time sends it at its first
run after. A digest reports on a week: a community the bot has known for less than the week before
the moment gets its first one the week after.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.feature_settings import update_options
from models import Community

SECTION = "stats_digest"


class DigestSettings(BaseModel):
    enabled: bool = True
    weekday: int = Field(default=1, ge=1, le=7)
    time: str = "09:00"

    @field_validator("time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        return time.fromisoformat(value).strftime("%H:%M")


def digest_settings(community: Community) -> DigestSettings:
    return DigestSettings.model_validate(community.settings.get(SECTION, {}))


async def update_digest_settings(session: AsyncSession, *, community: Community, actor_id: int, now: datetime,
                                 **changes: object) -> DigestSettings:
    """Validate and store changed options, with an audit row per change, and commit."""
    return await update_options(session, community=community, section=SECTION, current=digest_settings(community),
                                changes=changes, actor_id=actor_id, now=now, refusal="digest_setting_invalid",
                                problem=lambda exc: str(exc).splitlines()[0])


def week_key(community: Community, local_day: date) -> str:
    year, week, _ = local_day.isocalendar()
    return f"{community.id}:{year}-W{week:02d}"


def due_moment(options: DigestSettings, local_now: datetime) -> datetime:
    """This ISO week's digest moment, in local wall-clock time."""
    monday = local_now.date() - timedelta(days=local_now.isoweekday() - 1)
    day = monday + timedelta(days=options.weekday - 1)
    return datetime.combine(day, time.fromisoformat(options.time), tzinfo=local_now.tzinfo)


async def digests_due(session: AsyncSession, *, now: datetime) -> list[tuple[Community, str]]:
    """Active communities whose digest moment of this local week has passed, with the week's claim key.
    Options are JSON, so the comparison is made here; whether it was sent is for `job_marks.claim`."""
    due = []
    for community in await session.exec(select(Community).where(col(Community.active)).order_by(Community.id)):
        options = digest_settings(community)
        if not options.enabled:
            continue
        local_now = now.astimezone(ZoneInfo(community.timezone))
        moment = due_moment(options, local_now)
        if local_now >= moment and community.created_at <= moment - timedelta(days=7):
            due.append((community, week_key(community, local_now.date())))
    return due
