"""Domain error codes → the user's language. One table, so every handler words a refusal the same."""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import gettext as _

from bot.services.errors import DomainError


def error_text(err: DomainError) -> str:
    p = err.params
    match err.code:
        case "timezone_unknown":
            return _("“{value}” is not a timezone I know. Send an IANA name such as Asia/Shanghai or Europe/Berlin.").format(value=escape(str(p.get("value", ""))))
        case "currency_format":
            return _("“{value}” is not a currency code. Send three letters such as CNY, USD or EUR.").format(value=escape(str(p.get("value", ""))))
        case "currency_unknown":
            return _("{value} is not an ISO 4217 currency. Send a code such as CNY, USD or EUR.").format(value=escape(str(p.get("value", ""))))
        case "pickup_name_empty":
            return _("The name is empty. Send the pickup point's name as text.")
        case "pickup_name_too_long":
            return _("That name has {length} characters; the limit is {max}. Send a shorter one.").format(length=p.get("length"), max=p.get("max"))
        case "pickup_duplicate":
            return _("There is already a pickup point called “{name}”. Send a different name.").format(name=escape(str(p.get("name", ""))))
        case "pickup_too_many":
            return _("A community can have at most {max} pickup points. Remove one first.").format(max=p.get("max"))
        case "pickup_unknown":
            return _("That pickup point no longer exists.")
        case "unknown_locale":
            return _("That language is not available.")
        case "community_unknown":
            return _("That community no longer exists.")
        case _:
            return _("That did not work ({code}).").format(code=err.code)
