"""/lang: a user picks their language; every later reply uses it."""

from __future__ import annotations

from datetime import datetime, timezone

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.locales import LOCALE_NAMES, LOCALES
from bot.services import users
from bot.telegram.middlewares.actor import Actor
from bot.views.keyboards import UserLang
from bot.views.render import edit_or_send

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")


def language_keyboard(current: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text=("✓ " if loc == current else "") + LOCALE_NAMES[loc],
                             callback_data=UserLang(locale=loc).pack())
        for loc in LOCALES
    ]])


@router.message(Command("lang"))
async def cmd_lang(message: Message, actor: Actor) -> None:
    await message.answer(_("Choose your language:"), reply_markup=language_keyboard(actor.locale))


@router.callback_query(UserLang.filter())
async def on_language(query: CallbackQuery, callback_data: UserLang, session: AsyncSession, actor: Actor) -> None:
    if callback_data.locale not in LOCALES:
        await query.answer(_("That language is not available."), show_alert=True)
        return
    await users.set_locale(session, user_id=actor.user.id, locale=callback_data.locale, now=datetime.now(timezone.utc))
    with I18n.get_current().use_locale(callback_data.locale):
        text = _("Language set to English.") if callback_data.locale == "en" else _("Language set to Simplified Chinese.")
        await query.answer()
        await edit_or_send(query.message, text)
