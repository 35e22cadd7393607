"""Settings → Shop options: how members pay and collect, and the shop's clocks.

Toggles change at a press; numbers and the summary time are one-step forms (`ShopSettingsForm`,
the state's name is the option's name) with Back and Cancel, asked again with the reason when an
answer does not fit. Every change goes through `shop_settings.update_shop_settings`, which audits it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.errors import DomainError
from bot.services.shop_settings import (
    ShopSettings,
    option_bounds,
    parse_option_number,
    parse_summary_time,
    shop_settings,
    update_shop_settings,
)
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views.errors_text import error_text
from bot.views.keyboards import AdminNav, Section, ShopOp, ShopOption
from bot.views.render import edit_or_send
from handlers.admin.menu import back_button, form_guard, guard
from handlers.forms import ShopSettingsForm
from models import Community

router = Router(name=__name__)

TOGGLES = {ShopOp.PAY_AT_PICKUP: "pay_at_pickup", ShopOp.STARS: "stars_enabled", ShopOp.DELIVERY: "delivery_enabled"}
FORMS = {
    ShopOp.STARS_RATE: ShopSettingsForm.stars_per_unit,
    ShopOp.UNPAID_MINUTES: ShopSettingsForm.unpaid_minutes,
    ShopOp.CANCEL_HOURS: ShopSettingsForm.cancel_hours,
    ShopOp.SUMMARY_TIME: ShopSettingsForm.summary_time,
    ShopOp.POST_GRACE: ShopSettingsForm.post_grace_minutes,
}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _key(state: str) -> str:
    """The option a form step edits: the step is named after it."""
    return state.split(":", 1)[1]


def on_off(value: bool) -> str:
    return _("on") if value else _("off")


def shop_view(community: Community) -> tuple[str, InlineKeyboardMarkup]:
    opts = shop_settings(community)
    cid = community.id

    def button(text: str, op: ShopOp) -> list[InlineKeyboardButton]:
        return [InlineKeyboardButton(text=text, callback_data=ShopOption(op=op, community_id=cid).pack())]

    rate = str(opts.stars_per_unit) if opts.stars_per_unit else _("not set")
    rows = [
        button(_("💵 Pay at pickup: {state}").format(state=on_off(opts.pay_at_pickup)), ShopOp.PAY_AT_PICKUP),
        button(_("⭐ Telegram Stars: {state}").format(state=on_off(opts.stars_enabled)), ShopOp.STARS),
        button(_("⭐ Stars per {currency}: {rate}").format(currency=community.currency, rate=rate), ShopOp.STARS_RATE),
        button(_("🚚 Delivery: {state}").format(state=on_off(opts.delivery_enabled)), ShopOp.DELIVERY),
        button(_("⏳ Unpaid orders cancel after {n} min").format(n=opts.unpaid_minutes), ShopOp.UNPAID_MINUTES),
        button(_("↩️ Members may cancel within {n} h").format(n=opts.cancel_hours), ShopOp.CANCEL_HOURS),
        button(_("📊 Daily summary: {time}").format(time=opts.summary_time or _("off")), ShopOp.SUMMARY_TIME),
        button(_("🕒 Late posts allowed for {n} min").format(n=opts.post_grace_minutes), ShopOp.POST_GRACE),
        [back_button(cid, Section.SETTINGS)],
    ]
    text = _("<b>Shop options · {title}</b>\nHow members pay and collect, and the shop's clocks. Press an option to change it.").format(
        title=escape(community.title))
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


def prompt(step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    key = _key(step)
    current = data["current"]
    if key == "summary_time":
        text = _("At what time ({tz}) should I send leaders the day's order summary? Send HH:MM, for example 21:00, "
                 "or off.\nNow: {value}").format(tz=data["tz"], value=current or _("off"))
    else:
        low, high = option_bounds(key)
        texts = {
            "stars_per_unit": _("How many Telegram Stars for 1 {currency}? Send a whole number from {min} to {max}.\nNow: {value}"),
            "unpaid_minutes": _("After how many minutes is an unpaid online order cancelled and its stock returned? "
                                "Send a whole number from {min} to {max}.\nNow: {value}"),
            "cancel_hours": _("For how many hours after ordering may members cancel (0: they cannot)? "
                              "Send a whole number from {min} to {max}.\nNow: {value}"),
            "post_grace_minutes": _("How many minutes late may a scheduled post still go out (after the bot was down)? "
                                    "Later it is reported as missed instead. Send a whole number from {min} to {max}.\nNow: {value}"),
        }
        shown = _("not set") if key == "stars_per_unit" and not current else current
        text = texts[key].format(currency=data["currency"], min=low, max=high, value=shown)
    if data.get("enable_stars"):
        text = _("Set how many Stars one {currency} costs; Stars are switched on with it.").format(currency=data["currency"]) + "\n\n" + text
    rows = []
    if key == "summary_time":
        rows.append([InlineKeyboardButton(text=_("Turn the summary off"), callback_data=ShopOption(op=ShopOp.SUMMARY_OFF).pack())])
    rows.append([InlineKeyboardButton(text=_("« Back"), callback_data=ShopOption(op=ShopOp.BACK).pack()),
                 InlineKeyboardButton(text=_("✖ Cancel"), callback_data=ShopOption(op=ShopOp.CANCEL).pack())])
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def _save(session: AsyncSession, community: Community, actor: Actor, **changes: object) -> ShopSettings:
    return await update_shop_settings(session, community=community, actor_id=actor.user.id, now=_now(), **changes)


@router.callback_query(AdminNav.filter(F.section == Section.SHOP))
async def on_shop(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, *shop_view(community))


@router.callback_query(ShopOption.filter(F.op.in_(set(TOGGLES) | set(FORMS))))
async def on_option(query: CallbackQuery, callback_data: ShopOption, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    op, opts = callback_data.op, shop_settings(community)
    enable_stars = op is ShopOp.STARS and not opts.stars_enabled and opts.stars_per_unit == 0
    if op in TOGGLES and not enable_stars:
        key = TOGGLES[op]
        await _save(session, community, actor, **{key: not getattr(opts, key)})
        await query.answer(_("Saved."))
        await edit_or_send(query.message, *shop_view(community))
        return
    step = ShopSettingsForm.stars_per_unit if enable_stars else FORMS[op]
    data = {"community_id": community.id, "currency": community.currency, "tz": community.timezone,
            "current": getattr(opts, _key(step.state)), "enable_stars": enable_stars}
    await state.set_state(step)
    await state.set_data(data)
    await query.answer()
    await edit_or_send(query.message, *prompt(step.state, data))


@router.callback_query(ShopOption.filter(F.op.in_({ShopOp.BACK, ShopOp.CANCEL, ShopOp.SUMMARY_OFF})))
async def on_form_button(query: CallbackQuery, callback_data: ShopOption, session: AsyncSession, actor: Actor,
                         state: FSMContext) -> None:
    current, data = await state.get_state(), await state.get_data()
    if current is None or not current.startswith("ShopSettingsForm:") or "community_id" not in data:
        await query.answer(_("This form is no longer open."))
        await edit_or_send(query.message, _("This form is no longer open. Send /admin to start again."))
        return
    if callback_data.op is ShopOp.CANCEL:
        await state.clear()
        await query.answer()
        await edit_or_send(query.message, _("Cancelled. Nothing was changed. Send /admin to open the menu again."))
        return
    community = await guard(query, session, actor, data["community_id"])
    if community is None:
        await state.clear()
        return
    if callback_data.op is ShopOp.SUMMARY_OFF:
        if current != ShopSettingsForm.summary_time.state:
            await query.answer(_("This button is no longer valid."), show_alert=True)
            return
        await _save(session, community, actor, summary_time=None)
        await query.answer(_("Saved."))
    else:
        await query.answer()
    await state.clear()
    await edit_or_send(query.message, *shop_view(community))


@router.message(StateFilter(ShopSettingsForm), F.chat.type == "private", ~F.text, SENT_BY_PERSON)
async def on_form_not_text(message: Message, state: FSMContext) -> None:
    text, markup = prompt(await state.get_state(), await state.get_data())
    await message.answer(_("Please answer with text.") + "\n\n" + text, reply_markup=markup)


@router.message(StateFilter(ShopSettingsForm), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_answer(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    current, data = await state.get_state(), await state.get_data()
    community = await form_guard(message, session, actor, state)
    if community is None:
        return
    key = _key(current)
    try:
        value = parse_summary_time(message.text) if key == "summary_time" else parse_option_number(key, message.text)
        changes: dict[str, object] = {key: value}
        if data.get("enable_stars"):
            changes["stars_enabled"] = True
        await _save(session, community, actor, **changes)
    except DomainError as err:
        text, markup = prompt(current, data)
        await message.answer(error_text(err) + "\n\n" + text, reply_markup=markup)
        return
    await state.clear()
    text, markup = shop_view(community)
    await message.answer(_("Saved.") + "\n\n" + text, reply_markup=markup)
