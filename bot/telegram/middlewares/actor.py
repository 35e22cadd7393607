"""Who is acting: the user row (upserted), their membership and role here, and their language.

A message sent on behalf of a chat (an anonymous administrator, a channel) or by a bot has no
person behind it: `from` then holds a placeholder account (GroupAnonymousBot, Channel_Bot, the
service account 777000), which must not become a user. Such an update gets no actor, and a handler
that takes one is skipped rather than called without it (aiogram then tries the next handler).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.types import Message, TelegramObject
from aiogram.utils.i18n import I18n

from bot.core.locales import resolve_locale
from bot.services import members
from bot.services.seen_users import SeenUser, SeenUsers
from bot.telegram.middlewares.activity import GROUP_TYPES, profile_of
from models import Community, Member, MemberStatus


@dataclass(slots=True)
class Actor:
    user: SeenUser
    locale: str
    is_owner: bool
    # Set when the update comes from a group the bot knows.
    community: Community | None = None
    member: Member | None = None

    @property
    def is_leader_here(self) -> bool:
        return self.is_owner or bool(self.member and self.member.is_leader and self.member.status == MemberStatus.MEMBER)


class ActorMiddleware(BaseMiddleware):
    def __init__(self, *, users: SeenUsers, i18n: I18n, owner_ids: frozenset[int], default_locale: str) -> None:
        self.users, self.i18n, self.owner_ids, self.default_locale = users, i18n, owner_ids, default_locale

    async def __call__(self, handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        tg_user = data.get("event_from_user")
        if tg_user is None or tg_user.is_bot or (isinstance(event, Message) and event.sender_chat is not None):
            if "actor" in data["handler"].params:
                raise SkipHandler
            return await handler(event, data)
        chat = data.get("event_chat")
        # Writing to the bot in private is what opens the private chat for bot-initiated messages.
        opens_dm = chat is not None and chat.type == "private" and bool(data.get("event_update") and data["event_update"].message)
        user = await self.users.remember(profile_of(tg_user), now=_event_time(event), opens_dm=opens_dm)
        community = member = None
        if chat is not None and chat.type in GROUP_TYPES:
            # The read opens the update's transaction, which the handler goes on with: ending it
            # here cost a COMMIT and the handler's BEGIN, two of a check-in's eleven round trips
            # (bench/checkin_rush.py), and READ COMMITTED gives each later statement a fresh snapshot.
            community, member = await members.in_chat(data["session"], chat_id=chat.id, user_id=user.id)
        locale = resolve_locale(user, community, self.default_locale)
        actor = Actor(user=user, locale=locale, is_owner=user.id in self.owner_ids, community=community, member=member)
        data["actor"] = actor
        if box := data.get("locale_box"):
            box.locale = locale
        token = self.i18n.ctx_locale.set(locale)
        try:
            return await handler(event, data)
        finally:
            self.i18n.ctx_locale.reset(token)


def _event_time(event: TelegramObject) -> datetime:
    """The update's own date where Telegram gives one (DESIGN.md), else now."""
    date = getattr(event, "date", None)
    if isinstance(date, datetime):
        return date if date.tzinfo else date.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc)
