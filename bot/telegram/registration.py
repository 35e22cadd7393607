"""Registering the webhook and the command menus with Telegram: once per deploy, not once per worker.

Three workers each calling setWebhook and setMyCommands at start made 21 calls for one change. With
Redis, the first worker to start with a given configuration claims it and registers; the others
skip. `python -m bot webhook set` registers in a deploy step and makes the same claim, so workers
started after it register nothing. Without Redis there is one process, and it registers at start.
"""

from __future__ import annotations

import hashlib
import json
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from redis.asyncio import Redis

from bot.core.config import ConfigError, Settings
from bot.telegram import commands
from bot.telegram.update_types import ALLOWED_UPDATES

log = logging.getLogger(__name__)

CLAIM_KEY = "ccb:registered:{}"
# Workers started by one deploy share a claim; a worker (re)started later than this registers again,
# which repairs a webhook that someone changed by hand meanwhile.
CLAIM_SECONDS = 600


def fingerprint(settings: Settings) -> str:
    """What Telegram is told: a change of any part (URL, secret, update types, menus) registers anew."""
    secrets = settings.webhook_secrets()
    menus = [(scope.model_dump(), language, [c.model_dump() for c in listed])
             for scope, language, listed in commands.menus()]
    told = json.dumps([settings.WEBHOOK_URL, secrets[0] if secrets else None, ALLOWED_UPDATES, menus], sort_keys=True)
    return hashlib.sha256(told.encode()).hexdigest()[:32]


async def register(bot: Bot, settings: Settings, redis: Redis | None, *, force: bool = False) -> bool:
    """setWebhook and setMyCommands, unless (without `force`) this configuration was registered by
    another worker lately. True when this call registered."""
    if not settings.WEBHOOK_URL:
        raise ConfigError("WEBHOOK_URL is not set: the public HTTPS URL Telegram should post updates to")
    key = CLAIM_KEY.format(fingerprint(settings))
    if redis is not None:
        claimed = await redis.set(key, "1", ex=CLAIM_SECONDS, nx=not force)
        if not claimed:
            log.info("webhook and command menus already registered for this configuration; not again")
            return False
    try:
        secrets = settings.webhook_secrets()
        try:
            await bot.set_webhook(settings.WEBHOOK_URL, secret_token=secrets[0] if secrets else None,
                                  allowed_updates=ALLOWED_UPDATES)
        except TelegramBadRequest as exc:
            raise ConfigError(f"WEBHOOK_URL {settings.WEBHOOK_URL} was refused by the Bot API: {exc.message}") from None
        await commands.publish(bot)
    except BaseException:
        if redis is not None:
            await redis.delete(key)  # the next worker, or the next start, tries again
        raise
    log.info("webhook %s and command menus registered", settings.WEBHOOK_URL)
    return True
