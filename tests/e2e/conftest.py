"""End-to-end fixtures: the real bot (App: dispatcher, middlewares, sender, activity flusher,
scheduler) polling the Telegram emulator over HTTP, on the test database and, when REDIS_URL is
set, on Redis (FSM, update de-dup, send budget).

The emulator keeps Telegram's flood limits on. They, and the bot's per-user throttle, run on a
"human" clock that moves one second ahead before every simulated action (`HumanClock`): people do
not press three buttons within a second, and without that pacing a fast test would spend most of
its time waiting out 429s and throttling that no real user could cause. Bursts *within* one action
(a handler sending several messages) still meet the real limits. Message dates stay on wall time,
so update-dated records and the bot's own `now` stay in step.

Every test is also checked on the way out: no Bot API request may have failed (bad HTML, a bad
parameter, 403, 429...; "message is not modified" aside), and no error may have been logged,
unless the test declared it (`e2e.allow_api_errors(...)`, `e2e.expect_logged_errors(n)`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
from aiogram.client.session.aiohttp import AiohttpSession
from e2e_harness import (
    BOT_USERNAME,
    E2E,
    OWNER_ID,
    TOKEN,
    ErrorLog,
    Group,
    HumanClock,
    PacedEmulator,
    close_without_ssl_grace,
    pace_throttle,
)

from bot.app import App, polling
from bot.core.config import load_settings


@pytest.fixture
async def e2e(db_url: str, redis_url: str | None, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[E2E]:
    monkeypatch.setattr(AiohttpSession, "close", close_without_ssl_grace)
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    clock = HumanClock()
    emu = PacedEmulator(token=TOKEN, bot_username=BOT_USERNAME, human_clock=clock)
    await emu.start()
    harness: E2E | None = None
    try:
        settings = load_settings(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=emu.url, DATABASE_URL=db_url, REDIS_URL=redis_url,
                                 OWNER_IDS=str(OWNER_ID), ACTIVITY_FLUSH_SECONDS=0.2)
        app = await App.connect(settings)
        await app.start()
        async with polling(app):
            # Until the first getUpdates names allowed_updates, Telegram (and the emulator) would not
            # queue chat_member updates at all: wait for it before anybody acts.
            # (Setting allowed_updates wakes no emulator waiter, so this polls.)
            deadline = time.monotonic() + 10
            while "chat_member" not in emu.updates.allowed:
                assert time.monotonic() < deadline, "the bot never called getUpdates with allowed_updates"
                await asyncio.sleep(0.01)
            pace_throttle(app, clock)
            owner = emu.add_user("Olga", last_name="Owner", username="olga_operator", user_id=OWNER_ID)
            harness = E2E(emu=emu, app=app, clock=clock, owner=owner)
            yield harness
            await harness.settle()
    finally:
        await emu.stop()
        logging.getLogger().removeHandler(errors)
    # "message is not modified" is the one 400 the bot provokes knowingly (a double tap re-renders
    # the same menu; bot.views.render treats it as success). Anything else is a bug in what was sent.
    unexpected = [c for c in emu.requests if not c.ok and c.error_code not in harness._allowed_api_errors
                  and c.method.lower() != "getupdates" and "message is not modified" not in (c.description or "")]
    assert not unexpected, "Bot API requests failed:\n" + "\n".join(
        f"  {c.method} {c.params} -> {c.error_code} {c.description}" for c in unexpected)
    logged = [f"{r.name}: {r.getMessage()}" for r in errors.records]
    assert len(logged) == harness._expected_logged_errors, "errors logged during the test:\n" + "\n".join(logged)


@pytest.fixture
async def group(e2e: E2E) -> Group:
    """Alice's group "Green Valley" with Bob and Carol; the bot is an administrator with all rights."""
    return await e2e.make_group()
