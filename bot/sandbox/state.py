"""In-memory model of the simulated Telegram world.

Plain dataclasses, mutated by the Bot API methods and by the control API.
They hold what tests need to inspect (visible text, raw markup, buttons,
files, payments) rather than a full copy of Telegram's data model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_send_welcome_messages",
    "can_pin_messages",
    "can_manage_topics",
)
MEMBER_STATUSES = ("creator", "administrator", "member")
# What a restricted member may do (ChatPermissions); a restriction lists each of them.
CHAT_PERMISSIONS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_react_to_messages",
    "can_edit_tag",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
)


def admin_rights(overrides: dict[str, bool] | None = None) -> dict[str, bool]:
    """All administrator rights granted, except those explicitly overridden."""
    rights = dict.fromkeys(ADMIN_RIGHTS, True)
    if overrides:
        unknown = set(overrides) - set(ADMIN_RIGHTS)
        if unknown:
            raise ValueError(f"unknown administrator rights: {sorted(unknown)}")
        rights.update(overrides)
    return rights


@dataclass(eq=False)
class SimUser:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"
    is_bot: bool = False
    started_bot: bool = False
    blocked_bot: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name


@dataclass
class ChatMemberState:
    status: str  # creator | administrator | member | restricted | left | kicked
    rights: dict[str, bool] = field(default_factory=dict)  # an administrator's rights, a restricted user's permissions
    until_date: int = 0
    # Restricted users keep their restriction when they leave: Telegram then reports them as
    # "restricted" with is_member false.
    in_chat: bool = True

    @property
    def is_member(self) -> bool:
        return self.status in MEMBER_STATUSES or (self.status == "restricted" and self.in_chat)

    def can(self, right: str) -> bool:
        return self.status == "creator" or (self.status == "administrator" and self.rights.get(right, False))


LEFT = ChatMemberState("left")


def restriction(state: ChatMemberState, permissions: dict[str, bool], until_date: int = 0) -> ChatMemberState:
    """`state` restricted to `permissions`: omitted ones are denied, and granting every one lifts
    the restriction altogether."""
    granted = {name: bool(permissions.get(name, False)) for name in CHAT_PERMISSIONS}
    if all(granted.values()):
        return ChatMemberState("member") if state.is_member else ChatMemberState("left")
    return ChatMemberState("restricted", granted, until_date=until_date, in_chat=state.is_member)

# The placeholder senders Telegram puts in `from` when a message is sent on behalf of a chat (the
# real sender is `sender_chat`): an anonymous group administrator, a member writing as one of their
# channels, and a channel post forwarded automatically into the channel's discussion group.
GROUP_ANONYMOUS_BOT = SimUser(1087968824, "Group", username="GroupAnonymousBot", language_code=None, is_bot=True)
CHANNEL_BOT = SimUser(136817688, "Channel", username="Channel_Bot", language_code=None, is_bot=True)
TELEGRAM_SERVICE = SimUser(777000, "Telegram", language_code=None)


INVITE_LINK_NAME_MAX = 32
_NAME_SPACES = re.compile(r"[ \n]+")
# What TDLib reads as a space in names (besides " " and newlines).
_ODD_SPACES = re.compile("[\u1680\u180e\u2000-\u200a\u202f\u205f\u2800\u3000\ufffc]")


def invite_link_name(raw: str | None) -> str | None:
    """A link's name as Telegram keeps it: no error for a long one, it is cut to 32 characters
    (TDLib's clean_name: odd spaces become spaces, trimmed, cut, then runs of spaces and newlines
    become one space). None when nothing is left."""
    if raw is None:
        return None
    name = _ODD_SPACES.sub(" ", raw).strip()[:INVITE_LINK_NAME_MAX].strip()
    return _NAME_SPACES.sub(" ", name).strip() or None


@dataclass(eq=False)
class SimInviteLink:
    link: str
    chat_id: int
    creator_id: int
    name: str | None = None
    creates_join_request: bool = False
    member_limit: int | None = None
    expire_date: int | None = None
    is_revoked: bool = False
    is_primary: bool = False
    joined: int = 0


@dataclass(eq=False)
class SimChat:
    id: int
    type: str  # private | group | supergroup | channel
    title: str | None = None
    username: str | None = None
    user: SimUser | None = None  # the other party of a private chat
    members: dict[int, ChatMemberState] = field(default_factory=dict)
    invite_links: dict[str, SimInviteLink] = field(default_factory=dict)
    join_requests: dict[int, SimInviteLink | None] = field(default_factory=dict)
    # Everyone who has ever been a member: Telegram leaves the invite link out when they come back.
    ever_members: set[int] = field(default_factory=set)
    pinned_ids: list[int] = field(default_factory=list)  # oldest first
    instance: str = ""
    next_message_id: int = 1
    linked_chat: SimChat | None = None  # a channel's discussion group, or a group's channel

    @property
    def is_group(self) -> bool:
        return self.type != "private"

    @property
    def is_public(self) -> bool:
        """A group with a username: anyone may join it directly, and apps do, even from a link."""
        return self.is_group and bool(self.username)

    @property
    def label(self) -> str:
        return self.title if self.is_group else f"private {self.user.full_name}"

    def member(self, user_id: int) -> ChatMemberState:
        return self.members.get(user_id, LEFT)


@dataclass(eq=False)
class SimFile:
    file_id: str
    file_unique_id: str
    kind: str  # photo | document
    file_name: str | None = None
    mime_type: str | None = None
    data: bytes | None = None
    url: str | None = None
    size: tuple[int, int] | None = None  # an uploaded photo's pixels, as its header says

    def text(self, encoding: str = "utf-8") -> str:
        """The uploaded bytes decoded, for asserting on CSV/JSON exports."""
        return (self.data or b"").decode(encoding)


@dataclass(eq=False)
class SimMessage:
    chat: SimChat
    message_id: int
    from_user: SimUser | None
    date: int
    text: str | None = None  # visible text (markup stripped, entities decoded)
    caption: str | None = None  # visible caption
    html: str | None = None  # text/caption exactly as the sender wrote it
    entities: list[dict[str, Any]] = field(default_factory=list)
    photo: SimFile | None = None
    document: SimFile | None = None
    reply_markup: dict[str, Any] | None = None
    reply_to: SimMessage | None = None
    invoice: dict[str, Any] | None = None
    invoice_payload: str | None = None
    service: dict[str, Any] | None = None  # service fields, e.g. new_chat_members
    sender_chat: SimChat | None = None  # sent on behalf of this chat (`from_user` is then a placeholder)
    forward_origin: dict[str, Any] | None = None
    is_automatic_forward: bool = False
    edited: int = 0
    edit_date: int | None = None
    deleted: bool = False
    pinned: bool = False

    @property
    def chat_id(self) -> int:
        return self.chat.id

    @property
    def from_bot(self) -> bool:
        return self.from_user is not None and self.from_user.is_bot

    @property
    def visible(self) -> str:
        return self.text or self.caption or ""

    @property
    def successful_payment(self) -> dict[str, Any] | None:
        return (self.service or {}).get("successful_payment")

    @property
    def buttons(self) -> list[list[str]]:
        """Inline button labels, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [[button["text"] for button in row] for row in rows]


@dataclass
class CallbackAnswer:
    text: str | None
    show_alert: bool
    url: str | None


@dataclass(eq=False)
class SimCallback:
    id: str
    user: SimUser
    message: SimMessage
    data: str
    date: float
    answer: CallbackAnswer | None = None


@dataclass(eq=False)
class SimPreCheckout:
    id: str
    user: SimUser
    message: SimMessage
    date: float
    ok: bool | None = None
    error_message: str | None = None


@dataclass(eq=False)
class SimPayment:
    telegram_payment_charge_id: str
    provider_payment_charge_id: str
    user_id: int
    chat_id: int
    currency: str
    total_amount: int
    invoice_payload: str
    refunded: bool = False
