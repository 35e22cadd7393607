"""What an order's life means for its group-buy seat: the order service calls these inside its
own transactions (cancelling, expiring, paying), so they never commit.

Every function here touches the team's or campaign's row before any order row, the same order in
which joining and closing lock them (see bot/services/orders.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.groupbuy import GroupBuy, GroupBuyStatus, GroupBuyTeam, TeamStatus
from models.shop import Order, OrderStatus

# Order states that hold a seat (and the units) of a group-buy.
SEATED = (OrderStatus.PENDING_PAYMENT, OrderStatus.AWAITING_GROUP, OrderStatus.CONFIRMED, OrderStatus.FULFILLED,
          OrderStatus.PICKED_UP)


async def lock(session: AsyncSession, order: Order) -> None:
    """Take the team's (or threshold campaign's) row lock before the order's own."""
    if order.team_id is not None:
        await session.execute(update(GroupBuyTeam).where(GroupBuyTeam.id == order.team_id)
                              .values(seats=GroupBuyTeam.seats))
    elif order.group_buy_id is not None:
        await session.execute(update(GroupBuy).where(GroupBuy.id == order.group_buy_id).values(units=GroupBuy.units))


async def paid_status(session: AsyncSession, order: Order) -> OrderStatus | None:
    """The state a group-buy order moves to when its payment arrives; None for a plain order."""
    if order.group_buy_id is None:
        return None
    await lock(session, order)
    if order.team_id is not None:
        status = (await session.exec(select(GroupBuyTeam.status).where(GroupBuyTeam.id == order.team_id))).one()
        if status == TeamStatus.SUCCEEDED:
            return OrderStatus.CONFIRMED
    return OrderStatus.AWAITING_GROUP


async def release(session: AsyncSession, order: Order, now: datetime) -> None:
    """A cancelled order gives its seat (or units) back while its team or campaign is still open.

    The team goes on without it: if it was the opener's, the member who joined next opens it now;
    a team nobody is left in is closed as failed, with nothing to announce.
    """
    if order.group_buy_id is None:
        return
    if order.team_id is not None:
        freed = await session.execute(
            update(GroupBuyTeam).where(GroupBuyTeam.id == order.team_id, GroupBuyTeam.status == TeamStatus.OPEN)
            .values(seats=GroupBuyTeam.seats - 1))
        if freed.rowcount == 1:
            team = await session.get(GroupBuyTeam, order.team_id, populate_existing=True)
            if team.seats <= 0:
                team.status, team.closed_at, team.close_reason = TeamStatus.FAILED, now, "empty"
            elif team.opener_id == order.user_id:
                successor = (await session.exec(
                    select(Order.user_id).where(Order.team_id == team.id, col(Order.status).in_(SEATED),
                                                Order.id != order.id)
                    .order_by(Order.created_at, Order.id).limit(1))).first()
                if successor is not None:
                    team.opener_id = successor
            session.add(team)
    else:
        await session.execute(
            update(GroupBuy).where(GroupBuy.id == order.group_buy_id, GroupBuy.status == GroupBuyStatus.LIVE)
            .values(units=GroupBuy.units - order.quantity))
    await mark_card_stale(session, group_buy_id=order.group_buy_id)


_campaigns = GroupBuy.__table__
# Built once: on a seat's path building the statement cost more CPU than sending it.
_CARD_STALE = (update(_campaigns).where(_campaigns.c.id == bindparam("b_campaign"), _campaigns.c.message_id.is_not(None),
                                        _campaigns.c.refresh_due.is_(False))
               .values(refresh_due=True))


async def mark_card_stale(session: AsyncSession, *, group_buy_id: int) -> None:
    """The campaign's card in the group shows old progress; the card updater will edit it."""
    await session.execute(_CARD_STALE, {"b_campaign": group_buy_id})
