"""Fixtures: an emulator on a free port and an aiogram Bot talking to it over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.sandbox import TelegramEmulator


class FakeClock:
    """A settable clock for rate-limit and expiry tests."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest_asyncio.fixture
async def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def emu(clock: FakeClock) -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(clock=clock) as emulator:
        yield emulator


@pytest_asyncio.fixture
async def bot(emu: TelegramEmulator) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(emu.url))
    client = Bot(emu.token, session=session)
    yield client
    await session.close()


@pytest_asyncio.fixture
async def raw(emu: TelegramEmulator):
    """`await raw(method, token=None, **params)` -> (status, body), bypassing aiogram."""

    async def call(method: str, token: str | None = None, **params: Any) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as session:
            url = f"{emu.url}/bot{token or emu.token}/{method}"
            async with session.post(url, json=params) as response:
                return response.status, await response.json()

    return call


@pytest_asyncio.fixture
async def polling(emu: TelegramEmulator, bot: Bot):
    """`async with polling(dp):` runs the dispatcher against the emulator."""

    @contextlib.asynccontextmanager
    async def run(dp: Dispatcher) -> AsyncIterator[None]:
        task = asyncio.create_task(
            dp.start_polling(bot, handle_signals=False, polling_timeout=1, close_bot_session=False)
        )
        await emu.wait_for(lambda: emu.counters["getMe"] > 0, what="the dispatcher's getMe")
        try:
            yield
        finally:
            await dp.stop_polling()
            await task

    return run
