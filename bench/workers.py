"""Issue 15's benchmark: 1, 2 and 3 webhook workers behind a round-robin proxy, on PostgreSQL and Redis.

    .venv/bin/python bench/workers.py                      # 1, 2, 3 workers, then a kill, 5,000 updates each
    .venv/bin/python bench/workers.py --updates 1000 --workers 1,2 --kill-workers 2

Every part is real and in its own process, except the two that stand for the outside world, which
share the benchmark's process: Telegram's webhook delivery and the load balancer.

- The Bot API is the sandbox emulator (this file with `--serve-emulator`, a child process). It
  makes the users, writes their messages and counts the bot's answers per private chat.
- The workers are `python -m bot run` processes in webhook mode (WEBHOOK_URL, WEBHOOK_SECRET,
  PORT), on one PostgreSQL database and one Redis db that the benchmark empties before each round.
- The proxy forwards each POST to the next worker in turn. A worker that refuses the connection
  is skipped for a few seconds and the request goes to the next one (what nginx does with
  `proxy_next_upstream error`: the worker never saw it); a request cut off inside a worker that
  dies is answered 502.
- Telegram's side: the updates of a round are delivered over at most 40 connections at once
  (setWebhook's default max_connections), and every delivery that is not answered 200 is
  delivered again after a short backoff. A round ends when every update was answered 200.

Each round gives the workers 5,000 `/start` commands from distinct users (after 40 warm-up
commands, not timed) and checks from the emulator's count of answers per user: lost = a user
with no answer, doubled = an answer more than one. The last round kills (SIGKILL) a worker, the
scheduler's lease holder, somewhere in the burst; the updates it had in hand are delivered again,
to the others, once their claims in the update ledger lapse.

Exit status 0 only when nothing was lost, nothing was doubled in the rounds without a kill, and
every answer doubled in the kill round belongs to an update the killed worker had in hand (the
only way the code allows one: bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from orders_race import empty_database, prepare_database  # noqa: E402

TOKEN = "700800902:BENCH-workers-token"
SECRET = "bench-workers-secret"
HOOK_PATH = "/tg"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_CONNECTIONS = 40  # setWebhook's default
WARMUP = MAX_CONNECTIONS
# Telegram retries a failed delivery after a while, longer each time; shorter here, the same shape.
RETRY_FIRST, RETRY_MAX = 0.25, 4.0
DELIVERY_TIMEOUT = 60.0
# How long the proxy skips a worker that refused a connection (a passive health check).
DOWN_SECONDS = 5.0
CUT_OFF = "X-Bench-Cut-Off"
TICK = os.sysconf("SC_CLK_TCK")


# ----- the Bot API: the emulator in its own process ------------------------------------------------

def serve_emulator() -> None:
    """`--serve-emulator`: prints `{"api", "control", "pid"}` and serves until stdin closes."""
    from bot.sandbox import TelegramEmulator
    from bot.sandbox.serialize import message_json

    class CountingEmulator(TelegramEmulator):
        def __init__(self) -> None:
            super().__init__(TOKEN, "bench_workers_bot", limits=False, record_transcript=False)
            self.answers: Counter[int] = Counter()

        def _record(self, name, params, error) -> None:
            super()._record(name, params, error)
            self.requests.clear()  # the call log is for tests; keep memory flat
            if name == "sendMessage" and error is None and params is not None:
                self.answers[params.get_int("chat_id")] += 1

    emu = CountingEmulator()

    async def users(request: web.Request) -> web.Response:
        body = await request.json()
        updates = []
        for n in range(body["n"]):
            person = emu.add_user(f"User{body['first_id'] + n}", language_code="en")
            msg = emu.send(person, None, body["text"])
            updates.append({"update_id": body["first_id"] + n, "message": message_json(msg)})
        return web.json_response(updates)

    async def answers(_request: web.Request) -> web.Response:
        return web.json_response({"answers": {str(k): v for k, v in emu.answers.items()},
                                  "errors": emu.counters.get("errors", 0), "webhook": emu.webhook_url})

    async def serve() -> None:
        api = await emu.start("127.0.0.1", 0)
        app = web.Application()
        app.router.add_post("/users", users)
        app.router.add_get("/answers", answers)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        print(json.dumps({"api": api, "control": f"http://{host}:{port}", "pid": os.getpid()}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(1024) else None)
        await stop.wait()
        await runner.cleanup()
        await emu.stop()

    asyncio.run(serve())


class Emulator:
    def __init__(self, log: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-emulator"], cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the emulator did not start; see {log}")
        info = json.loads(line)
        self.api, self.control, self.pid = info["api"], info["control"], info["pid"]

    async def users(self, http: aiohttp.ClientSession, n: int, first_id: int) -> list[dict]:
        async with http.post(f"{self.control}/users", json={"n": n, "first_id": first_id, "text": "/start"}) as r:
            return await r.json()

    async def answers(self, http: aiohttp.ClientSession) -> dict:
        async with http.get(f"{self.control}/answers") as r:
            return await r.json()

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ----- the workers ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def services_cpu() -> float:
    """CPU of every PostgreSQL and Redis server process on the machine (shared with whoever else uses them)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() in ("postgres", "redis-server"):
                    total += cpu_seconds(int(proc.name))
            except OSError:
                continue
    return total


