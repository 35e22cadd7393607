"""Commands sent on behalf of a chat rather than by a person; first of all routers.

An administrator who remains anonymous writes as the group itself: the bot cannot tell who it is,
so it cannot buy, list or check a role for them. They are told how to be heard (turn anonymity
off, or use the leader menu in private), once in a while: every anonymous administrator of a
group looks the same, the whole group reads the answer, and repeating it would spend the group's
20 messages a minute. A channel (its posts forwarded into its discussion group, or a member
writing as their channel) is not a person either, and nobody reads a reply to it: it is ignored.
"""

from __future__ import annotations

from datetime import timedelta

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.config import Settings
from bot.core.i18n import translate
from bot.services import communities
from bot.telegram import commands
from bot.telegram.group_reply import reply_in_group
from bot.telegram.sender import Sender
from bot.views import deeplinks

router = Router(name=__name__)
router.message.filter(F.sender_chat, F.chat.type.in_({"group", "supergroup"}))

HINT_EVERY = timedelta(minutes=10)


@router.message(Command(*(c.name for c in commands.COMMANDS)))
async def on_command_from_a_chat(message: Message, session: AsyncSession, state: FSMContext, settings: Settings,
                                 bot_username: str, sender: Sender) -> None:
    if message.sender_chat.id != message.chat.id:
        return
    # The FSM record of "the anonymous administrator in this group" (shared by every worker) keeps
    # when the group was last told.
    told = (await state.get_data()).get("anonymous_hint_at")
    now = message.date.timestamp()
    if told is not None and now - told < HINT_EVERY.total_seconds():
        return
    await state.update_data(anonymous_hint_at=now)
    community = await communities.get_by_chat(session, message.chat.id)
    locale = community.default_locale if community else settings.DEFAULT_LOCALE
    text = translate("I cannot tell who you are while you write anonymously, so commands do not work that way. "
                     "Turn off “Remain anonymous” in your administrator rights, or use the leader menu in a private "
                     "chat with me.", locale)
    markup = None
    if community is not None:
        markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
            text=translate("Open the leader menu", locale), url=deeplinks.build(bot_username, "admin", community.id))]])
    reply_in_group(sender, message, text, markup)
