"""A local Telegram Bot API emulator for end-to-end tests and demos.

Start a `TelegramEmulator`, point an unmodified aiogram bot at `emu.url`
(`TelegramAPIServer.from_base(emu.url)`), then drive simulated users and
groups through the emulator's control API and assert on what the bot did.
"""

from .errors import ApiError, SandboxError
from .server import TelegramEmulator
from .state import CallbackAnswer, ChatMemberState, SimChat, SimFile, SimInviteLink, SimMessage, SimPayment, SimUser
from .transcript import Transcript, TranscriptEvent

__all__ = [
    "ApiError",
    "CallbackAnswer",
    "ChatMemberState",
    "SandboxError",
    "SimChat",
    "SimFile",
    "SimInviteLink",
    "SimMessage",
    "SimPayment",
    "SimUser",
    "TelegramEmulator",
    "Transcript",
    "TranscriptEvent",
]