class Worker:
    def __init__(self, index: int, *, api: str, proxy_port: int, database_url: str, redis_url: str, log: Path) -> None:
        self.index, self.port = index, free_port()
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        env.update(PYTHONUNBUFFERED="1", BOT_TOKEN=TOKEN, TELEGRAM_API_URL=api, DATABASE_URL=database_url,
                   REDIS_URL=redis_url, WEBHOOK_URL=f"https://127.0.0.1:{proxy_port}{HOOK_PATH}",
                   WEBHOOK_SECRET=SECRET, HOST="127.0.0.1", PORT=str(self.port), LOG_LEVEL="WARNING")
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.cpu_before = 0.0
        self.cpu_at_kill: float | None = None

    def listening(self) -> bool:
        if self.proc.poll() is not None:
            raise SystemExit(f"worker {self.index} exited with {self.proc.returncode}; see {self.log}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    async def holds_lease(self, http: aiohttp.ClientSession) -> bool:
        try:
            async with http.get(f"http://127.0.0.1:{self.port}/metrics") as r:
                return bool(re.search(r"^ccb_scheduler_lease_held 1(\.0)?$", await r.text(), re.M))
        except aiohttp.ClientError:
            return False

    def kill(self) -> None:
        self.cpu_at_kill = self.cpu()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# ----- the load balancer ---------------------------------------------------------------------------

class Proxy:
    """Round-robin over the workers' ports, forwarding the body and the secret header."""

    def __init__(self) -> None:
        self.port = free_port()
        self.backends: list[int] = []
        self._down_until: dict[int, float] = {}
        self._next = 0
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                           timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT))
        app = web.Application()
        app.router.add_post(HOOK_PATH, self.forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {SECRET_HEADER: request.headers.get(SECRET_HEADER, ""), "Content-Type": "application/json"}
        for _ in range(len(self.backends)):
            port = self._pick()
            if port is None:
                break
            try:
                async with self._http.post(f"http://127.0.0.1:{port}{HOOK_PATH}", data=body, headers=headers) as r:
                    text = await r.read()
                    return web.Response(status=r.status, body=text, headers={
                        k: v for k, v in r.headers.items() if k in ("Retry-After", "Content-Type")})
            except aiohttp.ClientConnectorError:
                self._down_until[port] = time.monotonic() + DOWN_SECONDS  # never reached it: next one
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return web.Response(status=502, headers={CUT_OFF: "1"})
        return web.Response(status=502)

    def _pick(self) -> int | None:
        now = time.monotonic()
        for _ in range(len(self.backends)):
            port = self.backends[self._next % len(self.backends)]
            self._next += 1
            if self._down_until.get(port, 0) <= now:
                return port
        return None

    async def stop(self) -> None:
        await self._runner.cleanup()
        await self._http.close()


# ----- Telegram's side: delivery with retries -----------------------------------------------------

@dataclass
class Delivery:
    acknowledged: dict[int, float] = field(default_factory=dict)  # update id → when it got its 200
    statuses: Counter = field(default_factory=Counter)
    cut_off: set[int] = field(default_factory=set)  # cut off inside a worker that died
    on_ack: object = None
    kill_at: float | None = None


async def deliver(url: str, updates: list[dict], record: Delivery) -> None:
    """At most MAX_CONNECTIONS posts at once; whatever is not answered 200 goes again after a backoff."""
    queue: asyncio.Queue = asyncio.Queue()
    for update in updates:
        queue.put_nowait((update, 0))
    remaining = len(updates)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def connection(http: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while True:
            update, attempt = await queue.get()
            uid = update["update_id"]
            try:
                async with http.post(url, json=update, headers={SECRET_HEADER: SECRET}) as r:
                    status = r.status
                    await r.read()
                    if r.headers.get(CUT_OFF):
                        record.cut_off.add(uid)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                status = type(exc).__name__
            record.statuses[status] += 1
            if status == 200:
                if uid not in record.acknowledged:
                    record.acknowledged[uid] = time.perf_counter()
                    remaining -= 1
                    if record.on_ack is not None:
                        record.on_ack(len(record.acknowledged))
                    if remaining == 0:
                        done.set()
            else:
                delay = min(RETRY_MAX, RETRY_FIRST * 2 ** attempt)
                loop.call_later(delay, queue.put_nowait, (update, attempt + 1))

    timeout = aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS), timeout=timeout) as http:
        tasks = [asyncio.create_task(connection(http)) for _ in range(MAX_CONNECTIONS)]
        await done.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ----- the services ----------------------------------------------------------------------------------

