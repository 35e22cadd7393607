"""Coupons: created by leaders by hand or issued by later features, checked and redeemed at checkout.

Redemption happens inside the order's transaction: an atomic conditional UPDATE on the coupon
(single-use coupons cannot be taken twice) plus a unique (coupon, member) redemption row (a
member cannot use a shared coupon twice). A cancelled order gives its coupon back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, not_, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.numbers import whole_number
from bot.services import audit, members
from bot.services.errors import DomainError
from bot.services.upsert import insert_for
from models import Community, Member, MemberStatus, User
from models.shop import Coupon, CouponKind, CouponRedemption

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and retyped
CODE_MAX = 32


@dataclass(frozen=True, slots=True)
class CouponSpec:
    kind: CouponKind
    value: int
    cap: int | None = None
    min_spend: int = 0
    expires_at: datetime | None = None
    single_use: bool = True
    owner_id: int | None = None
    code: str | None = None  # generated when None
    source: str = "manual"


def normalize_code(raw: str) -> str:
    return "".join(raw.split()).upper()


def new_code(prefix: str = "") -> str:
    return prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


def discount_for(coupon: Coupon, subtotal: int) -> int:
    """How much the coupon takes off `subtotal` (never more than the subtotal)."""
    if coupon.kind == CouponKind.FIXED:
        off = coupon.value
    else:
        off = subtotal * coupon.value // 100
        if coupon.cap is not None:
            off = min(off, coupon.cap)
    return max(0, min(off, subtotal))


async def issue(session: AsyncSession, *, community_id: int, spec: CouponSpec, actor_id: int | None, now: datetime,
                commit: bool = True) -> Coupon:
    """Create a coupon. Leaders' hand-made coupons and later features' rewards both come here."""
    if spec.kind == CouponKind.PERCENT and not 1 <= spec.value <= 100:
        raise DomainError("coupon_percent_range")
    if spec.kind == CouponKind.FIXED and spec.value <= 0:
        raise DomainError("coupon_value_zero")
    if spec.cap is not None and spec.cap <= 0:
        raise DomainError("coupon_value_zero")
    if spec.expires_at is not None and spec.expires_at <= now:
        raise DomainError("coupon_expiry_past")
    code = normalize_code(spec.code) if spec.code else new_code()
    if not code or len(code) > CODE_MAX or not code.replace("-", "").replace("_", "").isalnum():
        raise DomainError("coupon_code_format", max=CODE_MAX)
    # INSERT ... ON CONFLICT DO NOTHING, not a savepoint: on SQLite a savepoint opened first in a
    # transaction commits on release, and a caller passing commit=False could not roll it back.
    inserted = await session.execute(
        insert_for(session, Coupon.__table__).values(
            community_id=community_id, code=code, owner_id=spec.owner_id, kind=spec.kind, value=spec.value, cap=spec.cap,
            min_spend=spec.min_spend, expires_at=spec.expires_at, single_use=spec.single_use, uses=0,
            source=spec.source, created_by=actor_id, created_at=now,
        ).on_conflict_do_nothing(index_elements=["community_id", "code"])
    )
    if inserted.rowcount != 1:
        raise DomainError("coupon_code_taken", code=code)
    coupon = (await session.exec(select(Coupon).where(Coupon.community_id == community_id, Coupon.code == code))).one()
    audit.record(session, community_id=community_id, actor_id=actor_id, action="coupon.issue",
                 details={"id": coupon.id, "code": code, "kind": spec.kind.value, "value": spec.value, "source": spec.source}, now=now)
    if commit:
        await session.commit()
    return coupon


async def find(session: AsyncSession, *, community_id: int, code: str) -> Coupon:
    """The coupon with this code in this community, or a clear refusal."""
    normalized = normalize_code(code)
    result = await session.exec(select(Coupon).where(Coupon.code == normalized))
    matches = list(result)
    mine = [c for c in matches if c.community_id == community_id]
    if mine:
        return mine[0]
    raise DomainError("coupon_other_community" if matches else "coupon_unknown", code=normalized)


async def check(session: AsyncSession, coupon: Coupon, *, user_id: int, subtotal: int, now: datetime) -> int:
    """The discount this member gets on `subtotal`, or a DomainError saying why not."""
    if coupon.owner_id is not None and coupon.owner_id != user_id:
        raise DomainError("coupon_not_yours")
    if coupon.expires_at is not None and coupon.expires_at <= now:
        raise DomainError("coupon_expired")
    if coupon.single_use and coupon.uses > 0:
        raise DomainError("coupon_used")
    used = await session.exec(select(CouponRedemption.id).where(CouponRedemption.coupon_id == coupon.id,
                                                                CouponRedemption.user_id == user_id))
    if used.first() is not None:
        raise DomainError("coupon_used")
    if subtotal < coupon.min_spend:
        raise DomainError("coupon_below_minimum", min_spend=coupon.min_spend)
    return discount_for(coupon, subtotal)


async def redeem(session: AsyncSession, coupon: Coupon, *, user_id: int, order_id: int, now: datetime) -> None:
    """Take the coupon for this order, inside the caller's transaction (does not commit). Refused
    with `coupon_used`, it leaves nothing written: the caller's transaction goes on without it."""
    coupons = Coupon.__table__.c
    stmt = update(Coupon.__table__).where(coupons.id == coupon.id)
    if coupon.single_use:
        stmt = stmt.where(coupons.uses == 0)
    taken = (await session.execute(stmt.values(uses=coupons.uses + 1).returning(coupons.uses))).first()
    if taken is None:
        raise DomainError("coupon_used")
    # ON CONFLICT DO NOTHING rather than a savepoint: the (coupon, member) row already there means
    # this member used the coupon, and the caller's transaction stays usable.
    recorded = await session.execute(
        insert_for(session, CouponRedemption.__table__)
        .values(coupon_id=coupon.id, order_id=order_id, user_id=user_id, created_at=now).on_conflict_do_nothing())
    if recorded.rowcount != 1:
        await session.execute(update(Coupon.__table__).where(coupons.id == coupon.id).values(uses=coupons.uses - 1))
        raise DomainError("coupon_used")
    # The caller's coupon counts this use, as if read again (a later check in this session refuses it).
    set_committed_value(coupon, "uses", taken.uses)


