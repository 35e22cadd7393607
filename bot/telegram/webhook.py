"""Webhook mode: an aiohttp server that Telegram (or a load balancer) posts updates to."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
from urllib.parse import urlparse

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from pydantic import ValidationError
from redis.asyncio import Redis

from bot.core.config import Settings
from bot.telegram.ops import Health, add_ops_routes
from bot.telegram.registration import register

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Where a middleware leaves the update it parsed and checked.
PARSED_UPDATE = "update"


def webhook_input(path: str, bot: Bot, secrets: list[str]):
    """Refuses what is not a Telegram update before it becomes a background task that fails unseen:
    a wrong secret (401), a body that is not JSON or not an update (400, logged). An update whose
    id is sound but whose content aiogram cannot parse (a field or value from a newer Bot API) is
    logged and acknowledged, so that Telegram does not send it again forever.

    Any of `secrets` is accepted, so that a rotation never locks out a worker (README, "Several
    workers")."""
    wanted = [s.encode() for s in secrets]

    @web.middleware
    async def check(request: web.Request, handler):
        if request.method != "POST" or request.path != path:
            return await handler(request)
        given = request.headers.get(SECRET_HEADER, "").encode()
        if wanted and not any(hmac.compare_digest(given, secret) for secret in wanted):
            return web.Response(status=401, text="Unauthorized")
        body = await request.read()
        try:
            raw = json.loads(body)
        except ValueError:
            log.warning("webhook: refused a body that is not JSON (%d bytes from %s)", len(body), request.remote)
            return web.Response(status=400, text="not JSON")
        if not isinstance(raw, dict) or type(raw.get("update_id")) is not int:
            log.warning("webhook: refused JSON that is not an update (%.200s) from %s", body.decode(errors="replace"),
                        request.remote)
            return web.Response(status=400, text="not an update")
        try:
            request[PARSED_UPDATE] = Update.model_validate(raw, context={"bot": bot})
        except ValidationError as exc:
            log.error("update %s could not be parsed and is skipped: %s", raw["update_id"],
                      "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3]))
            return web.json_response({})
        return await handler(request)

    return check


async def serve_webhook(dp: Dispatcher, bot: Bot, settings: Settings, *, health: Health, redis: Redis | None) -> None:
    """Serve until SIGTERM or SIGINT; updates already accepted are handled before it returns."""
    path = urlparse(settings.WEBHOOK_URL).path or "/"
    web_app = web.Application(middlewares=[webhook_input(path, bot, settings.webhook_secrets())])
    # The secret is checked by webhook_input, against every accepted one.
    handler = SimpleRequestHandler(dispatcher=dp, bot=bot, handle_in_background=True)
    handler.register(web_app, path=path)
    add_ops_routes(web_app, health)
    # aiohttp logs every request at INFO: one line per update. Only when debugging.
    access_log = logging.getLogger("aiohttp.access") if settings.LOG_LEVEL.upper() == "DEBUG" else None
    runner = web.AppRunner(web_app, access_log=access_log)
    await runner.setup()
    site = web.TCPSite(runner, host=settings.HOST, port=settings.PORT)
    await site.start()
    # Polling mode stops on these through aiogram; here nobody would, and SIGTERM would kill the
    # process before the activity buffer and the outbox are flushed.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        # Listening first: Telegram may deliver as soon as the webhook is set.
        await register(bot, settings, redis)
        log.info("webhook listening on %s:%s%s", settings.HOST, settings.PORT, path)
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
