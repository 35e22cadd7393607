"""Shared state and rules of the emulator.

`EmulatorCore` owns the simulated world and the rules both sides rely on:
who the bot may write to, how messages are stored and delivered (including
group privacy mode), how membership changes turn into `my_chat_member` /
`chat_member` updates, and change notification for the `wait_*` helpers.
The Bot API methods (`api/`) and the control API (`control.py`) build on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, NamedTuple

from .errors import NOT_ENOUGH_STARS, ApiError, bad_request, forbidden
from .markup import button_label, inline_buttons
from .ratelimit import RateLimiter
from .serialize import chat_json, invite_link_json, member_json, message_json, user_json
from .state import (
    ChatMemberState,
    SimCallback,
    SimChat,
    SimFile,
    SimInviteLink,
    SimMessage,
    SimPayment,
    SimPreCheckout,
    SimUser,
)
from .transcript import Transcript
from .updates import UpdateQueue

COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{1,64}))?(?=\s|$)")
DELETE_WINDOW = 48 * 3600
PAID_MESSAGE_TENTHS = 1  # a paid broadcast message costs 0.1 Star; balances are kept in tenths to stay exact


class ApiCall(NamedTuple):
    """One Bot API request as the bot made it, and how it ended."""

    method: str
    params: dict[str, Any]
    ok: bool
    error_code: int | None
    description: str | None


class EmulatorCore:
    """State and shared rules.

    The bot id is the numeric part of `token`. `clock` supplies message dates
    and drives flood control and query expiry (pass a fake clock to test
    them without sleeping). `limits=False` disables flood control,
    `privacy_mode=False` lets the bot see every group message (as if privacy
    mode were off in BotFather), `record_transcript=False` skips the
    transcript for load tests.
    """

    def __init__(
        self,
        token: str = "123456:TEST",
        bot_username: str = "community_test_bot",
        *,
        bot_name: str = "Community Bot",
        limits: bool = True,
        clock: Callable[[], float] = time.time,
        privacy_mode: bool = True,
        record_transcript: bool = True,
    ):
        bot_id, sep, secret = token.partition(":")
        if not (bot_id.isdigit() and sep and secret):
            raise ValueError("token must look like '<bot id>:<secret>'")
        self.token = token
        self.clock = clock
        self.privacy_mode = privacy_mode
        self.me = SimUser(int(bot_id), bot_name, username=bot_username, language_code=None, is_bot=True)
        self.users: dict[int, SimUser] = {}
        self.chats: dict[int, SimChat] = {}
        self.files: dict[str, SimFile] = {}
        self.documents: list[SimFile] = []
        self.callbacks: dict[str, SimCallback] = {}
        self.pre_checkouts: dict[str, SimPreCheckout] = {}
        self.payments: dict[str, SimPayment] = {}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.descriptions: dict[tuple[str, str], str] = {}
        self.webhook_url = ""
        self.callback_ttl = 15.0  # seconds the bot has to answer a callback query
        self.pre_checkout_ttl = 10.0  # seconds the bot has to answer a pre-checkout query
        self.updates = UpdateQueue()
        self.rate_limits = RateLimiter(enabled=limits)
        self.transcript = Transcript(enabled=record_transcript)
        self.requests: list[ApiCall] = []
        self.counters: Counter[str] = Counter()
        self.paid_messages = 0  # sent with allow_paid_broadcast, each charged to the bot's Stars
        self._star_tenths = 0
        self._messages: dict[int, dict[int, SimMessage]] = {}
        self._faults: dict[str, deque[ApiError]] = {}
        self._serial = itertools.count(1)
        self._next_user_id = 1_000_001
        self._next_supergroup_id = -1_001_000_000_001
        self._next_group_id = -4_000_000_001
        self._changed: asyncio.Event | None = None
        self._inflight = 0
        self._last_activity = time.monotonic()

    # ----- bookkeeping -------------------------------------------------

    def now(self) -> int:
        return int(self.clock())

    def query_clock(self) -> float:
        """The clock a callback or pre-checkout query ages on, from when it is sent to when it is
        answered: Telegram refuses an answer past the query's deadline."""
        return self.clock()

    def serial(self) -> int:
        """A process-unique number for ids (files, callbacks, charges, links)."""
        return next(self._serial)

    def touch(self) -> None:
        """Wake everyone waiting in `wait_for`: the world changed."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_change(self, timeout: float) -> None:
        if self._changed is None:
            self._changed = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def mark_activity(self) -> None:
        """Note that the bot just did something (for `settle`)."""
        self._last_activity = time.monotonic()
        self.touch()

    def enqueue(self, kind: str, payload: dict[str, Any]) -> int | None:
        update_id = self.updates.push(kind, payload)
        self.touch()
        return update_id

    def fail_next(
        self,
        method: str,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` fail with this error."""
        parameters = {"retry_after": retry_after} if retry_after is not None else None
        queue = self._faults.setdefault(method.lower(), deque())
        queue.extend(ApiError(error_code, description, parameters) for _ in range(times))

    def take_fault(self, method: str) -> ApiError | None:
        queue = self._faults.get(method.lower())
        return queue.popleft() if queue else None

    # ----- lookups -----------------------------------------------------

    def user(self, user_id: int) -> SimUser | None:
        return self.me if user_id == self.me.id else self.users.get(user_id)

    def private_chat(self, user: SimUser) -> SimChat:
        chat = self.chats.get(user.id)
        if chat is None:
            chat = SimChat(user.id, "private", user=user, instance=str(self.serial() * 7_777_777_777))
            chat.members = {user.id: ChatMemberState("member"), self.me.id: ChatMemberState("member")}
            self.chats[user.id] = chat
        return chat

    def resolve_chat(self, chat_id: int | str) -> SimChat:
        """The chat a bot request names, or 400 "chat not found"."""
        if isinstance(chat_id, str):
            name = chat_id[1:].lower()
            for chat in self.chats.values():
                if chat.username and chat.username.lower() == name:
                    return chat
            raise bad_request("chat not found")
        chat = self.chats.get(chat_id)
        if chat is not None:
            return chat
        user = self.users.get(chat_id)
        if user is None:
            raise bad_request("chat not found")
        return self.private_chat(user)

    def bot_state(self, chat: SimChat) -> ChatMemberState:
        return chat.member(self.me.id)

    def check_access(self, chat: SimChat) -> None:
        """403 when the bot may not act in `chat`, exactly as Telegram words it."""
        if chat.type == "private":
            if chat.user.blocked_bot:
                raise forbidden("bot was blocked by the user")
            if not chat.user.started_bot:
                raise forbidden("bot can't initiate conversation with a user")
            return
        status = self.bot_state(chat).status
        if status == "kicked":
            raise forbidden(f"bot was kicked from the {chat.type} chat")
        if status == "left":
            raise forbidden(f"bot is not a member of the {chat.type} chat")

    def require_right(self, chat: SimChat, right: str, detail: str) -> None:
        if chat.is_group and not self.bot_state(chat).can(right):
            raise bad_request(detail)

    def find_message(self, chat: SimChat, message_id: int, missing: str) -> SimMessage:
        msg = self._messages.get(chat.id, {}).get(message_id)
        if msg is None or msg.deleted:
            raise bad_request(missing)
        return msg

    def latest_pinned(self, chat: SimChat) -> SimMessage | None:
        messages = self._messages.get(chat.id, {})
        for message_id in reversed(chat.pinned_ids):
            if not messages[message_id].deleted:
                return messages[message_id]
        return None

    def chat_messages(self, chat: SimChat) -> list[SimMessage]:
        return [msg for msg in self._messages.get(chat.id, {}).values() if not msg.deleted]

    def rate_limit(self, chat: SimChat, *, paid: bool = False) -> None:
        self.rate_limits.acquire(chat.id, chat.is_group, self.clock(), paid=paid)

    @property
    def bot_star_balance(self) -> float:
        """The bot's Telegram Stars, which paid broadcasts draw on (tests set it)."""
        return self._star_tenths / 10

    @bot_star_balance.setter
    def bot_star_balance(self, stars: float) -> None:
        self._star_tenths = round(stars * 10)

    def check_paid_broadcast(self) -> None:
        """Refuse a paid message the bot's balance cannot cover, before it counts against any limit."""
        if self._star_tenths < PAID_MESSAGE_TENTHS:
            raise bad_request(NOT_ENOUGH_STARS)

    def charge_paid_broadcast(self) -> None:
        self._star_tenths -= PAID_MESSAGE_TENTHS
        self.paid_messages += 1

    # ----- messages ----------------------------------------------------

    def new_message(self, chat: SimChat, from_user: SimUser | None, **fields: Any) -> SimMessage:
        msg = SimMessage(chat, chat.next_message_id, from_user, self.now(), **fields)
        chat.next_message_id += 1
        self._messages.setdefault(chat.id, {})[msg.message_id] = msg
        return msg

    def post_bot_message(self, chat: SimChat, **fields: Any) -> SimMessage:
        msg = self.new_message(chat, self.me, **fields)
        self.transcript.add("message", chat.label, "bot", describe(msg), button_rows(msg))
        self.touch()
        return msg

    def bot_receives(self, msg: SimMessage) -> bool:
        """Whether Telegram would deliver this user message to the bot (privacy mode)."""
        chat = msg.chat
        if chat.type == "private":
            return True
        state = self.bot_state(chat)
        if not state.is_member:
            return False
        if not self.privacy_mode or state.status == "administrator" or msg.service:
            return True
        if msg.reply_to is not None and msg.reply_to.from_user is self.me:
            return True
        command = COMMAND.match(msg.text or "")
        return bool(command) and command.group(2) in (None, self.me.username)

    def deliver(self, msg: SimMessage) -> int | None:
        return self.enqueue("message", message_json(msg)) if self.bot_receives(msg) else None

    def service_message(self, chat: SimChat, actor: SimUser, fields: dict[str, Any]) -> SimMessage:
        """A service message (join, leave, payment); bots get none for their own actions."""
        msg = self.new_message(chat, actor, service=fields)
        if actor is not self.me:
            self.deliver(msg)
        return msg

    # ----- membership --------------------------------------------------

    def change_member(
        self,
        chat: SimChat,
        user: SimUser,
        new: ChatMemberState,
        actor: SimUser,
        *,
        invite_link: SimInviteLink | None = None,
        via_join_request: bool = False,
    ) -> None:
        """Apply a membership change and emit the update Telegram would send.

        Changes to the bot itself become `my_chat_member`; changes to others
        become `chat_member`, which Telegram only sends to administrator bots
        (and only if allowed_updates asks for it).
        """
        old = chat.member(user.id)
        chat.members[user.id] = new
        if new.is_member:
            chat.ever_members.add(user.id)
        payload: dict[str, Any] = {
            "chat": chat_json(chat),
            "from": user_json(actor),
            "date": self.now(),
            "old_chat_member": member_json(user, old),
            "new_chat_member": member_json(user, new),
        }
        if invite_link is not None:
            payload["invite_link"] = self.invite_link_for_bot(invite_link)
        if via_join_request:
            payload["via_join_request"] = True
        if user is self.me:
            self.enqueue("my_chat_member", payload)
        elif self.bot_state(chat).status == "administrator":
            self.enqueue("chat_member", payload)
        self.touch()

    def invite_link_for_bot(self, link: SimInviteLink) -> dict[str, Any]:
        """A link as an update shows it to the bot: another administrator's with its URL's end hidden."""
        return invite_link_json(link, self.user(link.creator_id), hidden=link.creator_id != self.me.id)

    def admit(
        self,
        chat: SimChat,
        user: SimUser,
        actor: SimUser,
        *,
        invite_link: SimInviteLink | None = None,
        via_join_request: bool = False,
    ) -> SimMessage:
        """`user` becomes a member: chat_member update plus the new_chat_members service message."""
        self.change_member(
            chat, user, ChatMemberState("member"), actor, invite_link=invite_link, via_join_request=via_join_request
        )
        if invite_link is not None:
            invite_link.joined += 1
        how = " via invite link" if invite_link is not None else ""
        self.transcript.add("notice", chat.label, user.full_name, f"{user.full_name} joined{how}")
        return self.service_message(chat, user, {"new_chat_members": [user_json(user)]})


def describe(msg: SimMessage) -> str:
    """One-line summary of a message's content for the transcript."""
    parts = []
    if msg.photo is not None:
        parts.append("[photo]")
    if msg.document is not None:
        parts.append(f"[document {msg.document.file_name or ''}]".replace(" ]", "]"))
    if msg.invoice is not None:
        invoice = msg.invoice
        parts.append(f"[invoice] {invoice['title']} — {format_amount(invoice['total_amount'], invoice['currency'])}")
    if msg.visible:
        parts.append(msg.visible)
    return " ".join(parts)


def format_amount(amount: int, currency: str) -> str:
    return f"{amount} {currency}" if currency == "XTR" else f"{amount / 100:.2f} {currency}"


def button_rows(msg: SimMessage) -> list[list[str]]:
    """Inline buttons as `[ label ]`; reply-keyboard rows are prefixed with ⌨."""
    markup = msg.reply_markup or {}
    if "keyboard" in markup:
        return [["⌨", *(f"[ {b if isinstance(b, str) else b['text']} ]" for b in row)] for row in markup["keyboard"]]
    return [[button_label(button) for button in row] for row in inline_buttons(markup)]
