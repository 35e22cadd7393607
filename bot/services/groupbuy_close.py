"""Closing group-buys: teams at their deadline, thresholds at their cut-off, campaigns ended early.

Each close is one transaction that starts with a conditional UPDATE from the open state, so it
happens once however many times it is attempted: by the scheduler's sweep (which also catches up
at start-up after downtime), by a second worker, or by the leader ending the campaign. What follows
a close — telling participants, refunding Stars, the leader's summary — is flagged with
`announce_due` in the same transaction and claimed by exactly one sender (`claim_*`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, exists, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import audit, coupons, orders
from bot.services.errors import DomainError
from bot.services.group_seats import SEATED, mark_card_stale
from bot.services.groupbuy_join import confirm_team_orders
from models.groupbuy import GroupBuy, GroupBuyKind, GroupBuyStatus, GroupBuyTeam, TeamStatus
from models.shop import CouponKind, Order, OrderStatus

# Orders a close still has to settle.
UNSETTLED = (OrderStatus.PENDING_PAYMENT, OrderStatus.AWAITING_GROUP)
FAILED_REASONS = ("groupbuy_failed", "groupbuy_unpaid")


def tiers_of(campaign: GroupBuy) -> list[tuple[int, int]]:
    """[(minimum total units, unit price)], ascending by units."""
    return sorted((int(units), int(price)) for units, price in json.loads(campaign.tiers or "[]"))


def price_at(campaign: GroupBuy, units: int) -> int:
    """The unit price everyone pays when the threshold campaign ends with `units` in all."""
    price = campaign.price
    for minimum, tier_price in tiers_of(campaign):
        if units >= minimum:
            price = min(price, tier_price)
    return price


_teams = GroupBuyTeam.__table__
# Expired teams closed in batches: the CTE picks them, and on PostgreSQL locks them and skips those
# another sweeper (or a member's payment or cancellation) holds, so two sweepers take different
# teams and neither waits. A CTE, not `IN (subquery)`: PostgreSQL may run a subquery again and so
# lock more than the limit (1,000 teams in one call of limit 500), never a CTE with FOR UPDATE.
# SQLite ignores FOR UPDATE: its one writer at a time runs each UPDATE whole, and the conditions
# are checked again on the rows themselves.
_DUE = (select(_teams.c.id).where(_teams.c.status == TeamStatus.OPEN, _teams.c.deadline_at <= bindparam("b_now"))
        .order_by(_teams.c.id).limit(bindparam("b_limit")).with_for_update(skip_locked=True).cte("due"))
_FAIL_DUE = (update(_teams)
             .where(_teams.c.id.in_(select(_DUE.c.id)), _teams.c.status == TeamStatus.OPEN,
                    _teams.c.deadline_at <= bindparam("b_now"))
             .values(status=TeamStatus.FAILED, closed_at=bindparam("b_now"), close_reason="expired", announce_due=True)
             .returning(*_teams.c))


async def fail_team(session: AsyncSession, *, team_id: int, now: datetime, reason: str = "expired",
                    force: bool = False) -> bool:
    """Close an open team as failed (at its deadline, or at once with `force`) and commit: its
    orders are cancelled, stock and coupons return, paid ones become refund-due. False when the
    team was not open (already closed by someone else) or its deadline has not come."""
    condition = [_teams.c.id == team_id, _teams.c.status == TeamStatus.OPEN]
    if not force:
        condition.append(_teams.c.deadline_at <= now)
    closed = (await session.execute(update(_teams).where(*condition).values(
        status=TeamStatus.FAILED, closed_at=now, close_reason=reason[:32], announce_due=True)
        .returning(*_teams.c))).all()
    await _settle_failed(session, closed, now=now, reason=reason)
    await session.commit()
    return bool(closed)


async def fail_due_teams(session: AsyncSession, *, now: datetime, limit: int = 500) -> list[int]:
    """Close up to `limit` teams past their deadline as failed, as `fail_team` closes one, in one
    transaction of a few statements, and commit; the teams this call closed."""
    closed = (await session.execute(_FAIL_DUE, {"b_now": now, "b_limit": limit})).all()
    await _settle_failed(session, closed, now=now, reason="expired")
    await session.commit()
    return sorted(row.id for row in closed)


async def _settle_failed(session: AsyncSession, closed: list, *, now: datetime, reason: str) -> None:
    """What follows teams this transaction has just closed as failed (their rows, locked): their
    orders settled together, the campaigns' cards marked once each, one audit row per team."""
    if not closed:
        return
    for row in closed:
        # A team the session holds shows its close, as the orders do.
        if (loaded := session.identity_map.get(identity_key(GroupBuyTeam, row.id))) is not None:
            for name, value in row._mapping.items():
                set_committed_value(loaded, name, value)
    ids = [row.id for row in closed]
    await orders.cancel_all_within(session, col(Order.team_id).in_(ids), from_=UNSETTLED, reason="groupbuy_failed",
                                   now=now)
    for campaign_id in sorted({row.group_buy_id for row in closed}):
        await mark_card_stale(session, group_buy_id=campaign_id)
    await audit.record_many(session, [
        {"community_id": row.community_id, "actor_id": None, "action": "groupbuy.team_failed",
         "details": {"team": row.id, "group_buy": row.group_buy_id, "reason": reason}} for row in closed], now=now)


