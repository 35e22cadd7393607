"""A product's card in the group: the text (or photo caption) and its Buy and Share buttons.

Cards are read by the whole group, so they speak the community's language, not the reader's.
Everything the leader typed is escaped. The card fits Telegram's limits (a caption 1,024
characters, a text 4,096): a description too long for the rest is cut, never the price or stock.
"""

from __future__ import annotations

import json
import re
from html import escape, unescape
from urllib.parse import quote

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.core.i18n import translate
from bot.services.money import format_money
from bot.views import deeplinks
from bot.views.keyboards import BuyProduct
from models import Community
from models.shop import Product, ProductStatus

CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096
_TAG = re.compile(r"<[^>]+>")


def visible_length(html_text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units of the text the reader sees)."""
    return len(unescape(_TAG.sub("", html_text)).encode("utf-16-le")) // 2


def buyable(product: Product) -> bool:
    return product.status == ProductStatus.ACTIVE and (product.stock is None or product.stock > 0)


def card_text(product: Product, community: Community, locale: str, *, with_photo: bool) -> str:
    """The card's text in `locale`; within the caption limit when it goes under a photo."""
    limit = CAPTION_LIMIT if with_photo else TEXT_LIMIT
    text = _compose(product, community, locale, product.description)
    overflow = visible_length(text) - limit
    if overflow > 0:
        # Only the description is cut; one character more than the overflow makes room for "…".
        keep = max(0, len(product.description) - overflow - 1)
        text = _compose(product, community, locale, product.description[:keep].rstrip() + "…")
    return text


def _compose(product: Product, community: Community, locale: str, description: str) -> str:
    lines = [f"<b>#{product.number} · {escape(product.title)}</b>"]
    if description:
        lines.append(escape(description))
    lines.append("")
    price = format_money(product.price, community.currency, locale)
    lines.append(translate("Price: {price}", locale, price=f"<b>{price}</b>"))
    if product.status == ProductStatus.ARCHIVED:
        lines.append(translate("🚫 No longer sold.", locale))
        return "\n".join(lines)
    if product.stock is None:
        lines.append(translate("In stock: unlimited", locale))
    elif product.stock > 0:
        lines.append(translate("Left: {count}", locale, count=product.stock))
    else:
        lines.append("<b>" + translate("❌ SOLD OUT", locale) + "</b>")
    if product.per_member_limit is not None:
        lines.append(translate("Limit: {count} per member", locale, count=product.per_member_limit))
    if product.status == ProductStatus.PAUSED:
        lines.append(translate("⏸ Paused: not on sale right now.", locale))
    elif buyable(product):
        lines.append(translate("To order, press Buy or send /buy {number}; for several, add the quantity: /buy {number} 2.",
                               locale, number=product.number))
    return "\n".join(lines)


def share_url(product: Product, bot_username: str) -> str:
    """Telegram's share dialog with a deep link that opens this product's checkout in private."""
    link = deeplinks.build(bot_username, "buy", product.id)
    return f"https://t.me/share/url?url={quote(link, safe='')}&text={quote(product.title, safe='')}"


def card_markup(product: Product, locale: str, bot_username: str) -> InlineKeyboardMarkup | None:
    """Buy and Share while it can be bought; nothing while sold out, paused or archived: a shared
    link would only lead to "sold out". The card is redrawn when it sells again."""
    if not buyable(product):
        return None
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text=translate("🛒 Buy", locale), callback_data=BuyProduct(product_id=product.id).pack()),
        InlineKeyboardButton(text=translate("↗️ Share", locale), url=share_url(product, bot_username)),
    ]])


def render_card(product: Product, community: Community, locale: str, bot_username: str, *,
                with_photo: bool | None = None) -> tuple[str, InlineKeyboardMarkup | None, bool]:
    """(text, keyboard, with_photo). A card already in the group keeps its kind: pass
    `with_photo` to render for it rather than for the product's current photo."""
    photo = bool(product.photo_file_id) if with_photo is None else with_photo
    return card_text(product, community, locale, with_photo=photo), card_markup(product, locale, bot_username), photo


def fingerprint(text: str, markup: InlineKeyboardMarkup | None) -> str:
    """What a card shows, as one string: equal fingerprints mean an edit would change nothing."""
    keyboard = markup.model_dump(mode="json", exclude_none=True) if markup is not None else None
    return json.dumps([text, keyboard], ensure_ascii=False, sort_keys=True)
