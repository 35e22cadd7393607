"""The leaders' weekly stats digest: when each leader's is due, and each leader's options.

Every leader of a community chooses for themselves: their options live in
`community.settings["stats_digest"][<leader id>]` (see feature_settings.py), and a leader who never
chose gets the default, on, Monday (ISO weekday 1) at 09:00 community-local time. A digest is due
once that moment of the current ISO week has passed; the job claims (community, leader, ISO week)
so that restarts, late runs and several workers send it once a week, and a bot that was down at
the time sends it at its first run after. A digest reports on a week: a community the bot has
known for less than the week before the moment gets its first one the week after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator
from sqlmodel import col, not_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import job_marks
from bot.services.feature_settings import update_options
from models import Community, Member, MemberStatus, User

SECTION = "stats_digest"
JOB = "stats_digest"


class DigestSettings(BaseModel):
    enabled: bool = True
    weekday: int = Field(default=1, ge=1, le=7)
    time: str = "09:00"

    @field_validator("time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        return time.fromisoformat(value).strftime("%H:%M")


@dataclass(frozen=True)
class DueDigest:
    community: Community
    leader: User
    key: str  # the job_marks claim: this leader's digest of this community for this ISO week


def digest_settings(community: Community, *, leader_id: int) -> DigestSettings:
    """This leader's own options for this community's digest (the default if they never chose)."""
    return DigestSettings.model_validate(community.settings.get(SECTION, {}).get(str(leader_id), {}))


async def update_digest_settings(session: AsyncSession, *, community: Community, leader_id: int, now: datetime,
                                 **changes: object) -> DigestSettings:
    """Validate and store a leader's changed options, with an audit row per change, and commit.
    Only the leader's own options change: each leader chooses for themselves."""
    return await update_options(session, community=community, section=SECTION,
                                current=digest_settings(community, leader_id=leader_id), changes=changes,
                                actor_id=leader_id, now=now, refusal="digest_setting_invalid",
                                problem=lambda exc: str(exc).splitlines()[0], entry=str(leader_id))


def week_key(community: Community, leader_id: int, local_day: date) -> str:
    year, week, _ = local_day.isocalendar()
    return f"{community.id}:{leader_id}:{year}-W{week:02d}"


def due_moment(options: DigestSettings, local_now: datetime) -> datetime:
    """This ISO week's digest moment, in local wall-clock time."""
    monday = local_now.date() - timedelta(days=local_now.isoweekday() - 1)
    day = monday + timedelta(days=options.weekday - 1)
    return datetime.combine(day, time.fromisoformat(options.time), tzinfo=local_now.tzinfo)


async def digests_due(session: AsyncSession, *, now: datetime) -> list[DueDigest]:
    """Leaders of active communities who can get a private message, whose own digest moment of this
    local week has passed and whose digest of this week was not claimed yet, by community.
    Options are JSON, so the moment is compared here; `job_marks.claim` still decides who sends."""
    rows = await session.exec(
        select(Community, User).join(Member, Member.community_id == Community.id).join(User, User.id == Member.user_id)
        .where(col(Community.active), col(Member.is_leader), Member.status == MemberStatus.MEMBER, col(User.can_dm),
               not_(col(User.erased)))
        .order_by(Community.id, User.id)
    )
    candidates = []
    for community, leader in rows:
        options = digest_settings(community, leader_id=leader.id)
        if not options.enabled:
            continue
        local_now = now.astimezone(ZoneInfo(community.timezone))
        moment = due_moment(options, local_now)
        if local_now >= moment and community.created_at <= moment - timedelta(days=7):
            candidates.append(DueDigest(community, leader, week_key(community, leader.id, local_now.date())))
    sent = await job_marks.claimed(session, job=JOB, keys=[due.key for due in candidates])
    return [due for due in candidates if due.key not in sent]
