"""The languages the bot speaks, and how Telegram's language codes map onto them.

Kept apart from bot.i18n (which loads catalogs through aiogram) so that services and settings
can validate a locale without importing Telegram code.
"""

from __future__ import annotations

from typing import Protocol

LOCALES = ("en", "zh_Hans")
LOCALE_NAMES = {"en": "English", "zh_Hans": "简体中文"}
# Telegram's setMyCommands takes two-letter ISO 639-1 codes.
TELEGRAM_LANGUAGE = {"en": "en", "zh_Hans": "zh"}


def normalize_locale(code: str | None) -> str | None:
    """Map Telegram's IETF language_code (en-US, zh-hans, zh-CN...) onto a catalog we ship."""
    if not code:
        return None
    lowered = code.replace("_", "-").lower()
    if lowered.startswith("zh"):
        # Traditional-script codes still read Simplified better than English.
        return "zh_Hans"
    if lowered.startswith("en"):
        return "en"
    return None


class Speaker(Protocol):
    locale: str | None
    language_code: str | None


class HasDefaultLocale(Protocol):
    default_locale: str


def resolve_locale(user: Speaker, community: HasDefaultLocale | None, default: str) -> str:
    """A user's language: their own choice, else Telegram's language_code, else the community's."""
    return user.locale or normalize_locale(user.language_code) or (community.default_locale if community else None) or default
