"""/points in private: the balance in each community (the member picks one when they have several),
the latest entries, the rewards with Redeem, and the coupon a redeem gives.

A redeem is confirmed on its own screen, whose button carries the cost the member saw (a price the
leader changed since is refused, not charged) and a key naming that confirmation: a double tap, or
the same confirmation delivered twice, redeems once. Every refusal is said in words and nothing is
taken (bot/services/points.py).
"""

from __future__ import annotations

import secrets

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import members, points
from bot.services.errors import DomainError
from bot.telegram.middlewares.actor import Actor
from bot.views import deeplinks
from bot.views.checkin_keyboards import PointsAction, PointsNav
from bot.views.checkin_points import points_screen, redeem_confirm, redeemed_text
from bot.views.checkin_text import no_community_text
from bot.views.errors_text import error_text
from bot.views.render import edit_or_send
from handlers.group.checkin import Clock, received_at
from models import Community

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")
router.callback_query.filter(F.message.chat.type == "private")

NONCE_MAX = 2**31


async def _mine(session: AsyncSession, user_id: int, community_id: int) -> Community | None:
    """The community, if it is one of the member's own (callback data is the client's word)."""
    listed = await members.communities_of(session, user_id=user_id, active_only=True)
    return next((c for c in listed if c.id == community_id), None)


def _picker(communities: list[Community]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=community.title or str(community.chat_id),
        callback_data=PointsNav(action=PointsAction.SHOW, community_id=community.id).pack())]
        for community in communities])


@router.message(Command("points"))
async def cmd_points(message: Message, session: AsyncSession, actor: Actor) -> None:
    communities = await members.communities_of(session, user_id=actor.user.id, active_only=True)
    if not communities:
        await message.answer(no_community_text(actor.locale))
    elif len(communities) == 1:
        text, markup = await points_screen(session, communities[0], actor.user.id, actor.locale, message.date)
        await message.answer(text, reply_markup=markup)
    else:
        await message.answer(_("Points in which group?"), reply_markup=_picker(communities))


@deeplinks.route("points")
async def link_points(*, message: Message, arg: str, session: AsyncSession, actor: Actor, **_data) -> None:
    community = await _mine(session, actor.user.id, int(arg)) if arg.isdigit() and len(arg) < 10 else None
    if community is None:
        await cmd_points(message, session, actor)
        return
    text, markup = await points_screen(session, community, actor.user.id, actor.locale, message.date)
    await message.answer(text, reply_markup=markup)


@router.callback_query(PointsNav.filter())
async def on_points(query: CallbackQuery, callback_data: PointsNav, session: AsyncSession, actor: Actor,
                    clock: Clock | None = None) -> None:
    community = await _mine(session, actor.user.id, callback_data.community_id)
    if community is None:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    now, user_id, locale = received_at(clock), actor.user.id, actor.locale
    if callback_data.action is PointsAction.SHOW:
        await query.answer()
        await edit_or_send(query.message, *await points_screen(session, community, user_id, locale, now))
        return
    try:
        if callback_data.action is PointsAction.REWARD:
            reward = await points.get_reward(session, community_id=community.id, reward_id=callback_data.reward_id)
            balance = await points.balance(session, community_id=community.id, user_id=user_id)
            await query.answer()
            text, markup = redeem_confirm(community, reward, balance, locale, nonce=secrets.randbelow(NONCE_MAX))
            await edit_or_send(query.message, text, markup)
            return
        key = f"{query.message.message_id}-{callback_data.nonce}"
        redeemed = await points.redeem(session, community=community, user_id=user_id, reward_id=callback_data.reward_id,
                                       now=now, cost_seen=callback_data.cost, key=key)
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        if err.code != "points_redeem_repeated":
            await edit_or_send(query.message, *await points_screen(session, community, user_id, locale, now))
        return
    await query.answer()
    await edit_or_send(query.message, redeemed_text(community, redeemed, locale))
