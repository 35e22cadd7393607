"""One bot process of the benchmark, polling the emulator: the real App (`app`), a bare aiogram
echo bot (`echo`), or aiogram with no routers at all counting group messages (`bare`).

    python bench/bot_worker.py --bot app|echo|bare --scenario group|private --api URL --control URL ...

Run by bench/foundation.py (which samples this process's RSS from outside); prints one JSON line
with its figures on stdout. Steps: start the bot and let it poll; wait until the warm-up the
emulator queued (bot added to the group, or one /start) is handled; ask the emulator to queue the
whole burst at once; wait until it is handled; report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_seconds() -> float:
    return time.process_time()


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Control:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = aiohttp.ClientSession()

    async def status(self) -> dict[str, Any]:
        async with self.http.get(f"{self.url}/status") as r:
            return await r.json()

    async def burst(self, messages: int, text: str) -> dict[str, Any]:
        async with self.http.post(f"{self.url}/burst", json={"messages": messages, "text": text}) as r:
            return await r.json()

    async def wait(self, predicate, *, timeout: float, every: float = 0.05, what: str,
                   partial_ok: bool = False) -> dict[str, Any]:
        """Poll the emulator until `predicate`; with partial_ok, give up quietly at the timeout and
        return the status (the caller reports what was done in the time)."""
        deadline = time.monotonic() + timeout
        while True:
            status = await self.status()
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                if partial_ok:
                    status["timed_out"] = True
                    return status
                raise TimeoutError(f"{what}: not reached within {timeout}s; emulator status {status}")
            await asyncio.sleep(every)

    async def close(self) -> None:
        await self.http.close()


async def run_app(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import text

    from bot.app import App
    from bot.core.config import load_settings
    from bot.core.db import WriteCounter
    from bot.core.logs import setup_logging
    from bot.telegram.middlewares.dedup import DedupMiddleware
    from bot.telegram.middlewares.errors import ErrorsMiddleware

    setup_logging("INFO")
    overrides: dict[str, Any] = {
        "BOT_TOKEN": args.token, "TELEGRAM_API_URL": args.api, "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url or None,
    }
    if args.updates_in_flight:
        overrides["UPDATES_IN_FLIGHT"] = args.updates_in_flight
    settings = load_settings(**overrides)
    control = Control(args.control)
    app = await App.connect(settings)
    writes = WriteCounter(app.engine)
    # How many group messages reached the tracker: the end of the burst for the group scenario.
    recorded = 0
    record_many = app.tracker.record_many

    def counting_record_many(sightings: Any) -> None:
        nonlocal recorded
        recorded += len(sightings)
        record_many(sightings)

    app.tracker.record_many = counting_record_many  # type: ignore[method-assign]
    await app.start()
    app.keep_startup_objects()  # as `python -m bot run` does
    polling = asyncio.create_task(app.feed_polling())
    result: dict[str, Any] = {"backend": app.engine.url.get_backend_name(), "redis": bool(app.redis),
                              "updates_in_flight": settings.UPDATES_IN_FLIGHT}
    try:
        # Warm-up: the bot handles what the emulator queued in /prepare.
        await control.wait(lambda s: s["undelivered"] == 0 and s["answers"] >= 1, timeout=30, what="warm-up")
        await _idle(app.dp)
        await app.sender.wait_idle()
        await app.flusher.flush_now()
        result["rss_before_burst_mb"] = round(rss_mb(), 1)
        writes_before = writes.count
        cpu_before, emu_cpu_before = cpu_seconds(), (await control.status())["cpu_seconds"]

        prof = _start_cprofile(args)
        queued = await control.burst(args.messages, args.text)
        result["enqueue_seconds"] = queued["enqueue_seconds"]
        if args.scenario == "group":
            deadline = time.monotonic() + args.timeout
            while recorded < args.messages or app.dp._handle_update_tasks:
                if time.monotonic() > deadline:
                    result["partial"] = True
                    await _stop_polling(app.dp)
                    await _idle(app.dp)
                    break
                await asyncio.sleep(0.002)
            result["handled_at"] = time.time()
            result["done"] = recorded
            # The final flush: everything recorded is in the database when it returns.
            await app.flusher.flush_now()
            result["end_at"] = time.time()
            result["unflushed"] = app.tracker.pending
            status = await control.status()
        else:
            status = await control.wait(lambda s: s["answered_at"] is not None, timeout=args.timeout,
                                        what=f"{args.messages} answers", partial_ok=True)
            result["end_at"] = status["answered_at"] or status["last_answer_at"]
            result["done"] = status["answers"]
            if status.get("timed_out"):
                result["partial"] = True
                await _stop_polling(app.dp)  # stop fetching; what is in flight finishes below
            await _idle(app.dp)
        _stop_cprofile(prof, args)
        result["start_at"] = status["first_data_at"]
        result["cpu_seconds"] = cpu_seconds() - cpu_before
        result["emulator_cpu_seconds"] = status["cpu_seconds"] - emu_cpu_before
        result["writes"] = writes.count - writes_before
        result["recorded"] = recorded
        result["emulator"] = status["counters"]
        result["maxrss_mb"] = round(maxrss_mb(), 1)

        # Correctness, read back from the database.
        async with app.engine.connect() as conn:
            if args.scenario == "group":
                row = (await conn.execute(text(
                    "SELECT count(*), coalesce(sum(m.message_count), 0) FROM members m "
                    "JOIN communities c ON c.id = m.community_id WHERE c.chat_id = :chat AND m.user_id != :owner"),
                    {"chat": args.group_chat_id, "owner": args.group_owner_id})).one()
                result["verify"] = {"members": row[0], "message_count_sum": int(row[1])}
            else:
                row = (await conn.execute(text("SELECT count(*), sum(CASE WHEN can_dm THEN 1 ELSE 0 END) FROM users"))).one()
                result["verify"] = {"users": row[0], "can_dm": int(row[1] or 0)}
        for mw in app.dp.update.outer_middleware:
            if isinstance(mw, ErrorsMiddleware):
                result["handler_errors"] = mw.failures
            if isinstance(mw, DedupMiddleware):
                result["duplicates_dropped"] = mw.dropped
    finally:
        await _stop_polling(app.dp)
        await asyncio.gather(polling, return_exceptions=True)
        await app.stop()
        await control.close()
    return result


async def run_echo(args: argparse.Namespace) -> dict[str, Any]:
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiogram.types import Message

    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text)

    bot = Bot(args.token, session=AiohttpSession(api=TelegramAPIServer.from_base(args.api)))
    control = Control(args.control)
    kwargs: dict[str, Any] = {"handle_signals": False}
    if args.tasks_concurrency_limit:
        kwargs["tasks_concurrency_limit"] = args.tasks_concurrency_limit
    polling = asyncio.create_task(dp.start_polling(bot, **kwargs))
    result: dict[str, Any] = {"tasks_concurrency_limit": args.tasks_concurrency_limit}
    try:
        await control.wait(lambda s: s["answers"] >= 1, timeout=30, what="warm-up")
        await _idle(dp)
        result["rss_before_burst_mb"] = round(rss_mb(), 1)
        cpu_before, emu_cpu_before = cpu_seconds(), (await control.status())["cpu_seconds"]
        prof = _start_cprofile(args)
        queued = await control.burst(args.messages, args.text)
        result["enqueue_seconds"] = queued["enqueue_seconds"]
        status = await control.wait(lambda s: s["answered_at"] is not None, timeout=args.timeout,
                                    what=f"{args.messages} answers", partial_ok=True)
        _stop_cprofile(prof, args)
        result["start_at"] = status["first_data_at"]
        result["end_at"] = status["answered_at"] or status["last_answer_at"]
        result["done"] = status["answers"]
        if status.get("timed_out"):
            result["partial"] = True
            await _stop_polling(dp)
        result["cpu_seconds"] = cpu_seconds() - cpu_before
        result["emulator_cpu_seconds"] = status["cpu_seconds"] - emu_cpu_before
        result["emulator"] = status["counters"]
        await _idle(dp)
        result["maxrss_mb"] = round(maxrss_mb(), 1)
    finally:
        await _stop_polling(dp)
        await asyncio.gather(polling, return_exceptions=True)
        await bot.session.close()
        await control.close()
    return result


async def run_bare(args: argparse.Namespace) -> dict[str, Any]:
    """The floor for (a): aiogram polling with one outer middleware that counts group messages
    the way the activity tracker keys them, and no routers at all."""
    from aiogram import Bot, Dispatcher
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    seen: dict[tuple[int, int], int] = {}
    recorded = 0

    async def count(handler, event, data):
        nonlocal recorded
        if event.chat.type in ("group", "supergroup") and event.from_user is not None and not event.new_chat_members:
            key = (event.chat.id, event.from_user.id)
            seen[key] = seen.get(key, 0) + 1
            recorded += 1
        return await handler(event, data)

    dp = Dispatcher()
    dp.message.outer_middleware(count)
    bot = Bot(args.token, session=AiohttpSession(api=TelegramAPIServer.from_base(args.api)))
    control = Control(args.control)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, tasks_concurrency_limit=100))
    result: dict[str, Any] = {"tasks_concurrency_limit": 100}
    try:
        # Fetched and confirmed (the next getUpdates carried their offset): the warm-up is behind us.
        await control.wait(lambda s: s["undelivered"] == 0 and s["pending"] == 0, timeout=30, what="warm-up")
        await _idle(dp)
        recorded = 0
        result["rss_before_burst_mb"] = round(rss_mb(), 1)
        cpu_before, emu_cpu_before = cpu_seconds(), (await control.status())["cpu_seconds"]
        queued = await control.burst(args.messages, args.text)
        result["enqueue_seconds"] = queued["enqueue_seconds"]
        deadline = time.monotonic() + args.timeout
        while recorded < args.messages or dp._handle_update_tasks:
            if time.monotonic() > deadline:
                result["partial"] = True
                await _stop_polling(dp)
                await _idle(dp)
                break
            await asyncio.sleep(0.002)
        result["end_at"] = time.time()
        result["done"] = recorded
        status = await control.status()
        result["start_at"] = status["first_data_at"]
        result["cpu_seconds"] = cpu_seconds() - cpu_before
        result["emulator_cpu_seconds"] = status["cpu_seconds"] - emu_cpu_before
        result["emulator"] = status["counters"]
        result["maxrss_mb"] = round(maxrss_mb(), 1)
    finally:
        await _stop_polling(dp)
        await asyncio.gather(polling, return_exceptions=True)
        await bot.session.close()
        await control.close()
    return result


def _start_cprofile(args: argparse.Namespace):
    """cProfile of the burst only (start-up excluded); it slows the bot down about twice."""
    if not args.cprofile:
        return None
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    return prof


def _stop_cprofile(prof, args: argparse.Namespace) -> None:
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.cprofile)


async def _stop_polling(dp) -> None:
    try:
        await dp.stop_polling()
    except RuntimeError:
        pass  # already stopped (a burst cut short at its time limit)


async def _idle(dp) -> None:
    while dp._handle_update_tasks:
        await asyncio.wait(set(dp._handle_update_tasks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bot", choices=["app", "echo", "bare"], required=True)
    parser.add_argument("--scenario", choices=["group", "private"], required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--text", default="/start")
    parser.add_argument("--database-url")
    parser.add_argument("--redis-url")
    parser.add_argument("--group-chat-id", type=int)
    parser.add_argument("--group-owner-id", type=int, help="left out of the (a) check: the warm-up, not the burst")
    parser.add_argument("--updates-in-flight", type=int)
    parser.add_argument("--tasks-concurrency-limit", type=int)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--cprofile", help="write a cProfile of the burst to this file")
    args = parser.parse_args()
    runner = {"app": run_app, "echo": run_echo, "bare": run_bare}[args.bot]
    try:
        result = asyncio.run(runner(args))
    except Exception as exc:
        logging.getLogger("bench").exception("worker failed")
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
