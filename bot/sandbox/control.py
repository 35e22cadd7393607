"""The control API: simulated users act, tests inspect and wait.

Everything here is what a Telegram *client* (or Telegram itself) would do:
users start the bot, write, press buttons, join and leave groups, pay;
admins add, promote and remove the bot. Each action produces the updates
Telegram would send, subject to the bot's membership, rights, privacy mode
and allowed_updates. Misuse that no real client permits raises SandboxError.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from .core import COMMAND, ApiCall, EmulatorCore, format_amount
from .errors import SandboxError
from .markup import find_button
from .serialize import chat_json, message_json, user_json
from .state import (
    CHANNEL_BOT,
    GROUP_ANONYMOUS_BOT,
    TELEGRAM_SERVICE,
    CallbackAnswer,
    ChatMemberState,
    SimCallback,
    SimChat,
    SimInviteLink,
    SimMessage,
    SimPayment,
    SimPreCheckout,
    SimUser,
    admin_rights,
    invite_link_name,
    restriction,
)

ChatLike = SimChat | SimUser | int


class SimulationControls(EmulatorCore):
    """User-side actions, inspection and waiting; mixed into TelegramEmulator."""

    # ----- users and chats ---------------------------------------------

    def add_user(
        self,
        first_name: str,
        *,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = "en",
        user_id: int | None = None,
    ) -> SimUser:
        if user_id is None:
            while self._next_user_id in self.users:
                self._next_user_id += 1
            user_id = self._next_user_id
            self._next_user_id += 1
        elif user_id in self.users or user_id == self.me.id:
            raise SandboxError(f"user id {user_id} is taken")
        user = SimUser(user_id, first_name, last_name, username, language_code)
        self.users[user_id] = user
        return user

    def create_group(
        self, title: str, creator: SimUser, *, supergroup: bool = True, username: str | None = None
    ) -> SimChat:
        if supergroup:
            chat_id = self._next_supergroup_id
            self._next_supergroup_id -= 1
        else:
            chat_id = self._next_group_id
            self._next_group_id -= 1
        chat = SimChat(
            chat_id,
            "supergroup" if supergroup else "group",
            title,
            username=username,
            instance=str(self.serial() * 7_777_777_777),
        )
        chat.members[creator.id] = ChatMemberState("creator")
        chat.ever_members.add(creator.id)
        self.chats[chat_id] = chat
        self.transcript.add("notice", chat.label, creator.full_name, f"{creator.full_name} created the group")
        return chat

    def chat_for(self, user: SimUser) -> SimChat:
        """The user's private chat with the bot."""
        return self.private_chat(user)

    def chat(self, chat: ChatLike) -> SimChat:
        """Normalise a SimChat, a SimUser (their private chat) or a chat id."""
        if isinstance(chat, SimChat):
            return chat
        if isinstance(chat, SimUser):
            return self.private_chat(chat)
        if chat in self.chats:
            return self.chats[chat]
        if chat in self.users:
            return self.private_chat(self.users[chat])
        raise SandboxError(f"unknown chat {chat!r}")

    def _require_rights(self, chat: SimChat, by: SimUser, right: str) -> None:
        if not chat.member(by.id).can(right):
            raise SandboxError(f"{by.full_name} lacks {right} in {chat.label}")

    # ----- the bot's membership ----------------------------------------

    def add_bot_to_group(
        self, chat: SimChat, by: SimUser, *, admin: bool = False, rights: dict[str, bool] | None = None
    ) -> None:
        """`by` adds the bot; as admin, rights default to all granted except overrides."""
        if self.bot_state(chat).is_member:
            raise SandboxError(f"the bot is already in {chat.label}")
        if admin:
            self._require_rights(chat, by, "can_promote_members")
        elif not chat.member(by.id).is_member:
            raise SandboxError(f"{by.full_name} is not in {chat.label}")
        new = ChatMemberState("administrator", admin_rights(rights)) if admin else ChatMemberState("member")
        self.change_member(chat, self.me, new, by)
        role = " as administrator" if admin else ""
        self.transcript.add("notice", chat.label, by.full_name, f"{by.full_name} added the bot{role}")
        self.service_message(chat, by, {"new_chat_members": [user_json(self.me)]})

    def promote_bot(self, chat: SimChat, by: SimUser, rights: dict[str, bool] | None = None) -> None:
        if not self.bot_state(chat).is_member:
            raise SandboxError(f"the bot is not in {chat.label}")
        self._require_rights(chat, by, "can_promote_members")
        self.change_member(chat, self.me, ChatMemberState("administrator", admin_rights(rights)), by)
        self.transcript.add("notice", chat.label, by.full_name, f"{by.full_name} made the bot an administrator")

    def demote_bot(self, chat: SimChat, by: SimUser) -> None:
        if self.bot_state(chat).status != "administrator":
            raise SandboxError(f"the bot is not an administrator of {chat.label}")
        self._require_rights(chat, by, "can_promote_members")
        self.change_member(chat, self.me, ChatMemberState("member"), by)
        self.transcript.add("notice", chat.label, by.full_name, f"{by.full_name} demoted the bot")

    def remove_bot(self, chat: SimChat, by: SimUser) -> None:
        """Supergroups keep removed members banned ("kicked"); basic groups mark them "left"."""
        if not self.bot_state(chat).is_member:
            raise SandboxError(f"the bot is not in {chat.label}")
        self._require_rights(chat, by, "can_restrict_members")
        self.change_member(chat, self.me, ChatMemberState("kicked" if chat.type == "supergroup" else "left"), by)
        self.transcript.add("notice", chat.label, by.full_name, f"{by.full_name} removed the bot")
        self.service_message(chat, by, {"left_chat_member": user_json(self.me)})

    # ----- other members -----------------------------------------------

    def _usable_link(self, chat: SimChat, invite_link: str) -> SimInviteLink:
        link = chat.invite_links.get(invite_link)
        if link is None:
            raise SandboxError(f"{invite_link} is not an invite link of {chat.label}")
        if link.is_revoked or (link.expire_date and link.expire_date <= self.now()):
            raise SandboxError(f"{invite_link} has expired or was revoked")
        if link.member_limit and link.joined >= link.member_limit:
            raise SandboxError(f"{invite_link} reached its member limit")
        return link

    def join(
        self, chat: SimChat, user: SimUser, *, invite_link: str | None = None, via_join_request: bool = False
    ) -> SimMessage:
        """`user` joins; returns the new_chat_members service message.

        As Telegram reports it, the `chat_member` update names the invite link only for a first
        join into a private group: apps join a public group directly even when opened from a link,
        and someone who was a member before comes back without the link being reported.
        """
        state = chat.member(user.id)
        if state.is_member:
            raise SandboxError(f"{user.full_name} is already in {chat.label}")
        if state.status == "kicked":
            raise SandboxError(f"{user.full_name} is banned from {chat.label}")
        link = self._usable_link(chat, invite_link) if invite_link else None
        if link is not None and link.creates_join_request and not via_join_request:
            raise SandboxError(f"{invite_link} requires approval: use request_join()")
        if link is not None and not via_join_request and (chat.is_public or user.id in chat.ever_members):
            link = None
        return self.admit(chat, user, user, invite_link=link, via_join_request=via_join_request)

    def add_member(self, chat: SimChat, user: SimUser, by: SimUser) -> SimMessage:
        """An administrator adds `user` from their contacts: the update comes `from` them, with no link."""
        if chat.member(user.id).is_member:
            raise SandboxError(f"{user.full_name} is already in {chat.label}")
        self._require_rights(chat, by, "can_invite_users")
        self.change_member(chat, user, ChatMemberState("member"), by)
        self.transcript.add("notice", chat.label, by.full_name, f"{by.full_name} added {user.full_name}")
        return self.service_message(chat, by, {"new_chat_members": [user_json(user)]})

    def create_invite_link(
        self, chat: SimChat, by: SimUser, *, name: str | None = None, creates_join_request: bool = False
    ) -> SimInviteLink:
        """An administrator makes a link in their app: updates show it to the bot with its end hidden."""
        self._require_rights(chat, by, "can_invite_users")
        link = SimInviteLink(f"https://t.me/+{secrets.token_urlsafe(12)}", chat.id, by.id,
                             name=invite_link_name(name), creates_join_request=creates_join_request)
        chat.invite_links[link.link] = link
        return link

    def primary_link(self, chat: SimChat) -> SimInviteLink:
        """The group's primary link, the creator's, made the first time someone asks for it."""
        for link in chat.invite_links.values():
            if link.is_primary and not link.is_revoked:
                return link
        creator = next(uid for uid, state in chat.members.items() if state.status == "creator")
        link = SimInviteLink(f"https://t.me/+{secrets.token_urlsafe(12)}", chat.id, creator, is_primary=True)
        chat.invite_links[link.link] = link
        return link

    def request_join(self, chat: SimChat, user: SimUser, *, invite_link: str | None = None) -> None:
        """`user` asks to join; the bot gets chat_join_request if it may approve it."""
        link = self._usable_link(chat, invite_link) if invite_link else None
        chat.join_requests[user.id] = link
        payload: dict[str, Any] = {
            "chat": chat_json(chat),
            "from": user_json(user),
            "user_chat_id": user.id,
            "date": self.now(),
        }
        if link is not None:
            payload["invite_link"] = self.invite_link_for_bot(link)
        if self.bot_state(chat).can("can_invite_users"):
            self.enqueue("chat_join_request", payload)
        self.transcript.add("notice", chat.label, user.full_name, f"{user.full_name} asked to join")

    def leave(self, chat: SimChat, user: SimUser) -> None:
        state = chat.member(user.id)
        if not state.is_member:
            raise SandboxError(f"{user.full_name} is not in {chat.label}")
        gone = replace(state, in_chat=False) if state.status == "restricted" else ChatMemberState("left")
        self.change_member(chat, user, gone, user)
        self.transcript.add("notice", chat.label, user.full_name, f"{user.full_name} left")
        self.service_message(chat, user, {"left_chat_member": user_json(user)})

    def kick(self, chat: SimChat, user: SimUser, by: SimUser) -> None:
        if not chat.member(user.id).is_member:
            raise SandboxError(f"{user.full_name} is not in {chat.label}")
        self._require_rights(chat, by, "can_restrict_members")
        self.change_member(chat, user, ChatMemberState("kicked"), by)
        self.transcript.add("notice", chat.label, by.full_name, f"{by.full_name} removed {user.full_name}")
        self.service_message(chat, by, {"left_chat_member": user_json(user)})

    def promote(self, chat: SimChat, user: SimUser, by: SimUser, rights: dict[str, bool] | None = None) -> None:
        if not chat.member(user.id).is_member:
            raise SandboxError(f"{user.full_name} is not in {chat.label}")
        self._require_rights(chat, by, "can_promote_members")
        self.change_member(chat, user, ChatMemberState("administrator", admin_rights(rights)), by)
        self.transcript.add("notice", chat.label, by.full_name, f"{by.full_name} promoted {user.full_name}")

    def restrict(self, chat: SimChat, user: SimUser, by: SimUser, permissions: dict[str, bool] | None = None) -> None:
        """An administrator restricts `user` (by default to reading only), as restrictChatMember does."""
        state = chat.member(user.id)
        if chat.type != "supergroup" or state.status in ("creator", "administrator"):
            raise SandboxError(f"{user.full_name} cannot be restricted in {chat.label}")
        self._require_rights(chat, by, "can_restrict_members")
        self.change_member(chat, user, restriction(state, permissions or {}), by)
        self.transcript.add("notice", chat.label, by.full_name, f"{by.full_name} restricted {user.full_name}")

    def demote(self, chat: SimChat, user: SimUser, by: SimUser) -> None:
        if chat.member(user.id).status != "administrator":
            raise SandboxError(f"{user.full_name} is not an administrator of {chat.label}")
        self._require_rights(chat, by, "can_promote_members")
        self.change_member(chat, user, ChatMemberState("member"), by)
        self.transcript.add("notice", chat.label, by.full_name, f"{by.full_name} demoted {user.full_name}")

    # ----- private chat state ------------------------------------------

    def block_bot(self, user: SimUser) -> None:
        if user.blocked_bot:
            raise SandboxError(f"{user.full_name} already blocked the bot")
        user.blocked_bot = True
        chat = self.private_chat(user)
        self.change_member(chat, self.me, ChatMemberState("kicked"), user)
        self.transcript.add("notice", chat.label, user.full_name, f"{user.full_name} blocked the bot")

    def unblock_bot(self, user: SimUser) -> None:
        if not user.blocked_bot:
            raise SandboxError(f"{user.full_name} has not blocked the bot")
        user.blocked_bot = False
        chat = self.private_chat(user)
        self.change_member(chat, self.me, ChatMemberState("member"), user)
        self.transcript.add("notice", chat.label, user.full_name, f"{user.full_name} unblocked the bot")

    # ----- messages and buttons ----------------------------------------

    def send(
        self, user: SimUser, chat: ChatLike | None = None, text: str = "", *, reply_to: SimMessage | None = None
    ) -> SimMessage:
        """`user` writes `text`; in a private chat this also means they started the bot."""
        target = self.chat(user if chat is None else chat)
        if target.type == "private":
            if target.user is not user:
                raise SandboxError(f"only {target.user.full_name} writes in {target.label}")
            if user.blocked_bot:
                raise SandboxError(f"{user.full_name} blocked the bot; call unblock_bot() first")
            user.started_bot = True
        elif not target.member(user.id).is_member:
            raise SandboxError(f"{user.full_name} is not in {target.label}")
        return self._write(target, user, text, user.full_name, reply_to=reply_to)

    def send_as_group(self, admin: SimUser, chat: SimChat, text: str) -> SimMessage:
        """An administrator who remains anonymous writes: Telegram names the group itself as the
        sender (`sender_chat`), with GroupAnonymousBot as the placeholder `from`."""
        if chat.type != "supergroup":
            raise SandboxError("only supergroup administrators can remain anonymous")
        if chat.member(admin.id).status not in ("creator", "administrator"):
            raise SandboxError(f"{admin.full_name} is not an administrator of {chat.label}")
        return self._write(chat, GROUP_ANONYMOUS_BOT, text, chat.label, sender_chat=chat)

    def send_as_channel(self, user: SimUser, channel: SimChat, chat: SimChat, text: str) -> SimMessage:
        """`user` writes in `chat` as their channel: `sender_chat` is the channel, `from` Channel_Bot."""
        if channel.type != "channel" or channel.member(user.id).status not in ("creator", "administrator"):
            raise SandboxError(f"{user.full_name} cannot write as {channel.label}")
        if not chat.member(user.id).is_member:
            raise SandboxError(f"{user.full_name} is not in {chat.label}")
        return self._write(chat, CHANNEL_BOT, text, channel.label, sender_chat=channel)

    def create_channel(self, title: str, creator: SimUser, *, discussion: SimChat | None = None) -> SimChat:
        """A channel; with `discussion`, that supergroup is its linked discussion group."""
        if discussion is not None and (discussion.type != "supergroup" or discussion.linked_chat is not None):
            raise SandboxError(f"{discussion.label} cannot become a discussion group")
        chat = SimChat(self._next_supergroup_id, "channel", title, instance=str(self.serial() * 7_777_777_777))
        self._next_supergroup_id -= 1
        chat.members[creator.id] = ChatMemberState("creator")
        chat.linked_chat = discussion
        if discussion is not None:
            discussion.linked_chat = chat
        self.chats[chat.id] = chat
        return chat

    def post_in_channel(self, channel: SimChat, text: str) -> SimMessage | None:
        """A channel post; Telegram forwards it into the linked discussion group on its own, from the
        service account 777000 on behalf of the channel. Returns that forward (None without a group)."""
        if channel.type != "channel":
            raise SandboxError(f"{channel.label} is not a channel")
        post = self.new_message(channel, None, text=text, html=text, sender_chat=channel)
        self.transcript.add("message", channel.label, channel.label, text)
        group = channel.linked_chat
        if group is None:
            self.touch()
            return None
        origin = {"type": "channel", "chat": chat_json(channel), "message_id": post.message_id, "date": post.date}
        return self._write(group, TELEGRAM_SERVICE, text, channel.label, sender_chat=channel, forward_origin=origin,
                           is_automatic_forward=True)

    def _write(self, target: SimChat, sender: SimUser, text: str, label: str, **fields: Any) -> SimMessage:
        if not text.strip():
            raise SandboxError("Telegram clients do not send empty messages")
        entities = []
        command = COMMAND.match(text)
        if command:
            entities.append({"type": "bot_command", "offset": 0, "length": command.end()})
        msg = self.new_message(target, sender, text=text, html=text, entities=entities, **fields)
        self.transcript.add("message", target.label, label, text)
        self.deliver(msg)
        self.touch()
        return msg

    def send_many(self, items: Iterable[tuple[SimUser, ChatLike | None, str]]) -> list[SimMessage]:
        """Bulk `send` for load tests (pair with `record_transcript=False`, `limits=False`)."""
        return [self.send(user, chat, text) for user, chat, text in items]

    def press(self, user: SimUser, message: SimMessage, button: str) -> str:
        """Press the inline button labelled (or with callback_data) `button`; returns the callback id."""
        found = find_button(message.reply_markup, button)
        if found is None:
            raise SandboxError(f"no button {button!r} on message {message.message_id}; buttons: {message.buttons}")
        if "callback_data" not in found:
            raise SandboxError(f"button {found['text']!r} does not send a callback (it is not a callback_data button)")
        return self._callback(user, message, found["callback_data"], f"[ {found['text']} ]")

    def press_data(self, user: SimUser, message: SimMessage, data: str) -> str:
        """Send a callback with arbitrary (forged) data, as a modified client could."""
        return self._callback(user, message, data, f"<forged data {data!r}>")

    def _callback(self, user: SimUser, message: SimMessage, data: str, label: str) -> str:
        chat = message.chat
        if message.deleted:
            raise SandboxError(f"message {message.message_id} was deleted")
        if (chat.type == "private" and chat.user is not user) or (chat.is_group and not chat.member(user.id).is_member):
            raise SandboxError(f"{user.full_name} cannot see {chat.label}")
        callback_id = str(4_000_000_000_000_000_000 + self.serial())
        self.callbacks[callback_id] = SimCallback(callback_id, user, message, data, self.query_clock())
        self.enqueue(
            "callback_query",
            {
                "id": callback_id,
                "from": user_json(user),
                "message": message_json(message),
                "chat_instance": chat.instance,
                "data": data,
            },
        )
        self.transcript.add("press", chat.label, user.full_name, label)
        return callback_id

    def callback_answer(self, callback_id: str) -> CallbackAnswer | None:
        return self.callbacks[callback_id].answer

    def redeliver(self, update_id: int) -> None:
        """Queue an already created update again, same update_id (duplicate delivery)."""
        self.updates.redeliver(update_id)
        self.touch()

    # ----- payments ----------------------------------------------------

    async def pay(
        self, user: SimUser, invoice_message: SimMessage, *, ok: bool = True, timeout: float = 10.0
    ) -> SimMessage | None:
        """Pay an invoice: pre_checkout_query, then successful_payment if the bot approved.

        `ok=False` simulates the payment failing after approval. Returns the
        successful_payment service message, or None.
        """
        invoice = invoice_message.invoice
        if invoice is None or invoice_message.deleted:
            raise SandboxError(f"message {invoice_message.message_id} is not a live invoice")
        query = SimPreCheckout(str(5_000_000_000_000_000_000 + self.serial()), user, invoice_message, self.query_clock())
        self.pre_checkouts[query.id] = query
        amount = format_amount(invoice["total_amount"], invoice["currency"])
        self.enqueue(
            "pre_checkout_query",
            {
                "id": query.id,
                "from": user_json(user),
                "currency": invoice["currency"],
                "total_amount": invoice["total_amount"],
                "invoice_payload": invoice_message.invoice_payload,
            },
        )
        label = invoice_message.chat.label
        self.transcript.add(
            "notice", label, user.full_name, f"{user.full_name} checks out {amount} for “{invoice['title']}”"
        )
        try:
            await self.wait_for(lambda: query.ok is not None, timeout=timeout)
        except TimeoutError:
            self.transcript.add("notice", label, user.full_name, "checkout timed out: the bot did not answer")
            return None
        if not query.ok or not ok:
            if query.ok:
                self.transcript.add("notice", label, user.full_name, "payment failed")
            return None
        number = self.serial()
        stars = invoice["currency"] == "XTR"
        payment = SimPayment(
            telegram_payment_charge_id=f"{'stx' if stars else 'tg'}{number:024d}",
            provider_payment_charge_id="" if stars else f"provider_{number}",
            user_id=user.id,
            chat_id=invoice_message.chat_id,
            currency=invoice["currency"],
            total_amount=invoice["total_amount"],
            invoice_payload=invoice_message.invoice_payload,
        )
        self.payments[payment.telegram_payment_charge_id] = payment
        self.transcript.add("notice", label, user.full_name, f"{user.full_name} paid {amount}")
        return self.service_message(
            invoice_message.chat,
            user,
            {
                "successful_payment": {
                    "currency": payment.currency,
                    "total_amount": payment.total_amount,
                    "invoice_payload": payment.invoice_payload,
                    "telegram_payment_charge_id": payment.telegram_payment_charge_id,
                    "provider_payment_charge_id": payment.provider_payment_charge_id,
                }
            },
        )

    # ----- inspection --------------------------------------------------

    def messages(self, chat: ChatLike) -> list[SimMessage]:
        """Current messages of a chat, oldest first, deleted ones excluded."""
        return self.chat_messages(self.chat(chat))

    def bot_messages(self, chat: ChatLike) -> list[SimMessage]:
        return [msg for msg in self.messages(chat) if msg.from_user is self.me]

    def last_bot_message(self, chat: ChatLike) -> SimMessage | None:
        messages = self.bot_messages(chat)
        return messages[-1] if messages else None

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """Logged Bot API requests, optionally only those of one method."""
        if method is None:
            return list(self.requests)
        return [call for call in self.requests if call.method.lower() == method.lower()]

    def commands_for(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, str]]:
        """Commands set via setMyCommands for a scope (default scope if None)."""
        key = json.dumps(scope or {"type": "default"}, sort_keys=True)
        return self.commands.get((key, language_code), [])

    # ----- waiting -----------------------------------------------------

    def _recent_requests(self, count: int = 8) -> str:
        lines = []
        calls = [call for call in self.requests[-4 * count :] if call.method.lower() != "getupdates"]
        for call in calls[-count:]:
            outcome = "ok" if call.ok else f"{call.error_code} {call.description}"
            lines.append(f"  {call.method} {call.params} -> {outcome}")
        return "\n".join(lines) or "  (no requests)"

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, *, what: str | None = None) -> Any:
        """Re-check `predicate` after every state change until truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{what or 'condition'} not met within {timeout}s; "
                    f"{self.updates.undelivered} update(s) not yet fetched; last requests:\n{self._recent_requests()}"
                )
            await self.wait_change(remaining)

    async def wait_bot_message(
        self,
        chat: ChatLike,
        *,
        contains: str | None = None,
        timeout: float = 5.0,
        after: SimMessage | int | None = None,
    ) -> SimMessage:
        """The first bot message in `chat` newer than `after` (default: now) containing `contains`."""
        target = self.chat(chat)
        if after is None:
            after = target.next_message_id - 1
        elif isinstance(after, SimMessage):
            after = after.message_id
        store = self._messages.setdefault(target.id, {})

        def find() -> SimMessage | None:
            for message_id in range(after + 1, target.next_message_id):
                msg = store.get(message_id)
                if (
                    msg
                    and not msg.deleted
                    and msg.from_user is self.me
                    and (contains is None or contains in msg.visible)
                ):
                    return msg
            return None

        what = f"bot message in {target.label}" + (f" containing {contains!r}" if contains else "")
        return await self.wait_for(find, timeout, what=what)

    async def settle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until the bot fetched every update and made no request for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            busy = self.updates.undelivered > 0 or self._inflight > 0
            idle = now - self._last_activity
            if not busy and idle >= quiet:
                return
            if now >= deadline:
                raise TimeoutError(
                    f"bot did not settle within {timeout}s: {self.updates.undelivered} update(s) not fetched "
                    f"(is it polling?), {self._inflight} request(s) in flight; "
                    f"last requests:\n{self._recent_requests()}"
                )
            await self.wait_change(min(deadline - now, quiet if busy else quiet - idle))