async def close_threshold(session: AsyncSession, *, group_buy_id: int, now: datetime, force: bool = False,
                          actor_id: int | None = None) -> GroupBuy | None:
    """Settle a threshold campaign at its cut-off (or at once, as failed, with `force`) and commit.

    Orders still unpaid online at the cut-off are cancelled first and do not count. If the rest
    reach the minimum, every order is confirmed at the final tier's price and what a member paid
    above it comes back as a personal coupon; otherwise all are cancelled. None when the campaign
    was not live (already closed) or its cut-off has not come.
    """
    condition = [GroupBuy.id == group_buy_id, GroupBuy.kind == GroupBuyKind.THRESHOLD, GroupBuy.status == GroupBuyStatus.LIVE]
    if not force:
        condition.append(col(GroupBuy.ends_at) <= now)
    locked = await session.execute(update(GroupBuy).where(*condition).values(updated_at=now))
    if locked.rowcount != 1:
        await session.commit()
        return None
    unpaid = select(Order).where(Order.group_buy_id == group_buy_id, Order.status == OrderStatus.PENDING_PAYMENT)
    for order in list(await session.exec(unpaid)):
        await orders.cancel_within(session, order, from_=(OrderStatus.PENDING_PAYMENT,), reason="groupbuy_unpaid",
                                   actor_id=None, now=now)
    campaign = await session.get(GroupBuy, group_buy_id, populate_existing=True)
    succeeded = not force and campaign.units >= campaign.min_units
    campaign.status = GroupBuyStatus.SUCCEEDED if succeeded else GroupBuyStatus.FAILED
    campaign.closed_at = now
    campaign.close_reason = "ended_by_leader" if force else ("reached" if succeeded else "not_reached")
    campaign.announce_due = True
    campaign.updated_at = now
    if succeeded:
        campaign.final_price = price_at(campaign, campaign.units)
    session.add(campaign)
    await session.flush()
    if succeeded:
        waiting = select(Order).where(Order.group_buy_id == group_buy_id, Order.status == OrderStatus.AWAITING_GROUP)
        for order in list(await session.exec(waiting)):
            await _confirm_at(session, order, campaign.final_price, now)
    else:
        await orders.cancel_all_within(session, Order.group_buy_id == group_buy_id, from_=(OrderStatus.AWAITING_GROUP,),
                                       reason="groupbuy_failed", now=now)
    await mark_card_stale(session, group_buy_id=group_buy_id)
    audit.record(session, community_id=campaign.community_id, actor_id=actor_id, action="groupbuy.closed",
                 details={"id": group_buy_id, "status": campaign.status, "units": campaign.units,
                          "final_price": campaign.final_price}, now=now)
    await session.commit()
    return campaign


