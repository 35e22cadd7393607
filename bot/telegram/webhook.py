"""Webhook mode: an aiohttp server that Telegram (or a load balancer) posts updates to."""

from __future__ import annotations

import asyncio
import logging
import signal
from urllib.parse import urlparse

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.core.config import ConfigError, Settings
from bot.telegram.update_types import ALLOWED_UPDATES

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def serve_webhook(dp: Dispatcher, bot: Bot, settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT; updates already accepted are handled before it returns."""
    path = urlparse(settings.WEBHOOK_URL).path or "/"
    secret = settings.WEBHOOK_SECRET.get_secret_value() if settings.WEBHOOK_SECRET else None
    web_app = web.Application()
    handler = SimpleRequestHandler(dispatcher=dp, bot=bot, secret_token=secret, handle_in_background=True)
    handler.register(web_app, path=path)
    web_app.router.add_get("/healthz", lambda _request: web.Response(text="ok"))
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, host="0.0.0.0", port=settings.PORT)
    await site.start()
    # Polling mode stops on these through aiogram; here nobody would, and SIGTERM would kill the
    # process before the activity buffer and the outbox are flushed.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await bot.set_webhook(settings.WEBHOOK_URL, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
        except TelegramBadRequest as exc:
            raise ConfigError(f"WEBHOOK_URL {settings.WEBHOOK_URL} was refused by the Bot API: {exc.message}") from None
        log.info("webhook listening on :%s%s", settings.PORT, path)
        await stop.wait()
        log.info("stopping the webhook server")
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        # Updates already accepted (answered 200) are handled before the app stops.
        accepted = set(handler._background_feed_update_tasks)
        if accepted:
            await asyncio.wait(accepted, timeout=15)
        await runner.cleanup()
