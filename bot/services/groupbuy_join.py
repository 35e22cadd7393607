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

from sqlalchemy import bindparam, case, delete, exists, func, insert, update
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


_teams, _campaigns = GroupBuyTeam.__table__, GroupBuy.__table__
_orders = Order.__table__


def _member_in_teams(team, user, campaign):
    """Whether the member holds a seat in the team, and in how many teams opened by others."""
    o, t = _orders.c, _teams.c
    already_in = exists().where(o.team_id == team, o.user_id == user, o.status.in_(SEATED))
    joined = (select(func.count(func.distinct(o.team_id))).select_from(_orders.join(_teams, t.id == o.team_id))
              .where(o.group_buy_id == campaign, o.user_id == user, o.status.in_(SEATED), t.opener_id != user)
              .scalar_subquery())
    return already_in, joined


# Statements built once: building and hashing a statement cost more CPU than sending it.
_ALREADY_IN = select(_member_in_teams(bindparam("b_team"), bindparam("b_user"), bindparam("b_campaign"))[0])
_g_in_team, _g_joined = _member_in_teams(bindparam("g_team"), bindparam("g_user"), bindparam("g_campaign"))
# A seat's order is written only if the member is not in the team yet and under the join limit:
# counted by the INSERT, after the reservation took the product's lock.
_TEAM_GUARD = orders.InsertGuard(~_g_in_team & (_g_joined < bindparam("g_limit")))


def _sit_statement():
    t, c = _teams.c, _campaigns.c
    now = bindparam("s_now")
    last_seat = t.seats + 1 >= t.size
    # A team campaign still takes seats in open teams after its window for new teams ended, not
    # once the leader ended it.
    joinable = exists().where(c.id == t.group_buy_id, c.status.in_((GroupBuyStatus.LIVE, GroupBuyStatus.ENDED)),
                              c.close_reason.is_(None) | (c.close_reason != "ended_by_leader"))
    return (update(_teams)
            .where(t.id == bindparam("s_team"), t.group_buy_id == bindparam("s_campaign"), t.status == TeamStatus.OPEN,
                   t.seats < t.size, t.deadline_at > now, t.price == bindparam("s_price"), joinable)
            .values(seats=t.seats + 1,
                    status=case((last_seat, TeamStatus.SUCCEEDED.value), else_=TeamStatus.OPEN.value),
                    closed_at=case((last_seat, now), else_=None),
                    close_reason=case((last_seat, "filled"), else_=None),
                    announce_due=last_seat)
            .returning(*_teams.c))


_SIT = _sit_statement()


def _card_stale():
    """SET refresh_due so: the campaign's card (if posted) shows old progress (as `mark_card_stale`)."""
    return case((_campaigns.c.message_id.is_not(None), True), else_=_campaigns.c.refresh_due)


