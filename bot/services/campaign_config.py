"""A win-back campaign's settings (`Campaign.config`), validated as a whole, and its message template.

Apart from bot/services/campaigns.py because the admin screens, the dry run and every run read
them, and a run keeps the copy it was planned with.
"""

from __future__ import annotations

import string
from datetime import datetime, time, timedelta
from html import escape
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bot.services.checkin_settings import CouponTerms
from bot.services.churn import Audience, RiskPolicy, RiskRule
from models import CouponKind

PLACEHOLDERS = ("name", "product", "coupon", "expires")
MESSAGE_MAX = 1000  # leaves room in Telegram's 4096 for long names, products and the code


def default_offer() -> CouponTerms:
    return CouponTerms(kind=CouponKind.PERCENT, value=15, cap=None, min_spend=0, valid_days=7)


class WinbackConfig(BaseModel):
    audience: Audience = Audience.BUYERS
    rule: RiskRule = RiskRule.PERSONAL
    # The fixed rule: this many community-local days without activity.
    fixed_days: int = Field(default=30, ge=3, le=365)
    offer: CouponTerms = Field(default_factory=default_offer)
    # The leader's text with {name}, {product}, {coupon}, {expires}; None: the bot's own, in each
    # member's language.
    message: str | None = None
    # Community-local HH:MM of the daily run.
    send_time: str = "10:00"
    # Community-local quiet hours (may wrap midnight): nothing is sent in them.
    quiet_start: str = "21:00"
    quiet_end: str = "09:00"
    # At most one win-back per member in this many days, across all the community's campaigns.
    cap_days: int = Field(default=14, ge=1, le=365)
    holdout_percent: int = Field(default=10, ge=0, le=50)
    # A member returns when they order within this many days of being chosen.
    window_days: int = Field(default=14, ge=1, le=90)
    # Renewed activity (a message, a check-in) counts as returning too.
    count_activity: bool = False

    @field_validator("send_time", "quiet_start", "quiet_end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        return time.fromisoformat(value).strftime("%H:%M")

    # Refusals carry a stable type (the error's `reason` for bot/services/campaigns.update_config)
    # besides their English words, so the screens say them in the leader's language.
    @field_validator("message")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise PydanticCustomError("message_empty", "the message is empty")
        if len(value) > MESSAGE_MAX:
            raise PydanticCustomError("message_too_long", "the message is longer than {max} characters",
                                      {"max": MESSAGE_MAX})
        try:
            template_fields(value)
        except TemplateError as exc:
            raise PydanticCustomError(exc.reason, str(exc), {"placeholder": exc.placeholder}) from None
        return value

    @model_validator(mode="after")
    def _quiet(self) -> WinbackConfig:
        if self.quiet_start == self.quiet_end:
            raise PydanticCustomError("quiet_same", "quiet hours start and end at the same time")
        if self.is_quiet(time.fromisoformat(self.send_time)):
            raise PydanticCustomError("in_quiet_hours", "the run time falls in the quiet hours")
        return self

    def policy(self) -> RiskPolicy:
        return RiskPolicy(rule=self.rule, fixed_days=self.fixed_days)

    def is_quiet(self, local: time) -> bool:
        start, end = time.fromisoformat(self.quiet_start), time.fromisoformat(self.quiet_end)
        at = local.replace(second=0, microsecond=0, tzinfo=None)
        return start <= at < end if start < end else at >= start or at < end

    def quiet_at(self, moment: datetime, tz: str) -> bool:
        return self.is_quiet(moment.astimezone(ZoneInfo(tz)).time())

    def quiet_ends(self, moment: datetime, tz: str) -> datetime:
        """When the quiet hours around `moment` end (`moment` itself when it is not quiet)."""
        zone = ZoneInfo(tz)
        local = moment.astimezone(zone)
        if not self.is_quiet(local.time()):
            return moment
        end = datetime.combine(local.date(), time.fromisoformat(self.quiet_end), zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), time.fromisoformat(self.quiet_end), zone)
        return end.astimezone(moment.tzinfo)


class TemplateError(ValueError):
    """`reason`: "unpaired_brace" or "unknown_placeholder" (then `placeholder` says which)."""

    def __init__(self, reason: str, words: str, placeholder: str = "") -> None:
        super().__init__(words)
        self.reason, self.placeholder = reason, placeholder


def template_fields(template: str) -> set[str]:
    """The placeholders a message uses; TemplateError for one that is unknown or malformed."""
    found = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        raise TemplateError("unpaired_brace",
                            "a { or } without its pair (write {{ or }} for the character itself)") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + ("!" + conversion if conversion else "") + (":" + spec if spec else "") + "}"
            raise TemplateError("unknown_placeholder",
                                f"unknown placeholder {shown}; use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}",
                                shown)
        found.add(name)
    return found


def fill(template: str, *, name: str, product: str, coupon: str, expires: str) -> str:
    """The template as HTML: the leader's text and every value escaped, the code set apart."""
    values = {"name": escape(name), "product": escape(product), "coupon": f"<code>{escape(coupon)}</code>",
              "expires": escape(expires)}
    return "".join(escape(literal) + (values[field] if field is not None else "")
                   for literal, field, _spec, _conv in string.Formatter().parse(template))


def winback_config(config: dict) -> WinbackConfig:
    return WinbackConfig.model_validate(config)
