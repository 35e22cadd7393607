"""A community's check-in and points options, kept in `community.settings["checkin"]`.

Apart from bot/services/checkins.py because both check-ins and the points ledger read them
(purchase points, expiry) and checkins.py builds on points.py.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from types import NoneType
from typing import get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.numbers import whole_number
from bot.services.coupons import CouponSpec
from bot.services.errors import DomainError
from bot.services.feature_settings import update_options
from models import Community, CouponKind

MILESTONES_MAX = 20
MILESTONE_DAY_MIN = 2
STREAK_MAX_DAYS = 3650
MILESTONE_POINTS_MAX = 1_000_000
OFF_WORDS = ("off", "no", "none", "-", "关", "关闭", "不要")


class CouponTerms(BaseModel):
    """What a coupon made for a member looks like: a milestone's coupon, a points reward's."""

    kind: CouponKind
    value: int = Field(gt=0)  # minor units (fixed) or whole percent
    cap: int | None = Field(default=None, gt=0)  # the most a percent coupon takes off, minor units
    min_spend: int = Field(default=0, ge=0)
    # Valid until the end of the community-local day this many days after it is issued; None: forever.
    valid_days: int | None = Field(default=30, ge=1, le=3650)

    @model_validator(mode="after")
    def _percent(self) -> CouponTerms:
        if self.kind == CouponKind.PERCENT and self.value > 100:
            raise ValueError("a percent coupon takes at most 100%")
        return self

    def spec(self, *, owner_id: int, timezone_name: str, now: datetime, source: str) -> CouponSpec:
        """The owner-bound coupon these terms give, issued `now`."""
        return CouponSpec(kind=self.kind, value=self.value, cap=self.cap, min_spend=self.min_spend,
                          expires_at=expiry_after(self.valid_days, timezone_name, now), owner_id=owner_id,
                          source=source)


def expiry_after(days: int | None, timezone_name: str, now: datetime) -> datetime | None:
    """The last moment of the community-local day `days` days after `now`, in UTC (None: never)."""
    if days is None:
        return None
    zone = ZoneInfo(timezone_name)
    last_day = now.astimezone(zone).date() + timedelta(days=days)
    start_after = datetime.combine(last_day + timedelta(days=1), time(0), zone)
    return start_after.astimezone(timezone.utc) - timedelta(microseconds=1)


class CheckinSettings(BaseModel):
    enabled: bool = True
    # Community-local HH:MM at which the daily check-in card is posted; None: no card.
    card_time: str | None = None
    pin_card: bool = False
    # The reward curve: day n of a streak earns base + increment * (min(n, cap_days) - 1).
    base_points: int = Field(default=5, ge=0, le=10_000)
    daily_increment: int = Field(default=1, ge=0, le=10_000)
    increment_cap_days: int = Field(default=7, ge=1, le=365)
    # Streak length → bonus points, or the terms of a coupon, given once when a streak reaches it.
    milestones: dict[int, int | CouponTerms] = Field(default_factory=lambda: {7: 20, 30: 100})
    # Make-ups (补签): a missed day within the last `makeup_days` (0: none), for `makeup_cost`
    # points, at most `makeups_per_month` per community-local calendar month.
    makeup_days: int = Field(default=3, ge=0, le=30)
    makeup_cost: int = Field(default=20, ge=0, le=1_000_000)
    makeups_per_month: int = Field(default=2, ge=0, le=31)
    # Streak freezes: one earned per 7 days of streak, at most 2 held, one covers a single missed day.
    freeze_enabled: bool = False
    # Points per whole unit of the community's currency an order pays (0: no purchase points).
    purchase_points_per_unit: int = Field(default=0, ge=0, le=10_000)
    # Community-local hour from which members about to lose a streak get a reminder; None: none.
    reminder_hour: int | None = Field(default=20, ge=0, le=23)
    # Points expire this many months after they were earned, oldest first; 0: never.
    points_expiry_months: int = Field(default=0, ge=0, le=120)
    # Community-local quiet hours (HH:MM, may wrap midnight): no reminders then. Both or neither.
    quiet_start: str | None = None
    quiet_end: str | None = None

    @field_validator("card_time", "quiet_start", "quiet_end")
    @classmethod
    def _hhmm(cls, value: str | None) -> str | None:
        if value is not None:
            return time.fromisoformat(value).strftime("%H:%M")
        return value

    @field_validator("milestones")
    @classmethod
    def _milestones(cls, value: dict[int, int | CouponTerms]) -> dict[int, int | CouponTerms]:
        if len(value) > MILESTONES_MAX:
            raise ValueError(f"at most {MILESTONES_MAX} milestones")
        for day, reward in value.items():
            # Day 1 would be every first check-in again after a break: that is the base points.
            if not MILESTONE_DAY_MIN <= day <= STREAK_MAX_DAYS:
                raise ValueError(f"a milestone is a streak of {MILESTONE_DAY_MIN} to {STREAK_MAX_DAYS} days")
            if isinstance(reward, int) and not 1 <= reward <= MILESTONE_POINTS_MAX:
                raise ValueError(f"a milestone gives 1 to {MILESTONE_POINTS_MAX} points")
        return dict(sorted(value.items()))

    @model_validator(mode="after")
    def _quiet_hours(self) -> CheckinSettings:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet hours need a start and an end")
        if self.quiet_start is not None and self.quiet_start == self.quiet_end:
            raise ValueError("quiet hours start and end at the same time")
        return self

    def points_for(self, streak: int) -> int:
        """What day `streak` of a streak earns on the curve as it is now."""
        return self.base_points + self.daily_increment * (min(streak, self.increment_cap_days) - 1)

    def is_quiet(self, local: time) -> bool:
        """Whether a community-local wall-clock time falls in the quiet hours."""
        if self.quiet_start is None or self.quiet_end is None:
            return False
        start, end = time.fromisoformat(self.quiet_start), time.fromisoformat(self.quiet_end)
        at = local.replace(second=0, microsecond=0, tzinfo=None)
        return start <= at < end if start < end else at >= start or at < end


def checkin_settings(community: Community) -> CheckinSettings:
    return CheckinSettings.model_validate(community.settings.get("checkin", {}))


def local_day(community: Community, at: datetime) -> date:
    """The community-local calendar day of the moment `at` (timezone-aware)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime given for a community-local day")
    return at.astimezone(ZoneInfo(community.timezone)).date()


