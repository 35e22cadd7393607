"""/admin: pick a community, then its menu of sections. Every press re-checks the role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.locales import LOCALE_NAMES
from bot.core.numbers import whole_number
from bot.services import audit, communities
from bot.telegram.group_reply import reply_in_group
from bot.telegram.middlewares.actor import Actor
from bot.telegram.sender import Sender
from bot.views import deeplinks
from bot.views.keyboards import AdminNav, AdminPick, Section
from bot.views.render import edit_or_send
from models import Community

router = Router(name=__name__)


@dataclass(frozen=True, slots=True)
class MenuEntry:
    section: Section
    label: Callable[[], str]


# Sections of a community's menu, in order. Later features append their own entries.
MENU: list[MenuEntry] = [
    MenuEntry(Section.PRODUCTS, lambda: _("📦 Products")),
    MenuEntry(Section.GROUPBUYS, lambda: _("🤝 Group-buys")),
    MenuEntry(Section.ORDERS, lambda: _("🧾 Orders")),
    MenuEntry(Section.COUPONS, lambda: _("🎟 Coupons")),
    MenuEntry(Section.CHECKIN, lambda: _("✅ Check-in & points")),
    MenuEntry(Section.INVITES, lambda: _("🤝 Invites")),
    MenuEntry(Section.CAMPAIGNS, lambda: _("📣 Campaigns")),
    MenuEntry(Section.STATS, lambda: _("📊 Stats")),
    MenuEntry(Section.SETTINGS, lambda: _("⚙️ Settings")),
    MenuEntry(Section.AUDIT, lambda: _("📜 Recent changes")),
]


async def guard(query: CallbackQuery, session: AsyncSession, actor: Actor, community_id: int) -> Community | None:
    """The community if the actor may manage it now; otherwise an alert and None."""
    community = await communities.can_manage(session, community_id=community_id, user_id=actor.user.id,
                                             is_owner=actor.is_owner)
    if community is None:
        await query.answer(_("Only this community's leaders can do that."), show_alert=True)
    return community


async def form_guard(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> Community | None:
    """For a typed form answer: the form's community if the actor still leads it; else the form closes."""
    data = await state.get_data()
    community = None
    if "community_id" in data:
        community = await communities.can_manage(session, community_id=data["community_id"], user_id=actor.user.id,
                                                 is_owner=actor.is_owner)
    if community is None:
        await state.clear()
        await message.answer(_("Only this community's leaders can do that."))
    return community


def nav(community_id: int, section: Section) -> str:
    return AdminNav(community_id=community_id, section=section).pack()


def back_button(community_id: int, section: Section = Section.MENU) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=_("« Back"), callback_data=nav(community_id, section))


def menu_view(community: Community, *, show_all: bool) -> tuple[str, InlineKeyboardMarkup]:
    lines = [f"<b>{escape(community.title)}</b>"]
    if not community.active:
        lines.append(_("⚠️ I am not in this group any more. Add me back to post and sell there; your data is kept."))
    elif community.missing_rights:
        lines.append(_("⚠️ Missing administrator rights: {rights}").format(rights=", ".join(community.missing_rights)))
    lines.append(_("Timezone: {tz} · Currency: {cur} · Language: {lang}").format(
        tz=community.timezone, cur=community.currency, lang=LOCALE_NAMES.get(community.default_locale, community.default_locale)))
    rows = [[InlineKeyboardButton(text=e.label(), callback_data=nav(community.id, e.section))] for e in MENU]
    if show_all:
        rows.append([InlineKeyboardButton(text=_("« All communities"), callback_data=nav(0, Section.MENU))])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def picker_view(listed: list[Community]) -> tuple[str, InlineKeyboardMarkup]:
    rows = [[InlineKeyboardButton(text=(c.title or str(c.chat_id)) + ("" if c.active else " " + _("(inactive)")),
                                  callback_data=AdminPick(community_id=c.id).pack())] for c in listed]
    return _("Choose a community to manage:"), InlineKeyboardMarkup(inline_keyboard=rows)


def no_communities_text() -> str:
    return _("You do not lead any community yet. Add me to your group as an administrator, then send /admin again.")


@router.message(Command("admin"), F.chat.type == "private")
async def cmd_admin(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    await state.clear()
    listed = await communities.manageable(session, user_id=actor.user.id, is_owner=actor.is_owner)
    if not listed:
        await message.answer(no_communities_text())
    elif len(listed) == 1:
        text, markup = menu_view(listed[0], show_all=False)
        await message.answer(text, reply_markup=markup)
    else:
        text, markup = picker_view(listed)
        await message.answer(text, reply_markup=markup)


@router.message(Command("admin"))
async def cmd_admin_in_group(message: Message, actor: Actor, bot_username: str, sender: Sender) -> None:
    """In a group the menu itself would leak settings to everyone: point leaders to the private chat."""
    if actor.community is None or not actor.is_leader_here:
        reply_in_group(sender, message, _("Only this group's leaders can use /admin."))
        return
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=_("Open the leader menu"), url=deeplinks.build(bot_username, "admin", actor.community.id))]])
    reply_in_group(sender, message, _("The leader menu opens in a private chat with me."), markup)


@deeplinks.route("admin")
async def link_admin(*, message: Message, arg: str, session: AsyncSession, actor: Actor, **_data) -> None:
    community = None
    if (community_id := whole_number(arg)) is not None:
        community = await communities.can_manage(session, community_id=community_id, user_id=actor.user.id, is_owner=actor.is_owner)
    if community is None:
        await message.answer(_("Only this community's leaders can open its menu."))
        return
    text, markup = menu_view(community, show_all=True)
    await message.answer(text, reply_markup=markup)


@router.callback_query(AdminPick.filter())
async def on_pick(query: CallbackQuery, callback_data: AdminPick, session: AsyncSession, actor: Actor) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await query.answer()
    text, markup = menu_view(community, show_all=True)
    await edit_or_send(query.message, text, markup)


@router.callback_query(AdminNav.filter(F.section == Section.MENU))
async def on_menu(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor,
                  state: FSMContext) -> None:
    await state.clear()
    if callback_data.community_id == 0:
        listed = await communities.manageable(session, user_id=actor.user.id, is_owner=actor.is_owner)
        await query.answer()
        if listed:
            await edit_or_send(query.message, *picker_view(listed))
        else:
            await edit_or_send(query.message, no_communities_text())
        return
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await query.answer()
    await edit_or_send(query.message, *menu_view(community, show_all=True))


@router.callback_query(AdminNav.filter(F.section == Section.AUDIT))
async def on_audit(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    entries = await audit.recent(session, community_id=community.id, limit=15)
    lines = [_("<b>Recent changes</b> (times in {tz})").format(tz=community.timezone)]
    zone = ZoneInfo(community.timezone)
    for entry in entries:
        when = entry.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        who = str(entry.actor_id) if entry.actor_id else _("Telegram")
        detail = escape(", ".join(f"{k}: {v}" for k, v in entry.details.items()))
        lines.append(f"{when} · {who} · <code>{escape(entry.action)}</code> {detail}")
    if not entries:
        lines.append(_("Nothing has changed yet."))
    await query.answer()
    await edit_or_send(query.message, "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=[[back_button(community.id)]]))
