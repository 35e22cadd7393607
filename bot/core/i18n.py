"""Translations: Babel catalogs in locales/, loaded straight from the .po files.

Reading the .po sources at start-up (compiled in memory) means there is no build step that can
leave a stale .mo behind, and a fresh clone works with nothing but `pip install`.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from aiogram.utils.i18n import I18n
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from bot.core.config import ROOT
from bot.core.locales import LOCALES

LOCALES_DIR = ROOT / "locales"
DOMAIN = "messages"
class CatalogI18n(I18n):
    """aiogram's I18n, fed from .po files instead of compiled .mo files."""

    def find_locales(self) -> dict[str, Translations]:
        translations: dict[str, Translations] = {}
        for locale in LOCALES:
            po_path = Path(self.path) / locale / "LC_MESSAGES" / f"{self.domain}.po"
            if not po_path.exists():
                continue
            with po_path.open("rb") as fh:
                catalog = read_po(fh, locale=locale, domain=self.domain)
            buf = BytesIO()
            write_mo(buf, catalog)
            buf.seek(0)
            translations[locale] = Translations(fp=buf, domain=self.domain)
        return translations


_i18n: CatalogI18n | None = None


def get_i18n() -> CatalogI18n:
    """The process-wide catalog set; loaded once and made current for `gettext` callers."""
    global _i18n
    if _i18n is None:
        _i18n = CatalogI18n(path=LOCALES_DIR, default_locale="en", domain=DOMAIN)
    I18n.set_current(_i18n)
    return _i18n


def translate(message: str, locale: str, **kwargs: object) -> str:
    """Translate for an explicit locale (bot-initiated messages have no current update)."""
    text = get_i18n().gettext(message, locale=locale)
    return text.format(**kwargs) if kwargs else text
