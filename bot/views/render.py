"""Small helpers for showing things in chat that every handler needs the same way."""

from __future__ import annotations

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InaccessibleMessage, InlineKeyboardMarkup, Message

# Character references that `html.escape` writes and Telegram's entities never need: the same
# text either way, so they do not make a message look changed.
_NEEDLESS_REFERENCES = (("&#x27;", "'"), ("&#39;", "'"), ("&quot;", '"'))


def _canonical(html_text: str) -> str:
    for reference, char in _NEEDLESS_REFERENCES:
        html_text = html_text.replace(reference, char)
    return html_text


def _keyboard(markup: InlineKeyboardMarkup | None) -> object:
    return markup.model_dump(exclude_none=True) if markup is not None else None


def already_shows(message: Message, text: str, markup: InlineKeyboardMarkup | None) -> bool:
    """Whether the message, as the update carried it, shows this HTML text and keyboard already."""
    return (message.text is not None and _canonical(message.html_text) == _canonical(text)
            and _keyboard(message.reply_markup) == _keyboard(markup))


async def edit_or_send(message: Message | InaccessibleMessage | None, text: str,
                       markup: InlineKeyboardMarkup | None = None) -> None:
    """Replace a menu in place. Telegram refuses an edit to what the message already shows ("message
    is not modified"), so a replayed press that renders the same screen edits nothing. Two taps
    that both saw the older screen still race to the same edit; that refusal means the state we
    wanted, so it is not an error either. A message too old to edit gets a fresh one instead."""
    if message is None:
        return
    if isinstance(message, InaccessibleMessage):
        await message.bot.send_message(message.chat.id, text, reply_markup=markup)
        return
    if already_shows(message, text, markup):
        return
    if message.text is None and (message.photo or message.document):
        # A photo (a stats chart) has no text to become: the menu comes as a message of its own.
        await message.answer(text, reply_markup=markup)
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
