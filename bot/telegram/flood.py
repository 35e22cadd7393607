"""Replies to a user's own command wait out Telegram's flood control instead of failing.

A handler that edits a menu and then answers can brush against the per-chat limit; Telegram then
answers 429 with `retry_after`. Waiting that long and sending again is what the user wants: the
reply arrives a second late rather than not at all. Bot-initiated traffic does not use this; the
sender paces itself and handles 429 with its shared budget.
"""

from __future__ import annotations

import asyncio
import logging

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

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
