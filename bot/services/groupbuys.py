"""Group-buy campaigns: terms checked, drafts published, edits that never worsen terms for those
already in, and what the leader's screens and the group's cards read.

Parsing of typed answers (amounts, durations, local times) stays with the services that own them
(money, posts); this module checks the terms as a whole.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.numbers import ascii_digits, whole_number
from bot.services import audit, job_marks
from bot.services.errors import DomainError
from bot.services.group_seats import SEATED, mark_card_stale
from models.groupbuy import GroupBuy, GroupBuyKind, GroupBuyStatus, GroupBuyTeam, TeamStatus
from models.shop import Order, OrderStatus, Product, ProductStatus

TEAM_SIZE_MAX = 100
TEAM_MINUTES_MAX = 7 * 24 * 60
MEMBER_TEAMS_MAX = 20
TIERS_MAX = 5
UNITS_MAX = 1_000_000
TIER_RE = re.compile(r"^[≥>=\s]*([0-9]{1,7})\s*(?:->|[=:>→,]|\s)+\s*(\S+)$")
DURATION_RE = re.compile(r"^\s*(?:([0-9]{1,4})\s*(?:d|天)\s*)?(?:([0-9]{1,4})\s*(?:h|小时)\s*)?(?:([0-9]{1,5})\s*(?:m|min|分钟?)\s*)?$", re.I)


@dataclass(frozen=True, slots=True)
class Terms:
    """A campaign's terms as the leader set them (minor units, UTC)."""

    kind: GroupBuyKind
    product_id: int
    price: int
    ends_at: datetime
    starts_at: datetime | None = None  # None: from publishing
    team_size: int | None = None
    team_minutes: int | None = None
    open_limit: int = 1
    join_limit: int = 1
    solo_allowed: bool = True
    min_units: int | None = None
    tiers: tuple[tuple[int, int], ...] = field(default_factory=tuple)
    member_limit: int | None = None


