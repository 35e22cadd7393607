"""Joining a group-buy: opening a team, taking a seat in one, or adding units to a threshold.

A part in a group-buy is an order placed through `orders.place` with a seat (`_Seat`), so stock,
coupons, payment and the checkout key work as for any order. The seat is taken by the first write
of the order's transaction, a conditional UPDATE on the team (`seats < size`, still open, before
its deadline) or the campaign (still live, before its cut-off): of members racing for the last
seat exactly one gets it, on SQLite (one writer at a time) and PostgreSQL (the row lock, the
condition re-checked for each waiter). The member's own limits are counted after that UPDATE,
under the same lock, so one member's two checkouts cannot both pass. The order that takes a team's
last seat closes it as succeeded in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import coupons, orders
from bot.services.errors import DomainError
from bot.services.group_seats import SEATED, mark_card_stale
from models import Community
from models.groupbuy import GroupBuy, GroupBuyKind, GroupBuyStatus, GroupBuyTeam, TeamStatus
from models.shop import Order, OrderStatus, PaymentMethod, Product


class JoinMode(StrEnum):
    OPEN = "open"  # open a new team
    TEAM = "team"  # take a seat in an open team
    THRESHOLD = "threshold"


@dataclass(frozen=True, slots=True)
class JoinRef:
    """What a checkout joins, as plain values (kept in the checkout's FSM data)."""

    group_buy_id: int
    mode: JoinMode
    team_id: int | None = None
    invited_by: int | None = None


@dataclass(frozen=True, slots=True)
class Target:
    campaign: GroupBuy
    product: Product
    team: GroupBuyTeam | None
    mode: JoinMode

    @property
    def unit_price(self) -> int:
        return self.team.price if self.team is not None else self.campaign.price


@dataclass(frozen=True, slots=True)
class Joined:
    order: orders.Order
    created: bool
    team: GroupBuyTeam | None
    # This order took the team's last seat: the team has just succeeded.
    completed: bool


async def _campaign(session: AsyncSession, group_buy_id: int, *, refresh: bool = False) -> GroupBuy:
    campaign = await session.get(GroupBuy, group_buy_id, populate_existing=refresh)
    if campaign is None or campaign.status == GroupBuyStatus.DRAFT:
        raise DomainError("groupbuy_unknown")
    return campaign


def _check_campaign_open(campaign: GroupBuy, now: datetime) -> None:
    if campaign.status != GroupBuyStatus.LIVE or campaign.ends_at <= now:
        raise DomainError("groupbuy_closed")
    if campaign.starts_at > now:
        raise DomainError("groupbuy_not_started", starts_at=campaign.starts_at)


def _check_team_open(team: GroupBuyTeam, now: datetime) -> None:
    if team.status == TeamStatus.SUCCEEDED or (team.status == TeamStatus.OPEN and team.seats >= team.size):
        raise DomainError("team_full", number=team.number)
    if team.status == TeamStatus.FAILED:
        raise DomainError("team_closed", number=team.number)
    if team.deadline_at <= now:
        raise DomainError("team_expired", number=team.number)


async def teams_opened(session: AsyncSession, *, group_buy_id: int, user_id: int) -> int:
    """Teams this member opened in the campaign that did not fail (a failed one may be opened again)."""
    result = await session.exec(select(func.count()).select_from(GroupBuyTeam).where(
        GroupBuyTeam.group_buy_id == group_buy_id, GroupBuyTeam.opener_id == user_id,
        GroupBuyTeam.status != TeamStatus.FAILED))
    return int(result.one())


async def teams_joined(session: AsyncSession, *, group_buy_id: int, user_id: int) -> int:
    """Teams opened by others in which this member holds a seat."""
    result = await session.exec(
        select(func.count(func.distinct(Order.team_id))).select_from(Order)
        .join(GroupBuyTeam, GroupBuyTeam.id == Order.team_id)
        .where(Order.group_buy_id == group_buy_id, Order.user_id == user_id, col(Order.status).in_(SEATED),
               GroupBuyTeam.opener_id != user_id))
    return int(result.one())


async def in_team(session: AsyncSession, *, team_id: int, user_id: int) -> bool:
    result = await session.exec(select(Order.id).where(Order.team_id == team_id, Order.user_id == user_id,
                                                       col(Order.status).in_(SEATED)).limit(1))
    return result.first() is not None


async def units_held(session: AsyncSession, *, group_buy_id: int, user_id: int) -> int:
    result = await session.exec(select(func.coalesce(func.sum(Order.quantity), 0)).where(
        Order.group_buy_id == group_buy_id, Order.user_id == user_id, col(Order.status).in_(SEATED)))
    return int(result.one())


async def _check_member(session: AsyncSession, target: Target, user_id: int, quantity: int) -> None:
    """The member's own limits in this campaign (counted under the seat's lock when joining)."""
    campaign = target.campaign
    if target.mode is JoinMode.OPEN:
        if await teams_opened(session, group_buy_id=campaign.id, user_id=user_id) >= campaign.open_limit:
            raise DomainError("team_open_limit", limit=campaign.open_limit)
    elif target.mode is JoinMode.TEAM:
        if await in_team(session, team_id=target.team.id, user_id=user_id):
            raise DomainError("team_already_in", number=target.team.number)
        if await teams_joined(session, group_buy_id=campaign.id, user_id=user_id) >= campaign.join_limit:
            raise DomainError("team_join_limit", limit=campaign.join_limit)
    elif campaign.member_limit is not None:
        held = await units_held(session, group_buy_id=campaign.id, user_id=user_id)
        if held + quantity > campaign.member_limit:
            raise DomainError("groupbuy_member_limit", limit=campaign.member_limit, left=max(0, campaign.member_limit - held))


async def target(session: AsyncSession, *, ref: JoinRef, community_id: int, now: datetime,
                 refresh: bool = False) -> Target:
    """What `ref` points at, if it can be joined now (not the member's own limits)."""
    campaign = await _campaign(session, ref.group_buy_id, refresh=refresh)
    if campaign.community_id != community_id:
        raise DomainError("groupbuy_unknown")
    expected = GroupBuyKind.THRESHOLD if ref.mode is JoinMode.THRESHOLD else GroupBuyKind.TEAM
    if campaign.kind != expected:
        raise DomainError("groupbuy_unknown")
    product = await session.get(Product, campaign.product_id)
    team = None
    if ref.mode is JoinMode.TEAM:
        team = await session.get(GroupBuyTeam, ref.team_id or 0, populate_existing=refresh)
        if team is None or team.group_buy_id != campaign.id:
            raise DomainError("team_unknown")
        _check_team_open(team, now)
        if campaign.status not in (GroupBuyStatus.LIVE, GroupBuyStatus.ENDED) or campaign.close_reason == "ended_by_leader":
            raise DomainError("groupbuy_closed")
    else:
        _check_campaign_open(campaign, now)
    return Target(campaign, product, team, ref.mode)


async def quote(session: AsyncSession, *, community: Community, ref: JoinRef, user_id: int, quantity: int,
                coupon_code: str | None, now: datetime) -> orders.Quote:
    """What joining would cost now, or why it cannot be done. Reads only."""
    tgt = await target(session, ref=ref, community_id=community.id, now=now)
    if not 1 <= quantity <= orders.QUANTITY_MAX:
        raise DomainError("quantity_zero" if quantity < 1 else "quantity_too_large", max=orders.QUANTITY_MAX)
    orders.check_sellable(tgt.product, quantity)
    await orders.check_member_limit(session, tgt.product, user_id, quantity)
    await _check_member(session, tgt, user_id, quantity)
    subtotal = tgt.unit_price * quantity
    coupon, discount = None, 0
    if coupon_code:
        coupon = await coupons.find(session, community_id=community.id, code=coupon_code)
        discount = await coupons.check(session, coupon, user_id=user_id, subtotal=subtotal, now=now)
    return orders.Quote(tgt.product, quantity, tgt.unit_price, subtotal, discount, subtotal - discount, coupon)


class _Seat:
    """The seat an order takes (orders.Seat)."""

    def __init__(self, ref: JoinRef, community_id: int) -> None:
        self.ref = ref
        self.community_id = community_id
        self.team_id: int | None = None
        self.completed = False

    async def take(self, session: AsyncSession, *, user_id: int, quantity: int, unit_price: int,
                   now: datetime) -> dict[str, Any]:
        ref = self.ref
        if ref.mode is JoinMode.OPEN:
            team = await self._open(session, user_id=user_id, unit_price=unit_price, now=now)
        elif ref.mode is JoinMode.TEAM:
            team = await self._sit(session, user_id=user_id, unit_price=unit_price, now=now)
        else:
            team = None
            await self._add_units(session, user_id=user_id, quantity=quantity, unit_price=unit_price, now=now)
        self.team_id = team.id if team is not None else None
        invited_by = ref.invited_by if ref.invited_by not in (None, user_id) else None
        return {"group_buy_id": ref.group_buy_id, "team_id": self.team_id, "invited_by": invited_by}

    async def _refusal(self, session: AsyncSession, now: datetime) -> DomainError:
        """Why the conditional UPDATE found nothing: the state as it is now."""
        try:
            await target(session, ref=self.ref, community_id=self.community_id, now=now, refresh=True)
        except DomainError as err:
            return err
        return DomainError("groupbuy_closed")

    async def _open(self, session: AsyncSession, *, user_id: int, unit_price: int, now: datetime) -> GroupBuyTeam:
        # The campaign's row lock serialises openings, so the member's open limit holds.
        locked = await session.execute(
            update(GroupBuy).where(GroupBuy.id == self.ref.group_buy_id, GroupBuy.community_id == self.community_id,
                                   GroupBuy.kind == GroupBuyKind.TEAM, GroupBuy.status == GroupBuyStatus.LIVE,
                                   col(GroupBuy.starts_at) <= now, col(GroupBuy.ends_at) > now)
            .values(updated_at=now))
        if locked.rowcount != 1:
            raise await self._refusal(session, now)
        campaign = await _campaign(session, self.ref.group_buy_id, refresh=True)
        if campaign.price != unit_price:
            raise DomainError("price_changed", price=campaign.price)
        await _check_member(session, Target(campaign, None, None, JoinMode.OPEN), user_id, 1)
        number = (await session.exec(select(func.coalesce(func.max(GroupBuyTeam.number), 0))
                                     .where(GroupBuyTeam.group_buy_id == campaign.id))).one() + 1
        team = GroupBuyTeam(group_buy_id=campaign.id, community_id=campaign.community_id, number=number, opener_id=user_id,
                            size=campaign.team_size, price=campaign.price, seats=1, status=TeamStatus.OPEN, opened_at=now,
                            deadline_at=now + timedelta(minutes=campaign.team_minutes))
        session.add(team)
        await session.flush()
        return team

    async def _sit(self, session: AsyncSession, *, user_id: int, unit_price: int, now: datetime) -> GroupBuyTeam:
        last_seat = GroupBuyTeam.seats + 1 >= GroupBuyTeam.size
        taken = await session.execute(
            update(GroupBuyTeam)
            .where(GroupBuyTeam.id == (self.ref.team_id or 0), GroupBuyTeam.group_buy_id == self.ref.group_buy_id,
                   GroupBuyTeam.status == TeamStatus.OPEN, GroupBuyTeam.seats < GroupBuyTeam.size,
                   col(GroupBuyTeam.deadline_at) > now)
            .values(seats=GroupBuyTeam.seats + 1,
                    status=case((last_seat, TeamStatus.SUCCEEDED.value), else_=TeamStatus.OPEN.value),
                    closed_at=case((last_seat, now), else_=None),
                    close_reason=case((last_seat, "filled"), else_=None),
                    announce_due=last_seat))
        if taken.rowcount != 1:
            raise await self._refusal(session, now)
        team = await session.get(GroupBuyTeam, self.ref.team_id, populate_existing=True)
        campaign = await _campaign(session, self.ref.group_buy_id)
        if campaign.status not in (GroupBuyStatus.LIVE, GroupBuyStatus.ENDED) or campaign.close_reason == "ended_by_leader":
            raise DomainError("groupbuy_closed")
        if team.price != unit_price:
            raise DomainError("price_changed", price=team.price)
        await _check_member(session, Target(campaign, None, team, JoinMode.TEAM), user_id, 1)
        self.completed = team.status == TeamStatus.SUCCEEDED
        return team

    async def _add_units(self, session: AsyncSession, *, user_id: int, quantity: int, unit_price: int,
                         now: datetime) -> None:
        added = await session.execute(
            update(GroupBuy).where(GroupBuy.id == self.ref.group_buy_id, GroupBuy.community_id == self.community_id,
                                   GroupBuy.kind == GroupBuyKind.THRESHOLD, GroupBuy.status == GroupBuyStatus.LIVE,
                                   col(GroupBuy.starts_at) <= now, col(GroupBuy.ends_at) > now)
            .values(units=GroupBuy.units + quantity, updated_at=now))
        if added.rowcount != 1:
            raise await self._refusal(session, now)
        campaign = await _campaign(session, self.ref.group_buy_id, refresh=True)
        if campaign.price != unit_price:
            raise DomainError("price_changed", price=campaign.price)
        await _check_member(session, Target(campaign, None, None, JoinMode.THRESHOLD), user_id, quantity)

    async def placed(self, session: AsyncSession, order: Order, now: datetime) -> None:
        if self.completed:
            await confirm_team_orders(session, team_id=self.team_id, now=now)
        await mark_card_stale(session, group_buy_id=self.ref.group_buy_id)


async def confirm_team_orders(session: AsyncSession, *, team_id: int, now: datetime) -> int:
    """A team that succeeded: its orders waiting for it are confirmed (no commit)."""
    result = await session.execute(
        update(Order).where(Order.team_id == team_id, Order.status == OrderStatus.AWAITING_GROUP)
        .values(status=OrderStatus.CONFIRMED, updated_at=now))
    return result.rowcount


async def join(session: AsyncSession, *, community: Community, ref: JoinRef, user_id: int, quantity: int,
               unit_price: int, payment_method: PaymentMethod, checkout_key: str, now: datetime,
               pickup_point_id: int | None = None, delivery_address: str | None = None,
               coupon_code: str | None = None) -> Joined:
    """Take the seat and place the order, all or nothing, and commit.

    A double tap or a redelivered Confirm (same checkout key) finds the order already made.
    """
    campaign = await _campaign(session, ref.group_buy_id)
    if campaign.community_id != community.id:
        raise DomainError("groupbuy_unknown")
    seat = _Seat(ref, community.id)
    placed = await orders.place(
        session, community=community, user_id=user_id, product_id=campaign.product_id, quantity=quantity,
        unit_price=unit_price, payment_method=payment_method, checkout_key=checkout_key, now=now,
        pickup_point_id=pickup_point_id, delivery_address=delivery_address, coupon_code=coupon_code, seat=seat)
    team_id = placed.order.team_id
    team = await session.get(GroupBuyTeam, team_id, populate_existing=True) if team_id else None
    return Joined(placed.order, placed.created, team, completed=placed.created and seat.completed)
