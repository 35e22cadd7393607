"""The end-to-end harness: the emulator paced by a human clock, the `E2E` helper that drives people
and reads what they see and what the database holds, and the `Group` a test starts from.

The fixtures that build them are in conftest.py. Import from this module (`from e2e_harness import
E2E, Group, en`), not from `conftest`: tests/ has several conftest modules, and in a run over the
whole tests/ folder `import conftest` finds whichever was loaded first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.fsm.storage.base import StorageKey
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import App
from bot.core.i18n import translate
from bot.sandbox import SimChat, SimMessage, SimUser, TelegramEmulator
from bot.telegram.middlewares.throttle import ThrottleMiddleware
from models import AuditLog, Community, Member, PickupPoint, User

TOKEN = "424242:E2E-token_for-the-emulator"
BOT_USERNAME = "community_e2e_bot"
OWNER_ID = 9_000_001
# Seconds of emulator time a simulated person takes per action.
HUMAN_STEP = 1.0


def en(msgid: str, **kwargs: object) -> str:
    return translate(msgid, "en", **kwargs)


def zh(msgid: str, **kwargs: object) -> str:
    return translate(msgid, "zh_Hans", **kwargs)


class HumanClock:
    """Wall time plus an offset that simulated people push forward as they act."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float = HUMAN_STEP) -> None:
        self.offset += seconds