def parse_duration(raw: str) -> int:
    """Minutes from `24`, `24h`, `1d 12h`, `90m` (a bare number is hours)."""
    text = ascii_digits(raw.strip().lower())
    if (hours := whole_number(text)) is not None:
        minutes = hours * 60
    else:
        match = DURATION_RE.match(text)
        if not text or match is None or not any(match.groups()):
            raise DomainError("duration_format", value=raw.strip()[:16])
        days, hours, mins = (int(g) if g else 0 for g in match.groups())
        minutes = days * 1440 + hours * 60 + mins
    if minutes < 1:
        raise DomainError("duration_zero")
    if minutes > TEAM_MINUTES_MAX:
        raise DomainError("duration_too_long", days=TEAM_MINUTES_MAX // 1440)
    return minutes


def parse_count(raw: str, *, minimum: int, maximum: int) -> int:
    text = raw.strip()
    value = whole_number(text)
    if value is None:
        raise DomainError("count_format", value=text[:16])
    if not minimum <= value <= maximum:
        raise DomainError("count_range", min=minimum, max=maximum)
    return value


def check_terms(terms: Terms, *, product: Product, now: datetime) -> Terms:
    """The terms, if they make a campaign that can run; otherwise the first thing wrong."""
    if product.status == ProductStatus.ARCHIVED:
        raise DomainError("product_archived", number=product.number)
    check_price(terms.kind, terms.price, normal_price=product.price)
    if terms.ends_at <= (terms.starts_at or now):
        raise DomainError("groupbuy_end_past")
    if terms.kind == GroupBuyKind.TEAM:
        if terms.team_size is None or not 2 <= terms.team_size <= TEAM_SIZE_MAX:
            raise DomainError("team_size_range", min=2, max=TEAM_SIZE_MAX)
        if terms.team_minutes is None or not 1 <= terms.team_minutes <= TEAM_MINUTES_MAX:
            raise DomainError("duration_too_long", days=TEAM_MINUTES_MAX // 1440)
        for limit in (terms.open_limit, terms.join_limit):
            if not 0 <= limit <= MEMBER_TEAMS_MAX:
                raise DomainError("count_range", min=0, max=MEMBER_TEAMS_MAX)
        if terms.open_limit == 0 and terms.join_limit == 0:
            raise DomainError("team_limits_zero")
        return replace(terms, min_units=None, tiers=(), member_limit=None)
    if terms.min_units is None or not 1 <= terms.min_units <= UNITS_MAX:
        raise DomainError("count_range", min=1, max=UNITS_MAX)
    check_tiers(terms.tiers, base_price=terms.price, min_units=terms.min_units)
    if terms.member_limit is not None and terms.member_limit < 1:
        raise DomainError("count_range", min=1, max=UNITS_MAX)
    return replace(terms, team_size=None, team_minutes=None, tiers=tuple(sorted(terms.tiers)))


def check_price(kind: GroupBuyKind, price: int, *, normal_price: int) -> int:
    """A group price above zero; a team's below the product's normal price (or why would anyone team up)."""
    if price <= 0:
        raise DomainError("groupbuy_price_zero")
    if kind == GroupBuyKind.TEAM and price >= normal_price:
        raise DomainError("groupbuy_price_not_lower", price=normal_price)
    return price


def check_tiers(tiers: tuple[tuple[int, int], ...], *, base_price: int, min_units: int) -> None:
    """Tiers: more units, a lower price each; the first above the minimum."""
    if len(tiers) > TIERS_MAX:
        raise DomainError("tiers_too_many", max=TIERS_MAX)
    last_units, last_price = None, base_price
    for units, price in sorted(tiers):
        if units < min_units or (last_units is not None and units <= last_units):
            raise DomainError("tier_units_order", units=units, after=min_units if last_units is None else last_units)
        if not 0 < price < last_price:
            raise DomainError("tier_price_order", price=price, before=last_price)
        last_units, last_price = units, price


def parse_tier(raw: str) -> tuple[int, str]:
    """`10 9.50` or `10=9.50` or `≥10 → 9.50`: the units and the price as typed (parsed by money)."""
    # Only the first separator splits: a price may carry a decimal comma ("30 8,80").
    match = TIER_RE.match(ascii_digits(raw.strip()))
    if match is None:
        raise DomainError("tier_format", value=raw.strip()[:24])
    return int(match.group(1)), match.group(2)


async def create(session: AsyncSession, *, community_id: int, actor_id: int, terms: Terms, now: datetime,
                 once_key: str | None = None) -> GroupBuy:
    """A draft campaign (not visible to members until published). Commits.

    `once_key` names the form that asked: its second Publish (a double tap, two taps handled at
    once) is refused with `groupbuy_already_saved` instead of making a second campaign."""
    product = await session.get(Product, terms.product_id)
    if product is None or product.community_id != community_id:
        raise DomainError("product_unknown")
    terms = check_terms(terms, product=product, now=now)
    if once_key is not None and not await job_marks.claim(session, job="groupbuy.create", key=once_key, now=now):
        await session.rollback()
        raise DomainError("groupbuy_already_saved")
    campaign = GroupBuy(community_id=community_id, status=GroupBuyStatus.DRAFT, created_by=actor_id, created_at=now,
                        updated_at=now, **_columns(terms, now))
    session.add(campaign)
    await session.flush()
    audit.record(session, community_id=community_id, actor_id=actor_id, action="groupbuy.create",
                 details={"id": campaign.id, "kind": terms.kind.value, "product": product.id}, now=now)
    await session.commit()
    return campaign


def _columns(terms: Terms, now: datetime) -> dict:
    return {
        "product_id": terms.product_id, "kind": terms.kind.value, "price": terms.price, "ends_at": terms.ends_at,
        "starts_at": terms.starts_at or now, "team_size": terms.team_size, "team_minutes": terms.team_minutes,
        "open_limit": terms.open_limit, "join_limit": terms.join_limit, "solo_allowed": terms.solo_allowed,
        "min_units": terms.min_units, "tiers": json.dumps([list(t) for t in terms.tiers]),
        "member_limit": terms.member_limit,
    }


def terms_of(campaign: GroupBuy) -> Terms:
    return Terms(kind=GroupBuyKind(campaign.kind), product_id=campaign.product_id, price=campaign.price,
                 ends_at=campaign.ends_at, starts_at=campaign.starts_at, team_size=campaign.team_size,
                 team_minutes=campaign.team_minutes, open_limit=campaign.open_limit, join_limit=campaign.join_limit,
                 solo_allowed=campaign.solo_allowed, min_units=campaign.min_units,
                 tiers=tuple(tuple(t) for t in json.loads(campaign.tiers or "[]")), member_limit=campaign.member_limit)


async def get(session: AsyncSession, *, community_id: int, group_buy_id: int) -> GroupBuy:
    campaign = await session.get(GroupBuy, group_buy_id)
    if campaign is None or campaign.community_id != community_id:
        raise DomainError("groupbuy_unknown")
    return campaign


# Statuses in which a campaign's terms can still change: once it has ended, they are settled.
EDITABLE = (GroupBuyStatus.DRAFT, GroupBuyStatus.LIVE)


async def get_editable(session: AsyncSession, *, community_id: int, group_buy_id: int) -> GroupBuy:
    """`get`, refused with `groupbuy_closed` once the campaign has ended."""
    campaign = await get(session, community_id=community_id, group_buy_id=group_buy_id)
    if campaign.status not in EDITABLE:
        raise DomainError("groupbuy_closed")
    return campaign


async def publish(session: AsyncSession, *, community_id: int, group_buy_id: int, actor_id: int, now: datetime) -> GroupBuy:
    """Draft → live (the caller posts the card). Re-checks the terms against the product now. Commits."""
    campaign = await get(session, community_id=community_id, group_buy_id=group_buy_id)
    if campaign.status != GroupBuyStatus.DRAFT:
        raise DomainError("groupbuy_not_draft")
    product = await session.get(Product, campaign.product_id)
    starts = campaign.starts_at if campaign.starts_at > now else now
    check_terms(replace(terms_of(campaign), starts_at=starts), product=product, now=now)
    campaign.status, campaign.starts_at, campaign.published_at, campaign.updated_at = GroupBuyStatus.LIVE, starts, now, now
    session.add(campaign)
    audit.record(session, community_id=community_id, actor_id=actor_id, action="groupbuy.publish",
                 details={"id": campaign.id}, now=now)
    await session.commit()
    return campaign


def worsens(old: Terms, new: Terms) -> str | None:
    """The first way `new` is worse than `old` for members already in, or None."""
    if new.price > old.price:
        return "price"
    if new.ends_at < old.ends_at:
        return "ends_at"
    if old.kind == GroupBuyKind.TEAM:
        if (new.team_size or 0) > (old.team_size or 0):
            return "team_size"
        if (new.team_minutes or 0) < (old.team_minutes or 0):
            return "team_minutes"
        if old.solo_allowed and not new.solo_allowed:
            return "solo_allowed"
        return None
    if (new.min_units or 0) > (old.min_units or 0):
        return "min_units"
    for units in sorted({u for u, _ in old.tiers} | {u for u, _ in new.tiers}):
        if _tier_price(new, units) > _tier_price(old, units):
            return "tiers"
    return None


def _tier_price(terms: Terms, units: int) -> int:
    price = terms.price
    for minimum, tier_price in terms.tiers:
        if units >= minimum:
            price = min(price, tier_price)
    return price


async def edit(session: AsyncSession, *, community_id: int, group_buy_id: int, actor_id: int, terms: Terms,
               now: datetime) -> GroupBuy:
    """Change a campaign's terms. A draft takes any valid terms; a live campaign only changes that
    are no worse for members already in (`groupbuy_edit_worse` names the term). Commits."""
    campaign = await get_editable(session, community_id=community_id, group_buy_id=group_buy_id)
    product = await session.get(Product, campaign.product_id)
    old = terms_of(campaign)
    terms = check_terms(replace(terms, kind=old.kind, product_id=old.product_id,
                                starts_at=old.starts_at if campaign.status == GroupBuyStatus.LIVE else terms.starts_at),
                        product=product, now=now)
    if campaign.status == GroupBuyStatus.LIVE and (worse := worsens(old, terms)) is not None:
        raise DomainError("groupbuy_edit_worse", term=worse)
    for key, value in _columns(terms, now).items():
        setattr(campaign, key, value)
    campaign.updated_at = now
    session.add(campaign)
    await session.flush()
    if campaign.status == GroupBuyStatus.LIVE:
        await mark_card_stale(session, group_buy_id=campaign.id)
    audit.record(session, community_id=community_id, actor_id=actor_id, action="groupbuy.edit",
                 details={"id": campaign.id}, now=now)
    await session.commit()
    return campaign


async def delete_draft(session: AsyncSession, *, community_id: int, group_buy_id: int, actor_id: int, now: datetime) -> None:
    campaign = await get(session, community_id=community_id, group_buy_id=group_buy_id)
    if campaign.status != GroupBuyStatus.DRAFT:
        raise DomainError("groupbuy_not_draft")
    await session.delete(campaign)
    audit.record(session, community_id=community_id, actor_id=actor_id, action="groupbuy.delete",
                 details={"id": group_buy_id}, now=now)
    await session.commit()


async def set_card(session: AsyncSession, *, group_buy_id: int, chat_id: int, message_id: int, rendered: str) -> None:
    campaign = await session.get(GroupBuy, group_buy_id)
    campaign.chat_id, campaign.message_id, campaign.rendered, campaign.refresh_due = chat_id, message_id, rendered, False
    session.add(campaign)
    await session.commit()


async def listing(session: AsyncSession, *, community_id: int, limit: int = 30) -> list[tuple[GroupBuy, Product]]:
    """The community's campaigns for the leader, newest first."""
    rows = await session.exec(select(GroupBuy, Product).join(Product, Product.id == GroupBuy.product_id)
                              .where(GroupBuy.community_id == community_id)
                              .order_by(col(GroupBuy.created_at).desc(), col(GroupBuy.id).desc()).limit(limit))
    return list(rows)


async def open_in(session: AsyncSession, *, community_id: int, now: datetime) -> list[tuple[GroupBuy, Product]]:
    """What members can join now (`/groupbuy`): live campaigns, and ended team campaigns with teams
    still filling."""
    open_team = select(GroupBuyTeam.id).where(GroupBuyTeam.group_buy_id == GroupBuy.id, GroupBuyTeam.status == TeamStatus.OPEN,
                                              col(GroupBuyTeam.deadline_at) > now).exists()
    rows = await session.exec(
        select(GroupBuy, Product).join(Product, Product.id == GroupBuy.product_id)
        .where(GroupBuy.community_id == community_id, col(GroupBuy.starts_at) <= now,
               ((GroupBuy.status == GroupBuyStatus.LIVE) & (col(GroupBuy.ends_at) > now))
               | ((GroupBuy.status == GroupBuyStatus.ENDED) & (col(GroupBuy.close_reason) == "window_over") & open_team))
        .order_by(GroupBuy.ends_at, GroupBuy.id))
    return list(rows)


async def open_teams(session: AsyncSession, *, group_buy_id: int, now: datetime, limit: int | None = None) -> list[GroupBuyTeam]:
    """Teams still filling, the closest to full first (they are the ones worth joining)."""
    query = (select(GroupBuyTeam).where(GroupBuyTeam.group_buy_id == group_buy_id, GroupBuyTeam.status == TeamStatus.OPEN,
                                        col(GroupBuyTeam.deadline_at) > now)
             .order_by((GroupBuyTeam.size - GroupBuyTeam.seats), GroupBuyTeam.deadline_at, GroupBuyTeam.id))
    if limit is not None:
        query = query.limit(limit)
    return list(await session.exec(query))


async def teams(session: AsyncSession, *, group_buy_id: int, offset: int = 0, limit: int = 10) -> tuple[list[GroupBuyTeam], int]:
    """A page of a campaign's teams for the leader (open ones first, then the newest) and how many there are."""
    where = GroupBuyTeam.group_buy_id == group_buy_id
    total = (await session.exec(select(func.count()).select_from(GroupBuyTeam).where(where))).one()
    rows = await session.exec(select(GroupBuyTeam).where(where)
                              .order_by(case((GroupBuyTeam.status == TeamStatus.OPEN, 0), else_=1),
                                        col(GroupBuyTeam.number).desc())
                              .offset(offset).limit(limit))
    return list(rows), int(total)


async def get_team(session: AsyncSession, *, community_id: int, group_buy_id: int, team_id: int) -> GroupBuyTeam:
    team = await session.get(GroupBuyTeam, team_id)
    if team is None or team.community_id != community_id or team.group_buy_id != group_buy_id:
        raise DomainError("groupbuy_unknown")
    return team


@dataclass(frozen=True, slots=True)
class Stats:
    teams_open: int
    teams_succeeded: int
    teams_failed: int
    participants: int
    units: int
    # Money in orders that are still in (minor units): confirmed, and waiting for the group.
    confirmed_total: int
    waiting_total: int
    refund_due: int


async def stats(session: AsyncSession, *, group_buy_id: int) -> Stats:
    """A campaign's figures for the leader."""
    team_counts = dict(list(await session.exec(
        select(GroupBuyTeam.status, func.count()).where(GroupBuyTeam.group_buy_id == group_buy_id).group_by(GroupBuyTeam.status))))
    in_orders = select(Order).where(Order.group_buy_id == group_buy_id)
    rows = list(await session.exec(in_orders))
    seated = [o for o in rows if o.status in SEATED]
    return Stats(
        teams_open=team_counts.get(TeamStatus.OPEN, 0), teams_succeeded=team_counts.get(TeamStatus.SUCCEEDED, 0),
        teams_failed=team_counts.get(TeamStatus.FAILED, 0),
        participants=len({o.user_id for o in seated}), units=sum(o.quantity for o in seated),
        confirmed_total=sum(o.total for o in seated if o.status != OrderStatus.AWAITING_GROUP and o.status != OrderStatus.PENDING_PAYMENT),
        waiting_total=sum(o.total for o in seated if o.status in (OrderStatus.AWAITING_GROUP, OrderStatus.PENDING_PAYMENT)),
        refund_due=sum(1 for o in rows if o.status == OrderStatus.REFUND_DUE),
    )


async def team_members(session: AsyncSession, *, team_id: int) -> list[Order]:
    """A team's seats in the order they were taken."""
    return list(await session.exec(select(Order).where(Order.team_id == team_id, col(Order.status).in_(SEATED))
                                   .order_by(Order.created_at, Order.id)))