async def update_checkin_settings(session: AsyncSession, *, community: Community, actor_id: int, now: datetime,
                                  **changes: object) -> CheckinSettings:
    """Validate and store changed options, with an audit row (`checkin.<option>`) per change, and
    commit. Refused as a whole with `checkin_setting_invalid` (detail: the first problem)."""
    return await update_options(session, community=community, section="checkin", current=checkin_settings(community),
                                changes=changes, actor_id=actor_id, now=now, refusal="checkin_setting_invalid",
                                problem=_problem)


def _problem(exc: ValueError) -> str:
    """The first reason a value was refused, as the validator put it: the first line of a pydantic
    error is only its headline ("1 validation error for CheckinSettings")."""
    if isinstance(exc, ValidationError) and exc.errors():
        return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
    return str(exc).splitlines()[0]


# --- reading what a leader types into the check-in options forms --------------------------------

def option_bounds(key: str) -> tuple[int, int]:
    """The range a numeric option accepts, read from the model so the form and storage agree."""
    low = high = None
    for rule in CheckinSettings.model_fields[key].metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    return low, high


def parse_option_number(key: str, raw: str) -> int:
    low, high = option_bounds(key)
    text = raw.strip()
    value = whole_number(text)
    if value is None or not low <= value <= high:
        raise DomainError("checkin_setting_number", value=text[:16], min=low, max=high)
    return value


def parse_option_or_off(key: str, raw: str) -> int | None:
    """A numeric option that can be switched off: "off" gives None where the option allows None
    (the reminder hour), else 0 (points expiry: never); anything else as `parse_option_number`."""
    if raw.strip().lower() in OFF_WORDS:
        return None if NoneType in get_args(CheckinSettings.model_fields[key].annotation) else 0
    return parse_option_number(key, raw)


def _hhmm(text: str) -> str:
    try:
        at = time.fromisoformat(text.zfill(5)) if len(text) in (4, 5) and ":" in text else None
    except ValueError:
        at = None
    if at is None:
        raise DomainError("checkin_setting_time", value=text[:16])
    return at.strftime("%H:%M")


