"""A community's invitation options, kept in `community.settings["invites"]`.

Rewards exist for level 1 (the inviter) and level 2 (the inviter's inviter) only: Chinese law treats
three or more rewarded levels as pyramid selling. There is no option for a third level, an unknown
key in the stored JSON is ignored, and `reward_for` answers None past level 2 whatever is stored.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.numbers import whole_number
from bot.services.checkin_settings import CouponTerms
from bot.services.errors import DomainError
from bot.services.feature_settings import update_options
from models import Community

# The deepest level of a chain that is ever rewarded. Not an option.
MAX_REWARDED_LEVEL = 2
POINTS_MAX = 1_000_000


class Requirement(StrEnum):
    """What an invitee must have done, besides staying, for the invite to qualify."""

    NONE = "none"
    MESSAGE = "message"  # written in the group since joining
    PAID_ORDER = "paid_order"  # a paid (or picked-up) order since joining


class LevelReward(BaseModel):
    """What one level of the chain gets for a qualified invite: points, a coupon, or both."""

    points: int = Field(default=0, ge=0, le=POINTS_MAX)
    coupon: CouponTerms | None = None

    @property
    def empty(self) -> bool:
        return self.points == 0 and self.coupon is None


class InviteSettings(BaseModel):
    # Stored JSON may carry keys this version does not know (a "level3" written by hand, say):
    # they are ignored, never acted on.
    model_config = ConfigDict(extra="ignore")

    enabled: bool = True
    # Member links are made with creates_join_request, and the bot approves or declines each request.
    approve_joins: bool = False
    # An invite qualifies once the invitee has stayed this many days (and met `require`).
    qualify_days: int = Field(default=3, ge=1, le=90)
    require: Requirement = Requirement.NONE
    level1: LevelReward = Field(default_factory=lambda: LevelReward(points=10))
    # Off by default.
    level2: LevelReward | None = None
    # More than `burst_joins` joins through one link within `burst_minutes`: those joins are held.
    burst_joins: int = Field(default=10, ge=1, le=10_000)
    burst_minutes: int = Field(default=10, ge=1, le=1440)
    # An inviter with at least `leave_rate_min_invites` invites, more than `leave_rate_percent` % of
    # whose invitees left: their new invites are held.
    leave_rate_percent: int = Field(default=50, ge=1, le=100)
    leave_rate_min_invites: int = Field(default=5, ge=1, le=1000)

    @model_validator(mode="after")
    def _empty_level2_is_off(self) -> InviteSettings:
        if self.level2 is not None and self.level2.empty:
            self.level2 = None
        return self

    def reward_for(self, level: int) -> LevelReward | None:
        """The reward of chain level `level` (1: the inviter), or None: nothing is given. Always
        None past MAX_REWARDED_LEVEL."""
        if level == 1:
            reward = self.level1
        elif level == MAX_REWARDED_LEVEL:
            reward = self.level2
        else:
            return None
        return None if reward is None or reward.empty else reward


def invite_settings(community: Community) -> InviteSettings:
    return InviteSettings.model_validate(community.settings.get("invites", {}))


async def update_invite_settings(session: AsyncSession, *, community: Community, actor_id: int, now: datetime,
                                 **changes: object) -> InviteSettings:
    """Validate and store changed options, with an audit row (`invites.<option>`) per change, and
    commit. Rewards are given as `LevelReward` (or its dict); `level2=None` switches level 2 off.
    Refused as a whole with `invite_setting_invalid` (detail: the first problem), an unknown option
    (a third level, say) included."""
    return await update_options(session, community=community, section="invites", current=invite_settings(community),
                                changes=changes, actor_id=actor_id, now=now, refusal="invite_setting_invalid",
                                problem=_problem)


def _problem(exc: ValueError) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc).splitlines()[0]


# --- reading what a leader types into the options forms -------------------------------------------

def option_bounds(key: str) -> tuple[int, int]:
    """The range a numeric option accepts, read from the model so the form and storage agree."""
    low = high = None
    for rule in InviteSettings.model_fields[key].metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    return low, high


def parse_option_number(key: str, raw: str) -> int:
    """A whole number for a numeric option (qualify_days, burst_joins, ...), or
    `invite_setting_number` (value, min, max)."""
    low, high = option_bounds(key)
    text = raw.strip()
    value = whole_number(text)
    if value is None or not low <= value <= high:
        raise DomainError("invite_setting_number", value=text[:16], min=low, max=high)
    return value


def parse_reward_points(raw: str) -> int:
    """Points for a level's reward ("0" for none), or `invite_setting_number` (value, min, max)."""
    text = raw.strip()
    value = whole_number(text)
    if value is None or value > POINTS_MAX:
        raise DomainError("invite_setting_number", value=text[:16], min=0, max=POINTS_MAX)
    return value
