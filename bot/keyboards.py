"""Every CallbackData factory in one place. Prefixes are short: Telegram allows 64 bytes in all.

Callback data comes from the client; handlers re-check every id and the actor's role.
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class Section(StrEnum):
    MENU = "menu"
    SETTINGS = "set"
    TIMEZONE = "tz"
    CURRENCY = "cur"
    LANGUAGE = "lang"
    PICKUPS = "pick"
    AUDIT = "audit"
    PRODUCTS = "prod"
    ORDERS = "ord"
    COUPONS = "coup"
    SHOP = "shop"


class AdminPick(CallbackData, prefix="ap"):
    """Choose a community to administer (list shown by /admin)."""

    community_id: int


class AdminNav(CallbackData, prefix="an"):
    community_id: int
    section: Section


class CommunityLang(CallbackData, prefix="cl"):
    community_id: int
    locale: str


class PickupAction(StrEnum):
    ADD = "add"
    OPEN = "open"
    RENAME = "ren"
    REMOVE = "rm"
    REMOVE_CONFIRM = "rmy"


class Pickup(CallbackData, prefix="pp"):
    community_id: int
    action: PickupAction
    point_id: int = 0


class FormAction(StrEnum):
    BACK = "back"
    CANCEL = "cancel"


class Form(CallbackData, prefix="fm"):
    action: FormAction


class UserLang(CallbackData, prefix="ul"):
    locale: str


class PrivacyAction(StrEnum):
    OPT_OUT = "out"
    OPT_IN = "in"
    FORGET = "forget"
    KEEP = "keep"


class Privacy(CallbackData, prefix="pv"):
    action: PrivacyAction


class BuyProduct(CallbackData, prefix="by"):
    """The Buy button on a product card in the group."""

    product_id: int