async def release(session: AsyncSession, *, order_id: int) -> None:
    """Give a cancelled order's coupon back (does not commit). An expired coupon stays unusable anyway."""
    redemption = (await session.exec(select(CouponRedemption).where(CouponRedemption.order_id == order_id))).first()
    if redemption is None:
        return
    await session.execute(delete(CouponRedemption).where(CouponRedemption.id == redemption.id))
    await session.execute(update(Coupon).where(Coupon.id == redemption.coupon_id, Coupon.uses > 0).values(uses=Coupon.uses - 1))


async def for_member(session: AsyncSession, *, community_ids: list[int], user_id: int, now: datetime) -> list[Coupon]:
    """Coupons a member can still use: their own and open ones, unexpired, not used up by them."""
    used = select(CouponRedemption.coupon_id).where(CouponRedemption.user_id == user_id)
    result = await session.exec(
        select(Coupon)
        .where(col(Coupon.community_id).in_(community_ids),
               (col(Coupon.owner_id) == user_id) | col(Coupon.owner_id).is_(None),
               (col(Coupon.expires_at).is_(None)) | (col(Coupon.expires_at) > now),
               ~(col(Coupon.single_use) & (col(Coupon.uses) > 0)),
               col(Coupon.id).not_in(used))
        .order_by(col(Coupon.expires_at).asc().nulls_last(), Coupon.id)
    )
    return list(result)


async def listing(session: AsyncSession, *, community_id: int, limit: int = 30) -> list[Coupon]:
    result = await session.exec(select(Coupon).where(Coupon.community_id == community_id)
                                .order_by(col(Coupon.created_at).desc()).limit(limit))
    return list(result)


# --- reading what a leader types into the coupon form, and the member's own list ------------------

EXPIRY_DAYS_MAX = 3650


def parse_percent(raw: str) -> int:
    """A whole percentage from 1 to 100 ("15", "15%")."""
    value = whole_number(raw.strip().rstrip("%％").strip())
    if value is None or not 1 <= value <= 100:
        raise DomainError("coupon_percent_range")
    return value


def parse_expiry(raw: str, *, tz: str, now: datetime) -> datetime:
    """"7" (valid for 7 more days) or "2026-05-31": the end of that community-local day, in UTC."""
    text = raw.strip()
    zone = ZoneInfo(tz)
    try:
        if (days := whole_number(text)) is not None:
            if not 1 <= days <= EXPIRY_DAYS_MAX:
                raise ValueError
            day = now.astimezone(zone).date() + timedelta(days=days)
        else:
            day = date.fromisoformat(text)
    except ValueError:
        raise DomainError("coupon_expiry_format", value=text[:32]) from None
    # The last moment of the day: a coupon "until the 31st" still works at 23:59 that evening.
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(timezone.utc) - timedelta(microseconds=1)
    if end <= now:
        raise DomainError("coupon_expiry_past")
    return end


async def resolve_owner(session: AsyncSession, *, community_id: int, raw: str) -> User:
    """A present member of this community named by @username (any case) or numeric Telegram id."""
    text = raw.strip()
    query = (select(User).join(Member, Member.user_id == User.id)
             .where(Member.community_id == community_id, Member.status == MemberStatus.MEMBER, not_(col(User.erased))))
    # Telegram ids fit in 52 bits; a longer number names nobody (and would not fit the column).
    if (user_id := whole_number(text.removeprefix("-"))) is not None and user_id < 2**52:
        query = query.where(User.id == (-user_id if text.startswith("-") else user_id))
    else:
        name = text.removeprefix("@")
        if not name:
            raise DomainError("coupon_owner_unknown", value=text[:64])
        query = query.where(func.lower(User.username) == name.lower())
    user = (await session.exec(query)).first()
    if user is None:
        raise DomainError("coupon_owner_unknown", value=text[:64])
    return user


async def check_new_code(session: AsyncSession, *, community_id: int, raw: str) -> str:
    """The normalised code if it is well formed and free in this community (`issue` re-checks)."""
    code = normalize_code(raw)
    if not code or len(code) > CODE_MAX or not code.replace("-", "").replace("_", "").isalnum() or not code.isascii():
        raise DomainError("coupon_code_format", max=CODE_MAX)
    taken = await session.exec(select(Coupon.id).where(Coupon.community_id == community_id, Coupon.code == code))
    if taken.first() is not None:
        raise DomainError("coupon_code_taken", code=code)
    return code


async def member_coupons(session: AsyncSession, *, user_id: int, now: datetime) -> list[tuple[Community, Coupon]]:
    """What /coupons lists: every coupon the member can still use, in the communities that are theirs."""
    present = await members.communities_of(session, user_id=user_id)
    if not present:
        return []
    by_id = {c.id: c for c in present}
    usable = await for_member(session, community_ids=list(by_id), user_id=user_id, now=now)
    place = {cid: n for n, cid in enumerate(by_id)}
    # By community, then the soonest to expire first and those that never expire last (the
    # databases disagree on where NULL sorts, so the order is made here).
    usable.sort(key=lambda c: (place[c.community_id], c.expires_at is None, c.expires_at or now, c.id))
    return [(by_id[c.community_id], c) for c in usable]
