"""Webhook mode: an aiohttp server that Telegram (or a load balancer) posts updates to.

Telegram is told an update is received (a 200) only once it is handled: a worker killed with
updates in hand leaves them unanswered, and Telegram delivers them again, to this worker or
another. A delivery of an update that another is handling right now, and a delivery that finds
every slot of this worker taken for too long, are answered 503 so that Telegram tries again later.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from urllib.parse import urlparse

from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError
from redis.asyncio import Redis

from bot.core.config import Settings
from bot.telegram.middlewares.dedup import BUSY
from bot.telegram.ops import Health, add_ops_routes
from bot.telegram.registration import register

log = logging.getLogger(__name__)
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


# How long a delivery waits for one of the worker's slots before Telegram is asked to retry it.
SLOT_WAIT_SECONDS = 10.0
RETRY_LATER = {"Retry-After": "1"}


class UpdateHandler:
    """Handles the update webhook_input parsed, at most `in_flight` at once, and answers after."""

    def __init__(self, dp: Dispatcher, bot: Bot, *, in_flight: int, slot_wait: float = SLOT_WAIT_SECONDS) -> None:
        self.dp, self.bot, self._slot_wait = dp, bot, slot_wait
        self._slots = asyncio.Semaphore(in_flight)

    async def __call__(self, request: web.Request) -> web.Response:
        update: Update = request[PARSED_UPDATE]
        try:
            await asyncio.wait_for(self._slots.acquire(), self._slot_wait)
        except TimeoutError:
            log.warning("update %s: every slot taken for %.0f s; Telegram is asked to retry", update.update_id,
                        self._slot_wait)
            return web.Response(status=503, headers=RETRY_LATER)
        try:
            result = await self.dp.feed_update(self.bot, update)
            if isinstance(result, TelegramMethod):
                await self.dp.silent_call_request(bot=self.bot, result=result)
        except Exception:
            # Past every handler (the errors middleware answers what they raise): the ledger has let
            # go of it, and Telegram delivers it again.
            log.exception("update %s failed outside every handler; Telegram will deliver it again", update.update_id)
            return web.Response(status=500)
        finally:
            self._slots.release()
        if result is BUSY:
            return web.Response(status=503, headers=RETRY_LATER)
        return web.json_response({})


async def serve_webhook(dp: Dispatcher, bot: Bot, settings: Settings, *, health: Health, redis: Redis | None,
                        stop: asyncio.Event) -> None:
    """Serve until `stop` is set; updates being handled are finished before it returns."""
    path = urlparse(settings.WEBHOOK_URL).path or "/"
    web_app = web.Application(middlewares=[webhook_input(path, bot, settings.webhook_secrets())])
    # The secret is checked by webhook_input, against every accepted one.
    web_app.router.add_post(path, UpdateHandler(dp, bot, in_flight=settings.UPDATES_IN_FLIGHT))
    add_ops_routes(web_app, health)
    # aiohttp logs every request at INFO: one line per update. Only when debugging.
    access_log = logging.getLogger("aiohttp.access") if settings.LOG_LEVEL.upper() == "DEBUG" else None
    runner = web.AppRunner(web_app, access_log=access_log)
    await runner.setup()
    site = web.TCPSite(runner, host=settings.HOST, port=settings.PORT)
    await site.start()
    try:
        # Listening first: Telegram may deliver as soon as the webhook is set.
        await register(bot, settings, redis)
        log.info("webhook listening on %s:%s%s", settings.HOST, settings.PORT, path)
        await stop.wait()
        log.info("stopping the webhook server")
    finally:
        # Stops listening, then waits for the requests in hand: their updates are handled and
        # answered before the app stops.
        await runner.cleanup()