class PacedEmulator(TelegramEmulator):
    """The emulator with its flood-control windows, and the deadlines to answer a button press or
    a pre-checkout, measured on the human clock."""

    def __init__(self, *args: Any, human_clock: HumanClock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.human_clock = human_clock

    def rate_limit(self, chat: SimChat, *, paid: bool = False) -> None:
        self.rate_limits.acquire(chat.id, chat.is_group, self.human_clock(), paid=paid)

    def query_clock(self) -> float:
        return self.human_clock()


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Group:
    """A group the bot administers with every right, its leader (the creator) and members."""

    chat: SimChat
    leader: SimUser
    members: list[SimUser]
    community_id: int


@dataclass
class E2E:
    emu: TelegramEmulator
    app: App
    clock: HumanClock
    owner: SimUser
    _allowed_api_errors: set[int] = field(default_factory=set)
    _expected_logged_errors: int = 0

    # ----- acting ------------------------------------------------------------------------------

    async def settle(self) -> None:
        await self.app.settle(self.emu)

    async def say(self, user: SimUser, text: str, chat: SimChat | None = None) -> SimMessage:
        """`user` writes `text` (in their private chat unless `chat` is given); waits for the bot."""
        self.clock.advance()
        msg = self.emu.send(user, chat, text)
        await self.settle()
        return msg

    async def press(self, user: SimUser, label: str, chat: SimChat | None = None,
                    message: SimMessage | None = None) -> str:
        """Press a button on the newest bot message (or `message`); returns the callback id."""
        self.clock.advance()
        target = message or self.last_msg(chat or user)
        assert target is not None, f"no bot message in {chat or user} to press {label!r} on"
        callback_id = self.emu.press(user, target, label)
        await self.settle()
        return callback_id

    async def press_data(self, user: SimUser, data: str, chat: SimChat | None = None,
                         message: SimMessage | None = None) -> str:
        """A callback with forged data, as a modified client can send."""
        self.clock.advance()
        target = message or self.last_msg(chat or user)
        assert target is not None, "press_data needs a bot message to attach the callback to"
        callback_id = self.emu.press_data(user, target, data)
        await self.settle()
        return callback_id

    async def send_raw(self, user: SimUser, chat: SimChat | None = None, **fields: Any) -> SimMessage:
        """A message the emulator's `send` will not write: no text (`service={"location": ...}`),
        or text a client would trim away. Delivered like any other message."""
        self.clock.advance()
        target = self.emu.chat(chat or user)
        msg = self.emu.new_message(target, user, **fields)
        self.emu.deliver(msg)
        self.emu.touch()
        await self.settle()
        return msg

    async def act(self, action: Callable[[], Any]) -> Any:
        """Run a control-API action (join, promote, block...) as a person would, then settle."""
        self.clock.advance()
        result = action()
        await self.settle()
        return result

    def last_update_id(self, kind: str | None = None) -> int:
        """The id of the newest update the emulator created, optionally of one kind (for `redeliver`)."""
        update_id = self.emu.updates._next_id - 1
        while kind is not None and kind not in self.emu.updates.get(update_id):
            update_id -= 1
        return update_id

    # ----- what people see ---------------------------------------------------------------------

    def last_msg(self, chat: SimChat | SimUser) -> SimMessage | None:
        return self.emu.last_bot_message(chat)

    def last(self, chat: SimChat | SimUser) -> str:
        """Visible text of the newest bot message in a chat (a user: their private chat)."""
        msg = self.emu.last_bot_message(chat)
        assert msg is not None, f"the bot never wrote in {chat}"
        return msg.visible

    def bot_texts(self, chat: SimChat | SimUser) -> list[str]:
        return [m.visible for m in self.emu.bot_messages(chat)]

    def answer(self, callback_id: str):
        answer = self.emu.callback_answer(callback_id)
        assert answer is not None, "the bot left the callback unanswered (spinner keeps spinning)"
        return answer

    # ----- what the database holds -------------------------------------------------------------

    def db(self) -> AsyncSession:
        """A fresh session: it sees what the bot committed."""
        return self.app.sessions()

    async def community(self, chat: SimChat | int) -> Community | None:
        chat_id = chat.id if isinstance(chat, SimChat) else chat
        async with self.db() as s:
            return (await s.exec(select(Community).where(Community.chat_id == chat_id))).first()

    async def community_by_id(self, community_id: int) -> Community | None:
        async with self.db() as s:
            return await s.get(Community, community_id)

    async def user_row(self, user: SimUser | int) -> User | None:
        async with self.db() as s:
            return await s.get(User, user.id if isinstance(user, SimUser) else user)

    async def member_row(self, chat: SimChat, user: SimUser) -> Member | None:
        async with self.db() as s:
            return (await s.exec(
                select(Member).join(Community, Community.id == Member.community_id)
                .where(Community.chat_id == chat.id, Member.user_id == user.id)
            )).first()

    async def members_of(self, community_id: int) -> list[Member]:
        async with self.db() as s:
            return list(await s.exec(select(Member).where(Member.community_id == community_id).order_by(Member.user_id)))

    async def memberships(self, user: SimUser) -> list[Member]:
        async with self.db() as s:
            return list(await s.exec(select(Member).where(Member.user_id == user.id)))

    async def audit(self, community_id: int | None = None, action: str | None = None) -> list[AuditLog]:
        async with self.db() as s:
            query = select(AuditLog).order_by(AuditLog.id)
            if community_id is not None:
                query = query.where(AuditLog.community_id == community_id)
            if action is not None:
                query = query.where(AuditLog.action == action)
            return list(await s.exec(query))

    async def pickup_points(self, community_id: int, *, include_removed: bool = False) -> list[PickupPoint]:
        async with self.db() as s:
            query = select(PickupPoint).where(PickupPoint.community_id == community_id)
            if not include_removed:
                query = query.where(col(PickupPoint.removed_at).is_(None))
            return list(await s.exec(query.order_by(PickupPoint.id)))

    async def fsm_state(self, user: SimUser, chat: SimChat | None = None) -> str | None:
        """The FSM state of `user` in `chat` (their private chat by default), from the real storage."""
        key = StorageKey(bot_id=self.app.bot.id, chat_id=(chat.id if chat else user.id), user_id=user.id)
        return await self.app.dp.storage.get_state(key)

    async def eventually(self, probe: Callable[[], Awaitable[Any]], *, timeout: float = 5.0, what: str = "condition") -> Any:
        """Re-run `probe` until it returns something truthy (for the periodic activity flush)."""
        deadline = time.monotonic() + timeout
        while True:
            result = await probe()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what} not reached within {timeout}s")
            await asyncio.sleep(0.05)

    # ----- world building ----------------------------------------------------------------------

    async def make_group(self, title: str = "Green Valley", *, leader: SimUser | None = None,
                         members: int | list[SimUser] = 2) -> Group:
        """A group whose creator added the bot as an administrator with all rights; members join."""
        emu = self.emu
        leader = leader or emu.add_user("Alice", last_name="Wang", username="alice_leads")
        chat = emu.create_group(title, leader)
        await self.act(lambda: emu.add_bot_to_group(chat, by=leader, admin=True))
        people = members if isinstance(members, list) else [
            emu.add_user(name, username=f"{name.lower()}_{chat.id % 10_000}") for name in ("Bob", "Carol", "Dan", "Eve")[:members]
        ]
        for person in people:
            emu.join(chat, person)
        await self.settle()
        community = await self.community(chat)
        assert community is not None and community.active
        return Group(chat=chat, leader=leader, members=people, community_id=community.id)

    # ----- end-of-test checks ------------------------------------------------------------------

    def allow_api_errors(self, *codes: int) -> None:
        """This test provokes Bot API errors with these codes on purpose."""
        self._allowed_api_errors.update(codes)

    def expect_logged_errors(self, count: int) -> None:
        self._expected_logged_errors = count

    def failed_requests(self, *codes: int) -> list:
        return [c for c in self.emu.requests if not c.ok and (not codes or c.error_code in codes)]


def utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)


def pace_throttle(app: App, clock: HumanClock) -> None:
    """Run the per-user throttle on the same human clock as the emulator: a simulated person who
    takes a second per action is not "going too fast", however quickly the test machine runs."""
    found = 0
    for observer in app.dp.observers.values():
        for middleware in observer.middleware:
            if isinstance(middleware, ThrottleMiddleware):
                middleware.clock = clock
                found += 1
    assert found, "no ThrottleMiddleware found on the dispatcher"


async def close_without_ssl_grace(self: AiohttpSession) -> None:
    """aiogram sleeps 250 ms after closing a session to let SSL connections wind down; the
    emulator speaks plain HTTP on localhost, and two bots per test would spend half a second."""
    if self._session is not None and not self._session.closed:
        await self._session.close()


