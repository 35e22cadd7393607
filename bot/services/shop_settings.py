"""A community's shop options, kept in `community.settings["shop"]` and read through one model."""

from __future__ import annotations

from datetime import datetime, time

from pydantic import BaseModel, Field, field_validator
from sqlmodel.ext.asyncio.session import AsyncSession

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
