"""Orders benchmark: 200 buyers racing for 50 units of one product (issue "Selling in the group", 10).

    .venv/bin/python bench/orders_race.py [--database-url URL] [--buyers 200] [--units 50] [--rounds 1] [--e2e]

Service mode (default): one community, one product with `--units` in stock, `--buyers` members.
Each buyer's Confirm is `orders.place(...)` in a session of its own, on the engine `bot.core.db` builds
(PostgreSQL: pool_size 10, max_overflow 20), and all Confirms are released at one moment (an
asyncio.Event). Latency runs from that moment to `place` returning, so it includes the wait for a
pooled connection and for the product's row lock: what a member pressing Confirm in a rush waits.

E2E mode (--e2e): the real bot (`python -m bot run`, a process of its own) polls the sandbox Telegram
emulator (in this process). `--buyers` simulated members each walk the private checkout to the
summary step (deep link, quantity, pickup point, no coupon); then all press ✅ Confirm at once.
Latency runs from each press to the bot's answer to that callback (the toast) and to the edit of
the summary message (the order, or the refusal), as the emulator receives them.

PASS needs exactly `--units` units sold, that many orders, stock 0, and every other buyer refused
as sold out (service mode) or answered (e2e). Exit status 0 on PASS, 1 on FAIL.

The database is created when missing (through the `postgres` maintenance database), migrated,
and emptied before each round; it must be a benchmark database: `test` is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cost import PerCall, StatementCount, target_line  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from sqlmodel import SQLModel, func, select  # noqa: E402

import models  # noqa: E402,F401  (registers every table for the reset)
from bot.core.db import create_engine, session_factory  # noqa: E402
from bot.core.migrate import upgrade_async  # noqa: E402
from bot.services import communities, orders, products, settings  # noqa: E402
from bot.services.errors import DomainError  # noqa: E402
from bot.services.products import ProductDraft  # noqa: E402
from bot.services.upsert import insert_for  # noqa: E402
from models import Community, Order, PaymentMethod, Product, User  # noqa: E402

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_orders"
TOKEN = "700800901:BENCH-orders-token"
LEADER_ID = 7_000_000
FIRST_BUYER = 7_000_001
RIGHTS = {"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True, "can_manage_chat": True}
PICKUP = "North Gate"
# Issue 10's targets: at most half of what a Confirm cost before (measured with this benchmark, service
# mode, PostgreSQL, one round: statements per order placed, CPU of the process per place() call).
STATEMENTS_BEFORE, CPU_MS_BEFORE = 9.0, 5.7
E2E_P99_TARGET_MS = 2000


def now() -> datetime:
    return datetime.now(timezone.utc)


# ----- the database ------------------------------------------------------------------------------

async def prepare_database(url: str) -> str:
    """Create (PostgreSQL), migrate and empty the benchmark database; returns a one-line description."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        name = parsed.database or ""
        # The tests' databases (test, test_gw0, ...) are emptied by every test: never touch them.
        if name.startswith("test") or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise SystemExit(f"refusing database {name!r}: give the benchmark a database of its own")
        admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                found = await conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name})
                if found.first() is None:
                    await conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await admin.dispose()
    await upgrade_async(url)
    await empty_database(url)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            if backend == "postgresql":
                version = (await conn.execute(text("SHOW server_version"))).scalar_one()
                return f"PostgreSQL {version} (bot.core.db pool: {engine.pool.size()} connections + overflow)"
            version = (await conn.execute(text("SELECT sqlite_version()"))).scalar_one()
            return f"SQLite {version}"
    finally:
        await engine.dispose()


async def empty_database(url: str) -> None:
    engine = create_engine(url)
    tables = [t.name for t in SQLModel.metadata.sorted_tables]
    try:
        async with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(tables):
                    await conn.execute(text(f"DELETE FROM {table}"))
    finally:
        await engine.dispose()


# ----- figures -----------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def latency_line(label: str, seconds: list[float]) -> str:
    if not seconds:
        return f"{label:<24} no samples"
    ms = [s * 1000 for s in seconds]
    return f"{label:<24} p50 {percentile(ms, 50):7.1f} ms   p99 {percentile(ms, 99):7.1f} ms   max {max(ms):7.1f} ms"


@dataclass
class Outcome:
    sold: int
    stock: int | None
    orders: int
    order_units: int
    refused: Counter = field(default_factory=Counter)

    def verdict(self, units: int, buyers: int) -> tuple[bool, list[str]]:
        problems = []
        if self.sold != units:
            problems.append(f"sold {self.sold}, expected {units}")
        if self.stock != 0:
            problems.append(f"stock left {self.stock}, expected 0")
        if self.orders != units or self.order_units != units:
            problems.append(f"{self.orders} orders holding {self.order_units} units, expected {units}")
        if sum(self.refused.values()) != buyers - units:
            problems.append(f"{sum(self.refused.values())} refused, expected {buyers - units}")
        return not problems, problems


