"""Answering a command in the chat it came from, without losing a group's answer to flood control.

Telegram takes at most 20 bot messages a minute into one group and refuses the rest with a
`retry_after` of up to a minute. A handler that replied in a group itself spent that budget
unseen by the sender and, in a rush, lost the reply. A group reply therefore goes to the sender:
it leaves as soon as the group's share of the shared budget allows (late rather than never, in
the order the commands came) and the handler returns at once. Its update is acknowledged before
the reply leaves, so the reply is durable: written to the outbox first, and sent by the next
worker if this one dies meanwhile. A private reply goes straight out: one person's chat is never
that busy, and the handler may want to know it arrived.
"""

from __future__ import annotations

import asyncio

from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardMarkup, LinkPreviewOptions, Message, ReplyParameters

from bot.telegram.sender import Delivery, Sender


def reply_in_group(sender: Sender, message: Message, text: str,
                   markup: InlineKeyboardMarkup | None = None) -> asyncio.Future[Delivery]:
    """Queue `text` (HTML) as a reply to `message` in its group; the future says how it ended."""
    return sender.submit(SendMessage(
        chat_id=message.chat.id,
        text=text,
        reply_markup=markup,
        parse_mode="HTML",
        message_thread_id=message.message_thread_id if message.is_topic_message else None,
        # A late reply must still go out if the command was deleted meanwhile.
        reply_parameters=ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True),
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    ), durable=True)


async def answer(message: Message, sender: Sender, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Answer a command where it was sent: in private at once, in a group through the sender."""
    if message.chat.type == "private":
        await message.answer(text, reply_markup=markup)
    else:
        reply_in_group(sender, message, text, markup)
