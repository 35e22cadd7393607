"""Bot API JSON for the simulated objects.

Everything the bot receives is built here, so the shapes match what aiogram
(and any other client) validates: complete `Message`, `Chat`, `ChatMember*`,
`ChatInviteLink` objects, including fields newer Bot API versions made
mandatory.
"""

from __future__ import annotations

from typing import Any

from .images import photo_sizes
from .state import ADMIN_RIGHTS, CHAT_PERMISSIONS, ChatMemberState, SimChat, SimFile, SimInviteLink, SimMessage, SimUser

PHOTO_SIZE = (1280, 720)


def user_json(user: SimUser) -> dict[str, Any]:
    data: dict[str, Any] = {"id": user.id, "is_bot": user.is_bot, "first_name": user.first_name}
    if user.last_name:
        data["last_name"] = user.last_name
    if user.username:
        data["username"] = user.username
    if user.language_code and not user.is_bot:
        data["language_code"] = user.language_code
    return data


def chat_json(chat: SimChat) -> dict[str, Any]:
    if chat.type == "private":
        data = {"id": chat.id, "type": "private", "first_name": chat.user.first_name}
        if chat.user.last_name:
            data["last_name"] = chat.user.last_name
        if chat.user.username:
            data["username"] = chat.user.username
        return data
    data = {"id": chat.id, "type": chat.type, "title": chat.title}
    if chat.username:
        data["username"] = chat.username
    return data


def chat_full_json(chat: SimChat, pinned: SimMessage | None) -> dict[str, Any]:
    """`ChatFullInfo` as returned by getChat."""
    data = chat_json(chat)
    data["accent_color_id"] = 0
    data["max_reaction_count"] = 11
    data["accepted_gift_types"] = {
        "unlimited_gifts": False,
        "limited_gifts": False,
        "unique_gifts": False,
        "premium_subscription": False,
        "gifts_from_channels": False,
    }
    if pinned is not None:
        data["pinned_message"] = message_json(pinned)
    return data


def member_json(user: SimUser, state: ChatMemberState) -> dict[str, Any]:
    data: dict[str, Any] = {"status": state.status, "user": user_json(user)}
    if state.status == "creator":
        data["is_anonymous"] = False
    elif state.status == "administrator":
        data["can_be_edited"] = False
        data["is_anonymous"] = False
        data.update({right: state.rights.get(right, False) for right in ADMIN_RIGHTS})
    elif state.status == "restricted":
        data["is_member"] = state.in_chat
        data.update({name: state.rights.get(name, False) for name in CHAT_PERMISSIONS})
        data["until_date"] = state.until_date
    elif state.status == "kicked":
        data["until_date"] = state.until_date
    return data


def invite_link_json(link: SimInviteLink, creator: SimUser, *, hidden: bool = False) -> dict[str, Any]:
    """`hidden`: shown to a bot that did not make the link; like Telegram, the second half of the
    URL is replaced with "…"."""
    url = link.link
    if hidden:
        head, _, tail = url.rpartition("+")
        url = f"{head}+{tail[: len(tail) // 2]}…"
    data: dict[str, Any] = {
        "invite_link": url,
        "creator": user_json(creator),
        "creates_join_request": link.creates_join_request,
        "is_primary": link.is_primary,
        "is_revoked": link.is_revoked,
    }
    if link.name:
        data["name"] = link.name
    if link.expire_date:
        data["expire_date"] = link.expire_date
    if link.member_limit:
        data["member_limit"] = link.member_limit
    return data


def file_json(file: SimFile) -> Any:
    size = len(file.data) if file.data is not None else 0
    if file.kind == "photo":
        # Thumbnails share the file's ids here; only the largest size is the real upload.
        return [
            {
                "file_id": file.file_id,
                "file_unique_id": file.file_unique_id,
                "width": width,
                "height": height,
                "file_size": size,
            }
            for width, height in photo_sizes(file.size or PHOTO_SIZE)
        ]
    data = {"file_id": file.file_id, "file_unique_id": file.file_unique_id, "file_size": size}
    if file.file_name:
        data["file_name"] = file.file_name
    if file.mime_type:
        data["mime_type"] = file.mime_type
    return data


def message_json(msg: SimMessage, *, with_reply: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {"message_id": msg.message_id, "date": msg.date, "chat": chat_json(msg.chat)}
    if msg.from_user is not None:
        data["from"] = user_json(msg.from_user)
    if msg.sender_chat is not None:
        data["sender_chat"] = chat_json(msg.sender_chat)
    if msg.forward_origin is not None:
        data["forward_origin"] = msg.forward_origin
    if msg.is_automatic_forward:
        data["is_automatic_forward"] = True
    if msg.text is not None:
        data["text"] = msg.text
    if msg.caption:
        data["caption"] = msg.caption
    if msg.entities:
        data["caption_entities" if msg.text is None else "entities"] = msg.entities
    if msg.photo is not None:
        data["photo"] = file_json(msg.photo)
    if msg.document is not None:
        data["document"] = file_json(msg.document)
    if msg.invoice is not None:
        data["invoice"] = msg.invoice
    if msg.service:
        data.update(msg.service)
    if msg.reply_markup is not None and "inline_keyboard" in msg.reply_markup:
        data["reply_markup"] = msg.reply_markup
    if msg.edit_date is not None:
        data["edit_date"] = msg.edit_date
    if with_reply and msg.reply_to is not None and not msg.reply_to.deleted:
        data["reply_to_message"] = message_json(msg.reply_to, with_reply=False)
    return data
