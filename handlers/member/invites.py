"""Inviting, in private: `/invite` gives a member their own link into each of their groups (made once
with createChatInviteLink, named after them, reused; a join-request link while the leader approves
joins), the deep link for friends who write to the bot first, what a qualified invite earns and
their counts. `/start inv-<code>` is that deep link: the bot notes who invited the person and hands
them the way into the group. A group-buy "join my team" link that reaches someone not in the group
does the same (`TeamInviteGate`).

Without the right to invite users the member is told so and given the deep link, which needs no
right, and the leaders are told which right is missing (once a week at most).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import translate
from bot.services import communities, invite_links, invite_stats, invites, members, users
from bot.services.errors import DomainError
from bot.services.invite_settings import invite_settings
from bot.services.invites import Intent, IntentStatus
from bot.telegram.membership import Admits
from bot.telegram.middlewares.actor import Actor
from bot.telegram.sender import Sender
from bot.views import deeplinks, invite_member
from bot.views.errors_text import error_text
from bot.views.invite_member import InvitePick
from bot.views.invite_notices import tell_leaders_right
from bot.views.render import edit_or_send
from models import Community, Via

log = logging.getLogger(__name__)
router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")

# Telegram's refusal when the bot may not manage a chat's invite links.
NO_RIGHTS = "not enough rights"


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def revoke_at_telegram(bot: Bot, chat_id: int, urls: list[str]) -> None:
    """Revoke links at Telegram; one that is gone already (or a right lost since) is only logged: the
    database says revoked either way, and a join through it is still credited to its owner."""
    for url in urls:
        try:
            await bot.revoke_chat_invite_link(chat_id, url)
        except TelegramAPIError as exc:
            log.info("invite link of chat %s not revoked: %s", chat_id, exc.message)


async def member_link(session: AsyncSession, bot: Bot, community: Community, user_id: int,
                      now: datetime) -> tuple[str, str]:
    """The member's live link into `community` (made at Telegram the first time) and their deep-link
    code. Refusals as `invite_links.link_for`'s; Telegram's "not enough rights" is
    `invite_right_missing` too (the rights the bot knows of may be out of date)."""
    answer = await invite_links.link_for(session, community=community, user_id=user_id, now=now)
    if not answer.needs_creating:
        return answer.link.url, answer.code
    try:
        made = await bot.create_chat_invite_link(community.chat_id, name=answer.name,
                                                 creates_join_request=answer.creates_join_request)
    except TelegramBadRequest as exc:
        if NO_RIGHTS not in exc.message:
            raise
        raise DomainError("invite_right_missing", right=invite_links.INVITE_RIGHT) from exc
    saved = await invite_links.save_link(session, community_id=community.id, user_id=user_id, url=made.invite_link,
                                         name=made.name or answer.name,
                                         creates_join_request=answer.creates_join_request, now=now)
    if saved.url != made.invite_link:  # a concurrent /invite saved its link first
        await revoke_at_telegram(bot, community.chat_id, [made.invite_link])
    return saved.url, answer.code


async def screen(session: AsyncSession, bot: Bot, sender: Sender, bot_username: str, community: Community,
                 user_id: int, locale: str, now: datetime) -> tuple[str, InlineKeyboardMarkup | None]:
    """/invite for one community, in `locale`."""
    settings = invite_settings(community)
    try:
        url, code = await member_link(session, bot, community, user_id, now)
    except DomainError as err:
        if err.code != "invite_right_missing":
            return error_text(err), None
        code = await invite_links.own_code(session, community_id=community.id, user_id=user_id, now=now)
        await tell_leaders_right(session, sender, community, now=now)
        counts = await invite_stats.counts_for(session, community_id=community.id, user_id=user_id)
        return invite_member.right_missing_screen(community, deep_link=_deep_link(bot_username, code), counts=counts,
                                                  settings=settings, locale=locale)
    counts = await invite_stats.counts_for(session, community_id=community.id, user_id=user_id)
    return invite_member.link_screen(community, url=url, deep_link=_deep_link(bot_username, code),
                                     approve_joins=settings.approve_joins, counts=counts, settings=settings,
                                     locale=locale)


def _deep_link(bot_username: str, code: str) -> str:
    key, _dash, arg = invite_links.deep_link_payload(code).partition("-")
    return deeplinks.build(bot_username, key, arg)


@router.message(Command("invite"))
async def cmd_invite(message: Message, session: AsyncSession, actor: Actor, bot: Bot, sender: Sender,
                     bot_username: str) -> None:
    mine = await members.communities_of(session, user_id=actor.user.id, active_only=True)
    if not mine:
        await message.answer(invite_member.no_group_text(actor.locale))
    elif len(mine) == 1:
        text, markup = await screen(session, bot, sender, bot_username, mine[0], actor.user.id, actor.locale,
                                    message.date)
        await message.answer(text, reply_markup=markup)
    else:
        await message.answer(invite_member.pick_text(actor.locale), reply_markup=invite_member.pick_markup(mine))


async def _active(session: AsyncSession, community_id: int) -> Community | None:
    community = await communities.get(session, community_id) if 0 < community_id < 2**31 else None
    return community if community is not None and community.active else None


@router.callback_query(InvitePick.filter())
async def on_pick(query: CallbackQuery, callback_data: InvitePick, session: AsyncSession, actor: Actor, bot: Bot,
                  sender: Sender, bot_username: str) -> None:
    community = await _active(session, callback_data.community_id)
    if community is None:
        await query.answer(translate("That community no longer exists.", actor.locale), show_alert=True)
        return
    text, markup = await screen(session, bot, sender, bot_username, community, actor.user.id, actor.locale, _now())
    await query.answer()
    await edit_or_send(query.message, text, markup)


@deeplinks.route(invite_member.SCREEN_LINK)
async def link_invite_screen(*, message: Message, arg: str, session: AsyncSession, actor: Actor, bot: Bot,
                             sender: Sender, bot_username: str, **_data) -> None:
    """The group's "My invite link" button: /invite for that group."""
    community = await _active(session, int(arg)) if arg.isascii() and arg.isdigit() and len(arg) <= 10 else None
    if community is None:
        await cmd_invite(message, session, actor, bot, sender, bot_username)
        return
    text, markup = await screen(session, bot, sender, bot_username, community, actor.user.id, actor.locale,
                                message.date)
    await message.answer(text, reply_markup=markup)


