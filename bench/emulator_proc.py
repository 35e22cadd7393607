"""The benchmark's stand-in for Telegram: the sandbox emulator in its own process.

    python bench/emulator_proc.py [--token T]

prints one JSON line `{"api": URL, "control": URL}` and serves until stdin closes (or SIGTERM).

The Bot API side is the unmodified `TelegramEmulator(limits=False, record_transcript=False)`; it
only also notes when the first getUpdates of a burst returned data and when the N-th answer
(sendMessage) arrived, so the bot's throughput is timed where Telegram would see it.

The control side (a second port, plain JSON) loads a scenario:

    POST /prepare {"kind": "group", "members": 5000}     users, a group, the bot added as admin
    POST /prepare {"kind": "private", "users": 20000}    users, plus one warm-up message
    POST /burst   {"messages": 20000, "text": "..."}     queue the whole burst in one go
    GET  /status                                         counters and timestamps

`/burst` enqueues every message synchronously inside the emulator's event loop, so a bot that is
long-polling meanwhile gets its first batch only when all of them are queued: the figure measures
the bot, never the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web  # noqa: E402

from bot.sandbox import TelegramEmulator  # noqa: E402
from bot.sandbox.api import METHODS  # noqa: E402
from bot.sandbox.state import ChatMemberState  # noqa: E402

DEFAULT_TOKEN = "700800900:BENCH-foundation-token"


class BenchEmulator(TelegramEmulator):
    """The emulator, plus the two timestamps the benchmark needs."""

    def __init__(self, token: str) -> None:
        super().__init__(token, "bench_community_bot", limits=False, record_transcript=False)
        self.kind: str | None = None
        self.group = None
        self.people: list = []
        self.warmup_user = None
        self.reset_marks(expect=0)

    def reset_marks(self, *, expect: int) -> None:
        self.expect = expect
        self.answers = 0
        self.first_data_at: float | None = None
        self.answered_at: float | None = None
        self.last_answer_at: float | None = None
        self.burst_queued_at: float | None = None

    def _record(self, name, params, error) -> None:
        super()._record(name, params, error)
        # The call log is for tests; a 40,000-call run keeps only the counters.
        self.requests.clear()
        if name == "sendMessage" and error is None:
            self.answers += 1
            self.last_answer_at = time.time()
            if self.answers == self.expect:
                self.answered_at = self.last_answer_at


_get_updates = METHODS["getupdates"]


async def _timed_get_updates(emu: BenchEmulator, p):
    updates = await _get_updates(emu, p)
    if updates and emu.first_data_at is None and emu.burst_queued_at is not None:
        emu.first_data_at = time.time()
    return updates


METHODS["getupdates"] = _timed_get_updates


class Control:
    def __init__(self, emu: BenchEmulator) -> None:
        self.emu = emu

    async def prepare(self, request: web.Request) -> web.Response:
        body = await request.json()
        emu = self.emu
        emu.kind = body["kind"]
        if emu.kind == "group":
            owner = emu.group_owner = emu.add_user("Owner", username="group_owner")
            emu.group = emu.create_group("Bench Community", owner)
            # The members were in the group before the bot: no join updates, only their chatter.
            emu.people = [emu.add_user(f"Member{i}", username=f"member{i}", language_code="en")
                          for i in range(body["members"])]
            for person in emu.people:
                emu.group.members[person.id] = ChatMemberState("member")
            emu.reset_marks(expect=1)  # the bot's greeting in the group ends the warm-up
            emu.add_bot_to_group(emu.group, owner, admin=True)
        elif emu.kind == "private":
            emu.people = [emu.add_user(f"User{i}", username=f"user{i}", language_code="en")
                          for i in range(body["users"])]
            emu.warmup_user = emu.add_user("Warmup", language_code="en")
            emu.reset_marks(expect=1)
            emu.send(emu.warmup_user, None, body.get("text", "/start"))
        else:
            raise web.HTTPBadRequest(text=f"unknown kind {emu.kind!r}")
        return web.json_response({"queued": emu.updates.undelivered, "people": len(emu.people),
                                  "chat_id": emu.group.id if emu.group is not None else None,
                                  "owner_id": emu.group_owner.id if emu.group is not None else None})

    async def burst(self, request: web.Request) -> web.Response:
        body = await request.json()
        emu, n, text = self.emu, body["messages"], body["text"]
        people = emu.people
        started = time.perf_counter()
        # Counting starts now; the answers of the warm-up are behind us.
        emu.reset_marks(expect=n if emu.kind == "private" else 0)
        if emu.kind == "group":
            items = ((people[i % len(people)], emu.group, f"{text} {i}") for i in range(n))
        else:
            items = ((people[i % len(people)], None, text) for i in range(n))
        emu.send_many(items)
        emu.burst_queued_at = time.time()
        return web.json_response({"queued": emu.updates.undelivered,
                                  "enqueue_seconds": round(time.perf_counter() - started, 3)})

    async def status(self, request: web.Request) -> web.Response:
        emu = self.emu
        return web.json_response({
            "undelivered": emu.updates.undelivered,
            "pending": emu.updates.pending,
            "expect": emu.expect,
            "answers": emu.answers,
            "first_data_at": emu.first_data_at,
            "answered_at": emu.answered_at,
            "last_answer_at": emu.last_answer_at,
            "burst_queued_at": emu.burst_queued_at,
            "counters": dict(emu.counters),
            "cpu_seconds": time.process_time(),
        })


async def serve(token: str) -> None:
    emu = BenchEmulator(token)
    api_url = await emu.start("127.0.0.1", 0)
    control = Control(emu)
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/prepare", control.prepare)
    app.router.add_post("/burst", control.burst)
    app.router.add_get("/status", control.status)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(json.dumps({"api": api_url, "control": f"http://{host}:{port}", "pid": os.getpid()}), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # The parent holds our stdin: when it goes away (or closes it), so do we.
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(1024) else None)
    await stop.wait()
    await runner.cleanup()
    await emu.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args()
    asyncio.run(serve(args.token))


if __name__ == "__main__":
    main()