async def read_outcome(sessions, product_id: int) -> Outcome:
    async with sessions() as s:
        product = await s.get(Product, product_id)
        count, units = (await s.exec(select(func.count(), func.coalesce(func.sum(Order.quantity), 0))
                                     .where(Order.product_id == product_id))).one()
    return Outcome(sold=product.sold, stock=product.stock, orders=count, order_units=units)


def report(title: str, outcome: Outcome, units: int, buyers: int, lines: list[str]) -> bool:
    ok, problems = outcome.verdict(units, buyers)
    print(title)
    print(f"  {'units sold':<24} {outcome.sold:<6} {'PASS' if ok else 'FAIL'}")
    print(f"  {'orders created':<24} {outcome.orders}")
    refused = ", ".join(f"{reason} {n}" for reason, n in outcome.refused.most_common()) or "none"
    print(f"  {'refused':<24} {sum(outcome.refused.values())} ({refused})")
    print(f"  {'stock left':<24} {outcome.stock}")
    for line in lines:
        print(f"  {line}")
    for problem in problems:
        print(f"  FAIL: {problem}")
    return ok


# ----- service mode ------------------------------------------------------------------------------

async def build_shop(sessions, *, buyers: int) -> tuple[int, int]:
    """The community (as the bot creates it when added to a group), a pickup point and the buyers."""
    at = now()
    async with sessions() as s:
        await s.execute(insert_for(s, User.__table__).values(
            [{"id": uid, "first_name": f"Buyer{uid - FIRST_BUYER}", "can_dm": True, "marketing_opt_out": False,
              "erased": False, "created_at": at, "updated_at": at}
             for uid in [LEADER_ID, *range(FIRST_BUYER, FIRST_BUYER + buyers)]]
        ).on_conflict_do_nothing(index_elements=["id"]))
        await s.commit()
        result = await communities.on_bot_status(s, chat_id=-1_000_000_000_001, title="Bench Valley", status="administrator",
                                                 rights=RIGHTS, default_locale="en", default_timezone="UTC", now=at)
        point = await settings.add_pickup_point(s, community_id=result.community.id, actor_id=LEADER_ID,
                                                raw_name=PICKUP, now=at)
        return result.community.id, point.id


async def add_product(sessions, community_id: int, *, units: int, title: str) -> Product:
    async with sessions() as s:
        community = await s.get(Community, community_id)
        return await products.create(s, community=community, actor_id=LEADER_ID, now=now(),
                                     draft=ProductDraft(title=title, description="", price=500, stock=units,
                                                        per_member_limit=None))


