"""What operators and load balancers ask a worker: GET /healthz and GET /metrics.

The webhook server serves both beside the webhook path; when polling, `serve_ops` serves them on
METRICS_PORT.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.telegram.metrics import exposition

log = logging.getLogger(__name__)

# A load balancer's probe gives up after a few seconds; answer before it does.
CHECK_TIMEOUT = 2.0


class Health:
    """Whether the database and Redis answer now. Telegram itself is not asked: a worker that
    cannot reach it still accepts updates, and its sender retries."""

    def __init__(self, engine: AsyncEngine, redis: Redis | None) -> None:
        self.engine, self.redis = engine, redis

    async def check(self) -> dict[str, str]:
        database, redis = await asyncio.gather(self._database(), self._redis())
        return {"database": database, "redis": redis}

    async def _database(self) -> str:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable", told in the answer
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    async def _redis(self) -> str:
        if self.redis is None:
            return "not used"
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await self.redis.ping()
        except Exception as exc:  # noqa: BLE001
            return f"unreachable: {type(exc).__name__}"
        return "ok"


def add_ops_routes(app: web.Application, health: Health) -> None:
    async def healthz(_request: web.Request) -> web.Response:
        checks = await health.check()
        ok = all(state in ("ok", "not used") for state in checks.values())
        if not ok:
            log.warning("health check failed: %s", checks)
        return web.json_response({"ok": ok, **checks}, status=200 if ok else 503)

    async def metrics(_request: web.Request) -> web.Response:
        body, content_type = exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


async def serve_ops(host: str, port: int, health: Health) -> web.AppRunner:
    """/healthz and /metrics on their own port (polling mode); the caller cleans the runner up."""
    app = web.Application()
    add_ops_routes(app, health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host=host, port=port).start()
    log.info("health and metrics on %s:%s", host, port)
    return runner