def parse_time_or_off(raw: str) -> str | None:
    """"8:30", "21:00" → "HH:MM"; "off" → None."""
    text = raw.strip()
    if text.lower() in OFF_WORDS:
        return None
    return _hhmm(text)


_RANGE_DASH = re.compile(r"\s*(?:-|–|—|~|～|to|至|到)\s*", re.IGNORECASE)


def parse_quiet_hours(raw: str) -> tuple[str | None, str | None]:
    """"22:00-08:00" (may wrap midnight) → ("22:00", "08:00"); "off" → (None, None).
    Refusals: `checkin_quiet_hours_format` (value), `checkin_setting_time` (value), `checkin_quiet_hours_same`."""
    text = raw.strip()
    if text.lower() in OFF_WORDS:
        return None, None
    parts = _RANGE_DASH.split(text)
    if len(parts) != 2:
        raise DomainError("checkin_quiet_hours_format", value=text[:32])
    start, end = _hhmm(parts[0]), _hhmm(parts[1])
    if start == end:
        raise DomainError("checkin_quiet_hours_same")
    return start, end


def parse_milestones(raw: str) -> dict[int, int]:
    """"7:20, 30:100" (streak days: bonus points) → {7: 20, 30: 100}; "off" → {}. Coupon
    milestones are set through `update_checkin_settings` with `CouponTerms` (`with_coupon_milestone`).
    Refusals: `checkin_milestones_format` (value), `checkin_milestone_day` (value, min, max),
    `checkin_milestone_points` (value, min, max), `checkin_milestones_too_many` (max)."""
    text = raw.strip()
    if text.lower() in OFF_WORDS:
        return {}
    found: dict[int, int] = {}
    for part in text.replace("，", ",").replace("；", ",").replace(";", ",").split(","):
        day_text, sep, points_text = part.strip().replace("：", ":").replace("=", ":").partition(":")
        day, points_value = whole_number(day_text.strip()), whole_number(points_text.strip())
        if not sep or day is None or points_value is None or day in found:
            raise DomainError("checkin_milestones_format", value=part.strip()[:32])
        if not MILESTONE_DAY_MIN <= day <= STREAK_MAX_DAYS:
            raise DomainError("checkin_milestone_day", value=day, min=MILESTONE_DAY_MIN, max=STREAK_MAX_DAYS)
        if not 1 <= points_value <= MILESTONE_POINTS_MAX:
            raise DomainError("checkin_milestone_points", value=points_value, min=1, max=MILESTONE_POINTS_MAX)
        found[day] = points_value
    if len(found) > MILESTONES_MAX:
        raise DomainError("checkin_milestones_too_many", max=MILESTONES_MAX)
    return dict(sorted(found.items()))


def parse_milestone_day(raw: str) -> int:
    """The streak length a milestone is given at (`checkin_milestone_day`: value, min, max)."""
    text = raw.strip()
    day = whole_number(text)
    if day is None or not MILESTONE_DAY_MIN <= day <= STREAK_MAX_DAYS:
        raise DomainError("checkin_milestone_day", value=text[:16], min=MILESTONE_DAY_MIN, max=STREAK_MAX_DAYS)
    return day


def _at_most_max(milestones: dict[int, int | CouponTerms]) -> dict[int, int | CouponTerms]:
    if len(milestones) > MILESTONES_MAX:
        raise DomainError("checkin_milestones_too_many", max=MILESTONES_MAX)
    return dict(sorted(milestones.items()))


def with_point_milestones(current: CheckinSettings, found: dict[int, int]) -> dict[int, int | CouponTerms]:
    """The milestones after a leader typed the point milestones (`parse_milestones`): they replace
    the point milestones; coupon milestones stay unless a typed day takes their place."""
    coupons = {day: reward for day, reward in current.milestones.items() if not isinstance(reward, int)}
    return _at_most_max({day: reward for day, reward in coupons.items() if day not in found} | found)


def with_coupon_milestone(current: CheckinSettings, day: int, terms: CouponTerms) -> dict[int, int | CouponTerms]:
    """The milestones with a coupon at streak `day` (replacing what that day gave before)."""
    return _at_most_max({**current.milestones, day: terms})
