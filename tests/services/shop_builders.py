"""Builders for the shop service tests: a community set up as a shop, members, products, orders.

Everything is made through the real services, so the rows look exactly like production's.
Concurrent actors get their own session (`factory()`), as two updates handled at once do.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.db import SessionFactory
from bot.services import communities, orders, products, settings
from bot.services.products import ProductDraft
from bot.services.shop_settings import ShopSettings
from bot.services.users import Profile, upsert_user
from models import Community, Order, PaymentMethod, Product, User

LEADER = 1
ALL_RIGHTS = {"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True, "can_manage_chat": True}
_keys = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Shop:
    community: Community
    point_id: int

    @property
    def id(self) -> int:
        return self.community.id


async def make_user(session: AsyncSession, uid: int, *, now: datetime) -> User:
    user = await upsert_user(session, Profile(id=uid, first_name=f"User{uid}"), now=now)
    await session.commit()
    return user


async def make_users(session: AsyncSession, uids, *, now: datetime) -> None:
    for uid in uids:
        await upsert_user(session, Profile(id=uid, first_name=f"User{uid}"), now=now)
    await session.commit()


async def make_shop(session: AsyncSession, *, now: datetime, chat_id: int = -100, currency: str = "USD",
                    **options: object) -> Shop:
    """A community the bot administers, with `options` as its shop settings and one pickup point."""
    await make_user(session, LEADER, now=now)
    result = await communities.on_bot_status(
        session, chat_id=chat_id, title=f"Shop {chat_id}", status="administrator", rights=ALL_RIGHTS,
        default_locale="en", default_timezone="UTC", now=now,
    )
    community = result.community
    community.currency = currency
    community.settings = {**community.settings, "shop": ShopSettings(**options).model_dump()}
    await session.commit()
    point = await settings.add_pickup_point(session, community_id=community.id, actor_id=LEADER,
                                           raw_name="Main gate", now=now)
    return Shop(community, point.id)


async def make_product(session: AsyncSession, shop: Shop, *, now: datetime, price: int = 1000, stock: int | None = None,
                       limit: int | None = None, title: str = "Apples") -> Product:
    return await products.create(
        session, community=shop.community, actor_id=LEADER, now=now,
        draft=ProductDraft(title=title, description="", price=price, stock=stock, per_member_limit=limit),
    )


def new_key() -> str:
    return f"k{next(_keys)}"


async def buy(session: AsyncSession, shop: Shop, *, user_id: int, product: Product, now: datetime, quantity: int = 1,
              key: str | None = None, method: PaymentMethod = PaymentMethod.PICKUP, unit_price: int | None = None,
              **extra: object) -> orders.Placed:
    """Confirm at the summary step: the price the member saw, the shop's pickup point by default."""
    if "delivery_address" not in extra:
        extra.setdefault("pickup_point_id", shop.point_id)
    return await orders.place(
        session, community=shop.community, user_id=user_id, product_id=product.id, quantity=quantity,
        unit_price=product.price if unit_price is None else unit_price, payment_method=method,
        checkout_key=key or new_key(), now=now, **extra,
    )


async def buy_in(factory: SessionFactory, shop: Shop, **kwargs: object) -> orders.Placed:
    """`buy` in a session of its own, loading the community itself as a handler would."""
    async with factory() as session:
        community = await session.get(Community, shop.id)
        return await buy(session, Shop(community, shop.point_id), **kwargs)


async def product_row(factory: SessionFactory, product_id: int) -> Product:
    async with factory() as session:
        return await session.get(Product, product_id)


async def order_rows(factory: SessionFactory, **where: object) -> list[Order]:
    async with factory() as session:
        query = select(Order).order_by(Order.id)
        for key, value in where.items():
            query = query.where(getattr(Order, key) == value)
        return list(await session.exec(query))
