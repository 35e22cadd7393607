"""Message methods: send, edit, delete, pin, chat actions, callback answers.

Every sending or editing method runs the same gauntlet as on Telegram: the
chat must exist and accept the bot (403s), the text must parse and fit after
markup is stripped, the keyboard must be valid, and flood control applies.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from ..core import DELETE_WINDOW, button_rows, describe
from ..errors import NOT_MODIFIED, QUERY_TOO_OLD, ApiError, bad_request
from ..formatting import FormattedText, parse_text
from ..images import check_upload
from ..markup import parse_reply_markup
from ..params import Params, Upload
from ..serialize import message_json
from ..state import CallbackAnswer, SimChat, SimFile, SimMessage
from .registry import method

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_TEXT_LIMIT = 200
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
FILE_ID_PREFIX = {"photo": "AgACAgIAAxkBAAI", "document": "BQACAgIAAxkBAAI"}


def format_text(raw: str | None, parse_mode: str | None) -> FormattedText:
    if raw is None:
        raise bad_request("message text is empty")
    formatted = parse_text(raw, parse_mode)
    if not formatted.text:
        raise bad_request("message text is empty")
    if len(formatted.text) > TEXT_LIMIT:
        raise bad_request("message is too long")
    return formatted


def format_caption(raw: str | None, parse_mode: str | None) -> FormattedText:
    formatted = parse_text(raw or "", parse_mode)
    if len(formatted.text) > CAPTION_LIMIT:
        raise bad_request("message caption is too long")
    return formatted


def writable_chat(emu, p: Params) -> SimChat:
    chat = emu.resolve_chat(p.chat_id())
    emu.check_access(chat)
    return chat


def reply_target(emu, chat: SimChat, p: Params) -> SimMessage | None:
    parameters = p.get_json("reply_parameters")
    if isinstance(parameters, dict):
        message_id = parameters.get("message_id")
        allow_missing = bool(parameters.get("allow_sending_without_reply"))
    else:
        message_id = p.get_int("reply_to_message_id")
        allow_missing = p.get_bool("allow_sending_without_reply")
    if not message_id:
        return None
    try:
        return emu.find_message(chat, int(message_id), "message to be replied not found")
    except ApiError:
        if allow_missing:
            return None
        raise


def send(emu, chat: SimChat, p: Params, **fields: Any) -> dict[str, Any]:
    """Validate the common parts of a send, apply flood control, post the message.

    `allow_paid_broadcast` moves the message from the free overall limit to the paid one and
    charges it to the bot's Stars once it passed flood control (a 429 costs nothing).
    """
    markup = parse_reply_markup(p.get_json("reply_markup"))
    reply_to = reply_target(emu, chat, p)
    paid = p.get_bool("allow_paid_broadcast")
    if paid:
        emu.check_paid_broadcast()
    emu.rate_limit(chat, paid=paid)
    if paid:
        emu.charge_paid_broadcast()
    msg = emu.post_bot_message(chat, reply_markup=markup, reply_to=reply_to, **fields)
    return message_json(msg)


def register_file(emu, kind: str, upload: Upload | str) -> SimFile:
    number = emu.serial()
    if isinstance(upload, Upload):
        size = check_upload(kind, upload)
        mime = upload.content_type
        if not mime or mime == "application/octet-stream":
            mime = mimetypes.guess_type(upload.filename)[0] or "application/octet-stream"
        file = SimFile(
            f"{FILE_ID_PREFIX[kind]}{number:010d}", f"AQAD{number:08d}", kind, upload.filename, mime, upload.data,
            size=size,
        )
    else:
        name = upload.rstrip("/").rsplit("/", 1)[-1] or None
        file = SimFile(f"{FILE_ID_PREFIX[kind]}{number:010d}", f"AQAD{number:08d}", kind, name, None, url=upload)
    emu.files[file.file_id] = file
    return file


def input_file(emu, p: Params, field: str) -> SimFile:
    """Resolve an uploaded file, an http(s) URL or a known file_id."""
    value = p.file(field)
    if not value:
        raise bad_request(f"there is no {field} in the request")
    if isinstance(value, Upload):
        if not value.data:
            raise bad_request("file must be non-empty")
        return register_file(emu, field, value)
    if value.startswith(("http://", "https://")):
        return register_file(emu, field, value)
    known = emu.files.get(value)
    if known is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if known.kind != field:
        raise bad_request(f"can't use file of type {known.kind.title()} as {field.title()}")
    return known


@method("sendMessage")
def send_message(emu, p):
    chat = writable_chat(emu, p)
    raw = p.get_str("text")
    formatted = format_text(raw, p.get_str("parse_mode"))
    return send(emu, chat, p, text=formatted.text, html=raw, entities=formatted.entities)


@method("sendPhoto")
def send_photo(emu, p):
    chat = writable_chat(emu, p)
    raw = p.get_str("caption")
    caption = format_caption(raw, p.get_str("parse_mode"))
    photo = input_file(emu, p, "photo")
    return send(emu, chat, p, caption=caption.text, html=raw, entities=caption.entities, photo=photo)


@method("sendDocument")
def send_document(emu, p):
    chat = writable_chat(emu, p)
    raw = p.get_str("caption")
    caption = format_caption(raw, p.get_str("parse_mode"))
    document = input_file(emu, p, "document")
    result = send(emu, chat, p, caption=caption.text, html=raw, entities=caption.entities, document=document)
    emu.documents.append(document)
    return result


def editable_message(emu, p: Params) -> SimMessage:
    if p.get_str("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")
    chat = writable_chat(emu, p)
    msg = emu.find_message(chat, p.get_int("message_id", required=True), "message to edit not found")
    if msg.from_user is not emu.me:
        raise bad_request("message can't be edited")
    return msg


def finish_edit(emu, msg: SimMessage, markup: dict[str, Any] | None, **changes: Any) -> dict[str, Any]:
    """Apply an edit that passed validation, if flood control allows it."""
    emu.rate_limit(msg.chat)
    for name, value in changes.items():
        setattr(msg, name, value)
    msg.reply_markup = markup
    msg.edited += 1
    msg.edit_date = emu.now()
    emu.transcript.add("edit", msg.chat.label, "bot", describe(msg), button_rows(msg))
    emu.touch()
    return message_json(msg)


@method("editMessageText")
def edit_message_text(emu, p):
    msg = editable_message(emu, p)
    if msg.text is None:
        raise bad_request("there is no text in the message to edit")
    raw = p.get_str("text")
    formatted = format_text(raw, p.get_str("parse_mode"))
    markup = parse_reply_markup(p.get_json("reply_markup"), inline_only=True)
    if (formatted.text, formatted.entities, markup) == (msg.text, msg.entities, msg.reply_markup):
        raise bad_request(NOT_MODIFIED)
    return finish_edit(emu, msg, markup, text=formatted.text, entities=formatted.entities, html=raw)


@method("editMessageCaption")
def edit_message_caption(emu, p):
    msg = editable_message(emu, p)
    if msg.photo is None and msg.document is None:
        raise bad_request("there is no caption in the message to edit")
    raw = p.get_str("caption")
    caption = format_caption(raw, p.get_str("parse_mode"))
    markup = parse_reply_markup(p.get_json("reply_markup"), inline_only=True)
    if (caption.text, caption.entities, markup) == (msg.caption or "", msg.entities, msg.reply_markup):
        raise bad_request(NOT_MODIFIED)
    return finish_edit(emu, msg, markup, caption=caption.text, entities=caption.entities, html=raw)


@method("editMessageReplyMarkup")
def edit_message_reply_markup(emu, p):
    msg = editable_message(emu, p)
    markup = parse_reply_markup(p.get_json("reply_markup"), inline_only=True)
    if markup == msg.reply_markup:
        raise bad_request(NOT_MODIFIED)
    return finish_edit(emu, msg, markup)


def can_delete(emu, msg: SimMessage) -> bool:
    """Telegram's rules: under 48 hours old, and own/private or admin with the right."""
    if emu.now() - msg.date > DELETE_WINDOW:
        return False
    if msg.from_user is emu.me or msg.chat.type == "private":
        return True
    return emu.bot_state(msg.chat).can("can_delete_messages")


