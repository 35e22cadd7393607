"""editMessageMedia: replace the photo or document of a message that has one, with its caption and
keyboard, as Telegram does; a text message has no media to replace."""

from __future__ import annotations

from ..errors import NOT_MODIFIED, bad_request
from ..markup import parse_reply_markup
from ..params import Params
from .messages import editable_message, finish_edit, format_caption, input_file
from .registry import method

EDITABLE_KINDS = ("photo", "document")
INPUT_MEDIA_KINDS = ("photo", "video", "animation", "audio", "document")


@method("editMessageMedia")
def edit_message_media(emu, p: Params):
    msg = editable_message(emu, p)
    media = p.get_json("media")
    if not isinstance(media, dict):
        raise bad_request("can't parse InputMedia JSON object")
    kind = media.get("type")
    if kind not in INPUT_MEDIA_KINDS:
        raise bad_request("can't parse InputMedia: unsupported media type")
    if not media.get("media"):
        raise bad_request("can't parse InputMedia: Media is not specified")
    if msg.photo is None and msg.document is None:
        raise bad_request("there is no media in the message to edit")
    if kind not in EDITABLE_KINDS:
        raise bad_request("can't parse InputMedia: unsupported media type")
    caption = format_caption(media.get("caption"), media.get("parse_mode"))
    markup = parse_reply_markup(p.get_json("reply_markup"), inline_only=True)
    file = input_file(emu, Params({kind: media["media"]}, p.uploads), kind)
    current = msg.photo if kind == "photo" else msg.document
    if current is file and (caption.text, caption.entities, markup) == (msg.caption or "", msg.entities, msg.reply_markup):
        raise bad_request(NOT_MODIFIED)
    changes = {"photo": file, "document": None} if kind == "photo" else {"document": file, "photo": None}
    if kind == "document":
        emu.documents.append(file)
    return finish_edit(emu, msg, markup, caption=caption.text or None, entities=caption.entities,
                       html=media.get("caption"), **changes)