async def service_round(url: str, *, buyers: int, units: int, label: str) -> bool:
    await empty_database(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        community_id, point_id = await build_shop(sessions, buyers=buyers)
        product = await add_product(sessions, community_id, units=units, title="Lychees")
        gate, all_ready = asyncio.Event(), asyncio.Event()
        latencies: list[float] = []
        sold_at: list[float] = []
        refused: Counter = Counter()
        created = ready = 0
        released = 0.0
        counter, per_call = StatementCount(engine), PerCall.empty()

        async def buyer(uid: int) -> None:
            nonlocal created, ready
            async with sessions() as s:
                # The handler has the community loaded before Confirm; the connection goes back to
                # the pool until the press.
                community = await s.get(Community, community_id)
                await s.commit()
                ready += 1
                if ready == buyers:
                    all_ready.set()
                await gate.wait()
                sent = counter.mine()
                try:
                    placed = await orders.place(
                        s, community=community, user_id=uid, product_id=product.id, quantity=1, unit_price=product.price,
                        payment_method=PaymentMethod.PICKUP, checkout_key=f"bench-{uid}", now=now(),
                        pickup_point_id=point_id)
                    created += placed.created
                    sold_at.append(time.perf_counter() - released)
                    per_call.add("order", counter.mine() - sent)
                except DomainError as err:
                    refused[err.code] += 1
                    per_call.add(err.code, counter.mine() - sent)
                latencies.append(time.perf_counter() - released)

        tasks = [asyncio.create_task(buyer(uid)) for uid in range(FIRST_BUYER, FIRST_BUYER + buyers)]
        await all_ready.wait()
        cpu = time.process_time()
        released = time.perf_counter()
        gate.set()
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - released
        cpu = time.process_time() - cpu
        counter.close()

        outcome = await read_outcome(sessions, product.id)
        outcome.refused = refused
        if created != outcome.orders:
            print(f"  FAIL: place() reported {created} new orders, the database holds {outcome.orders}")
        statements, statements_ok = target_line("statements per order", per_call.mean("order"), STATEMENTS_BEFORE / 2,
                                                "", f"{STATEMENTS_BEFORE:g}")
        cpu_line, cpu_ok = target_line("CPU per place()", cpu * 1000 / buyers, CPU_MS_BEFORE / 2, "ms",
                                       f"{CPU_MS_BEFORE:g} ms")
        ok = report(label, outcome, units, buyers, [
            latency_line("Confirm latency", latencies),
            f"{'last unit sold after':<24} {max(sold_at, default=0) * 1000:.1f} ms",
            f"{'wall time':<24} {wall * 1000:.1f} ms (CPU of this process meanwhile: {cpu * 1000:.0f} ms)",
            statements, f"{'statements by outcome':<24} {per_call.describe()}", cpu_line,
        ])
        return ok and statements_ok and cpu_ok and created == outcome.orders and set(refused) <= {"product_sold_out"}
    finally:
        await engine.dispose()


# ----- e2e mode ----------------------------------------------------------------------------------

def _emulator_class():
    from bot.sandbox import TelegramEmulator

    class TimedEmulator(TelegramEmulator):
        """The emulator, noting when each callback was answered and each private chat edited."""

        def __init__(self) -> None:
            super().__init__(TOKEN, "bench_orders_bot", limits=False, record_transcript=False)
            self.answered_at: dict[str, float] = {}
            self.written_at: dict[int, list[float]] = {}  # private chat → times the bot wrote or edited there

        def _record(self, name, params, error) -> None:
            super()._record(name, params, error)
            self.requests.clear()  # the call log is for tests; keep memory flat
            if error is not None or params is None:
                return
            method = name.lower()
            if method == "answercallbackquery":
                self.answered_at.setdefault(params.get_str("callback_query_id"), time.perf_counter())
            elif method in ("editmessagetext", "sendmessage"):
                chat_id = params.get_int("chat_id")
                if chat_id is not None and chat_id > 0:
                    self.written_at.setdefault(chat_id, []).append(time.perf_counter())

        def reply_after(self, chat_id: int, pressed_at: float) -> float | None:
            return min((t for t in self.written_at.get(chat_id, ()) if t > pressed_at), default=None)

    return TimedEmulator


async def wait_until(emu, condition, *, what: str, timeout: float = 180.0) -> None:
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"e2e: {what} not reached within {timeout:.0f}s")
        await emu.wait_change(0.5)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_bot(url: str, api_url: str, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": api_url, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_bot(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def e2e_round(url: str, *, buyers: int, units: int, label: str) -> bool:
    from bot.core.i18n import translate
    from bot.sandbox.state import ChatMemberState

    await empty_database(url)
    emu = _emulator_class()()
    api_url = await emu.start()
    log_path = Path(tempfile.gettempdir()) / "bench_orders_bot.log"
    bot = start_bot(url, api_url, log_path)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        await wait_until(emu, lambda: "chat_member" in emu.updates.allowed or bot.poll() is not None,
                         what="the bot's first getUpdates", timeout=60)
        if bot.poll() is not None:
            raise SystemExit(f"e2e: the bot exited with {bot.returncode}; see {log_path}")
        leader = emu.add_user("Lin", username="lin_leads")
        group = emu.create_group("Bench Valley", leader)
        people = [emu.add_user(f"Buyer{i}", username=f"buyer{i}", language_code="en") for i in range(buyers)]
        for person in people:  # in the group before the bot came: no join updates
            group.members[person.id] = ChatMemberState("member")
        emu.add_bot_to_group(group, by=leader, admin=True)

        async def community_row():
            async with sessions() as s:
                return (await s.exec(select(Community).where(Community.chat_id == group.id))).first()

        community = None
        deadline = time.perf_counter() + 30
        while community is None:
            if time.perf_counter() > deadline:
                raise SystemExit("e2e: the bot never registered the group")
            await asyncio.sleep(0.1)
            community = await community_row()
        async with sessions() as s:
            await settings.add_pickup_point(s, community_id=community.id, actor_id=leader.id, raw_name=PICKUP, now=now())
        product = await add_product(sessions, community.id, units=units, title="Lychees")

        def has_button(label: str):
            return lambda person: (m := emu.last_bot_message(person)) is not None and any(
                label in row for row in m.buttons)

        qty, pickup = "1", "📍 " + PICKUP
        no_coupon, confirm = translate("Continue without a coupon", "en"), translate("✅ Confirm", "en")
        steps = [
            ("deep link → quantity", lambda p: emu.send(p, None, f"/start buy-{product.id}"), has_button(qty)),
            ("quantity → pickup", lambda p: emu.press(p, emu.last_bot_message(p), qty), has_button(pickup)),
            ("pickup → coupon", lambda p: emu.press(p, emu.last_bot_message(p), pickup), has_button(no_coupon)),
            ("coupon → summary", lambda p: emu.press(p, emu.last_bot_message(p), no_coupon), has_button(confirm)),
        ]
        walk = []
        for name, act, arrived in steps:
            started = time.perf_counter()
            for person in people:
                act(person)
            await wait_until(emu, lambda: all(arrived(p) for p in people), what=name)
            walk.append(f"{name} {time.perf_counter() - started:.1f}s")

        pressed: dict[int, tuple[str, float]] = {}
        cpu_before, emulator_cpu = process_cpu(bot.pid), time.process_time()
        released = time.perf_counter()
        for person in people:  # every Confirm is queued before the bot's next getUpdates returns
            summary = emu.last_bot_message(person)
            pressed[person.id] = (emu.press(person, summary, confirm), time.perf_counter())
        await wait_until(emu, lambda: all(cid in emu.answered_at and emu.reply_after(uid, at) is not None
                                          for uid, (cid, at) in pressed.items()), what="every Confirm answered")
        wall = time.perf_counter() - released
        bot_cpu_ms = (process_cpu(bot.pid) - cpu_before) * 1000 / buyers
        emulator_cpu_ms = (time.process_time() - emulator_cpu) * 1000 / buyers
        answer_latency = [emu.answered_at[cid] - at for cid, at in pressed.values()]
        reply_latency = [emu.reply_after(uid, at) - at for uid, (_, at) in pressed.items()]

        outcome = await read_outcome(sessions, product.id)
        async with sessions() as s:
            buyers_with_order = set(await s.exec(select(Order.user_id).where(Order.product_id == product.id)))
        sold_out = translate("Product #{number} is sold out.", "en", number=product.number)
        replies = Counter("order" if p.id in buyers_with_order else
                          "sold out" if emu.last_bot_message(p).visible.startswith(sold_out) else "other"
                          for p in people)
        outcome.refused = Counter({"sold out (told so)": replies["sold out"]} if replies["sold out"] else {})
        p99, p99_ok = target_line("press → reply p99", percentile(reply_latency, 99) * 1000, E2E_P99_TARGET_MS, "ms",
                                  "1.3–8 s; a wall-clock figure: read it on a quiet machine")
        ok = report(label, outcome, units, buyers, [
            latency_line("press → callback answer", answer_latency),
            latency_line("press → reply message", reply_latency), p99,
            f"{'wall time':<24} {wall * 1000:.1f} ms (all {buyers} Confirms answered)",
            f"{'bot CPU per Confirm':<24} {bot_cpu_ms:.1f} ms (the bot process, all its threads: the queue every press "
            f"waits in, and a figure that load elsewhere on the machine barely moves)",
            f"{'emulator CPU per Confirm':<24} {emulator_cpu_ms:.1f} ms (this process: Telegram's side of the same work)",
            f"{'walk to the summary':<24} {', '.join(walk)}",
        ])
        if replies["other"]:
            print(f"  FAIL: {replies['other']} buyers got neither their order nor the sold-out reply")
        return ok and p99_ok and not replies["other"]
    finally:
        stop_bot(bot)
        await emu.stop()
        await engine.dispose()


# ----- main --------------------------------------------------------------------------------------

async def main(args: argparse.Namespace) -> int:
    described = await prepare_database(args.database_url)
    shown = make_url(args.database_url).render_as_string(hide_password=True)
    mode = "e2e (real bot over the emulator)" if args.e2e else "service (orders.place)"
    print(f"orders_race: {args.buyers} buyers, {args.units} units, {mode}")
    print(f"database: {described} at {shown}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    run = e2e_round if args.e2e else service_round
    results = []
    for n in range(1, args.rounds + 1):
        results.append(await run(args.database_url, buyers=args.buyers, units=args.units,
                                 label=f"round {n}/{args.rounds}:"))
    print("PASS" if all(results) else "FAIL")
    return 0 if all(results) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--units", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--e2e", action="store_true", help="drive the real bot through the emulator")
    args = parser.parse_args(argv)
    if not 0 < args.units <= args.buyers:
        parser.error("need 0 < --units <= --buyers")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
