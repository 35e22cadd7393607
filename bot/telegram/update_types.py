"""The update types the bot asks Telegram for, polling or by webhook. `chat_member` must be named or
Telegram never sends it. And which messages are a person talking, not a notice from Telegram."""

from aiogram import F

ALLOWED_UPDATES = [
    "message",
    "callback_query",
    "chat_member",
    "my_chat_member",
    "chat_join_request",
    "pre_checkout_query",
]

# What a person writes or sends in a message. Every other kind of message is a notice Telegram
# writes (a payment, a refund, a pin, a new title or photo, a join or a leave, ...): no reply is owed.
PERSON_CONTENT = frozenset({
    "text", "photo", "video", "animation", "audio", "voice", "video_note", "document", "sticker", "story",
    "paid_media", "live_photo", "contact", "location", "venue", "poll", "dice", "game", "checklist",
})
# The filter for handlers that answer whatever a person sends (the fallback, a form's "not text").
SENT_BY_PERSON = F.content_type.in_(PERSON_CONTENT)
