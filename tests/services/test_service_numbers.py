"""One rule for the numbers people type (bot/core/numbers.py), in every parser that reads one:
digits are 0-9, full-width ０-９ (a CJK keyboard's) read as those, and anything else Unicode calls
a digit ("①", "²", "٣") is refused with the parser's own "not a number" reason, never a crash."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.core.numbers import whole_number
from bot.services import coupons, groupbuys, orders, products, shop_settings
from bot.services.errors import DomainError
from bot.services.money import parse_money

ODD_DIGITS = ["①", "²", "٣", "১", "𝟑", "1²", "³3"]


def test_whole_number_takes_ascii_and_full_width_digits_only():
    assert [whole_number(t) for t in ("0", "007", "42", "４２", "4２")] == [0, 7, 42, 42, 42]
    assert [whole_number(t) for t in [*ODD_DIGITS, "", " 1", "1 ", "-1", "+1", "1.0", "1_000"]] == [None] * 14
    assert whole_number("9" * 5000) == 10**30  # long, but still only "too large" to every range check


@pytest.mark.parametrize("raw", ODD_DIGITS)
def test_every_parser_refuses_other_digits_with_its_own_reason(raw):
    cases = [
        (lambda: orders.parse_quantity(raw), "quantity_format"),
        (lambda: products.parse_count(raw, maximum=10, code="product_stock"), "product_stock_format"),
        (lambda: products.parse_stock(raw), "product_stock_format"),
        (lambda: products.parse_limit(raw), "product_limit_format"),
        (lambda: groupbuys.parse_count(raw, minimum=0, maximum=20), "count_format"),
        (lambda: groupbuys.parse_duration(raw), "duration_format"),
        (lambda: groupbuys.parse_duration(raw + "h"), "duration_format"),
        (lambda: groupbuys.parse_tier(raw + " 9.50"), "tier_format"),
        (lambda: coupons.parse_percent(raw), "coupon_percent_range"),
        (lambda: coupons.parse_expiry(raw, tz="UTC", now=datetime(2025, 3, 1, tzinfo=timezone.utc)),
         "coupon_expiry_format"),
        (lambda: shop_settings.parse_option_number("unpaid_minutes", raw), "shop_setting_number"),
        (lambda: parse_money(raw, "USD"), "money_format"),
    ]
    for parse, code in cases:
        with pytest.raises(DomainError) as refused:
            parse()
        assert refused.value.code == code, (raw, code)


def test_full_width_digits_read_as_their_ascii_twins():
    assert orders.parse_quantity("３") == 3
    assert products.parse_stock("１２") == 12 and products.parse_stock("０") == 0 and products.parse_limit("０") is None
    assert groupbuys.parse_count("５", minimum=0, maximum=20) == 5
    assert groupbuys.parse_duration("２４") == 1440 and groupbuys.parse_duration("１d ２h") == 1560
    assert groupbuys.parse_tier("１０ ９.５０") == (10, "9.50")
    assert coupons.parse_percent("１５％") == 15
    assert parse_money("１２.５", "USD") == 1250


async def test_a_member_named_by_an_odd_or_huge_number_is_nobody(session, add_community):
    community = await add_community()
    for raw in ("①", "-²", "99999999999999999999999", "-" + "9" * 40):
        with pytest.raises(DomainError) as refused:
            await coupons.resolve_owner(session, community_id=community.id, raw=raw)
        assert refused.value.code == "coupon_owner_unknown"
