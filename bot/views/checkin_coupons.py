"""What a points coupon takes off, in the reader's language: shared by milestone grants, the
rewards catalogue and redeemed coupons. The wording is the one /coupons uses."""

from __future__ import annotations

from datetime import datetime

from bot.core.i18n import translate
from bot.core.localtime import local_time
from bot.services.checkin_settings import CouponTerms
from bot.services.money import format_money
from models import CouponKind


def value_text(kind: str, value: int, cap: int | None, currency: str, locale: str) -> str:
    if kind == CouponKind.FIXED:
        return translate("{amount} off", locale, amount=format_money(value, currency, locale))
    if cap is not None:
        return translate("{percent}% off, up to {cap}", locale, percent=value, cap=format_money(cap, currency, locale))
    return translate("{percent}% off", locale, percent=value)


def min_spend_text(min_spend: int, currency: str, locale: str) -> str:
    if not min_spend:
        return translate("no minimum spend", locale)
    return translate("minimum spend {amount}", locale, amount=format_money(min_spend, currency, locale))


def validity_text(valid_days: int | None, locale: str) -> str:
    if valid_days is None:
        return translate("no expiry", locale)
    return translate("valid for {days} day(s)", locale, days=valid_days)


def expiry_text(expires_at: datetime | None, timezone: str, locale: str) -> str:
    if expires_at is None:
        return translate("no expiry", locale)
    return translate("until {when}", locale, when=local_time(expires_at, timezone))


def coupon_terms(terms: CouponTerms, currency: str, locale: str) -> str:
    """"¥5.00 off, minimum spend ¥20.00" (how long it is valid is said where it is known)."""
    return ", ".join([value_text(terms.kind, terms.value, terms.cap, currency, locale),
                      min_spend_text(terms.min_spend, currency, locale)])
