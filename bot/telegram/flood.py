"""The handlers' Bot and Telegram's flood control.

A handler that edits a menu and then answers can brush against a private chat's limit; Telegram
then answers 429 with `retry_after`. Waiting that long and sending again is what the user wants:
the reply arrives a second late rather than not at all (`WaitOutFloodControl`).

A group allows only 20 messages a minute, shared by everything the bot sends there, and a refusal
can ask for a minute's wait. Replies in groups go through the sender (bot/telegram/group_reply.py);
whatever a handler still sends or edits in a group itself (a card it must know the id of) first
draws from the sender's shared budget (`SpendGroupBudget`), so that the budget knows of every
group message and Telegram does not have to refuse one. Bot-initiated traffic uses the sender.
"""

from __future__ import annotations

import asyncio
import logging

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import (
    EditMessageCaption,
    EditMessageMedia,
    EditMessageReplyMarkup,
    EditMessageText,
    Response,
    SendDocument,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType

from bot.telegram.sender import Sender

log = logging.getLogger(__name__)


class WaitOutFloodControl(BaseRequestMiddleware):
    def __init__(self, *, max_wait: float = 30.0, attempts: int = 5) -> None:
        self.max_wait, self.attempts = max_wait, attempts

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        for attempt in range(1, self.attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt == self.attempts or exc.retry_after > self.max_wait:
                    raise
                log.info("%s hit flood control; retrying in %ss", type(method).__name__, exc.retry_after)
                await asyncio.sleep(exc.retry_after)
        raise AssertionError("unreachable")


# What Telegram counts against a chat's message limits (and so does the sender's budget).
COUNTED = (SendMessage, SendPhoto, SendDocument, SendMediaGroup,
           EditMessageText, EditMessageCaption, EditMessageReplyMarkup, EditMessageMedia)


class SpendGroupBudget(BaseRequestMiddleware):
    """A send or edit into a group waits for the sender's shared budget, then goes out. A 429
    that comes all the same (another bot process not sharing the budget) pauses the group in the
    budget and the call waits for it again, however long that is."""

    def __init__(self, sender: Sender, *, attempts: int = 5) -> None:
        self.sender, self.attempts = sender, attempts

    async def __call__(self, make_request: NextRequestMiddlewareType[TelegramType], bot,
                       method: TelegramMethod[TelegramType]) -> Response[TelegramType]:
        chat_id = getattr(method, "chat_id", None)
        if not isinstance(method, COUNTED) or not isinstance(chat_id, int) or chat_id >= 0:
            return await make_request(bot, method)
        for attempt in range(1, self.attempts + 1):
            grant = await self.sender.reserve(chat_id)
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt == self.attempts:
                    raise
                log.info("%s into group %s hit flood control; waiting %ss", type(method).__name__, chat_id,
                         exc.retry_after)
                await self.sender.budget.pause(chat_id, exc.retry_after)
            finally:
                self.sender.budget.answered(grant)
        raise AssertionError("unreachable")
