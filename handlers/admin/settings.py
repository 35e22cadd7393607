"""/admin → Settings: timezone, currency, default language, pickup points.

Text forms run on the FSM with Back and Cancel on every step; an invalid answer is asked again
with the reason. Each press and each answer re-checks that the actor still leads the community.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.locales import LOCALE_NAMES, LOCALES
from bot.services import settings
from bot.services.errors import DomainError
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views.errors_text import error_text
from bot.views.keyboards import AdminNav, CommunityLang, Form, FormAction, Pickup, PickupAction, Section
from bot.views.render import edit_or_send
from handlers.admin.menu import back_button, form_guard, guard, nav
from handlers.forms import SettingsForm
from models import Community

router = Router(name=__name__)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def settings_view(community: Community, pickup_count: int) -> tuple[str, InlineKeyboardMarkup]:
    text = _("<b>Settings · {title}</b>\nChoose what to change.").format(title=escape(community.title))
    rows = [
        [InlineKeyboardButton(text=_("🕒 Timezone: {tz}").format(tz=community.timezone), callback_data=nav(community.id, Section.TIMEZONE))],
        [InlineKeyboardButton(text=_("💱 Currency: {cur}").format(cur=community.currency), callback_data=nav(community.id, Section.CURRENCY))],
        [InlineKeyboardButton(text=_("🌐 Language: {lang}").format(lang=LOCALE_NAMES.get(community.default_locale, community.default_locale)),
                              callback_data=nav(community.id, Section.LANGUAGE))],
        [InlineKeyboardButton(text=_("📍 Pickup points ({n})").format(n=pickup_count), callback_data=nav(community.id, Section.PICKUPS))],
        [InlineKeyboardButton(text=_("🛒 Shop options"), callback_data=nav(community.id, Section.SHOP))],
        [InlineKeyboardButton(text=_("🗓 Weekly stats digest"), callback_data=nav(community.id, Section.DIGEST))],
        [back_button(community.id)],
    ]
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def _settings_view(session: AsyncSession, community: Community) -> tuple[str, InlineKeyboardMarkup]:
    points = await settings.pickup_points(session, community_id=community.id)
    return settings_view(community, len(points))


async def pickups_view(session: AsyncSession, community: Community) -> tuple[str, InlineKeyboardMarkup]:
    points = await settings.pickup_points(session, community_id=community.id)
    lines = [_("<b>Pickup points · {title}</b>").format(title=escape(community.title))]
    lines.append(_("Members choose one of these when they order.") if points else _("No pickup points yet."))
    rows = [[InlineKeyboardButton(text=p.name, callback_data=Pickup(community_id=community.id, action=PickupAction.OPEN, point_id=p.id).pack())]
            for p in points]
    rows.append([InlineKeyboardButton(text=_("➕ Add a pickup point"), callback_data=Pickup(community_id=community.id, action=PickupAction.ADD).pack())])
    rows.append([back_button(community.id, Section.SETTINGS)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def form_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text=_("« Back"), callback_data=Form(action=FormAction.BACK).pack()),
        InlineKeyboardButton(text=_("✖ Cancel"), callback_data=Form(action=FormAction.CANCEL).pack()),
    ]])


# What each form step asks; the prompt is repeated under the reason when an answer is refused.
PROMPTS = {
    SettingsForm.timezone.state: lambda d: _("Send the community's timezone as an IANA name, for example Asia/Shanghai or Europe/Berlin.\nNow: {value}").format(value=d["current"]),
    SettingsForm.currency.state: lambda d: _("Send the currency as an ISO 4217 code, for example CNY, USD or EUR.\nNow: {value}").format(value=d["current"]),
    SettingsForm.pickup_add.state: lambda d: _("Send the name of the new pickup point (up to 64 characters)."),
    SettingsForm.pickup_rename.state: lambda d: _("Send the new name for “{value}”.").format(value=escape(d["current"])),
}
# Where Back leads from each form step.
BACK_TO = {
    SettingsForm.timezone.state: Section.SETTINGS,
    SettingsForm.currency.state: Section.SETTINGS,
    SettingsForm.pickup_add.state: Section.PICKUPS,
    SettingsForm.pickup_rename.state: Section.PICKUPS,
}


async def _ask(query: CallbackQuery, state: FSMContext, step: State, **data: object) -> None:
    await state.set_state(step)
    await state.set_data(data)
    await query.answer()
    await edit_or_send(query.message, PROMPTS[step.state](data), form_keyboard())


@router.callback_query(AdminNav.filter(F.section == Section.SETTINGS))
async def on_settings(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, *await _settings_view(session, community))


@router.callback_query(AdminNav.filter(F.section.in_({Section.TIMEZONE, Section.CURRENCY})))
async def on_text_setting(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    if callback_data.section is Section.TIMEZONE:
        await _ask(query, state, SettingsForm.timezone, community_id=community.id, current=community.timezone)
    else:
        await _ask(query, state, SettingsForm.currency, community_id=community.id, current=community.currency)


@router.callback_query(AdminNav.filter(F.section == Section.LANGUAGE))
async def on_language_menu(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    rows = [[InlineKeyboardButton(text=("✓ " if loc == community.default_locale else "") + LOCALE_NAMES[loc],
                                  callback_data=CommunityLang(community_id=community.id, locale=loc).pack())] for loc in LOCALES]
    rows.append([back_button(community.id, Section.SETTINGS)])
    await query.answer()
    await edit_or_send(query.message, _("The community's language is used in the group and for members who have not chosen one."),
                       InlineKeyboardMarkup(inline_keyboard=rows))


@router.callback_query(CommunityLang.filter())
async def on_community_language(query: CallbackQuery, callback_data: CommunityLang, session: AsyncSession, actor: Actor) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    try:
        await settings.set_default_locale(session, community_id=community.id, actor_id=actor.user.id,
                                          locale=callback_data.locale, now=_now())
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        return
    await query.answer(_("Saved."))
    await edit_or_send(query.message, *await _settings_view(session, community))


@router.callback_query(AdminNav.filter(F.section == Section.PICKUPS))
async def on_pickups(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, *await pickups_view(session, community))


@router.callback_query(Pickup.filter())
async def on_pickup(query: CallbackQuery, callback_data: Pickup, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    action, cid = callback_data.action, community.id
    if action is PickupAction.ADD:
        await _ask(query, state, SettingsForm.pickup_add, community_id=cid)
        return
    try:
        point = await settings.get_pickup_point(session, community_id=cid, point_id=callback_data.point_id)
        if action is PickupAction.RENAME:
            await _ask(query, state, SettingsForm.pickup_rename, community_id=cid, point_id=point.id, current=point.name)
            return
        if action is PickupAction.REMOVE_CONFIRM:
            await settings.remove_pickup_point(session, community_id=cid, actor_id=actor.user.id, point_id=point.id, now=_now())
            await query.answer(_("Removed."))
            await edit_or_send(query.message, *await pickups_view(session, community))
            return
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        await edit_or_send(query.message, *await pickups_view(session, community))
        return
    button = lambda text, act: InlineKeyboardButton(text=text, callback_data=Pickup(community_id=cid, action=act, point_id=point.id).pack())  # noqa: E731
    if action is PickupAction.REMOVE:
        text = _("Remove the pickup point “{name}”? Orders that already name it keep it.").format(name=escape(point.name))
        rows = [[button(_("Yes, remove it"), PickupAction.REMOVE_CONFIRM)], [back_button(cid, Section.PICKUPS)]]
    else:
        text = _("Pickup point “{name}”").format(name=escape(point.name))
        rows = [[button(_("✏️ Rename"), PickupAction.RENAME), button(_("🗑 Remove"), PickupAction.REMOVE)],
                [back_button(cid, Section.PICKUPS)]]
    await query.answer()
    await edit_or_send(query.message, text, InlineKeyboardMarkup(inline_keyboard=rows))


@router.callback_query(Form.filter(F.action == FormAction.BACK))
async def on_form_back(query: CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    current, data = await state.get_state(), await state.get_data()
    await state.clear()
    if current not in BACK_TO or "community_id" not in data:
        await query.answer(_("This form is no longer open."))
        await edit_or_send(query.message, _("This form is no longer open. Send /admin to start again."))
        return
    community = await guard(query, session, actor, data["community_id"])
    if community is None:
        return
    await query.answer()
    if BACK_TO[current] is Section.PICKUPS:
        await edit_or_send(query.message, *await pickups_view(session, community))
    else:
        await edit_or_send(query.message, *await _settings_view(session, community))


@router.callback_query(Form.filter(F.action == FormAction.CANCEL))
async def on_form_cancel(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, _("Cancelled. Nothing was changed. Send /admin to open the menu again."))


@router.message(Command("cancel"))
async def cmd_cancel(message: Message, state: FSMContext) -> None:
    if await state.get_state() is None:
        await message.answer(_("There is nothing to cancel."))
        return
    await state.clear()
    await message.answer(_("Cancelled. Nothing was changed. Send /admin to open the menu again."))


@router.message(StateFilter(*PROMPTS), F.chat.type == "private", ~F.text, SENT_BY_PERSON)
async def on_form_not_text(message: Message, state: FSMContext) -> None:
    current, data = await state.get_state(), await state.get_data()
    await message.answer(_("Please answer with text.") + "\n\n" + PROMPTS[current](data), reply_markup=form_keyboard())


@router.message(StateFilter(*PROMPTS), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_answer(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    """The answer to whichever settings form step is open."""
    current, data = await state.get_state(), await state.get_data()
    community = await form_guard(message, session, actor, state)
    if community is None:
        return
    cid, who, raw = community.id, actor.user.id, message.text
    try:
        if current == SettingsForm.timezone.state:
            value = await settings.set_timezone(session, community_id=cid, actor_id=who, raw=raw, now=_now())
            done = _("Timezone set to {value}.").format(value=value)
        elif current == SettingsForm.currency.state:
            value = await settings.set_currency(session, community_id=cid, actor_id=who, raw=raw, now=_now())
            done = _("Currency set to {value}.").format(value=value)
        elif current == SettingsForm.pickup_add.state:
            point = await settings.add_pickup_point(session, community_id=cid, actor_id=who, raw_name=raw, now=_now())
            done = _("Pickup point “{name}” added.").format(name=escape(point.name))
        else:
            point = await settings.rename_pickup_point(session, community_id=cid, actor_id=who, point_id=data["point_id"], raw_name=raw, now=_now())
            done = _("Renamed to “{name}”.").format(name=escape(point.name))
    except DomainError as err:
        if err.code in ("pickup_unknown", "community_unknown"):
            await state.clear()
            await message.answer(error_text(err))
            return
        await message.answer(error_text(err) + "\n\n" + PROMPTS[current](data), reply_markup=form_keyboard())
        return
    await state.clear()
    if BACK_TO[current] is Section.PICKUPS:
        text, markup = await pickups_view(session, community)
    else:
        text, markup = await _settings_view(session, community)
    await message.answer(done + "\n\n" + text, reply_markup=markup)
