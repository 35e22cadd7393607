"""Last router: private messages nobody else handled get a pointer to /help, never silence."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message, PreCheckoutQuery
from aiogram.utils.i18n import gettext as _

from bot.telegram.update_types import SENT_BY_PERSON

router = Router(name=__name__)


# Only what the user wrote or sent: Telegram's own notices in the chat (a refund, a payment no
# feature claimed, a pinned message...) are not the user talking to the bot.
@router.message(F.chat.type == "private", SENT_BY_PERSON)
async def on_unknown_private(message: Message) -> None:
    if message.text and message.text.startswith("/"):
        await message.answer(_("I do not know that command. Send /help to see what I can do."))
    else:
        await message.answer(_("I did not understand that. Send /help to see what I can do."))


@router.callback_query()
async def on_stale_button(query: CallbackQuery) -> None:
    """Buttons from an older version, or forged data: answer so the client stops spinning."""
    await query.answer(_("This button is no longer valid."), show_alert=True)


@router.pre_checkout_query()
async def on_unexpected_checkout(query: PreCheckoutQuery) -> None:
    """Telegram waits at most 10 s for an answer; a payment no feature claims is declined at once."""
    await query.answer(ok=False, error_message=_("This payment is not expected. Nothing was charged."))
