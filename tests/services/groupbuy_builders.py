"""Builders for the group-buy service tests: campaigns made and published through the services,
members joining as the checkout's Confirm does."""

from __future__ import annotations

from datetime import datetime, timedelta

from shop_builders import LEADER, Shop, new_key
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.db import SessionFactory
from bot.services import groupbuy_join, groupbuys
from bot.services.groupbuy_join import JoinMode, JoinRef
from models import Community, GroupBuy, GroupBuyKind, PaymentMethod, Product


async def team_campaign(session: AsyncSession, shop: Shop, product: Product, *, now: datetime, price: int = 800,
                        size: int = 3, minutes: int = 60, window: timedelta = timedelta(days=2),
                        **terms: object) -> GroupBuy:
    campaign = await groupbuys.create(
        session, community_id=shop.id, actor_id=LEADER, now=now,
        terms=groupbuys.Terms(kind=GroupBuyKind.TEAM, product_id=product.id, price=price, ends_at=now + window,
                              team_size=size, team_minutes=minutes, **terms))
    return await groupbuys.publish(session, community_id=shop.id, group_buy_id=campaign.id, actor_id=LEADER, now=now)


async def threshold_campaign(session: AsyncSession, shop: Shop, product: Product, *, now: datetime, price: int = 1000,
                             min_units: int = 10, tiers: tuple[tuple[int, int], ...] = ((10, 950), (30, 880)),
                             cutoff: timedelta = timedelta(hours=5), **terms: object) -> GroupBuy:
    campaign = await groupbuys.create(
        session, community_id=shop.id, actor_id=LEADER, now=now,
        terms=groupbuys.Terms(kind=GroupBuyKind.THRESHOLD, product_id=product.id, price=price, ends_at=now + cutoff,
                              min_units=min_units, tiers=tiers, **terms))
    return await groupbuys.publish(session, community_id=shop.id, group_buy_id=campaign.id, actor_id=LEADER, now=now)


async def join(session: AsyncSession, shop: Shop, campaign: GroupBuy, *, user_id: int, now: datetime,
               mode: JoinMode | None = None, team_id: int | None = None, quantity: int = 1, key: str | None = None,
               method: PaymentMethod = PaymentMethod.PICKUP, unit_price: int | None = None,
               invited_by: int | None = None, **extra: object) -> groupbuy_join.Joined:
    if mode is None:
        mode = JoinMode.THRESHOLD if campaign.kind == GroupBuyKind.THRESHOLD else (JoinMode.TEAM if team_id else JoinMode.OPEN)
    if unit_price is None:
        tgt = await groupbuy_join.target(session, ref=JoinRef(campaign.id, mode, team_id), community_id=shop.id, now=now)
        unit_price = tgt.unit_price
    if "delivery_address" not in extra:
        extra.setdefault("pickup_point_id", shop.point_id)
    return await groupbuy_join.join(
        session, community=shop.community, ref=JoinRef(campaign.id, mode, team_id, invited_by), user_id=user_id,
        quantity=quantity, unit_price=unit_price, payment_method=method, checkout_key=key or new_key(), now=now, **extra)


async def join_in(factory: SessionFactory, shop: Shop, campaign_id: int, **kwargs: object) -> groupbuy_join.Joined:
    """`join` in a session of its own, as a concurrent Confirm is handled."""
    async with factory() as session:
        community = await session.get(Community, shop.id)
        campaign = await session.get(GroupBuy, campaign_id)
        return await join(session, Shop(community, shop.point_id), campaign, **kwargs)
