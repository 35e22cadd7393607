"""What a closed group-buy settled, read for its announcements: each participant's orders with
the credit coupons the close issued, the leader's summary figures, and the Stars refunds still
owed. Reads only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.group_seats import SEATED
from bot.services.groupbuy_close import FAILED_REASONS, participants
from models import Community
from models.groupbuy import GroupBuy, GroupBuyTeam
from models.shop import Coupon, Order, OrderStatus, PaymentMethod, Product

# Orders that will be handed over: the group-buy's money that stands.
CONFIRMED = (OrderStatus.CONFIRMED, OrderStatus.FULFILLED, OrderStatus.PICKED_UP)


@dataclass(slots=True)
class Settled:
    """A closed team (or threshold campaign) and the orders its close settled."""

    community: Community
    campaign: GroupBuy
    product: Product
    team: GroupBuyTeam | None
    orders: list[Order]
    # Order id → the personal coupon that gives back what the member paid above the final price.
    credit_codes: dict[int, str] = field(default_factory=dict)

    def by_user(self) -> dict[int, list[Order]]:
        grouped: dict[int, list[Order]] = defaultdict(list)
        for order in self.orders:
            grouped[order.user_id].append(order)
        return dict(grouped)


async def settled(session: AsyncSession, *, team_id: int | None = None, group_buy_id: int | None = None) -> Settled:
    """A closed team (`team_id`) or a closed threshold campaign (`group_buy_id`)."""
    team = await session.get(GroupBuyTeam, team_id, populate_existing=True) if team_id is not None else None
    campaign = await session.get(GroupBuy, team.group_buy_id if team else group_buy_id, populate_existing=True)
    result = Settled(community=await session.get(Community, campaign.community_id), campaign=campaign,
                     product=await session.get(Product, campaign.product_id), team=team,
                     orders=await participants(session, team_id=team_id, group_buy_id=None if team else campaign.id))
    coupon_ids = {o.credit_coupon_id: o.id for o in result.orders if o.credit_coupon_id is not None}
    if coupon_ids:
        for coupon in await session.exec(select(Coupon).where(col(Coupon.id).in_(coupon_ids))):
            result.credit_codes[coupon_ids[coupon.id]] = coupon.code
    return result


@dataclass(frozen=True, slots=True)
class Summary:
    """A closed campaign's figures for the leader (money in minor units)."""

    teams_succeeded: int
    teams_failed: int
    participants: int
    units: int
    confirmed_orders: int
    confirmed_total: int
    paid_total: int  # of the confirmed money, what was paid online already
    unpaid_orders: int  # in teams that filled, still waiting for their online payment
    unpaid_total: int
    cancelled_orders: int
    refunded_orders: int
    refunded_total: int
    refund_due_orders: int  # paid by card: the leader's to settle with the payment provider
    refund_due_total: int
    stars_due_orders: int  # Stars refunds Telegram refused so far (the refund job retries them)
    credited_total: int


async def summary(session: AsyncSession, *, group_buy_id: int) -> Summary:
    teams = dict(list(await session.exec(
        select(GroupBuyTeam.status, func.count()).where(
            GroupBuyTeam.group_buy_id == group_buy_id,
            # A team everyone left before its deadline closed with nothing to settle.
            col(GroupBuyTeam.close_reason).is_(None) | (GroupBuyTeam.close_reason != "empty"))
        .group_by(GroupBuyTeam.status))))
    rows = await participants(session, group_buy_id=group_buy_id)
    confirmed = [o for o in rows if o.status in CONFIRMED]
    unpaid = [o for o in rows if o.status == OrderStatus.PENDING_PAYMENT]
    refunded = [o for o in rows if o.status == OrderStatus.REFUNDED]
    due = [o for o in rows if o.status == OrderStatus.REFUND_DUE and o.payment_method != PaymentMethod.STARS]
    return Summary(
        teams_succeeded=teams.get("succeeded", 0), teams_failed=teams.get("failed", 0),
        participants=len({o.user_id for o in rows}), units=sum(o.quantity for o in rows if o.status in SEATED),
        confirmed_orders=len(confirmed), confirmed_total=sum(o.total for o in confirmed),
        paid_total=sum(o.total for o in confirmed if o.paid_at is not None),
        unpaid_orders=len(unpaid), unpaid_total=sum(o.total for o in unpaid),
        cancelled_orders=sum(1 for o in rows if o.status == OrderStatus.CANCELLED),
        refunded_orders=len(refunded), refunded_total=sum(o.total for o in refunded),
        refund_due_orders=len(due), refund_due_total=sum(o.total for o in due),
        stars_due_orders=sum(1 for o in rows if o.status == OrderStatus.REFUND_DUE and o.payment_method == PaymentMethod.STARS),
        credited_total=sum(o.credit for o in rows),
    )


async def stars_refunds_due(session: AsyncSession, *, cancelled_before: datetime, limit: int = 200) -> list[Order]:
    """Stars orders a group-buy close cancelled that are still refund-due (Telegram failed when the
    close was announced). Only those cancelled before `cancelled_before`, so that a retry does not
    race the announcement that is refunding them right now."""
    return list(await session.exec(
        select(Order).where(Order.status == OrderStatus.REFUND_DUE, Order.payment_method == PaymentMethod.STARS,
                            col(Order.group_buy_id).is_not(None), col(Order.cancel_reason).in_(FAILED_REASONS),
                            col(Order.telegram_charge_id).is_not(None), col(Order.cancelled_at) <= cancelled_before)
        .order_by(Order.id).limit(limit)))