class _Seat:
    """The seat an order takes (orders.Seat), written with Core statements: the conditional UPDATE
    (or the new team) returns what the checks and the caller need, so nothing is read back."""

    def __init__(self, ref: JoinRef, campaign: GroupBuy) -> None:
        self.ref = ref
        self.campaign = campaign
        self.team_row: Any = None  # the team as this order left it (RETURNING), for the caller
        self.member_limit: int | None = None
        self.units = 0  # added to a threshold campaign by this order
        self.completed = False

    async def take(self, session: AsyncSession, *, user_id: int, quantity: int, unit_price: int,
                   now: datetime) -> dict[str, Any]:
        ref = self.ref
        if ref.mode is JoinMode.OPEN:
            await self._open(session, user_id=user_id, unit_price=unit_price, now=now)
        elif ref.mode is JoinMode.TEAM:
            await self._sit(session, unit_price=unit_price, now=now)
        else:
            await self._add_units(session, quantity=quantity, unit_price=unit_price, now=now)
        invited_by = ref.invited_by if ref.invited_by not in (None, user_id) else None
        team_id = self.team_row.id if self.team_row is not None else None
        return {"group_buy_id": ref.group_buy_id, "team_id": team_id, "invited_by": invited_by}

    async def _refusal(self, session: AsyncSession, now: datetime, unit_price: int) -> DomainError:
        """Why the conditional UPDATE found nothing: the state as it is now (a full team, the most
        common reason in a rush, is told from the team's row alone)."""
        try:
            if self.ref.mode is JoinMode.TEAM:
                team = await session.get(GroupBuyTeam, self.ref.team_id or 0, populate_existing=True)
                if team is None or team.group_buy_id != self.ref.group_buy_id:
                    raise DomainError("team_unknown")
                _check_team_open(team, now)
            tgt = await target(session, ref=self.ref, community_id=self.campaign.community_id, now=now, refresh=True)
        except DomainError as err:
            return err
        if tgt.unit_price != unit_price:
            return DomainError("price_changed", price=tgt.unit_price)
        return DomainError("groupbuy_closed")

    def _open_campaign(self, now: datetime):
        c = _campaigns.c
        return [c.id == self.ref.group_buy_id, c.community_id == self.campaign.community_id, c.status == GroupBuyStatus.LIVE,
                c.starts_at <= now, c.ends_at > now]

    async def _open(self, session: AsyncSession, *, user_id: int, unit_price: int, now: datetime) -> None:
        # The campaign's row lock serialises openings, so the member's open limit holds.
        c = _campaigns.c
        locked = (await session.execute(
            update(_campaigns).where(*self._open_campaign(now), c.kind == GroupBuyKind.TEAM, c.price == unit_price)
            .values(updated_at=now, refresh_due=_card_stale())
            .returning(c.team_size, c.team_minutes, c.open_limit))).first()
        if locked is None:
            raise await self._refusal(session, now, unit_price)
        if await teams_opened(session, group_buy_id=self.ref.group_buy_id, user_id=user_id) >= locked.open_limit:
            raise DomainError("team_open_limit", limit=locked.open_limit)
        t = _teams.c
        number = select(func.coalesce(func.max(t.number), 0) + 1).where(t.group_buy_id == self.ref.group_buy_id)
        self.team_row = (await session.execute(
            insert(_teams).values(group_buy_id=self.ref.group_buy_id, community_id=self.campaign.community_id,
                                  number=number.scalar_subquery(), opener_id=user_id, size=locked.team_size, price=unit_price,
                                  seats=1, status=TeamStatus.OPEN, opened_at=now,
                                  deadline_at=now + timedelta(minutes=locked.team_minutes), announce_due=False)
            .returning(*_teams.c))).one()

    async def _sit(self, session: AsyncSession, *, unit_price: int, now: datetime) -> None:
        self.team_row = (await session.execute(_SIT, {
            "s_team": self.ref.team_id or 0, "s_campaign": self.ref.group_buy_id, "s_now": now,
            "s_price": unit_price})).first()
        if self.team_row is None:
            raise await self._refusal(session, now, unit_price)
        self.completed = self.team_row.status == TeamStatus.SUCCEEDED

    async def _add_units(self, session: AsyncSession, *, quantity: int, unit_price: int, now: datetime) -> None:
        c = _campaigns.c
        added = (await session.execute(
            update(_campaigns).where(*self._open_campaign(now), c.kind == GroupBuyKind.THRESHOLD, c.price == unit_price)
            .values(units=c.units + quantity, updated_at=now, refresh_due=_card_stale())
            .returning(c.member_limit))).first()
        if added is None:
            raise await self._refusal(session, now, unit_price)
        self.member_limit, self.units = added.member_limit, quantity

    def guard(self, *, user_id: int, quantity: int) -> tuple[orders.InsertGuard, dict[str, Any]] | None:
        if self.ref.mode is not JoinMode.TEAM:
            return None
        return _TEAM_GUARD, {"g_team": self.team_row.id, "g_user": user_id, "g_campaign": self.campaign.id,
                             "g_limit": self.campaign.join_limit}

    async def check_member(self, session: AsyncSession, *, user_id: int, quantity: int) -> None:
        # Counted under the product's lock (taken after the seat's), which every order of the
        # campaign takes: one member's checkouts into two different teams cannot both pass.
        campaign, ref = self.campaign, self.ref
        if ref.mode is JoinMode.TEAM:
            # Asked only once the guarded INSERT refused the member: say which limit it was.
            if (await session.execute(
                    _ALREADY_IN, {"b_team": self.team_row.id, "b_user": user_id, "b_campaign": campaign.id})).scalar():
                raise DomainError("team_already_in", number=self.team_row.number)
            raise DomainError("team_join_limit", limit=campaign.join_limit)
        if ref.mode is JoinMode.THRESHOLD and self.member_limit is not None:
            held = await units_held(session, group_buy_id=campaign.id, user_id=user_id)
            if held + quantity > self.member_limit:
                raise DomainError("groupbuy_member_limit", limit=self.member_limit, left=max(0, self.member_limit - held))

    async def give_back(self, session: AsyncSession) -> None:
        ref, t = self.ref, _teams.c
        if ref.mode is JoinMode.OPEN:
            await session.execute(delete(_teams).where(t.id == self.team_row.id))
        elif ref.mode is JoinMode.TEAM:
            # The team was open before this seat (the UPDATE's condition), closing fields empty.
            back = {"status": TeamStatus.OPEN, "closed_at": None, "close_reason": None, "announce_due": False} \
                if self.completed else {}
            await session.execute(update(_teams).where(t.id == self.team_row.id).values(seats=t.seats - 1, **back))
        else:
            c = _campaigns.c
            await session.execute(update(_campaigns).where(c.id == ref.group_buy_id)
                                  .values(units=c.units - self.units))
        self.team_row, self.completed = None, False

    async def placed(self, session: AsyncSession, order: Order, now: datetime) -> None:
        if self.completed:
            await confirm_team_orders(session, team_id=self.team_row.id, now=now)
        if self.ref.mode is JoinMode.TEAM:  # the other modes marked the card with their UPDATE
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
    expected = GroupBuyKind.THRESHOLD if ref.mode is JoinMode.THRESHOLD else GroupBuyKind.TEAM
    if campaign.community_id != community.id or campaign.kind != expected:
        raise DomainError("groupbuy_unknown")
    seat = _Seat(ref, campaign)
    placed = await orders.place(
        session, community=community, user_id=user_id, product_id=campaign.product_id, quantity=quantity,
        unit_price=unit_price, payment_method=payment_method, checkout_key=checkout_key, now=now,
        pickup_point_id=pickup_point_id, delivery_address=delivery_address, coupon_code=coupon_code, seat=seat)
    team = None
    if placed.created and seat.team_row is not None:
        team = orders.adopt(session, GroupBuyTeam, seat.team_row._mapping)
    elif placed.order.team_id is not None:
        team = await session.get(GroupBuyTeam, placed.order.team_id, populate_existing=True)
    return Joined(placed.order, placed.created, team, completed=placed.created and seat.completed)