def delete(emu, msg: SimMessage) -> None:
    msg.deleted = True
    whose = "" if msg.from_user is emu.me else f"{msg.from_user.full_name}'s message: "
    emu.transcript.add("delete", msg.chat.label, "bot", f"{whose}{describe(msg)}")
    emu.touch()


def chat_for_deleting(emu, p: Params) -> SimChat:
    chat = emu.resolve_chat(p.chat_id())
    if chat.is_group:
        emu.check_access(chat)
    return chat


@method("deleteMessage")
def delete_message(emu, p):
    chat = chat_for_deleting(emu, p)
    msg = emu.find_message(chat, p.get_int("message_id", required=True), "message to delete not found")
    if not can_delete(emu, msg):
        raise bad_request("message can't be deleted")
    delete(emu, msg)
    return True


@method("deleteMessages")
def delete_messages(emu, p):
    """Deletes what it can; Telegram skips messages that are missing or not deletable."""
    chat = chat_for_deleting(emu, p)
    ids = p.get_json("message_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise bad_request("message_ids must contain 1-100 message identifiers")
    for message_id in ids:
        try:
            msg = emu.find_message(chat, int(message_id), "message to delete not found")
        except ApiError:
            continue
        if can_delete(emu, msg):
            delete(emu, msg)
    return True


def chat_for_pinning(emu, p: Params) -> SimChat:
    chat = writable_chat(emu, p)
    emu.require_right(chat, "can_pin_messages", "not enough rights to manage pinned messages in the chat")
    return chat


@method("pinChatMessage")
def pin_chat_message(emu, p):
    chat = chat_for_pinning(emu, p)
    msg = emu.find_message(chat, p.get_int("message_id", required=True), "message to pin not found")
    msg.pinned = True
    chat.pinned_ids = [mid for mid in chat.pinned_ids if mid != msg.message_id] + [msg.message_id]
    emu.transcript.add("notice", chat.label, "bot", f"bot pinned: {describe(msg)}")
    emu.touch()
    return True


@method("unpinChatMessage")
def unpin_chat_message(emu, p):
    chat = chat_for_pinning(emu, p)
    message_id = p.get_int("message_id")
    if message_id is not None:
        emu.find_message(chat, message_id, "message to unpin not found")
    elif chat.pinned_ids:
        message_id = chat.pinned_ids[-1]
    if message_id in chat.pinned_ids:
        chat.pinned_ids.remove(message_id)
        emu.find_message(chat, message_id, "message to unpin not found").pinned = False
        emu.touch()
    return True


@method("unpinAllChatMessages")
def unpin_all_chat_messages(emu, p):
    chat = chat_for_pinning(emu, p)
    for msg in emu.chat_messages(chat):
        msg.pinned = False
    chat.pinned_ids.clear()
    emu.touch()
    return True


@method("sendChatAction")
def send_chat_action(emu, p):
    writable_chat(emu, p)
    if p.get_str("action") not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    return True


@method("answerCallbackQuery")
def answer_callback_query(emu, p):
    callback = emu.callbacks.get(p.get_str("callback_query_id", required=True))
    if callback is None or callback.answer is not None or emu.query_clock() - callback.date > emu.callback_ttl:
        raise bad_request(QUERY_TOO_OLD)
    text = p.get_str("text")
    if text and len(text) > CALLBACK_TEXT_LIMIT:
        raise bad_request("MESSAGE_TOO_LONG")
    show_alert = p.get_bool("show_alert")
    callback.answer = CallbackAnswer(text, show_alert, p.get_str("url"))
    if text:
        emu.transcript.add("answer", callback.message.chat.label, f"bot ({'alert' if show_alert else 'toast'})", text)
    emu.touch()
    return True
