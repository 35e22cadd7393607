"""The product card as the group sees it: escaped text, price in the community's currency and
language, stock, the buttons for each state, Telegram's length limits, and the fingerprint that
keeps the card updater from sending edits that change nothing."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from bot.core.i18n import translate
from bot.sandbox.formatting import parse_text
from bot.views.cards import CAPTION_LIMIT, fingerprint, render_card, visible_length
from bot.views.keyboards import BuyProduct
from models import Community
from models.shop import Product, ProductStatus

BOT = "shop_bot"


def community(**kw) -> Community:
    return Community(**({"id": 3, "chat_id": -100123, "title": "Green Valley", "currency": "CNY",
                         "default_locale": "en", "timezone": "Asia/Shanghai"} | kw))


def product(**kw) -> Product:
    return Product(**({"id": 41, "community_id": 3, "number": 7, "title": "Fresh <b>eggs</b> & milk",
                       "description": "Farm <i>fresh</i> & cold", "price": 1250, "stock": 12, "sold": 0,
                       "per_member_limit": None, "photo_file_id": None, "status": ProductStatus.ACTIVE} | kw))


def shown(html: str) -> str:
    """What a reader sees: the emulator's own HTML parser, which refuses what Telegram refuses."""
    return parse_text(html, "HTML").text


def labels(markup) -> list[list[str]]:
    return [[b.text for b in row] for row in markup.inline_keyboard] if markup else []


def test_card_escapes_the_leaders_text_and_shows_price_stock_and_how_to_buy() -> None:
    text, markup, with_photo = render_card(product(), community(), "en", BOT)
    assert with_photo is False
    assert "&lt;b&gt;eggs&lt;/b&gt; &amp; milk" in text and "<i>" not in text
    en = lambda msgid, **kw: translate(msgid, "en", **kw)  # noqa: E731
    assert shown(text).splitlines() == [
        "#7 · Fresh <b>eggs</b> & milk",
        "Farm <i>fresh</i> & cold",
        "",
        en("Price: {price}", price="CN¥12.50"),
        en("Left: {count}", count=12),
        en("To order, press Buy or send /buy {number}; for several, add the quantity: /buy {number} 2.", number=7),
    ]
    assert labels(markup) == [[en("🛒 Buy"), en("↗️ Share")]]
    buy, share = markup.inline_keyboard[0]
    assert BuyProduct.unpack(buy.callback_data) == BuyProduct(product_id=41)
    parts = urlsplit(share.url)
    assert (parts.netloc, parts.path) == ("t.me", "/share/url")
    query = parse_qs(parts.query)
    assert query == {"url": [f"https://t.me/{BOT}?start=buy-41"], "text": ["Fresh <b>eggs</b> & milk"]}


def test_card_in_chinese_with_limit_and_unlimited_stock() -> None:
    zh = lambda msgid, **kw: translate(msgid, "zh_Hans", **kw)  # noqa: E731
    text, markup, _ = render_card(product(stock=None, per_member_limit=2, description=""), community(default_locale="zh_Hans"),
                                  "zh_Hans", BOT)
    lines = shown(text).splitlines()
    assert lines[2] == zh("Price: {price}", price="¥12.50")
    assert lines[3:5] == [zh("In stock: unlimited"), zh("Limit: {count} per member", count=2)]
    assert labels(markup) == [[zh("🛒 Buy"), zh("↗️ Share")]]


@pytest.mark.parametrize("changes, state_line", [
    ({"stock": 0}, "❌ SOLD OUT"),
    ({"status": ProductStatus.PAUSED}, "⏸ Paused: not on sale right now."),
])
def test_sold_out_and_paused_cards_have_no_buttons(changes, state_line) -> None:
    # Neither Buy nor Share: a shared link would only lead to "sold out".
    text, markup, _ = render_card(product(**changes), community(), "en", BOT)
    assert translate(state_line, "en") in shown(text).splitlines()
    assert "/buy" not in shown(text)
    assert markup is None


def test_archived_card_has_no_buttons_and_says_so() -> None:
    text, markup, _ = render_card(product(status=ProductStatus.ARCHIVED), community(), "en", BOT)
    assert shown(text).splitlines()[-1] == translate("🚫 No longer sold.", "en")
    assert markup is None


def test_photo_card_fits_a_caption_by_cutting_only_the_description() -> None:
    long = "🍓" * 700  # two UTF-16 units each: 1,400 as Telegram counts
    text, _, with_photo = render_card(product(photo_file_id="AgAC-photo", description=long), community(), "en", BOT)
    assert with_photo is True
    assert visible_length(text) <= CAPTION_LIMIT
    lines = shown(text).splitlines()
    assert lines[1].endswith("…") and lines[1].startswith("🍓🍓")
    assert lines[3] == translate("Price: {price}", "en", price="CN¥12.50")
    # The same product as a text card has room for all of it.
    text, _, with_photo = render_card(product(photo_file_id="AgAC-photo", description=long), community(), "en", BOT,
                                      with_photo=False)
    assert with_photo is False and long in text


def test_fingerprint_changes_with_text_or_buttons_only() -> None:
    base = render_card(product(), community(), "en", BOT)
    same = render_card(product(sold=5), community(), "en", BOT)  # sold is not on the card
    fewer = render_card(product(stock=11), community(), "en", BOT)
    sold_out = render_card(product(stock=0), community(), "en", BOT)
    assert fingerprint(*base[:2]) == fingerprint(*same[:2])
    assert fingerprint(*base[:2]) != fingerprint(*fewer[:2]) != fingerprint(*sold_out[:2])
    assert fingerprint("x", None) != fingerprint("x", base[1])
