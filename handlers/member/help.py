"""/help: each role sees its own commands, in its own language."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import communities
from bot.telegram import commands, group_reply
from bot.telegram.middlewares.actor import Actor
from bot.telegram.sender import Sender

router = Router(name=__name__)


async def roles_of(session: AsyncSession, actor: Actor, *, private: bool) -> set[str]:
    roles = {commands.MEMBER}
    if actor.is_owner:
        roles.add(commands.OWNER)
    if private:
        if await communities.manageable(session, user_id=actor.user.id, is_owner=False):
            roles.add(commands.LEADER)
    elif actor.is_leader_here:
        roles.add(commands.LEADER)
    return roles


def _section(title: str, listed: list[commands.Command]) -> str:
    lines = [f"<b>{title}</b>"] + [f"/{c.name} — {_(c.description)}" for c in listed]
    return "\n".join(lines)


@router.message(Command("help"))
async def cmd_help(message: Message, session: AsyncSession, actor: Actor, sender: Sender) -> None:
    private = message.chat.type == "private"
    chat = commands.PRIVATE if private else commands.GROUP
    roles = await roles_of(session, actor, private=private)
    parts = [_section(_("Commands for members"), commands.for_role({commands.MEMBER}, chat))]
    leader_only = [c for c in commands.for_role(roles - {commands.MEMBER}, chat) if commands.MEMBER not in c.roles]
    if leader_only:
        title = _("Commands for the bot's owner") if commands.OWNER in roles and commands.LEADER not in roles else _("Commands for leaders")
        parts.append(_section(title, leader_only))
    if not private:
        parts.append(_("More commands are in a private chat with me."))
    await group_reply.answer(message, sender, "\n\n".join(parts))
