"""Turns any handler failure into a short apology with an error id, and the full trace in the log."""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Update

from bot.core.i18n import translate
from bot.core.locales import normalize_locale
from bot.telegram.group_reply import reply_in_group
from bot.telegram.sender import Sender

log = logging.getLogger("bot.errors")


class LocaleBox:
    """Filled by the actor middleware deeper in the chain, read here after a failure."""

    __slots__ = ("locale",)

    def __init__(self) -> None:
        self.locale: str | None = None


class ErrorsMiddleware(BaseMiddleware):
    def __init__(self, default_locale: str) -> None:
        self.default_locale = default_locale
        self.failures = 0

    async def __call__(self, handler, event: Update, data: dict[str, Any]) -> Any:
        box = LocaleBox()
        data["locale_box"] = box
        try:
            return await handler(event, data)
        except Exception:
            error_id = self.log_failure(event.update_id)
            await self._apologize(data["bot"], data["sender"], event, box, error_id)
            return None

    def log_failure(self, update_id: int) -> str:
        """Count and log the exception being handled; returns the error id users are told."""
        self.failures += 1
        error_id = secrets.token_hex(4)
        log.exception("error %s while handling update %s", error_id, update_id)
        return error_id

    async def _apologize(self, bot: Bot, sender: Sender, update: Update, box: LocaleBox, error_id: str) -> None:
        user = None
        if update.message:
            user = update.message.from_user
        elif update.callback_query:
            user = update.callback_query.from_user
        locale = box.locale or normalize_locale(user.language_code if user else None) or self.default_locale
        text = translate("Sorry, something went wrong on our side. Please try again. (error id {error_id})",
                         locale, error_id=error_id)
        try:
            if update.callback_query:
                # False or a refusal: answered before the failure, or too late (bot.factory.LateCallbackAnswers).
                answered = False
                with contextlib.suppress(TelegramBadRequest):
                    answered = await bot.answer_callback_query(update.callback_query.id, text=text, show_alert=True)
                if answered:
                    return
                # No alert can show: say it in the chat instead.
                message = update.callback_query.message
                if message is not None and message.chat.type == "private":
                    await bot.send_message(message.chat.id, text)
            elif update.message and update.message.chat.type == "private":
                await bot.send_message(update.message.chat.id, text)
            elif update.message and (update.message.text or "").startswith("/"):
                # In groups only a command deserves an answer; a failure on plain chatter stays quiet.
                # The sender delivers it even when the group's budget is spent for the minute.
                reply_in_group(sender, update.message, text)
        except Exception:
            log.warning("could not deliver the apology for error %s", error_id, exc_info=True)
