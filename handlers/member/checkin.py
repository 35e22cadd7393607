"""Checking in from the private chat: `/checkin` (the member picks the group when they are in
several), the reminder's button, making up a missed day (补签) and `/top` (one's own standing).

`/checkin` counts for the day of the message's date; a button press for the day the bot receives
it. Every press re-reads the community and checks membership: callback data comes from the client.
"""

from __future__ import annotations

from datetime import datetime

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import translate
from bot.services import checkin_member, checkins, members
from bot.services.activity import ActivityTracker
from bot.services.checkin_cards import mark_refresh
from bot.services.errors import DomainError
from bot.telegram.membership import MembershipCheck
from bot.telegram.middlewares.actor import Actor
from bot.views import deeplinks
from bot.views.checkin_keyboards import CheckinPick, MakeUp, MakeUpAction, code_day
from bot.views.checkin_text import (
    made_up_text,
    makeup_confirm,
    makeup_markup,
    makeup_text,
    no_community_text,
    pick_markup,
    pick_text,
    ranks_text,
    result_markup,
    result_text,
)
from bot.views.errors_text import error_text
from bot.views.render import edit_or_send
from handlers.group.checkin import Clock, received_at, record
from models import Community

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")


async def _community(session: AsyncSession, community_id: int) -> Community | None:
    community = await session.get(Community, community_id) if 0 < community_id < 2**31 else None
    return community if community is not None and community.active else None


async def _result_screen(session: AsyncSession, bot: Bot, membership: MembershipCheck, tracker: ActivityTracker,
                         actor: Actor, community: Community, at: datetime,
                         now: datetime) -> tuple[str, InlineKeyboardMarkup]:
    result = await record(session, bot, membership, tracker, actor, community, at, now)
    choice = await checkin_member.makeup_choice(session, community=community, user_id=actor.user.id, at=at)
    return result_text(result, community, actor.locale), result_markup(community, choice, actor.locale)


@router.message(Command("checkin"))
async def cmd_checkin(message: Message, session: AsyncSession, actor: Actor, bot: Bot, membership: MembershipCheck,
                      tracker: ActivityTracker, clock: Clock | None = None) -> None:
    communities = await members.communities_of(session, user_id=actor.user.id, active_only=True)
    if not communities:
        await message.answer(no_community_text(actor.locale))
    elif len(communities) == 1:
        text, markup = await _result_screen(session, bot, membership, tracker, actor, communities[0], message.date,
                                            received_at(clock))
        await message.answer(text, reply_markup=markup)
    else:
        await message.answer(pick_text(actor.locale), reply_markup=pick_markup(communities))


@deeplinks.route("checkin")
async def link_checkin(*, message: Message, session: AsyncSession, actor: Actor, bot: Bot,
                       membership: MembershipCheck, tracker: ActivityTracker, **data) -> None:
    await cmd_checkin(message, session, actor, bot, membership, tracker, data.get("clock"))


@router.callback_query(CheckinPick.filter())
async def on_pick(query: CallbackQuery, callback_data: CheckinPick, session: AsyncSession, actor: Actor, bot: Bot,
                  membership: MembershipCheck, tracker: ActivityTracker, clock: Clock | None = None) -> None:
    community = await _community(session, callback_data.community_id)
    if community is None:
        await query.answer(translate("That community no longer exists.", actor.locale), show_alert=True)
        return
    now = received_at(clock)
    text, markup = await _result_screen(session, bot, membership, tracker, actor, community, now, now)
    await query.answer()
    await edit_or_send(query.message, text, markup)


@router.callback_query(MakeUp.filter())
async def on_make_up(query: CallbackQuery, callback_data: MakeUp, session: AsyncSession, actor: Actor,
                     clock: Clock | None = None) -> None:
    community = await _community(session, callback_data.community_id)
    day = code_day(callback_data.day) if callback_data.action is not MakeUpAction.LIST else None
    if community is None or (callback_data.action is not MakeUpAction.LIST and day is None):
        await query.answer(translate("This button is no longer valid.", actor.locale), show_alert=True)
        return
    now, user_id, locale = received_at(clock), actor.user.id, actor.locale
    choice = await checkin_member.makeup_choice(session, community=community, user_id=user_id, at=now)
    if callback_data.action is MakeUpAction.LIST:
        await query.answer()
        await edit_or_send(query.message, makeup_text(choice, locale), makeup_markup(choice, locale))
    elif callback_data.action is MakeUpAction.PICK:
        await query.answer()
        await edit_or_send(query.message, *makeup_confirm(choice, day, locale))
    else:
        try:
            made = await checkins.make_up(session, community=community, user_id=user_id, day=day, at=now)
        except DomainError as err:
            # Only the alert: the screen may already show what the other tap of a double tap made.
            await query.answer(error_text(err), show_alert=True)
            return
        await query.answer()
        await mark_refresh(session, community_id=community.id, day=choice.today)
        await edit_or_send(query.message, made_up_text(made, community, locale))


@router.message(Command("top"))
async def cmd_top(message: Message, session: AsyncSession, actor: Actor) -> None:
    ranks = await checkins.my_ranks(session, user_id=actor.user.id, now=message.date)
    await message.answer(ranks_text(ranks, actor.locale))
