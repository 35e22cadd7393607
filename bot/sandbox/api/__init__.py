"""Bot API method implementations, grouped by area; importing registers them."""

from . import bot, chats, media, messages, payments
from .registry import METHODS

__all__ = ["METHODS", "bot", "chats", "media", "messages", "payments"]
