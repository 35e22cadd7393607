"""The bot joining, leaving and being promoted in groups; members joining and leaving; private blocks."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from html import escape

from aiogram import Bot, F, Router
from aiogram.types import ChatMemberUpdated, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.config import Settings
from bot.core.i18n import translate
from bot.services import communities, members, users
from bot.services.communities import Change
from bot.telegram import leaders
from bot.telegram.membership import presence
from bot.telegram.middlewares.activity import GROUP_TYPES, profile_of
from bot.telegram.sender import Sender
from bot.views import deeplinks
from handlers.group import invites as group_invites
from models import Community, Via

log = logging.getLogger(__name__)
router = Router(name=__name__)

RIGHT_NAMES = {
    "can_invite_users": lambda: _("Invite users via link"),
    "can_delete_messages": lambda: _("Delete messages"),
    "can_pin_messages": lambda: _("Pin messages"),
}


def _rights(update: ChatMemberUpdated) -> dict[str, bool]:
    member = update.new_chat_member
    if member.status != "administrator":
        return {}
    return {name: bool(getattr(member, name, False)) for name in RIGHT_NAMES}


def _missing_rights_text(community: Community, missing: list[str], locale: str) -> str:
    if community.bot_status != "administrator":
        head = translate("To work fully I need to be an administrator of this group with these rights:", locale)
    else:
        head = translate("I am an administrator here but I am missing these rights:", locale)
    with I18n.get_current().use_locale(locale):
        lines = [f"• {RIGHT_NAMES[r]()}" for r in missing]
    tail = translate("A group admin can grant them in the group's settings → Administrators → this bot. I will check again when they change.", locale)
    return "\n".join([head, *lines, tail])


@router.my_chat_member(F.chat.type.in_(GROUP_TYPES))
async def on_bot_membership(update: ChatMemberUpdated, bot: Bot, session: AsyncSession, settings: Settings,
                            sender: Sender, bot_username: str) -> None:
    """Added, promoted, demoted or removed in a group."""
    now = update.date
    result = await communities.on_bot_status(
        session,
        chat_id=update.chat.id,
        title=update.chat.title or "",
        status=update.new_chat_member.status,
        rights=_rights(update),
        default_locale=settings.DEFAULT_LOCALE,
        default_timezone=settings.DEFAULT_TIMEZONE,
        now=now,
    )
    community = result.community
    locale = community.default_locale
    log.info("community %s (%s): %s", community.id, community.chat_id, result.change)
    if result.change in (Change.REMOVED, Change.UNCHANGED):
        return
    if result.refresh_leaders:
        await leaders.refresh(bot, session, community, now=now)
    if result.change in (Change.ADDED, Change.RETURNED):
        title = escape(community.title)
        if result.change is Change.ADDED:
            text = translate("Hello, {title}! I am your community's shop assistant. Leaders: open the menu in a private chat with me to set things up.",
                             locale, title=title)
        else:
            text = translate("I am back in {title}. Everything you set up before is still here.", locale, title=title)
        markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
            text=translate("Open the leader menu", locale),
            url=deeplinks.build(bot_username, "admin", community.id),
        )]])
        await sender.send_message(community.chat_id, text, reply_markup=markup)
    if result.missing_rights:
        await sender.send_message(community.chat_id, _missing_rights_text(community, result.missing_rights, locale))
    elif result.change is Change.RIGHTS_CHANGED and community.bot_status == "administrator":
        await sender.send_message(community.chat_id, translate("Thanks! I now have every right I need.", locale))


@router.my_chat_member(F.chat.type == "private")
async def on_private_block(update: ChatMemberUpdated, session: AsyncSession) -> None:
    """The user blocked (kicked) or unblocked the bot in their private chat."""
    can_dm = update.new_chat_member.status not in ("kicked", "left")
    await users.set_can_dm(session, user_id=update.from_user.id, can_dm=can_dm, now=update.date)


@router.chat_member(F.chat.type.in_(GROUP_TYPES))
async def on_member_change(update: ChatMemberUpdated, bot: Bot, session: AsyncSession) -> None:
    """Joins, leaves, kicks and promotions (sent only to an administrator bot that asked for them)."""
    community = await communities.get_by_chat(session, update.chat.id)
    if community is None:
        return
    old, new = presence(update.old_chat_member), presence(update.new_chat_member)
    # Before the member row changes: a rejoin is told from the row as it was. Bots' joins count too (held).
    via = await group_invites.attribute(update, session=session, bot=bot, community=community, old=old, new=new)
    if update.new_chat_member.user.is_bot:
        return
    await members.on_member_status(session, community=community, profile=profile_of(update.new_chat_member.user),
                                   old_status=old, new_status=new, now=update.date, via=via or Via.UNKNOWN)
    if (old in members.LEADER_STATUSES) != (new in members.LEADER_STATUSES):
        await leaders.refresh(bot, session, community, now=update.date)


@router.message(F.chat.type.in_(GROUP_TYPES), F.new_chat_members)
async def on_join_message(message: Message, session: AsyncSession) -> None:
    """The join service message: a second source of joins when chat_member updates are not sent."""
    community = await communities.get_by_chat(session, message.chat.id)
    if community is None or community.bot_status == "administrator":
        # An administrator bot gets chat_member updates for the same change; they are the record.
        return
    for user in message.new_chat_members or []:
        if not user.is_bot:
            # The message tells who added whom, nothing of a link.
            added = message.from_user is not None and message.from_user.id != user.id
            await members.on_member_status(session, community=community, profile=profile_of(user),
                                           old_status="left", new_status="member", now=message.date,
                                           via=Via.ADDED_BY_ADMIN if added else Via.UNKNOWN)


@router.message(F.chat.type.in_(GROUP_TYPES), F.left_chat_member)
async def on_leave_message(message: Message, session: AsyncSession) -> None:
    community = await communities.get_by_chat(session, message.chat.id)
    user = message.left_chat_member
    if community is None or user is None or user.is_bot:
        return
    if community.bot_status == "administrator":
        # chat_member updates carry the same departure and tell a kick from a leave; this notice
        # (handled concurrently) would overwrite "kicked" with "left".
        return
    await members.on_member_status(session, community=community, profile=profile_of(user),
                                   old_status="member", new_status="left", now=message.date, via=Via.UNKNOWN)


@router.message(F.migrate_to_chat_id)
async def on_migrate(message: Message, session: AsyncSession, tracker) -> None:
    """A group became a supergroup: same community, new chat id."""
    await communities.migrate_chat(session, old_chat_id=message.chat.id, new_chat_id=message.migrate_to_chat_id,
                                   now=datetime.now(timezone.utc))
    tracker.community_migrated(message.chat.id, message.migrate_to_chat_id)
