"""What a member sees when the product sells out under their checkout (someone took the last units
a moment before, or the link led to a sold-out product): the reason, then the way on instead of
a dead end. The other products still on sale in that community, each with the same Buy button as
its card; a pointer to /groupbuy when group-buys are open there; and the member's own orders.

A group-buy for the sold-out product itself is no way on: its seats draw on the same stock.
"""

from __future__ import annotations

import time
from datetime import datetime
from html import escape
from weakref import WeakKeyDictionary

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import translate
from bot.services import groupbuys, orders, products
from bot.services.errors import DomainError
from bot.views.keyboards import BuyProduct, MemberOrderAction, MemberOrders
from models import Community
from models.shop import Product

OTHERS_SHOWN = 5


async def way_on(session: AsyncSession, *, community: Community, product: Product, reason: str, locale: str,
                 now: datetime) -> tuple[str, InlineKeyboardMarkup]:
    others, group_buys_open = await _alternatives(session, community.id, product.id, now)
    blocks = [reason]
    if others:
        blocks.append(translate("Still on sale in {community}:", locale, community=escape(community.title)))
    if group_buys_open:
        blocks.append(translate("Group-buys are open there too: send /groupbuy to see them.", locale))
    rows = [[InlineKeyboardButton(text=f"🛒 #{number} · {title}", callback_data=BuyProduct(product_id=product_id).pack())]
            for product_id, number, title in others]
    rows.append([InlineKeyboardButton(text=translate("🧾 My orders", locale),
                                      callback_data=MemberOrders(action=MemberOrderAction.PAGE).pack())])
    return "\n\n".join(blocks), InlineKeyboardMarkup(inline_keyboard=rows)


# A product sells out in a rush: the hundred members who lost the race are all shown the same
# alternatives within a second or two, and looking them up was a third of what refusing each cost
# (bench/orders_race.py --e2e). What they lead to is checked again when pressed.
ALTERNATIVES_SECONDS = 5.0
_ALTERNATIVES_KEPT = 1_000
# Per database (an App's engine): ids mean nothing across databases, as in tests.
_alternatives_seen: WeakKeyDictionary[object, dict[tuple[int, int], tuple[float, list[tuple[int, int, str]], bool]]] = \
    WeakKeyDictionary()


async def _alternatives(session: AsyncSession, community_id: int, product_id: int,
                        now: datetime) -> tuple[list[tuple[int, int, str]], bool]:
    """The other products on sale (id, number, title) and whether a sellable group-buy is open."""
    key, moment = (community_id, product_id), time.monotonic()
    kept = _alternatives_seen.setdefault(session.bind, {})
    seen = kept.get(key)
    if seen is not None and seen[0] > moment:
        return seen[1], seen[2]
    others = [(p.id, p.number, p.title)
              for p in await products.on_sale(session, community_id=community_id, besides=product_id, limit=OTHERS_SHOWN)]
    # Only whether any is open: /groupbuy lists them with their teams.
    group_buys_open = any(_sellable(p) for _, p in await groupbuys.open_in(session, community_id=community_id, now=now))
    if len(kept) >= _ALTERNATIVES_KEPT:
        kept.clear()
    kept[key] = (moment + ALTERNATIVES_SECONDS, others, group_buys_open)
    return others, group_buys_open


def _sellable(product: Product) -> bool:
    try:
        orders.check_sellable(product, 1)
    except DomainError:
        return False
    return True
