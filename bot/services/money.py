"""Money as integer minor units: parsing what a leader types, formatting for a reader's language."""

from __future__ import annotations

import re
from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision

from bot.services.errors import DomainError

MAX_AMOUNT = 10**10  # minor units; far above any community-shop price, far below overflow
_AMOUNT_RE = re.compile(r"^\d{1,3}([ ,.'’]\d{3})*([.,]\d+)?$|^\d+([.,]\d+)?$")
BABEL_LOCALE = {"en": "en", "zh_Hans": "zh_Hans_CN"}


def precision(currency: str) -> int:
    return get_currency_precision(currency)


def parse_money(raw: str, currency: str) -> int:
    """What a leader writes ("12.5", "12,50", "1,234.50", "1.234,50", "¥ 8") → minor units.

    With both "," and "." the later one is the decimal mark. A lone "." is a decimal mark; a lone
    "," is one too ("12,50"), unless exactly three digits follow it ("1,000"). Spaces and
    apostrophes group thousands.
    """
    text = raw.strip().replace("\u00a0", " ")
    text = re.sub(r"^[^\d\-.,]+|[^\d]+$", "", text).strip()  # currency signs and codes around it
    if text[:1] in (".", ","):
        text = "0" + text
    if text.startswith("-"):
        raise DomainError("money_negative")
    if not text or not _AMOUNT_RE.match(text):
        raise DomainError("money_format", value=raw.strip()[:32])
    text = re.sub(r"[ '’]", "", text)
    marks = [c for c in text if c in ".,"]
    decimal_mark = None
    if len(set(marks)) == 2:
        decimal_mark = marks[-1]
    elif len(marks) == 1 and (marks[0] == "." or len(text) - text.index(",") - 1 != 3):
        decimal_mark = marks[0]
    integer, _, fraction = text.rpartition(decimal_mark) if decimal_mark else (text, "", "")
    integer = re.sub(r"\D", "", integer)
    digits = precision(currency)
    if len(fraction) > digits:
        raise DomainError("money_precision", digits=digits, currency=currency)
    amount = int(integer or "0") * 10**digits + int(fraction.ljust(digits, "0") or "0")
    if amount > MAX_AMOUNT:
        raise DomainError("money_too_large")
    return amount


def format_money(amount: int, currency: str, locale: str) -> str:
    value = Decimal(amount).scaleb(-precision(currency))
    return format_currency(value, currency, locale=BABEL_LOCALE.get(locale, "en"))
