"""Run the emulator on its own: `python -m bot.sandbox --port 8081`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from .server import TelegramEmulator


async def serve(args: argparse.Namespace) -> None:
    emulator = TelegramEmulator(args.token, args.username, limits=not args.no_limits)
    url = await emulator.start(args.host, args.port)
    print(f"Telegram Bot API emulator for @{args.username} at {url} (token {args.token})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST")
    parser.add_argument("--username", default="community_test_bot")
    parser.add_argument("--no-limits", action="store_true", help="disable flood control")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
