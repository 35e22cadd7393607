"""Fetches a group's creator and administrators from Telegram and hands them to the service."""

from __future__ import annotations

import logging
from datetime import datetime

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import communities
from bot.telegram.middlewares.activity import profile_of
from models import Community

log = logging.getLogger(__name__)


async def refresh(bot: Bot, session: AsyncSession, community: Community, *, now: datetime) -> bool:
    """True when the leader list was refreshed; False when Telegram would not tell us."""
    try:
        admins = await bot.get_chat_administrators(community.chat_id)
    except TelegramAPIError as exc:
        log.warning("getChatAdministrators failed for chat %s: %s", community.chat_id, exc)
        return False
    profiles = [profile_of(a.user) for a in admins if not a.user.is_bot]
    await communities.set_leaders(session, community_id=community.id, admins=profiles, now=now)
    return True
