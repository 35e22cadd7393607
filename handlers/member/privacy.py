"""/stop and opting back in, /mydata, /forgetme."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import invite_privacy, users
from bot.services.activity import ActivityTracker
from bot.telegram.middlewares.actor import Actor
from bot.views import deeplinks
from bot.views.keyboards import Privacy, PrivacyAction
from bot.views.render import edit_or_send
from handlers.member.invites import revoke_at_telegram

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")


def _button(text: str, action: PrivacyAction) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=Privacy(action=action).pack())


def _opted_out_text() -> str:
    return _("Done: you will get no promotional messages from me. Order updates still reach you.\n"
             "Changed your mind? Press the button or send /start optin.")


@router.message(Command("stop"))
async def cmd_stop(message: Message, session: AsyncSession, actor: Actor) -> None:
    await users.set_marketing_opt_out(session, user_id=actor.user.id, opt_out=True, now=datetime.now(timezone.utc))
    await message.answer(_opted_out_text(), reply_markup=InlineKeyboardMarkup(inline_keyboard=[[
        _button(_("Send me promotions again"), PrivacyAction.OPT_IN)]]))


async def _opt_in(session: AsyncSession, actor: Actor) -> str:
    await users.set_marketing_opt_out(session, user_id=actor.user.id, opt_out=False, now=datetime.now(timezone.utc))
    return _("Welcome back: you will get promotions and coupons again. Send /stop to turn them off.")


@deeplinks.route("optin")
async def link_opt_in(*, message: Message, session: AsyncSession, actor: Actor, **_data) -> None:
    await message.answer(await _opt_in(session, actor))


@router.callback_query(Privacy.filter(F.action.in_({PrivacyAction.OPT_IN, PrivacyAction.OPT_OUT})))
async def on_marketing_choice(query: CallbackQuery, callback_data: Privacy, session: AsyncSession, actor: Actor) -> None:
    if callback_data.action is PrivacyAction.OPT_IN:
        text = await _opt_in(session, actor)
        markup = InlineKeyboardMarkup(inline_keyboard=[[_button(_("Stop promotions"), PrivacyAction.OPT_OUT)]])
    else:
        await users.set_marketing_opt_out(session, user_id=actor.user.id, opt_out=True, now=datetime.now(timezone.utc))
        text = _opted_out_text()
        markup = InlineKeyboardMarkup(inline_keyboard=[[_button(_("Send me promotions again"), PrivacyAction.OPT_IN)]])
    await query.answer()
    await edit_or_send(query.message, text, markup)


@router.callback_query(Privacy.filter(F.action == PrivacyAction.STOP_OFFERS))
async def on_stop_offers(query: CallbackQuery, session: AsyncSession, actor: Actor) -> None:
    """"Stop offers" under an offer: the offer stays readable (its coupon still works); the button
    turns into the way back."""
    await users.set_marketing_opt_out(session, user_id=actor.user.id, opt_out=True, now=datetime.now(timezone.utc))
    await query.answer(_("Done: no more offers from me. Your coupon above still works."), show_alert=True)
    if isinstance(query.message, Message):  # not one too old to reach
        await query.message.edit_reply_markup(reply_markup=InlineKeyboardMarkup(inline_keyboard=[[
            _button(_("Send me promotions again"), PrivacyAction.OPT_IN)]]))


@router.message(Command("mydata"))
async def cmd_mydata(message: Message, session: AsyncSession, actor: Actor) -> None:
    document = await users.export_data(session, user_id=actor.user.id)
    document["exported_at"] = datetime.now(timezone.utc).isoformat()
    payload = json.dumps(document, ensure_ascii=False, indent=2).encode()
    await message.answer_document(
        BufferedInputFile(payload, filename=f"mydata-{actor.user.id}.json"),
        caption=_("Everything I keep about you, as a JSON file. Send /forgetme to erase it."),
    )


@router.message(Command("forgetme"))
async def cmd_forgetme(message: Message) -> None:
    await message.answer(
        _("This erases your name, username, language and group memberships from the bot. "
          "Orders stay in the leaders' books without your name. This cannot be undone. Erase now?"),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[
            _button(_("Yes, erase my data"), PrivacyAction.FORGET),
            _button(_("No, keep it"), PrivacyAction.KEEP),
        ]]),
    )


@router.callback_query(Privacy.filter(F.action == PrivacyAction.FORGET))
async def on_forget(query: CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext,
                    tracker: ActivityTracker, bot: Bot) -> None:
    await tracker.forget_user(actor.user.id)
    # Their invite links carry their name: revoked at Telegram first, then marked so with the rest.
    for chat_id, url in await invite_privacy.live_links_of(session, user_id=actor.user.id):
        await revoke_at_telegram(bot, chat_id, [url])
    await users.forget(session, user_id=actor.user.id, now=datetime.now(timezone.utc))
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, _("Your personal data has been erased. If you write to me again, I will only know what you send from then on."))


@router.callback_query(Privacy.filter(F.action == PrivacyAction.KEEP))
async def on_keep(query: CallbackQuery) -> None:
    await query.answer()
    await edit_or_send(query.message, _("Nothing was erased."))
