"""Command line: `python -m bot run | migrate | demo | jobs list | jobs run NAME [--at ISO-8601] | webhook set`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import datetime, timezone

from bot.core.config import ConfigError, Settings, StartupError, load_settings
from bot.core.logs import setup_logging

EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="community-bot", description="Community Commerce Bot")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="apply pending migrations, then serve (polling, or webhook when WEBHOOK_URL is set)")
    sub.add_parser("migrate", help="apply database migrations")
    demo = sub.add_parser("demo", help="run the bot against the built-in Telegram emulator and print the chat")
    demo.add_argument("--locale", default="en", help="language of the demo's members (en or zh_Hans)")
    demo.add_argument("--verbose", action="store_true", help="show the logs on standard error too, not only in their file")
    jobs = sub.add_parser("jobs", help="scheduled jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    jobs_sub.add_parser("list", help="list scheduled jobs")
    run_one = jobs_sub.add_parser("run", help="run one job now")
    run_one.add_argument("name")
    run_one.add_argument("--at", help="run as of this time (ISO-8601; UTC when no offset is given)")
    webhook = sub.add_parser("webhook", help="the webhook registered with Telegram")
    webhook_sub = webhook.add_subparsers(dest="webhook_command", required=True)
    webhook_sub.add_parser("set", help="register WEBHOOK_URL, the first WEBHOOK_SECRET and the command menus "
                                       "(a deploy step; workers started after it do not register again)")
    return parser


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def migrate(settings: Settings) -> None:
    from bot.core.db import DatabaseUnavailable, check_connection, create_engine
    from bot.core.migrate import upgrade

    async def reachable() -> None:
        engine = create_engine(settings.DATABASE_URL)
        try:
            await check_connection(engine)
        finally:
            await engine.dispose()

    asyncio.run(reachable())
    try:
        upgrade(settings.DATABASE_URL)
    except Exception as exc:
        raise DatabaseUnavailable(f"migration failed: {str(exc).splitlines()[0]}") from None


async def _serve(settings: Settings) -> None:
    from bot.app import App
    from bot.telegram.ops import Health, serve_ops

    # From the first moment, not only once updates flow: a SIGTERM while the bot is starting (taking
    # over a dead worker's journal, say) must still end in a clean stop, not in the default kill.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    app = await App.connect(settings)
    health = Health(app.engine, app.redis)
    ops = None
    try:
        # Webhook workers register the webhook and the menus together, once per deploy.
        await app.start(publish_commands=not settings.WEBHOOK_URL)
        app.keep_startup_objects()
        if stop.is_set():
            return
        if settings.WEBHOOK_URL:
            from bot.telegram.webhook import serve_webhook

            await serve_webhook(app.dp, app.bot, settings, health=health, redis=app.redis, stop=stop)
        else:
            if settings.METRICS_PORT:
                ops = await serve_ops(settings.HOST, settings.METRICS_PORT, health)
            await app.poll_until(stop)
    finally:
        await app.stop()
        if ops is not None:
            await ops.cleanup()


async def _set_webhook(settings: Settings) -> None:
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    from bot.app import connect_redis
    from bot.factory import create_bot
    from bot.telegram.registration import register

    bot = create_bot(settings, settings.bot_token())
    redis = await connect_redis(settings.REDIS_URL, connections=2) if settings.REDIS_URL else None
    try:
        await register(bot, settings, redis, force=True)
    except TelegramNetworkError as exc:
        raise StartupError(f"Bot API unreachable at {settings.TELEGRAM_API_URL}: {exc}") from None
    except TelegramUnauthorizedError:
        raise ConfigError("BOT_TOKEN was rejected by the Bot API (401 Unauthorized)") from None
    finally:
        await bot.session.close()
        if redis is not None:
            await redis.aclose()


def _parse_at(raw: str | None) -> datetime:
    if raw is None:
        return datetime.now(timezone.utc)
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"--at {raw!r} is not an ISO-8601 time such as 2026-11-21T08:00:00+08:00") from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


async def _run_job(settings: Settings, name: str, at: datetime) -> str:
    from bot.app import App

    app = await App.connect(settings)
    try:
        await app.start(scheduler=False, publish_commands=False, recover=False)
        return await app.run_job(name, at)
    finally:
        await app.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "demo":
            from bot.demo import run_demo

            # The demo prints a conversation: its logs go to a file, which it names at the end.
            return run_demo(locale=args.locale, verbose=args.verbose, log_level=settings.LOG_LEVEL)
        setup_logging(settings.LOG_LEVEL)
        if args.command == "migrate":
            migrate(settings)
            print("migrations applied")
        elif args.command == "run":
            settings.bot_token()
            migrate(settings)
            asyncio.run(_serve(settings))
        elif args.command == "webhook":
            settings.bot_token()
            asyncio.run(_set_webhook(settings))
            print(f"webhook set: {settings.WEBHOOK_URL}")
        elif args.jobs_command == "list":
            from bot.jobs.catalog import JOBS

            for job in JOBS.values():
                print(f"{job.name:<20} {job.describe_trigger():<28} {job.description}")
        else:
            from bot.jobs.catalog import JOBS

            if args.name not in JOBS:
                return _fail(f"unknown job {args.name!r}; `jobs list` shows the names", EXIT_CONFIG)
            at = _parse_at(args.at)
            settings.bot_token()
            migrate(settings)
            print(f"{args.name}: {asyncio.run(_run_job(settings, args.name, at))}")
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except StartupError as exc:  # DatabaseUnavailable is one too
        return _fail(str(exc), EXIT_UNAVAILABLE)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
