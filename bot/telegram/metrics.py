"""Prometheus metrics, through the standard client and its default registry.

Served on /metrics by the webhook server, or on METRICS_PORT when polling (bot/telegram/webhook.py).
Counters live for the process; several Apps in one process (tests, the demo) add to the same ones.
"""

from __future__ import annotations

import time
from typing import Any

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.exceptions import TelegramRetryAfter
from aiogram.types import Update
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

UPDATES = Counter("ccb_updates_total", "Updates handled, by type (duplicates not counted)", ["type"])
UPDATE_SECONDS = Histogram("ccb_update_seconds", "Time to handle one update, by type", ["type"],
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
UPDATE_ERRORS = Counter("ccb_update_errors_total", "Updates whose handling raised, by type", ["type"])
RETRY_AFTER = Counter("ccb_telegram_429_total", "429 Too Many Requests answers from the Bot API, by method",
                      ["method"])
SEND_QUEUE = Gauge("ccb_send_queue_depth", "Messages waiting in the sender's queue")
LEASE_HELD = Gauge("ccb_scheduler_lease_held", "1 while this worker holds the scheduler lease (runs the jobs)")
JOBS_RUN = Counter("ccb_jobs_run_total", "Scheduled job runs, by job and outcome (ok, failed)", ["job", "outcome"])


def exposition() -> tuple[bytes, str]:
    """The body and content type of a /metrics answer."""
    return generate_latest(), CONTENT_TYPE_LATEST


class UpdateMetrics(BaseMiddleware):
    """An update middleware placed after de-duplication and inside the error middleware, so it counts
    each update once and sees the exceptions that the error middleware turns into apologies."""

    async def __call__(self, handler, event: Update, data: dict[str, Any]) -> Any:
        kind = event.event_type
        started = time.perf_counter()
        try:
            return await handler(event, data)
        except Exception:
            UPDATE_ERRORS.labels(kind).inc()
            raise
        finally:
            UPDATES.labels(kind).inc()
            UPDATE_SECONDS.labels(kind).observe(time.perf_counter() - started)


class CountRetryAfter(BaseRequestMiddleware):
    """Counts every 429 on a bot's session. Registered last, it sits closest to the wire and sees
    each one, including those that an outer middleware then waits out and retries."""

    async def __call__(self, make_request, bot, method):
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter:
            RETRY_AFTER.labels(method.__api_method__).inc()
            raise


def instrument(*, dp, bots, sender) -> None:
    """Hooks a running worker's parts up to the metrics: the update middleware after de-duplication
    and the error middleware (registered after them, so inside them), the 429 counter innermost on
    every bot's session, the send queue read at scrape time."""
    dp.update.outer_middleware(UpdateMetrics())
    for bot in bots:
        bot.session.middleware(CountRetryAfter())
    SEND_QUEUE.set_function(lambda: sender.pending)
