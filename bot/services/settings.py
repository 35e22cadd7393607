"""Community settings a leader changes from /admin: timezone, currency, language, pickup points.

Every change is validated here (handlers only parse) and written to the audit log with the
value before and after.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.numbers import list_currencies
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import audit
from bot.services.communities import ID_MAX
from bot.services.errors import DomainError
from models import Community, PickupPoint

PICKUP_NAME_MAX = 64
MAX_PICKUP_POINTS = 30


def parse_timezone(raw: str) -> str:
    """Canonical IANA name for what a leader typed ("asia/shanghai" → "Asia/Shanghai")."""
    value = raw.strip()
    if not value or len(value) > 64:
        raise DomainError("timezone_unknown", value=raw.strip()[:64])
    lookup = {name.lower(): name for name in available_timezones()}
    canonical = lookup.get(value.lower().replace(" ", "_"))
    if canonical is None:
        raise DomainError("timezone_unknown", value=value)
    try:
        ZoneInfo(canonical)
    except (ZoneInfoNotFoundError, ValueError):
        raise DomainError("timezone_unknown", value=value) from None
    return canonical


def parse_currency(raw: str) -> str:
    """An active ISO 4217 code as Babel knows it ("cny" → "CNY")."""
    value = raw.strip().upper()
    if len(value) != 3 or not value.isalpha():
        raise DomainError("currency_format", value=raw.strip()[:16])
    if value not in list_currencies():
        raise DomainError("currency_unknown", value=value)
    return value


def parse_pickup_name(raw: str) -> str:
    value = " ".join(raw.split())
    if not value:
        raise DomainError("pickup_name_empty")
    if len(value) > PICKUP_NAME_MAX:
        raise DomainError("pickup_name_too_long", max=PICKUP_NAME_MAX, length=len(value))
    return value


async def _community(session: AsyncSession, community_id: int) -> Community:
    community = await session.get(Community, community_id)
    if community is None:
        raise DomainError("community_unknown")
    return community


async def set_timezone(session: AsyncSession, *, community_id: int, actor_id: int, raw: str, now: datetime) -> str:
    value = parse_timezone(raw)
    return await _set_field(session, community_id=community_id, actor_id=actor_id, field="timezone", value=value, now=now)


async def set_currency(session: AsyncSession, *, community_id: int, actor_id: int, raw: str, now: datetime) -> str:
    value = parse_currency(raw)
    return await _set_field(session, community_id=community_id, actor_id=actor_id, field="currency", value=value, now=now)


async def set_default_locale(session: AsyncSession, *, community_id: int, actor_id: int, locale: str, now: datetime) -> str:
    from bot.core.locales import LOCALES

    if locale not in LOCALES:
        raise DomainError("unknown_locale", locale=locale)
    return await _set_field(session, community_id=community_id, actor_id=actor_id, field="default_locale", value=locale, now=now)


async def _set_field(session: AsyncSession, *, community_id: int, actor_id: int, field: str, value: str, now: datetime) -> str:
    community = await _community(session, community_id)
    before = getattr(community, field)
    if before != value:
        setattr(community, field, value)
        community.updated_at = now
        audit.record(session, community_id=community_id, actor_id=actor_id, action=f"settings.{field}",
                     details={"from": before, "to": value}, now=now)
        await session.commit()
    return value


async def pickup_points(session: AsyncSession, *, community_id: int) -> list[PickupPoint]:
    result = await session.exec(
        select(PickupPoint)
        .where(PickupPoint.community_id == community_id, col(PickupPoint.removed_at).is_(None))
        .order_by(PickupPoint.name, PickupPoint.id)
    )
    return list(result)


async def _point(session: AsyncSession, community_id: int, point_id: int) -> PickupPoint:
    if not 0 < point_id <= ID_MAX:
        # From callback data a client can forge; PostgreSQL would refuse it as an INTEGER argument.
        raise DomainError("pickup_unknown")
    point = await session.get(PickupPoint, point_id)
    if point is None or point.community_id != community_id or point.removed_at is not None:
        raise DomainError("pickup_unknown")
    return point


async def _by_name(session: AsyncSession, community_id: int, name: str) -> PickupPoint | None:
    result = await session.exec(
        select(PickupPoint).where(PickupPoint.community_id == community_id, PickupPoint.name == name)
    )
    return result.first()


async def add_pickup_point(session: AsyncSession, *, community_id: int, actor_id: int, raw_name: str, now: datetime) -> PickupPoint:
    name = parse_pickup_name(raw_name)
    await _community(session, community_id)
    existing = await _by_name(session, community_id, name)
    if existing is not None and existing.removed_at is None:
        raise DomainError("pickup_duplicate", name=name)
    if len(await pickup_points(session, community_id=community_id)) >= MAX_PICKUP_POINTS:
        raise DomainError("pickup_too_many", max=MAX_PICKUP_POINTS)
    if existing is not None:
        # A removed point with the same name comes back rather than colliding with the old row.
        existing.removed_at = None
        point = existing
    else:
        point = PickupPoint(community_id=community_id, name=name, created_at=now)
        session.add(point)
    await session.flush()
    audit.record(session, community_id=community_id, actor_id=actor_id, action="pickup.add",
                 details={"id": point.id, "name": name}, now=now)
    await session.commit()
    return point


async def rename_pickup_point(session: AsyncSession, *, community_id: int, actor_id: int, point_id: int, raw_name: str, now: datetime) -> PickupPoint:
    name = parse_pickup_name(raw_name)
    point = await _point(session, community_id, point_id)
    if point.name == name:
        return point
    clash = await _by_name(session, community_id, name)
    if clash is not None:
        if clash.removed_at is None:
            raise DomainError("pickup_duplicate", name=name)
        # The name belonged to a removed point; free it, the removed row keeps its history by id.
        clash.name = f"{clash.name[:40]} (removed #{clash.id})"
        await session.flush()
    before = point.name
    point.name = name
    audit.record(session, community_id=community_id, actor_id=actor_id, action="pickup.rename",
                 details={"id": point.id, "from": before, "to": name}, now=now)
    await session.commit()
    return point


async def remove_pickup_point(session: AsyncSession, *, community_id: int, actor_id: int, point_id: int, now: datetime) -> PickupPoint:
    point = await _point(session, community_id, point_id)
    point.removed_at = now
    audit.record(session, community_id=community_id, actor_id=actor_id, action="pickup.remove",
                 details={"id": point.id, "name": point.name}, now=now)
    await session.commit()
    return point


async def get_pickup_point(session: AsyncSession, *, community_id: int, point_id: int) -> PickupPoint:
    return await _point(session, community_id, point_id)