# --- people an inviter sent here ------------------------------------------------------------------

async def group_link(session: AsyncSession, bot: Bot, community: Community, intent: Intent,
                     now: datetime) -> str | None:
    """A way into the group for someone `intent` names an inviter for: the inviter's own link (made
    for them if they have none: a join through it is credited exactly), else the group's primary
    link or public address; None when the bot can offer none."""
    if intent.link_url is not None:
        return intent.link_url
    try:
        url, _code = await member_link(session, bot, community, intent.inviter_id, now)
        return url
    except DomainError:
        pass
    try:
        chat = await bot.get_chat(community.chat_id)
    except TelegramAPIError as exc:
        log.info("no link into chat %s: %s", community.chat_id, exc.message)
        return None
    if chat.invite_link:
        return chat.invite_link
    return f"https://t.me/{chat.username}" if chat.username else None


@deeplinks.route(invite_links.DEEP_LINK_PREFIX.rstrip("-"))
async def link_invited(*, message: Message, arg: str, session: AsyncSession, actor: Actor, bot: Bot,
                       **_data) -> None:
    """`/start inv-<code>`: someone a member sent. The inviter is noted (first one within a week
    wins) and credited when the person joins by a way that names nobody."""
    code = invite_links.code_from_payload(invite_links.deep_link_payload(arg))
    owner = await invite_links.inviter_for_code(session, code=code) if code else None
    community = await _active(session, owner.community_id) if owner else None
    if community is None:
        await message.answer(invite_member.invalid_code_text(actor.locale))
        return
    intent = await invites.record_intent(session, community=community, user_id=actor.user.id,
                                         inviter_id=owner.user_id, now=message.date)
    if intent.status is IntentStatus.UNKNOWN:
        await message.answer(invite_member.invalid_code_text(actor.locale))
        return
    link = inviter = None
    if intent.status in (IntentStatus.RECORDED, IntentStatus.KEPT):
        link = await group_link(session, bot, community, intent, message.date)
        inviter = (await users.by_ids(session, {intent.inviter_id})).get(intent.inviter_id)
    await message.answer(invite_member.intent_text(intent.status, community, inviter, link, actor.locale))


class TeamInviteGate:
    """The membership gate of a group-buy "join my team" checkout, for a link that names an inviter:
    someone turned away for not being in the group is noted as the inviter's invitee (their later
    join is credited, `Via.GROUP_BUY_LINK`) and, after the checkout's refusal, handed the way in."""

    def __init__(self, admits: Admits, *, session: AsyncSession, bot: Bot, user_id: int, inviter_id: int) -> None:
        self.admits, self.session, self.bot = admits, session, bot
        self.user_id, self.inviter_id = user_id, inviter_id
        self.refused: tuple[Community, Intent] | None = None

    async def __call__(self, community: Community) -> bool:
        if await self.admits(community):
            return True
        intent = await invites.record_intent(self.session, community=community, user_id=self.user_id,
                                             inviter_id=self.inviter_id, now=_now(), via=Via.GROUP_BUY_LINK)
        if intent.status in (IntentStatus.RECORDED, IntentStatus.KEPT):
            self.refused = (community, intent)
        return False

    async def follow_up(self, message: Message, locale: str) -> None:
        """After the checkout's answer: the way into the group, when the gate turned the person away."""
        if self.refused is None:
            return
        community, intent = self.refused
        link = await group_link(self.session, self.bot, community, intent, _now())
        inviter = (await users.by_ids(self.session, {intent.inviter_id})).get(intent.inviter_id)
        await message.answer(invite_member.team_invite_text(community, inviter, link, locale))
