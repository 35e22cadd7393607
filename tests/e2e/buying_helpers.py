"""Builders and readers shared by the buying and payment end-to-end tests.

Products, pickup points, coupons and shop options are created through the real services (the
leader's screens are tested elsewhere), so each test starts at the member's first step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html import unescape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from e2e_harness import BOT_USERNAME, E2E, Group, en
from sqlmodel import select

from bot.sandbox import SimMessage, SimUser
from bot.services import coupons, products
from bot.services import settings as community_settings
from bot.services.coupons import CouponSpec
from bot.services.products import ProductDraft
from bot.services.shop_settings import update_shop_settings
from bot.views.keyboards import BuyProduct
from models import Community
from models.shop import Coupon, CouponKind, CouponRedemption, Order, Product

_TAG = re.compile(r"<[^>]+>")


def plain(html_text: str) -> str:
    """What a reader sees of an HTML message (the emulator's `visible`)."""
    return unescape(_TAG.sub("", html_text))


def see(msgid: str, **kwargs: object) -> str:
    """An English message as the member sees it."""
    return plain(en(msgid, **kwargs))


def now() -> datetime:
    return datetime.now(timezone.utc)


def buy_link(product_id: int, quantity: int | None = None) -> str:
    payload = f"buy-{product_id}" + (f"-{quantity}" if quantity else "")
    return f"https://t.me/{BOT_USERNAME}?start={payload}"


@dataclass
class Shop:
    group: Group
    community_id: int
    product: Product
    pickup_ids: list[int]


async def open_shop(e2e: E2E, group: Group, *, title: str = "Apples", price: int = 500, stock: int | None = 10,
                    limit: int | None = None, pickups: tuple[str, ...] = ("North Gate",), **shop_options) -> Shop:
    """A product (#1 unless the community has some) with pickup points and shop options."""
    async with e2e.db() as s:
        community = await s.get(Community, group.community_id)
        ids = []
        for name in pickups:
            point = await community_settings.add_pickup_point(s, community_id=community.id, actor_id=group.leader.id,
                                                              raw_name=name, now=now())
            ids.append(point.id)
        if shop_options:
            await update_shop_settings(s, community=community, actor_id=group.leader.id, now=now(), **shop_options)
        product = await add_product(s, community, group.leader.id, title=title, price=price, stock=stock, limit=limit)
    return Shop(group, group.community_id, product, ids)


async def add_product(s, community: Community, leader_id: int, *, title: str, price: int, stock: int | None,
                      limit: int | None = None, description: str = "") -> Product:
    return await products.create(s, community=community, actor_id=leader_id, now=now(),
                                 draft=ProductDraft(title=title, description=description, price=price, stock=stock,
                                                    per_member_limit=limit))


async def issue_coupon(e2e: E2E, community_id: int, code: str, **spec) -> Coupon:
    spec.setdefault("kind", CouponKind.FIXED)
    spec.setdefault("value", 100)
    async with e2e.db() as s:
        return await coupons.issue(s, community_id=community_id, spec=CouponSpec(code=code, **spec), actor_id=None, now=now())


async def post_card(e2e: E2E, group: Group, product: Product, label: str = "🛒 Buy") -> SimMessage:
    """A product card with its Buy button in the group (the card poster is another feature)."""
    markup = InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text=label, callback_data=BuyProduct(product_id=product.id).pack())]])
    await e2e.app.bot.send_message(group.chat.id, f"#{product.number} · {product.title}", reply_markup=markup, parse_mode=None)
    await e2e.settle()
    return e2e.last_msg(group.chat)


async def start_bot(e2e: E2E, user: SimUser) -> None:
    """The member presses Start in the private chat (so the bot may write to them)."""
    await e2e.say(user, "/start")


async def orders_of(e2e: E2E, user: SimUser | None = None) -> list[Order]:
    async with e2e.db() as s:
        query = select(Order).order_by(Order.id)
        if user is not None:
            query = query.where(Order.user_id == user.id)
        return list(await s.exec(query))


async def product_row(e2e: E2E, product_id: int) -> Product:
    async with e2e.db() as s:
        return await s.get(Product, product_id)


async def coupon_row(e2e: E2E, coupon_id: int) -> Coupon:
    async with e2e.db() as s:
        return await s.get(Coupon, coupon_id)


async def redemptions(e2e: E2E) -> list[CouponRedemption]:
    async with e2e.db() as s:
        return list(await s.exec(select(CouponRedemption)))


async def age_order(e2e: E2E, order_id: int, hours: float) -> None:
    """Pretend the order was placed `hours` ago (the member cancel window is in hours)."""
    async with e2e.db() as s:
        order = await s.get(Order, order_id)
        order.created_at = order.created_at - timedelta(hours=hours)
        await s.commit()


def url_buttons(message: SimMessage) -> list[str]:
    return [b["url"] for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row if "url" in b]


async def checkout_to_summary(e2e: E2E, user: SimUser, product: Product, *, qty: str = "1", pickup: str = "📍 North Gate",
                              coupon: str | None = None, method: str | None = None) -> None:
    """Walk a member who started the bot from the deep link to the summary."""
    await e2e.say(user, f"/start buy-{product.id}")
    await e2e.press(user, qty)
    await e2e.press(user, pickup)
    if coupon is None:
        await e2e.press(user, en("Continue without a coupon"))
    else:
        await e2e.say(user, coupon)
    if method is not None:
        await e2e.press(user, method)
    assert e2e.last(user).startswith(see("<b>Your order</b>")), e2e.last(user)
