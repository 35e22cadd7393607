"""What a member sees when the product sells out under their checkout (someone took the last units
a moment before, or the link led to a sold-out product): the reason, then the way on instead of
a dead end. The other products still on sale in that community, each with the same Buy button as
its card; a pointer to /groupbuy when group-buys are open there; and the member's own orders.

A group-buy for the sold-out product itself is no way on: its seats draw on the same stock.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import translate
from bot.services import groupbuy_board, orders, products
from bot.services.errors import DomainError
from bot.views.keyboards import BuyProduct, MemberOrderAction, MemberOrders
from models import Community
from models.shop import Product

OTHERS_SHOWN = 5


async def way_on(session: AsyncSession, *, community: Community, product: Product, reason: str, locale: str,
                 now: datetime) -> tuple[str, InlineKeyboardMarkup]:
    others = await products.on_sale(session, community_id=community.id, besides=product.id, limit=OTHERS_SHOWN)
    group_buys = [item for item in await groupbuy_board.open_listing(session, community_id=community.id, now=now)
                  if _sellable(item.product)]
    blocks = [reason]
    if others:
        blocks.append(translate("Still on sale in {community}:", locale, community=escape(community.title)))
    if group_buys:
        blocks.append(translate("Group-buys are open there too: send /groupbuy to see them.", locale))
    rows = [[InlineKeyboardButton(text=f"🛒 #{p.number} · {p.title}", callback_data=BuyProduct(product_id=p.id).pack())]
            for p in others]
    rows.append([InlineKeyboardButton(text=translate("🧾 My orders", locale),
                                      callback_data=MemberOrders(action=MemberOrderAction.PAGE).pack())])
    return "\n\n".join(blocks), InlineKeyboardMarkup(inline_keyboard=rows)


def _sellable(product: Product) -> bool:
    try:
        orders.check_sellable(product, 1)
    except DomainError:
        return False
    return True
