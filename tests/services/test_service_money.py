"""bot.services.money: what leaders type becomes exact integer minor units; amounts read naturally."""

from __future__ import annotations

import pytest

from bot.services.errors import DomainError
from bot.services.money import MAX_AMOUNT, format_money, parse_money, precision


@pytest.mark.parametrize("raw, currency, expected", [
    ("12.5", "USD", 1250),
    ("12,50", "USD", 1250),
    ("12,5", "EUR", 1250),
    ("1,234.50", "USD", 123450),
    ("1.234,50", "EUR", 123450),
    ("1 234,50", "EUR", 123450),
    ("1\u00a0234,50", "EUR", 123450),
    ("1'234.50", "CHF", 123450),
    ("1,000", "USD", 100000),  # three digits after a lone comma: thousands
    ("1,000,000", "CNY", 100000000),
    ("1.000.000", "EUR", 100000000),
    (".5", "USD", 50),
    ("0", "USD", 0),
    ("  7  ", "USD", 700),
    ("¥ 8", "JPY", 8),
    ("¥8", "CNY", 800),
    ("8元", "CNY", 800),
    ("8 CNY", "CNY", 800),
    ("cny 8.80", "CNY", 880),
    ("$12.99", "USD", 1299),
    ("US$ 12.99", "USD", 1299),
    ("12,50 €", "EUR", 1250),
    ("HK$10", "HKD", 1000),
    ("1,000", "JPY", 1000),
    ("1500", "JPY", 1500),
    ("12.", "USD", 1200),
    ("５", "USD", 500),  # full-width digits from a CJK keyboard
])
def test_parse_money_accepts_what_people_type(raw, currency, expected):
    assert parse_money(raw, currency) == expected


@pytest.mark.parametrize("raw, currency, code", [
    ("8.5", "JPY", "money_precision"),  # yen have no minor unit
    ("12.345", "USD", "money_precision"),
    ("1,2345", "USD", "money_precision"),
    ("-5", "USD", "money_negative"),
    ("−5", "USD", "money_negative"),  # U+2212, the typographic minus
    ("$-5", "USD", "money_negative"),
    ("abc", "USD", "money_format"),
    ("", "USD", "money_format"),
    ("   ", "USD", "money_format"),
    ("¥", "CNY", "money_format"),
    ("12.5.3", "USD", "money_format"),
    ("1e5", "USD", "money_format"),
    ("12 50", "USD", "money_format"),
    ("10O", "USD", "money_format"),  # a letter O typed for a zero is not silently dropped
    ("12abc", "USD", "money_format"),
    ("1,23,456", "INR", "money_format"),
    ("NaN", "USD", "money_format"),
    ("100000000.01", "USD", "money_too_large"),
    ("9" * 30, "USD", "money_too_large"),
    ("9" * 5000, "USD", "money_too_large"),  # past Python's int-from-str digit limit: still a clean refusal
])
def test_parse_money_refuses_with_a_reason(raw, currency, code):
    with pytest.raises(DomainError) as exc:
        parse_money(raw, currency)
    assert exc.value.code == code


def test_refusal_params_fill_the_message():
    with pytest.raises(DomainError) as exc:
        parse_money("8.5", "JPY")
    assert exc.value.params == {"digits": 0, "currency": "JPY"}
    with pytest.raises(DomainError) as exc:
        parse_money("x" * 100, "USD")
    assert exc.value.params == {"value": "x" * 32}  # echoed back, but short


def test_largest_amount_is_accepted():
    assert parse_money("100000000", "USD") == MAX_AMOUNT
    assert parse_money("10000000000", "JPY") == MAX_AMOUNT


@pytest.mark.parametrize("amount, currency, locale, expected", [
    (1250, "USD", "en", "$12.50"),
    (5, "USD", "en", "$0.05"),
    (800, "JPY", "en", "¥800"),
    (123450, "EUR", "en", "€1,234.50"),
    (123450, "CNY", "zh_Hans", "¥1,234.50"),
    (123450, "CNY", "en", "CN¥1,234.50"),
    (1250, "USD", "fr", "$12.50"),  # a language we do not ship falls back to English
])
def test_format_money(amount, currency, locale, expected):
    assert format_money(amount, currency, locale) == expected


@pytest.mark.parametrize("currency, raw", [("USD", "1234.56"), ("JPY", "98765"), ("CNY", "0.01"), ("BHD", "1.005")])
def test_parse_then_format_round_trips(currency, raw):
    amount = parse_money(raw, currency)
    assert parse_money(format_money(amount, currency, "en"), currency) == amount
    assert precision("BHD") == 3
