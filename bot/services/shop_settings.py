"""A community's shop options, kept in `community.settings["shop"]` and read through one model."""

from __future__ import annotations

from datetime import datetime, time

from pydantic import BaseModel, Field, field_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.numbers import whole_number
from bot.services import audit
from bot.services.errors import DomainError
from models import Community


class ShopSettings(BaseModel):
    pay_at_pickup: bool = True
    stars_enabled: bool = False
    # Telegram Stars charged per whole unit of the community's currency (e.g. 7 per CNY).
    stars_per_unit: int = Field(default=0, ge=0, le=10_000)
    delivery_enabled: bool = False
    # An unpaid online order cancels itself after this long and returns its stock.
    unpaid_minutes: int = Field(default=30, ge=5, le=7 * 24 * 60)
    # Members may cancel for this long after ordering, and never once the order is fulfilled.
    cancel_hours: int = Field(default=24, ge=0, le=30 * 24)
    # Community-local HH:MM for the leader's daily summary; None: no summary.
    summary_time: str | None = None
    # A scheduled post found later than this (bot was down) is reported as missed, not sent.
    post_grace_minutes: int = Field(default=60, ge=1, le=24 * 60)

    @field_validator("summary_time")
    @classmethod
    def _hhmm(cls, value: str | None) -> str | None:
        if value is not None:
            time.fromisoformat(value)
        return value


def shop_settings(community: Community) -> ShopSettings:
    return ShopSettings.model_validate(community.settings.get("shop", {}))


async def update_shop_settings(session: AsyncSession, *, community: Community, actor_id: int, now: datetime,
                               **changes: object) -> ShopSettings:
    """Validate and store changed options, with an audit row per change, and commit."""
    current = shop_settings(community)
    try:
        updated = ShopSettings.model_validate(current.model_dump() | changes)
    except ValueError as exc:
        raise DomainError("shop_setting_invalid", detail=str(exc).splitlines()[0]) from None
    diff = {k: (getattr(current, k), getattr(updated, k)) for k in changes if getattr(current, k) != getattr(updated, k)}
    if diff:
        # JSON columns are compared by value: assign a new dict so the change is flushed.
        community.settings = {**community.settings, "shop": updated.model_dump()}
        community.updated_at = now
        for key, (before, after) in diff.items():
            audit.record(session, community_id=community.id, actor_id=actor_id, action=f"shop.{key}",
                         details={"from": before, "to": after}, now=now)
        await session.commit()
    return updated


# --- reading what a leader types into the shop options forms -------------------------------------

# Stored 0 means "no rate set yet"; a leader setting a rate must give one Stars can be charged at.
FORM_MINIMUM = {"stars_per_unit": 1}
SUMMARY_OFF = ("off", "no", "none", "-", "关", "关闭", "不要")


def option_bounds(key: str) -> tuple[int, int]:
    """The range a numeric option accepts, read from the model so the form and storage agree."""
    low = high = None
    for rule in ShopSettings.model_fields[key].metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    return max(low, FORM_MINIMUM.get(key, low)), high


def parse_option_number(key: str, raw: str) -> int:
    low, high = option_bounds(key)
    text = raw.strip()
    value = whole_number(text)
    if value is None or not low <= value <= high:
        raise DomainError("shop_setting_number", value=text[:16], min=low, max=high)
    return value


def parse_summary_time(raw: str) -> str | None:
    """"21:00", "9:30" → "HH:MM"; "off" → None (no summary)."""
    text = raw.strip()
    if text.lower() in SUMMARY_OFF:
        return None
    try:
        at = time.fromisoformat(text.zfill(5)) if len(text) in (4, 5) and ":" in text else None
    except ValueError:
        at = None
    if at is None:
        raise DomainError("shop_setting_time", value=text[:16])
    return at.strftime("%H:%M")
