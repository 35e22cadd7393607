"""Feeds every group message and every press of a button in a group to the activity tracker: a line
in its journal and memory, the tracker writes to the database in batches."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message

from bot.services.activity import ActivityTracker, Sighting
from bot.services.users import Profile

GROUP_TYPES = ("group", "supergroup")


class ActivityMiddleware(BaseMiddleware):
    def __init__(self, tracker: ActivityTracker) -> None:
        self.tracker = tracker

    async def __call__(self, handler, event: Message | CallbackQuery, data: dict[str, Any]) -> Any:
        if isinstance(event, CallbackQuery):
            self.record_press(event)
        else:
            self.record(event)
        return await handler(event, data)

    def record_press(self, query: CallbackQuery) -> None:
        """A button pressed in a group shows the presser is there, like a message; it is not one."""
        chat = query.message.chat if query.message is not None else None
        if chat is None or chat.type not in GROUP_TYPES or query.from_user.is_bot:
            return
        # A press carries no date of its own: it happened when it reached the bot.
        self.tracker.record(chat_id=chat.id, chat_title=chat.title or "", profile=profile_of(query.from_user),
                            at=datetime.now(timezone.utc), messages=0)

    def record(self, event: Message) -> None:
        sighting = self.sighting(event)
        if sighting is not None:
            self.tracker.record_many((sighting,))

    @staticmethod
    def sighting(event: Message) -> Sighting | None:
        """What a message tells the tracker, if anything (the chatter lane records many at once)."""
        user = event.from_user
        # Join and leave notices carry the joiner (or whoever added the bot) as sender; they are
        # not something the member wrote, and the onboarding handlers record them as membership.
        membership_notice = bool(event.new_chat_members) or event.left_chat_member is not None
        if (event.chat.type in GROUP_TYPES and user is not None and not user.is_bot and event.sender_chat is None
                and not membership_notice):
            return Sighting(event.chat.id, event.chat.title or "", profile_of(user), event.date)
        return None


def profile_of(user) -> Profile:
    return Profile(id=user.id, first_name=user.first_name or "", last_name=user.last_name,
                   username=user.username, language_code=user.language_code)