async def _confirm_at(session: AsyncSession, order: Order, price: int, now: datetime) -> None:
    """Confirm at the final price; money paid above it is credited back as a personal coupon."""
    total = max(0, price * order.quantity - order.discount)
    credit = order.total - total if order.paid_at is not None and order.total > total else 0
    moved = await session.execute(
        update(Order).where(Order.id == order.id, Order.status == OrderStatus.AWAITING_GROUP)
        .values(status=OrderStatus.CONFIRMED, unit_price=price, total=total, credit=credit, updated_at=now))
    if moved.rowcount != 1 or credit == 0:
        return
    coupon = await coupons.issue(session, community_id=order.community_id, actor_id=None, now=now, commit=False,
                                 spec=coupons.CouponSpec(kind=CouponKind.FIXED, value=credit, owner_id=order.user_id,
                                                         code=coupons.new_code("GB"), source="groupbuy"))
    await session.execute(update(Order).where(Order.id == order.id).values(credit_coupon_id=coupon.id))


async def end_campaign(session: AsyncSession, *, group_buy_id: int, community_id: int, actor_id: int,
                       now: datetime) -> GroupBuy:
    """The leader ends a live campaign early: no new joins; open teams fail and are refunded; a
    threshold fails. Commits."""
    campaign = await session.get(GroupBuy, group_buy_id)
    if campaign is None or campaign.community_id != community_id:
        raise DomainError("groupbuy_unknown")
    if campaign.kind == GroupBuyKind.THRESHOLD:
        closed = await close_threshold(session, group_buy_id=group_buy_id, now=now, force=True, actor_id=actor_id)
        if closed is None:
            raise DomainError("groupbuy_closed")
        return closed
    ended = await session.execute(
        update(GroupBuy).where(GroupBuy.id == group_buy_id, col(GroupBuy.status).in_((GroupBuyStatus.LIVE, GroupBuyStatus.ENDED)),
                               col(GroupBuy.close_reason).is_(None) | (GroupBuy.close_reason != "ended_by_leader"))
        .values(status=GroupBuyStatus.ENDED, close_reason="ended_by_leader", updated_at=now))
    if ended.rowcount != 1:
        await session.commit()
        raise DomainError("groupbuy_closed")
    audit.record(session, community_id=community_id, actor_id=actor_id, action="groupbuy.ended",
                 details={"id": group_buy_id}, now=now)
    await mark_card_stale(session, group_buy_id=group_buy_id)
    await session.commit()
    open_teams = list(await session.exec(select(GroupBuyTeam.id).where(GroupBuyTeam.group_buy_id == group_buy_id,
                                                                       GroupBuyTeam.status == TeamStatus.OPEN)))
    for team_id in open_teams:
        await fail_team(session, team_id=team_id, now=now, reason="ended_by_leader", force=True)
    await finish_team_campaigns(session, now=now, group_buy_id=group_buy_id)
    return await session.get(GroupBuy, group_buy_id, populate_existing=True)


async def finish_team_campaigns(session: AsyncSession, *, now: datetime, group_buy_id: int | None = None) -> list[int]:
    """Team campaigns that take no new teams and have none open left are closed for good (their
    summary becomes due). Commits."""
    no_open_team = ~exists().where(GroupBuyTeam.group_buy_id == GroupBuy.id, GroupBuyTeam.status == TeamStatus.OPEN)
    query = select(GroupBuy.id).where(GroupBuy.kind == GroupBuyKind.TEAM, GroupBuy.status == GroupBuyStatus.ENDED,
                                      col(GroupBuy.closed_at).is_(None), no_open_team)
    if group_buy_id is not None:
        query = query.where(GroupBuy.id == group_buy_id)
    finished = []
    for campaign_id in list(await session.exec(query)):
        done = await session.execute(update(GroupBuy).where(GroupBuy.id == campaign_id, col(GroupBuy.closed_at).is_(None))
                                     .values(closed_at=now, announce_due=True, updated_at=now))
        if done.rowcount == 1:
            finished.append(campaign_id)
    await session.commit()
    return finished


@dataclass(slots=True)
class Sweep:
    teams_failed: list[int] = field(default_factory=list)
    thresholds_closed: list[int] = field(default_factory=list)
    windows_ended: list[int] = field(default_factory=list)
    campaigns_finished: list[int] = field(default_factory=list)
    healed: int = 0

    @property
    def empty(self) -> bool:
        return not (self.teams_failed or self.thresholds_closed or self.windows_ended or self.campaigns_finished)


