"""The update types the bot asks Telegram for, polling or by webhook. `chat_member` must be named or
Telegram never sends it."""

ALLOWED_UPDATES = [
    "message",
    "callback_query",
    "chat_member",
    "my_chat_member",
    "chat_join_request",
    "pre_checkout_query",
]
