"""Statistics for leaders: every /admin → Stats screen over a big community (issue 14).

    .venv/bin/python bench/stats.py [--database-url URL] [--members 100000] [--days 365] [--runs 3]

A community in Asia/Shanghai with `--members` members, 40 % there from the first day and the
others joining over `--days` days (a tenth of them left), a year of daily activity written straight
into PostgreSQL with generate_series: each member has a propensity to show up (0.8·u³, u uniform:
20 % on average, a few very active, most rarely), so 10-20 % of the members are active on a day
(more as the group grows); messages per local hour; check-ins on a
third of the active days and streaks; 200 products, about 200 orders a day; two cards posted a
day; Buy presses and checkouts per product and day; 30 % of the members invited by another one;
group-buy teams won and lost.

Then every screen's service call (bot/services/stats.py) is timed `--runs` times, each in a
session of its own, plus its chart when bot/views/stats_charts.py is there (`RENDERERS`, rendered
as the bot renders it, off the event loop); the slowest run counts. The process's peak memory is
printed too.

Exit status 0 only when every target holds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from orders_race import prepare_database  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bot.core.db import create_engine, session_factory  # noqa: E402
from bot.services import communities, stats  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_stats"
TZ = "Asia/Shanghai"
CHAT_ID = -1_014_014_014
FIRST_USER = 30_000_000
PRODUCTS = 200
ORDERS_PER_DAY = 200
# Targets: a leader pressing a Stats button gets the chart within two seconds, however big the group.
SCREEN_SECONDS_TARGET = 2.0
PEAK_MEMORY_MB_TARGET = 600.0

# A chart renderer per screen: (screen data) -> PNG bytes, awaited.
Render = Callable[[Any], Awaitable[bytes]]

# The data, in statements run in order with :cid, :first, :n, :days, :start (the first local day),
# :tz. Local times become UTC with `AT TIME ZONE :tz` on a local timestamp.
LOAD = [
    "SELECT setseed(0.14)",
    """CREATE TEMP TABLE people AS
       SELECT :first + g AS uid, CASE WHEN random() < 0.4 THEN 0 ELSE floor(random() * :days)::int END AS jd,
              0.8 * power(random(), 3) AS prop,
              random() AS r1, random() AS r2
       FROM generate_series(0, :n - 1) g""",
    """ALTER TABLE people ADD COLUMN ld int""",
    # A tenth leave some days after joining (a few of them before the last week).
    """UPDATE people SET ld = jd + floor(r2 * (:days - jd))::int WHERE r1 < 0.1""",
    """INSERT INTO users (id, first_name, can_dm, marketing_opt_out, erased, created_at, updated_at)
       SELECT uid, 'M' || uid, false, false, false, now(), now() FROM people""",
    """INSERT INTO members (community_id, user_id, status, is_leader, joined_at, left_at, message_count,
                            invite_depth, active_days)
       SELECT :cid, uid, CASE WHEN ld IS NULL THEN 'member' ELSE 'left' END, false,
              ((:start + jd) + r2 * interval '1 day') AT TIME ZONE :tz,
              CASE WHEN ld IS NOT NULL THEN ((:start + ld) + interval '20 hours') AT TIME ZONE :tz END, 0, 0, 0
       FROM people""",
    """INSERT INTO membership_events (community_id, user_id, change, via, at)
       SELECT :cid, uid, 'join', (ARRAY['member_link', 'join_request', 'deep_link', 'primary_link', 'admin_link',
                                        'added_by_admin', 'group_buy_link', 'unknown'])[1 + floor(r1 * 8)::int],
              ((:start + jd) + r2 * interval '1 day') AT TIME ZONE :tz FROM people""",
    """INSERT INTO membership_events (community_id, user_id, change, via, at)
       SELECT :cid, uid, 'leave', CASE WHEN r2 < 0.2 THEN 'kicked' ELSE 'left' END,
              ((:start + ld) + interval '20 hours') AT TIME ZONE :tz FROM people WHERE ld IS NOT NULL""",
    # `+ 0 * d`: a condition on `people` alone would be drawn once per member, not once per day.
    """INSERT INTO activity_days (community_id, user_id, day, messages, checkins, orders, first_at, last_at)
       SELECT :cid, uid, :start + d, 1 + floor(random() * 8)::int, 0, 0,
              ((:start + d) + interval '9 hours') AT TIME ZONE :tz, ((:start + d) + interval '21 hours') AT TIME ZONE :tz
       FROM people CROSS JOIN generate_series(0, :days - 1) d
       WHERE d >= jd AND (ld IS NULL OR d <= ld) AND random() < prop + 0 * d""",
    """INSERT INTO community_hours (community_id, day, hour, messages, orders)
       SELECT :cid, :start + d, h, floor(random() * 400 * (1 + sin(h / 24.0 * 6.283)))::int, floor(random() * 20)::int
       FROM generate_series(0, :days - 1) d CROSS JOIN generate_series(0, 23) h""",
    """INSERT INTO checkins (community_id, user_id, day, kind, streak, points, at, created_at)
       SELECT community_id, user_id, day, 'checkin', 1, 10, first_at, first_at
       FROM activity_days WHERE community_id = :cid AND random() < 0.3""",
    """INSERT INTO points_accounts (community_id, user_id, balance, streak, best_streak, last_day, freezes, updated_at)
       SELECT :cid, uid, 0, floor(power(r1, 2) * 40)::int, floor(power(r1, 2) * 40)::int,
              :start + :days - 1 - floor(r2 * 4)::int, 0, now() FROM people""",
    """INSERT INTO products (community_id, number, title, description, price, sold, status, created_at, updated_at)
       SELECT :cid, g, 'Product ' || g, '', 500 + (g % 20) * 100, 0, 'active', now(), now()
       FROM generate_series(1, 200) g""",
    """CREATE TEMP TABLE bench_orders AS
       SELECT o, :first + floor(random() * :n)::int AS uid, (SELECT min(id) FROM products WHERE community_id = :cid)
              + floor(random() * 200)::int AS pid, 1 + floor(random() * 3)::int AS qty, random() AS r,
              ((:start + o / 200) + random() * interval '1 day') AT TIME ZONE :tz AS at
       FROM generate_series(0, :days * 200 - 1) o""",
    """INSERT INTO orders (community_id, product_id, user_id, quantity, unit_price, discount, total, currency, status,
                           payment_method, checkout_key, credit, created_at, updated_at, paid_at, fulfilled_at,
                           picked_up_at, cancelled_at)
       SELECT :cid, pid, uid, qty, p.price, 0, qty * p.price, 'CNY',
              CASE WHEN r < 0.4 THEN 'picked_up' WHEN r < 0.6 THEN 'fulfilled' WHEN r < 0.8 THEN 'paid'
                   WHEN r < 0.9 THEN 'pending_payment' ELSE 'cancelled' END,
              'pickup', 'bench-' || o, 0, at, at,
              CASE WHEN r < 0.8 THEN at + interval '5 minutes' END,
              CASE WHEN r < 0.6 THEN at + interval '1 day' END,
              CASE WHEN r < 0.4 THEN at + interval '2 days' END,
              CASE WHEN r >= 0.9 THEN at + interval '1 hour' END
       FROM bench_orders JOIN products p ON p.id = pid""",
    """INSERT INTO product_posts (community_id, product_id, status, due_at, grace_minutes, with_photo, posted_at,
                                  refresh_due, created_at)
       SELECT :cid, (SELECT min(id) FROM products WHERE community_id = :cid) + (g % 200), 'posted', t, 60, false, t,
              false, t
       FROM (SELECT g, ((:start + g / 2) + interval '10 hours' + (g % 2) * interval '8 hours') AT TIME ZONE :tz AS t
             FROM generate_series(0, :days * 2 - 1) g) posts""",
    """INSERT INTO funnel_days (community_id, product_id, day, step, count)
       SELECT :cid, p.id, :start + d, s, 1 + floor(random() * (CASE s WHEN 'buy_pressed' THEN 30 ELSE 15 END))::int
       FROM generate_series(0, :days - 1) d CROSS JOIN products p
            CROSS JOIN unnest(ARRAY['buy_pressed', 'checkout_started']) s
       WHERE p.community_id = :cid AND random() < 0.3""",
    """INSERT INTO referrals (community_id, invitee_id, inviter_id, via, depth, state, flags, joined_at, qualified_at)
       SELECT :cid, p.uid, :first + floor(random() * :n)::int, 'member_link', 1,
              CASE WHEN random() < 0.2 THEN 'pending' WHEN random() < 0.5 THEN 'qualified' ELSE 'rewarded' END,
              '[]', m.joined_at, m.joined_at + interval '3 days'
       FROM people p JOIN members m ON m.user_id = p.uid AND m.community_id = :cid WHERE p.r2 < 0.3""",
    """INSERT INTO group_buys (community_id, product_id, kind, status, price, team_size, open_limit, join_limit,
                               solo_allowed, units, starts_at, ends_at, announce_due, refresh_due, tiers,
                               created_at, updated_at)
       SELECT :cid, (SELECT min(id) FROM products WHERE community_id = :cid) + g, 'team', 'ended', 400, 3, 1, 1,
              true, 0, now() - interval '1 year', now(), false, false, '[]', now(), now()
       FROM generate_series(0, 49) g""",
    """INSERT INTO group_buy_teams (group_buy_id, community_id, number, opener_id, size, price, seats, status,
                                    opened_at, deadline_at, closed_at, announce_due)
       SELECT gb.id, :cid, g, :first + g, 3, 400, 3, CASE WHEN random() < 0.7 THEN 'succeeded' ELSE 'failed' END,
              t - interval '1 day', t, t, false
       FROM group_buys gb CROSS JOIN generate_series(1, 20) g
            CROSS JOIN LATERAL (SELECT ((:start + floor(random() * :days)::int) + interval '12 hours')
                                       AT TIME ZONE :tz AS t) times
       WHERE gb.community_id = :cid""",
]
# asyncpg infers a parameter's type from its first use: say what the day and the zone are.
LOAD = [s.replace(":start", "CAST(:start AS date)").replace(":tz", "CAST(:tz AS text)")
        .replace(":days", "CAST(:days AS int)").replace(":n ", "CAST(:n AS int) ").replace(":n)", "CAST(:n AS int))")
        for s in LOAD]
TABLES = ("users", "members", "membership_events", "activity_days", "community_hours", "checkins",
          "points_accounts", "products", "orders", "product_posts", "funnel_days", "referrals", "group_buys",
          "group_buy_teams")


def line(label: str, value: str, target: str, ok: bool | None) -> str:
    verdict = "" if ok is None else ("PASS" if ok else "FAIL")
    return f"  {label:<52} {value:<30} {target:<14} {verdict}"


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def chart_renderers(locale: str) -> dict[str, Render]:
    """The charts of bot/views/stats_charts.py, rendered as the bot renders them; none when that
    module is not there."""
    try:
        from bot.views.stats_charts import RENDERERS, render_async
    except ImportError:
        return {}

    def bind(render) -> Render:
        return lambda data: render_async(render, data, locale)

    return {name: bind(render) for name, render in RENDERERS.items()}


async def load(engine, sessions, args: argparse.Namespace, now: datetime) -> tuple[int, dict[str, int]]:
    today = now.astimezone(ZoneInfo(TZ)).date()
    async with sessions() as s:
        made = await communities.on_bot_status(
            s, chat_id=CHAT_ID, title="Stats Valley", status="administrator",
            rights={"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True},
            default_locale="en", default_timezone=TZ, now=now - timedelta(days=args.days))
        made.community.currency = "CNY"
        cid = made.community.id
        await s.commit()
    params = {"cid": cid, "first": FIRST_USER, "n": args.members, "days": args.days,
              "start": today - timedelta(days=args.days - 1), "tz": TZ}
    async with engine.begin() as conn:
        for statement in LOAD:
            await conn.execute(text(statement), {k: v for k, v in params.items() if f":{k}" in statement})
    counts = {}
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in TABLES:
            # Index-only scans need the visibility map a VACUUM writes, as autovacuum would by now.
            await conn.execute(text(f"VACUUM ANALYZE {table}"))
            counts[table] = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
    return cid, counts


async def time_screens(sessions, cid: int, now: datetime, runs: int,
                       renders: dict[str, Render]) -> list[tuple[str, float, float | None, str]]:
    """(screen, slowest service call, slowest chart or None, a key figure)."""
    from models import Community

    results = []
    for name, screen in stats.SCREENS.items():
        service, chart, figure = 0.0, None, ""
        for _ in range(runs):
            async with sessions() as s:
                community = await s.get(Community, cid)
                started = time.perf_counter()
                data = await screen(s, community=community, now=now)
                service = max(service, time.perf_counter() - started)
            render = renders.get(name)
            if render is not None:
                started = time.perf_counter()
                png = await render(data)
                chart = max(chart or 0.0, time.perf_counter() - started)
                figure = f"{len(png) // 1024} KiB PNG"
        results.append((name, service, chart, ", ".join(part for part in (describe(data), figure) if part)))
    return results


def describe(data: Any) -> str:
    if isinstance(data, stats.Overview):
        return f"DAU {data.dau.value:,} WAU {data.wau.value:,} MAU {data.mau.value:,}"
    if isinstance(data, stats.Retention):
        return f"D7 {data.d7.share or 0:.1%}"
    if isinstance(data, stats.Funnel):
        return "/".join(f"{n:,}" for n in data.counts[:3])
    return ""


async def main(args: argparse.Namespace) -> int:
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("bench/stats.py loads its data with PostgreSQL's generate_series: give it a PostgreSQL URL")
    described = await prepare_database(args.database_url)
    print(f"bench/stats.py — database: {described} at {args.database_url}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    engine = create_engine(args.database_url)
    sessions = session_factory(engine)
    now = datetime.now(timezone.utc)
    try:
        started = time.perf_counter()
        cid, counts = await load(engine, sessions, args, now)
        print(f"loaded in {time.perf_counter() - started:.0f} s: "
              + ", ".join(f"{table} {n:,}" for table, n in counts.items()))
        async with engine.connect() as conn:
            dau = (await conn.execute(text(
                "SELECT avg(n) FROM (SELECT count(*) n FROM activity_days WHERE community_id = :cid "
                "AND day > CURRENT_DATE - 60 GROUP BY day) d"), {"cid": cid})).scalar_one()
        print(f"members {args.members:,}; active on an average day of the last 60: {float(dau):,.0f} "
              f"({float(dau) / args.members:.1%})")
        renders = {} if args.no_charts else chart_renderers(args.locale)
        print(f"charts: {'bot/views/stats_charts.py, ' + args.locale if renders else 'none'}; "
              f"slowest of {args.runs} runs")
        results = await time_screens(sessions, cid, now, args.runs, renders)
    finally:
        await engine.dispose()
    checks = []
    for name, service, chart, figure in results:
        total = service + (chart or 0.0)
        value = f"{total:.2f} s" + (f" (query {service:.2f} + chart {chart:.2f})" if chart is not None else "")
        checks.append(line(f"{name} ({figure})" if figure else name, value, f"≤ {SCREEN_SECONDS_TARGET:g} s",
                           total <= SCREEN_SECONDS_TARGET))
    peak = peak_memory_mb()
    checks.append(line("peak memory of this process", f"{peak:.0f} MB", f"≤ {PEAK_MEMORY_MB_TARGET:g} MB",
                       peak <= PEAK_MEMORY_MB_TARGET))
    print("\n".join(checks))
    ok = all(check.endswith("PASS") for check in checks)
    print(f"machine: load average {os.getloadavg()[0]:.2f} at end")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--locale", default="zh_Hans", help="the charts' language")
    parser.add_argument("--no-charts", action="store_true", help="time the service calls only")
    sys.exit(asyncio.run(main(parser.parse_args())))
