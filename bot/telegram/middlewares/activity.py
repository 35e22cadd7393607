"""Feeds every group message to the activity tracker: memory only, the tracker writes in batches."""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message

from bot.services.activity import ActivityTracker
from bot.services.users import Profile

GROUP_TYPES = ("group", "supergroup")


class ActivityMiddleware(BaseMiddleware):
    def __init__(self, tracker: ActivityTracker) -> None:
        self.tracker = tracker

    async def __call__(self, handler, event: Message, data: dict[str, Any]) -> Any:
        self.record(event)
        return await handler(event, data)

    def record(self, event: Message) -> None:
        user = event.from_user
        # Join and leave notices carry the joiner (or whoever added the bot) as sender; they are
        # not something the member wrote, and the onboarding handlers record them as membership.
        membership_notice = bool(event.new_chat_members) or event.left_chat_member is not None
        if (event.chat.type in GROUP_TYPES and user is not None and not user.is_bot and event.sender_chat is None
                and not membership_notice):
            self.tracker.record(
                chat_id=event.chat.id,
                chat_title=event.chat.title or "",
                profile=profile_of(user),
                at=event.date,
            )


def profile_of(user) -> Profile:
    return Profile(id=user.id, first_name=user.first_name or "", last_name=user.last_name,
                   username=user.username, language_code=user.language_code)