async def empty_services(database_url: str, redis_url: str) -> None:
    from redis.asyncio import Redis

    await empty_database(database_url)
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushdb()  # the benchmark's own db only (checked in main)
    finally:
        await redis.aclose()


async def users_in_database(database_url: str) -> int:
    from sqlalchemy import text

    from bot.core.db import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT COUNT(*) FROM users"))).scalar_one()
    finally:
        await engine.dispose()


# ----- a round ----------------------------------------------------------------------------------------

@dataclass
class Result:
    workers: int
    updates: int
    seconds: float
    lost: list[int]
    doubled: dict[int, int]
    users_rows: int
    cpu_workers: float
    cpu_emulator: float
    cpu_bench: float
    cpu_services: float
    load: tuple[float, float]
    statuses: Counter
    killed: int | None = None
    kill_at: float | None = None
    cut_off: set[int] = field(default_factory=set)
    cut_off_users: set[int] = field(default_factory=set)
    before_lapse: float | None = None  # the kill round: when all but the killed worker's leftovers were handled

    @property
    def rate(self) -> float:
        return self.updates / self.seconds

    @property
    def doubled_count(self) -> int:
        return sum(self.doubled.values())

    @property
    def doubles_explained(self) -> bool:
        return set(self.doubled) <= self.cut_off_users


