"""Whether someone who follows a deep link into a community's checkout is in that group.

A member row that says "member" is enough. Without one (people who were in the group before the
bot joined and never wrote there) or with one that says they left, Telegram is asked with
getChatMember; a present member gets their row then. Answers are kept for a while, and people who
follow several links at once share one request, so a burst of links costs one call per user and
group. A failed request never blocks someone the bot has no reason to doubt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ChatMember
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import members
from bot.services.users import Profile
from bot.telegram.middlewares.activity import profile_of
from models import Community, MemberStatus

log = logging.getLogger(__name__)

# How long an answer is trusted. Leaving and joining reach the bot as updates and are written to
# member rows, which are read first; this only bounds how long someone who joined without the bot
# noticing is kept out.
ANSWER_SECONDS = 300.0
# A failing Bot API is not asked again for every link.
FAILURE_SECONDS = 60.0
CACHE_SIZE = 50_000

Admits = Callable[[Community], Awaitable[bool]]


def presence(member: ChatMember) -> str:
    """The member's status as a plain string, "left" for a restricted user who is not in the group:
    restrictions outlast leaving, and only `is_member` tells."""
    status = getattr(member.status, "value", member.status)
    if status == "restricted" and not getattr(member, "is_member", True):
        return "left"
    return status


class Verdict(Enum):
    PRESENT = "present"
    GONE = "gone"
    UNKNOWN = "unknown"  # Telegram could not be asked


@dataclass(frozen=True, slots=True)
class Answer:
    verdict: Verdict
    status: str
    profile: Profile | None
    asked_at: float  # wall-clock seconds, comparable with a member row's left_at
    expires: float


class MembershipCheck:
    """One per dispatcher: the answers it keeps are about this bot's groups."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._answers: OrderedDict[tuple[int, int], Answer] = OrderedDict()
        self._asking: dict[tuple[int, int], asyncio.Task[Answer]] = {}

    def gate(self, bot: Bot, session: AsyncSession, user_id: int) -> Admits:
        """`admits` for one user, for a checkout that learns its community only once it has loaded it."""
        async def admits(community: Community) -> bool:
            return await self.admits(bot, session, community=community, user_id=user_id)
        return admits

    async def admits(self, bot: Bot, session: AsyncSession, *, community: Community, user_id: int) -> bool:
        """False only when the user is known to be out of the group; a present member is recorded."""
        member = await members.get(session, community_id=community.id, user_id=user_id)
        if member is not None and member.status == MemberStatus.MEMBER:
            return True
        answer = await self._ask(bot, community.chat_id, user_id)
        if answer.verdict is Verdict.PRESENT and member is not None and member.left_at is not None \
                and member.left_at.timestamp() + 1 > answer.asked_at:
            # They left after Telegram was asked (update dates are whole seconds): out of date.
            self._answers.pop((community.chat_id, user_id), None)
            answer = await self._ask(bot, community.chat_id, user_id)
        if answer.verdict is Verdict.UNKNOWN:
            # Telegram's hiccup is no reason to turn a buyer away; a departure the bot saw stands.
            return member is None
        if answer.verdict is Verdict.GONE:
            return False
        await members.on_member_status(session, community=community, profile=answer.profile,
                                       old_status=member.status if member else "left", new_status=answer.status,
                                       now=datetime.now(timezone.utc))
        return True

    async def _ask(self, bot: Bot, chat_id: int, user_id: int) -> Answer:
        key = (chat_id, user_id)
        known = self._answers.get(key)
        if known is not None and known.expires > self.clock():
            return known
        task = self._asking.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch(bot, chat_id, user_id))
            self._asking[key] = task
            task.add_done_callback(lambda _done: self._asking.pop(key, None))
        # Shielded: one caller giving up (its update cancelled) must not cancel the others' answer.
        return await asyncio.shield(task)

    async def _fetch(self, bot: Bot, chat_id: int, user_id: int) -> Answer:
        asked_at = self.clock()
        try:
            found = await bot.get_chat_member(chat_id, user_id)
        except TelegramAPIError as exc:
            log.warning("getChatMember failed for user %s in chat %s: %s", user_id, chat_id, exc)
            answer = Answer(Verdict.UNKNOWN, "", None, asked_at, asked_at + FAILURE_SECONDS)
        else:
            status = presence(found)
            verdict = Verdict.PRESENT if status in members.PRESENT_STATUSES else Verdict.GONE
            answer = Answer(verdict, status, profile_of(found.user), asked_at, asked_at + ANSWER_SECONDS)
        self._answers[(chat_id, user_id)] = answer
        self._answers.move_to_end((chat_id, user_id))
        while len(self._answers) > CACHE_SIZE:
            self._answers.popitem(last=False)
        return answer