async def sweep(session: AsyncSession, *, now: datetime, limit: int = 500) -> Sweep:
    """Everything whose time has come: expired teams, thresholds at their cut-off, team campaigns
    past their window. Safe to run at any time, twice, or on two workers at once."""
    done = Sweep(teams_failed=await fail_due_teams(session, now=now, limit=limit))
    due_thresholds = list(await session.exec(
        select(GroupBuy.id).where(GroupBuy.kind == GroupBuyKind.THRESHOLD, GroupBuy.status == GroupBuyStatus.LIVE,
                                  col(GroupBuy.ends_at) <= now).limit(limit)))
    for campaign_id in due_thresholds:
        if await close_threshold(session, group_buy_id=campaign_id, now=now) is not None:
            done.thresholds_closed.append(campaign_id)
    windows = list(await session.exec(
        select(GroupBuy.id).where(GroupBuy.kind == GroupBuyKind.TEAM, GroupBuy.status == GroupBuyStatus.LIVE,
                                  col(GroupBuy.ends_at) <= now).limit(limit)))
    for campaign_id in windows:
        ended = await session.execute(update(GroupBuy).where(GroupBuy.id == campaign_id, GroupBuy.status == GroupBuyStatus.LIVE)
                                      .values(status=GroupBuyStatus.ENDED, close_reason="window_over", updated_at=now))
        if ended.rowcount == 1:
            await mark_card_stale(session, group_buy_id=campaign_id)
            done.windows_ended.append(campaign_id)
    await session.commit()
    done.campaigns_finished = await finish_team_campaigns(session, now=now)
    done.healed = await _heal(session, now)
    return done


async def _heal(session: AsyncSession, now: datetime) -> int:
    """Orders still waiting in teams that succeeded (a payment recorded while the team filled, on a
    database that let both through) are confirmed."""
    stuck = list(await session.exec(
        select(Order.team_id).join(GroupBuyTeam, GroupBuyTeam.id == Order.team_id)
        .where(Order.status == OrderStatus.AWAITING_GROUP, GroupBuyTeam.status == TeamStatus.SUCCEEDED).distinct()))
    healed = 0
    for team_id in stuck:
        healed += await confirm_team_orders(session, team_id=team_id, now=now)
    await session.commit()
    return healed


async def claim_team(session: AsyncSession, *, team_id: int) -> bool:
    """Take the announcements of a closed team; True for exactly one caller. Commits."""
    claimed = await session.execute(update(GroupBuyTeam).where(GroupBuyTeam.id == team_id, col(GroupBuyTeam.announce_due))
                                    .values(announce_due=False))
    await session.commit()
    return claimed.rowcount == 1


async def claim_campaign(session: AsyncSession, *, group_buy_id: int) -> bool:
    """Take the announcements of a closed campaign (participants of a threshold, the leader's
    summary); True for exactly one caller. Commits."""
    claimed = await session.execute(update(GroupBuy).where(GroupBuy.id == group_buy_id, col(GroupBuy.announce_due))
                                    .values(announce_due=False))
    await session.commit()
    return claimed.rowcount == 1


async def announcements_due(session: AsyncSession, *, limit: int = 200) -> tuple[list[int], list[int]]:
    """Closed teams and campaigns whose announcements nobody has claimed yet (ids)."""
    teams = list(await session.exec(select(GroupBuyTeam.id).where(col(GroupBuyTeam.announce_due)).limit(limit)))
    campaigns = list(await session.exec(select(GroupBuy.id).where(col(GroupBuy.announce_due)).limit(limit)))
    return teams, campaigns


async def participants(session: AsyncSession, *, team_id: int | None = None, group_buy_id: int | None = None) -> list[Order]:
    """The orders a close settled: those still in, and those the close itself cancelled."""
    query = select(Order).where(col(Order.status).in_(SEATED) | col(Order.cancel_reason).in_(FAILED_REASONS))
    query = query.where(Order.team_id == team_id) if team_id is not None else query.where(Order.group_buy_id == group_buy_id)
    return list(await session.exec(query.order_by(Order.created_at, Order.id)))
