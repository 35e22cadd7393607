"""Small helpers for showing things in chat that every handler needs the same way."""

from __future__ import annotations

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InaccessibleMessage, InlineKeyboardMarkup, Message


async def edit_or_send(message: Message | InaccessibleMessage | None, text: str,
                       markup: InlineKeyboardMarkup | None = None) -> None:
    """Replace a menu in place. A double tap edits to identical content, which Telegram refuses
    with "message is not modified": that is the state we wanted, so it is not an error. A message
    too old to edit gets a fresh one instead."""
    if message is None:
        return
    if isinstance(message, InaccessibleMessage):
        await message.bot.send_message(message.chat.id, text, reply_markup=markup)
        return
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as exc:
        if "message is not modified" in exc.message:
            return
        if "message to edit not found" in exc.message or "message can't be edited" in exc.message:
            await message.answer(text, reply_markup=markup)
            return
        raise


async def reply_in_place(target: Message | CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """A form's next screen: in place of the message whose button was pressed, or as an answer
    to the text the user sent."""
    if isinstance(target, CallbackQuery):
        await edit_or_send(target.message, text, markup)
    else:
        await target.answer(text, reply_markup=markup)
