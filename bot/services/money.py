"""Money as integer minor units: parsing what a leader types, formatting for a reader's language."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision, list_currencies

from bot.core.numbers import ascii_digits
from bot.services.errors import DomainError

MAX_AMOUNT = 10**10  # minor units; far above any community-shop price, far below overflow
# Digits as everywhere people type numbers (bot/core/numbers.py): 0-9, full-width ones read as those.
_AMOUNT_RE = re.compile(r"^[0-9]{1,3}([ ,.'’][0-9]{3})*([.,][0-9]+)?$|^[0-9]+([.,][0-9]+)?$")
BABEL_LOCALE = {"en": "en", "zh_Hans": "zh_Hans_CN"}
_ISO_CODES = frozenset(list_currencies())
# Currency words written around an amount that are neither ISO codes nor currency signs.
_CURRENCY_WORDS = frozenset({"RMB", "元", "円", "圆", "块", "塊", "块钱", "人民币"})
_SIGN_PREFIX = re.compile(r"[A-Za-z]{0,3}")


def precision(currency: str) -> int:
    return get_currency_precision(currency)


def parse_money(raw: str, currency: str) -> int:
    """What a leader writes ("12.5", "12,50", "1,234.50", "1.234,50", "¥ 8") → minor units.

    With both "," and "." the later one is the decimal mark. A lone "." is a decimal mark; a lone
    "," is one too ("12,50"), unless exactly three digits follow it ("1,000"). Spaces and
    apostrophes group thousands. A currency sign or code may stand before or after the number.
    """
    text = ascii_digits(raw.strip().replace("\u00a0", " "))
    if re.match(r"^[^0-9]*[-\u2212]", text):
        raise DomainError("money_negative")
    digits_at = [i for i, c in enumerate(text) if "0" <= c <= "9"]
    if not digits_at:
        raise DomainError("money_format", value=raw.strip()[:32])
    start = digits_at[0] - 1 if digits_at[0] > 0 and text[digits_at[0] - 1] in ".," else digits_at[0]
    prefix, text, suffix = text[:start], text[start:digits_at[-1] + 1], text[digits_at[-1] + 1:]
    # Only a currency sign or code may stand around the number: "10O" (a letter O for a zero) or
    # "12abc" must not quietly become 10 or 12.
    if not (_is_currency_mark(prefix) and _is_currency_mark(suffix.strip().rstrip(".,"))):
        raise DomainError("money_format", value=raw.strip()[:32])
    if text[:1] in (".", ","):
        text = "0" + text
    if not _AMOUNT_RE.match(text):
        raise DomainError("money_format", value=raw.strip()[:32])
    text = re.sub(r"[ '’]", "", text)
    marks = [c for c in text if c in ".,"]
    decimal_mark = None
    if len(set(marks)) == 2:
        decimal_mark = marks[-1]
    elif len(marks) == 1 and (marks[0] == "." or len(text) - text.index(",") - 1 != 3):
        decimal_mark = marks[0]
    integer, _, fraction = text.rpartition(decimal_mark) if decimal_mark else (text, "", "")
    integer = re.sub(r"[^0-9]", "", integer).lstrip("0")
    if len(integer) > len(str(MAX_AMOUNT)):
        # Also keeps int() away from Python's limit on very long digit strings (a ValueError).
        raise DomainError("money_too_large")
    digits = precision(currency)
    if len(fraction) > digits:
        raise DomainError("money_precision", digits=digits, currency=currency)
    amount = int(integer or "0") * 10**digits + int(fraction.ljust(digits, "0") or "0")
    if amount > MAX_AMOUNT:
        raise DomainError("money_too_large")
    return amount


def _is_currency_mark(token: str) -> bool:
    """Empty, an ISO code ("cny"), a sign with up to three letters before it ("¥", "US$", "CN¥"), or 元."""
    token = token.strip()
    if not token or token.upper() in _ISO_CODES or token.upper() in _CURRENCY_WORDS:
        return True
    letters = token.rstrip("".join(c for c in token if unicodedata.category(c) == "Sc"))
    signs = token[len(letters):]
    return bool(signs) and all(unicodedata.category(c) == "Sc" for c in signs) and bool(_SIGN_PREFIX.fullmatch(letters))


def format_money(amount: int, currency: str, locale: str) -> str:
    value = Decimal(amount).scaleb(-precision(currency))
    return format_currency(value, currency, locale=BABEL_LOCALE.get(locale, "en"))
