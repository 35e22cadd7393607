"""The coupon-terms steps the leader's forms share: kind → value → cap (percent only) → minimum
spend → valid days, and the terms' line in a preview.

The check-in reward form asks them after its title and cost, an invite level's coupon form on their
own, the hand-made coupon form (coupons.py) its amounts. Each form names its steps after the
fields (`RewardForm.value`, `InviteCouponForm.value`), so these pieces go by the step's name, and
make their buttons through the form's own callback data (the `ops` enum: FIXED, PERCENT, SKIP).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Protocol

from aiogram.fsm.state import State
from aiogram.types import InlineKeyboardButton
from aiogram.utils.i18n import gettext as _

from bot.core.numbers import whole_number
from bot.services import coupons
from bot.services.checkin_settings import CouponTerms
from bot.services.errors import DomainError
from bot.services.money import parse_money
from handlers.admin.form_nav import step_name
from handlers.member.coupons import min_spend_text, value_text
from models import CouponKind

VALID_DAYS_MAX = 3650
AMOUNT_STEPS = ("value", "cap", "min_spend")
# What Skip answers at a step that has it.
SKIPS = {"cap": {"cap": None}, "min_spend": {"min_spend": 0}, "valid_days": {"valid_days": None}}

Rows = list[list[InlineKeyboardButton]]
StepButton = Callable[[str, StrEnum], InlineKeyboardButton]  # a button for the step asked: (text, op)


class TermsOps(Protocol):
    FIXED: StrEnum
    PERCENT: StrEnum
    SKIP: StrEnum


class Terms(Protocol):
    kind: CouponKind
    value: int
    cap: int | None
    min_spend: int
    valid_days: int | None


def terms_text(terms: Terms, currency: str) -> str:
    """A coupon's terms in one line: what it takes off, the minimum spend, how long it is valid."""
    valid = (_("valid {days} days").format(days=terms.valid_days) if terms.valid_days is not None
             else _("never expires"))
    takes_off = value_text(terms.kind, terms.value, terms.cap, currency)
    return " · ".join([takes_off, min_spend_text(terms.min_spend, currency), valid])


def coupon_line(terms: Terms, currency: str) -> str:
    return _("Coupon: {terms}").format(terms=terms_text(terms, currency))


def terms_of(data: dict) -> CouponTerms:
    """The terms a form's data holds once its terms steps are answered."""
    return CouponTerms(kind=CouponKind(data["kind"]), value=data["value"], cap=data.get("cap"),
                       min_spend=data.get("min_spend", 0), valid_days=data.get("valid_days"))


def form_steps(steps: Iterable[State], data: dict) -> list[str]:
    """The form's steps for these terms: a cap only makes sense for a percentage."""
    return [s.state for s in steps if step_name(s.state) != "cap" or data.get("kind") == CouponKind.PERCENT]


def step_after(steps: Iterable[State], step: str, data: dict) -> str:
    ordered = form_steps(steps, data)
    return ordered[ordered.index(step) + 1]


def terms_prompt(key: str, data: dict, button: StepButton, ops: TermsOps) -> tuple[str, Rows] | None:
    """The question and buttons of the kind and amount steps; None for any other step (valid days
    is worded by each form: counted from redeeming, or from being given)."""
    currency = data["currency"]
    if key == "kind":
        return (_("The coupon it gives: a fixed amount off, or a percentage?"),
                [[button(_("Fixed amount"), ops.FIXED), button(_("Percent"), ops.PERCENT)]])
    if key == "value":
        if data.get("kind") == CouponKind.PERCENT:
            return _("How many percent off? Send a whole number from 1 to 100."), []
        return _("How much off? Send an amount in {currency}, for example 5 or 12.50.").format(currency=currency), []
    if key == "cap":
        text = _("The most it takes off, in {currency}? Send an amount, or Skip for no cap.").format(currency=currency)
        return text, [[button(_("Skip"), ops.SKIP)]]
    if key == "min_spend":
        text = _("Minimum spend for the coupon to work, in {currency}? Send an amount, or Skip for none.").format(
            currency=currency)
        return text, [[button(_("Skip"), ops.SKIP)]]
    return None


def terms_button_answer(key: str, op: StrEnum, ops: TermsOps, data: dict) -> dict | None:
    """What a kind or Skip button answers at this step, or None when the button does not belong to it."""
    if key == "kind" and op in (ops.FIXED, ops.PERCENT):
        kind = CouponKind.FIXED if op is ops.FIXED else CouponKind.PERCENT
        # A new kind makes the old value meaningless (5.00 off is not 500% off): it is asked again.
        return {} if data.get("kind") == kind else {"kind": kind.value, "value": None, "cap": None}
    return SKIPS.get(key) if op is ops.SKIP else None


def parse_amount(key: str, raw: str, *, kind: str | None, currency: str) -> dict:
    """A typed value, cap or minimum spend as form data, or the DomainError that says what is wrong."""
    if key == "value" and kind == CouponKind.PERCENT:
        return {"value": coupons.parse_percent(raw)}
    amount = parse_money(raw, currency)
    if key != "min_spend" and amount <= 0:
        raise DomainError("coupon_value_zero")
    return {key: amount}


def parse_valid_days(raw: str, refusal: str) -> dict:
    """Typed valid days as form data; out of 1…VALID_DAYS_MAX it is refused with the form's own code."""
    days = whole_number(raw.strip())
    if days is None or not 1 <= days <= VALID_DAYS_MAX:
        raise DomainError(refusal, value=raw.strip()[:16], min=1, max=VALID_DAYS_MAX)
    return {"valid_days": days}