async def run_round(opts: argparse.Namespace, n_workers: int, *, kill: bool, workdir: Path, rng: random.Random) -> Result:
    await empty_services(opts.database_url, opts.redis_url)
    label = f"{n_workers}w{'-kill' if kill else ''}"
    emulator = Emulator(workdir / f"emulator-{label}.log")
    proxy = Proxy()
    workers: list[Worker] = []
    try:
        await proxy.start()
        workers = [Worker(i, api=emulator.api, proxy_port=proxy.port, database_url=opts.database_url,
                          redis_url=opts.redis_url, log=workdir / f"worker-{label}-{i}.log") for i in range(n_workers)]
        proxy.backends = [w.port for w in workers]
        url = f"http://127.0.0.1:{proxy.port}{HOOK_PATH}"
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 120
            while not all(w.listening() for w in workers) or not (await emulator.answers(http))["webhook"]:
                if time.monotonic() > deadline:
                    raise SystemExit(f"workers not listening or webhook not registered; see {workdir}")
                await asyncio.sleep(0.2)
            warmup = await emulator.users(http, WARMUP, 1)
            await deliver(url, warmup, Delivery())
            burst = await emulator.users(http, opts.updates, 1_000_001)
            user_of = {u["update_id"]: u["message"]["from"]["id"] for u in burst}
            record = Delivery()
            killed: list[Worker] = []
            kill_after = int(opts.updates * rng.uniform(0.3, 0.7)) if kill else None
            kill_task: asyncio.Task | None = None

            async def kill_one() -> None:
                holders = [w for w in workers if await w.holds_lease(http)]
                victim = (holders or workers)[0]
                victim.kill()
                killed.append(victim)
                record.kill_at = time.perf_counter()

            def on_ack(count: int) -> None:
                nonlocal kill_task
                if kill_after is not None and count >= kill_after and kill_task is None:
                    kill_task = asyncio.create_task(kill_one())

            record.on_ack = on_ack
            load_before = os.getloadavg()[0]
            for w in workers:
                w.cpu_before = w.cpu()
            emu_cpu, bench_cpu, services = cpu_seconds(emulator.pid), time.process_time(), services_cpu()
            started = time.perf_counter()
            await deliver(url, burst, record)
            seconds = time.perf_counter() - started
            cpu_workers = sum((w.cpu() if w.cpu_at_kill is None else w.cpu_at_kill) - w.cpu_before for w in workers)
            cpu_emulator = cpu_seconds(emulator.pid) - emu_cpu
            cpu_bench = time.process_time() - bench_cpu
            cpu_services = services_cpu() - services
            load_after = os.getloadavg()[0]
            if kill_task is not None:
                await kill_task
            counted = {int(k): v for k, v in (await emulator.answers(http))["answers"].items()}
        everyone = [u["message"]["from"]["id"] for u in warmup] + list(user_of.values())
        lost = [uid for uid in everyone if counted.get(uid, 0) == 0]
        doubled = {uid: counted[uid] - 1 for uid in everyone if counted.get(uid, 0) > 1}
        result = Result(workers=n_workers, updates=opts.updates, seconds=seconds, lost=lost, doubled=doubled,
                        users_rows=0, cpu_workers=cpu_workers, cpu_emulator=cpu_emulator, cpu_bench=cpu_bench, cpu_services=cpu_services,
                        load=(load_before, load_after), statuses=record.statuses)
        if kill:
            result.killed = killed[0].index if killed else None
            result.kill_at = record.kill_at - started if record.kill_at else None
            result.cut_off = record.cut_off
            result.cut_off_users = {user_of[u] for u in record.cut_off}
            times = sorted(t - started for t in record.acknowledged.values())
            held = len(record.cut_off)
            result.before_lapse = times[-held - 1] if 0 < held < len(times) else times[-1]
    finally:
        for w in workers:
            w.stop()
        await proxy.stop()
        emulator.close()
    result.users_rows = await users_in_database(opts.database_url)
    return result


# ----- report -----------------------------------------------------------------------------------------

def describe(r: Result, base: Result | None) -> str:
    ratio = f"{r.rate / base.rate:.2f}x" if base is not None else "1.00x"
    busy = (r.cpu_workers + r.cpu_emulator + r.cpu_bench + r.cpu_services) / r.seconds
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items(), key=lambda kv: str(kv[0])))
    return (f"{r.workers} worker{'s' if r.workers > 1 else ' '}  {r.rate:7.1f} updates/s  {ratio:>6} of one   "
            f"lost {len(r.lost)}  doubled {r.doubled_count}   load {r.load[0]:.1f}->{r.load[1]:.1f}\n"
            f"           wall {r.seconds:.1f} s; CPU: workers {r.cpu_workers:.1f} s ({r.cpu_workers / r.seconds:.2f} cores), "
            f"emulator {r.cpu_emulator:.1f} s, proxy+Telegram {r.cpu_bench:.1f} s, PostgreSQL+Redis {r.cpu_services:.1f} s; "
            f"{busy:.2f} of {os.cpu_count()} cores busy\n           users rows {r.users_rows}; answers {statuses}")


