"""Webhook mode: an aiohttp server that Telegram (or a load balancer) posts updates to."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.factory import ALLOWED_UPDATES

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


async def serve_webhook(app: App) -> None:
    settings = app.settings
    path = urlparse(settings.WEBHOOK_URL).path or "/"
    secret = settings.WEBHOOK_SECRET.get_secret_value() if settings.WEBHOOK_SECRET else None
    web_app = web.Application()
    SimpleRequestHandler(dispatcher=app.dp, bot=app.bot, secret_token=secret, handle_in_background=True).register(web_app, path=path)
    web_app.router.add_get("/healthz", lambda _request: web.Response(text="ok"))
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, host="0.0.0.0", port=settings.PORT)
    await site.start()
    await app.bot.set_webhook(settings.WEBHOOK_URL, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
    log.info("webhook listening on :%s%s", settings.PORT, path)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