def report(results: list[Result], kill: Result | None) -> bool:
    ok = True
    base = results[0] if results and results[0].workers == 1 else None
    print()
    for r in results:
        print(describe(r, base))
        ok &= not r.lost and not r.doubled and r.users_rows == r.updates + WARMUP
    if kill is not None:
        print(f"\nkill: {kill.workers} workers, worker {kill.killed} (the scheduler's lease holder when one was found) "
              f"SIGKILLed {kill.kill_at:.1f} s into the burst")
        handled_first = kill.updates - len(kill.cut_off)
        print(describe(kill, None).replace(f"{kill.rate:7.1f} updates/s   1.00x of one",
                                           f"{handled_first / kill.before_lapse:7.1f} updates/s to the leftovers"))
        print(f"           {len(kill.cut_off)} updates cut off inside the killed worker, delivered again; all but those "
              f"answered 200 after {kill.before_lapse:.1f} s, the last {kill.seconds:.1f} s (their claims in the "
              f"ledger lapse first)")
        print(f"           doubled {kill.doubled_count}: "
              + ("every one an update the killed worker had in hand" if kill.doubles_explained
                 else f"NOT all in the killed worker's hands: {sorted(set(kill.doubled) - kill.cut_off_users)[:10]}"))
        ok &= not kill.lost and kill.doubles_explained and kill.users_rows == kill.updates + WARMUP
    print(f"\n{'PASS' if ok else 'FAIL'}: nothing lost, nothing doubled without a kill"
          f"{', doubles of the kill only from updates cut off in the killed worker' if kill else ''}")
    return ok


async def main(opts: argparse.Namespace) -> int:
    redis_db = int(opts.redis_url.rpartition("/")[2] or 0)
    if redis_db >= 8:
        raise SystemExit(f"refusing Redis db {redis_db}: the tests use the dbs from 15 down")
    if not opts.database_url.startswith("postgresql"):
        raise SystemExit("bench/workers.py runs on PostgreSQL: several workers need one")
    await prepare_database(opts.database_url)
    rng = random.Random(opts.seed)
    counts = [int(c) for c in opts.workers.split(",") if c]
    workdir = Path(tempfile.mkdtemp(prefix="bench_workers_"))
    print(f"bench/workers.py: {opts.updates} private /start per round, {MAX_CONNECTIONS} connections, "
          f"PostgreSQL {opts.database_url.rpartition('/')[2]}, Redis {opts.redis_url}; logs in {workdir}", flush=True)
    results = []
    for n in counts:
        print(f"  {n} worker(s) ...", end=" ", flush=True)
        results.append(await run_round(opts, n, kill=False, workdir=workdir, rng=rng))
        print(f"{results[-1].rate:.1f} updates/s", flush=True)
    kill = None
    if opts.kill_workers:
        print(f"  {opts.kill_workers} workers, one killed ...", end=" ", flush=True)
        kill = await run_round(opts, opts.kill_workers, kill=True, workdir=workdir, rng=rng)
        print(f"done in {kill.seconds:.1f} s", flush=True)
    return 0 if report(results, kill) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--updates", type=int, default=5000)
    parser.add_argument("--workers", default="1,2,3", help="worker counts, one round each")
    parser.add_argument("--kill-workers", type=int, default=3, help="workers in the kill round (0: none)")
    parser.add_argument("--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/bench_workers")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/2")
    parser.add_argument("--seed", type=int, default=15)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if args.serve_emulator:
        serve_emulator()
    else:
        sys.exit(asyncio.run(main(args)))
