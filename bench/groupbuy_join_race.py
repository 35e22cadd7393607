"""Group-buy benchmark: 500 members trying to join teams of 10 at the same moment (issue 4, item 9).

    .venv/bin/python bench/groupbuy_join_race.py [--database-url URL] [--members 500] [--size 10]
                                                  [--teams 40] [--attempts 3] [--rounds 1]

One community with a pickup point, a product with ample stock and a live team campaign (teams of
`--size`, join limit 1). `--teams` members each open a team through `groupbuy_join.join`; the other
members race for the seats left. Each racer has a session of its own on the engine `bot.core.db` builds
(PostgreSQL: pool_size 10, max_overflow 20), loads its community as the checkout handler has it,
and waits; all are released at one moment (an asyncio.Event). A racer asks for a seat in a team
picked at random, so some teams are oversubscribed; refused with `team_full`, it reads the open
teams again (as the campaign's card lists them) and tries one it has not tried, up to `--attempts`
calls in all.

Latency runs from the release (or from the start of a retry) to `join` returning, success or
refusal, so it includes waiting for a pooled connection and for the team's row lock.

PASS needs, read back from the database: no team above its size, every team's seat counter equal
to its seated orders, every filled team succeeded with exactly `--size` confirmed orders, no member
twice in a team, no member in more teams than the join limit, every reported join in the database,
stock + sold equal to the initial stock, and no error other than a refusal. Exit status 0 on PASS,
1 on FAIL. The database is created when missing, migrated, and emptied before each round; `test`
is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections import Counter
from dataclasses import astuple
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cost import PerCall, StatementCount, target_line  # noqa: E402
from groupbuy_campaign import build_campaign, utcnow  # noqa: E402
from orders_race import empty_database, latency_line, prepare_database  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import col, func, select  # noqa: E402

from bot.core.db import create_engine, session_factory  # noqa: E402
from bot.services import groupbuy_join, groupbuys  # noqa: E402
from bot.services.errors import DomainError  # noqa: E402
from bot.services.group_seats import SEATED  # noqa: E402
from bot.services.groupbuy_join import JoinMode, JoinRef  # noqa: E402
from models import Community, Order, OrderStatus, PaymentMethod, Product  # noqa: E402
from models.groupbuy import GroupBuyTeam, TeamStatus  # noqa: E402

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_groupbuys"
LEADER_ID = 7_100_000
FIRST_MEMBER = 7_100_001
STOCK = 100_000
PRICE, TEAM_PRICE = 1000, 800
# Issue 10's targets: at most half of what a join() cost before (this benchmark, PostgreSQL, one
# round: statements per seat taken, CPU of the process per join() call).
STATEMENTS_BEFORE, CPU_MS_BEFORE = 16.1, 12.0


async def open_teams(sessions, *, community_id: int, point_id: int, campaign_id: int, openers: list[int]) -> list[int]:
    team_ids = []
    async with sessions() as s:
        community = await s.get(Community, community_id)
        for uid in openers:
            opened = await groupbuy_join.join(
                s, community=community, ref=JoinRef(campaign_id, JoinMode.OPEN), user_id=uid, quantity=1,
                unit_price=TEAM_PRICE, payment_method=PaymentMethod.PICKUP, checkout_key=f"open-{uid}", now=utcnow(),
                pickup_point_id=point_id)
            team_ids.append(opened.team.id)
    return team_ids


async def check_database(sessions, *, campaign_id: int, product_id: int, size: int, join_limit: int,
                         joined: int, openers: int) -> tuple[list[str], list[str]]:
    """(figures, problems) read back from the database after the race."""
    problems: list[str] = []
    async with sessions() as s:
        teams = list(await s.exec(select(GroupBuyTeam).where(GroupBuyTeam.group_buy_id == campaign_id)))
        seated = dict((await s.exec(
            select(Order.team_id, func.count()).where(Order.group_buy_id == campaign_id, col(Order.status).in_(SEATED))
            .group_by(Order.team_id))).all())
        confirmed = dict((await s.exec(
            select(Order.team_id, func.count()).where(Order.group_buy_id == campaign_id,
                                                      Order.status == OrderStatus.CONFIRMED)
            .group_by(Order.team_id))).all())
        twice = (await s.exec(select(func.count()).select_from(
            select(Order.team_id, Order.user_id).where(Order.group_buy_id == campaign_id, col(Order.status).in_(SEATED))
            .group_by(Order.team_id, Order.user_id).having(func.count() > 1).subquery()))).one()
        over_limit = (await s.exec(select(func.count()).select_from(
            select(Order.user_id).join(GroupBuyTeam, GroupBuyTeam.id == Order.team_id)
            .where(Order.group_buy_id == campaign_id, col(Order.status).in_(SEATED), GroupBuyTeam.opener_id != Order.user_id)
            .group_by(Order.user_id).having(func.count(func.distinct(Order.team_id)) > join_limit).subquery()))).one()
        orders_total, units = (await s.exec(select(func.count(), func.coalesce(func.sum(Order.quantity), 0))
                                            .where(Order.product_id == product_id, col(Order.status).in_(SEATED)))).one()
        product = await s.get(Product, product_id)
    overfull = [t.number for t in teams if t.seats > t.size]
    miscounted = [t.number for t in teams if t.seats != seated.get(t.id, 0)]
    bad_success = [t.number for t in teams if (t.status == TeamStatus.SUCCEEDED) != (t.seats == size)
                   or (t.status == TeamStatus.SUCCEEDED and confirmed.get(t.id, 0) != size)]
    if overfull:
        problems.append(f"teams above {size} seats: {overfull}")
    if miscounted:
        problems.append(f"teams whose seat counter differs from their seated orders: {miscounted}")
    if bad_success:
        problems.append(f"teams full but not succeeded, or succeeded without {size} confirmed orders: {bad_success}")
    if twice:
        problems.append(f"{twice} members hold two seats in one team")
    if over_limit:
        problems.append(f"{over_limit} members are in more teams than the join limit ({join_limit})")
    if orders_total != openers + joined:
        problems.append(f"the database holds {orders_total} seated orders; {openers} openers + {joined} joins reported")
    if product.stock + product.sold != STOCK or product.sold != units:
        problems.append(f"stock {product.stock} + sold {product.sold} != {STOCK}, or sold != {units} units ordered")
    filled = sum(t.status == TeamStatus.SUCCEEDED for t in teams)
    figures = [
        f"{'teams filled':<24} {filled}/{len(teams)} (seats taken {sum(t.seats for t in teams)} of "
        f"{len(teams) * size}; max seats in a team {max((t.seats for t in teams), default=0)})",
        f"{'orders confirmed':<24} {sum(confirmed.values())} · awaiting group {orders_total - sum(confirmed.values())}",
        f"{'stock':<24} {product.stock} + sold {product.sold} = {product.stock + product.sold} (initial {STOCK})",
    ]
    return figures, problems


async def race_round(url: str, *, members: int, size: int, teams: int, attempts: int, seed: int, label: str) -> bool:
    await empty_database(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    rng = random.Random(seed)
    try:
        uids = list(range(FIRST_MEMBER, FIRST_MEMBER + members))
        community_id, point_id, product_id, campaign_id, _currency = astuple(await build_campaign(
            sessions, leader_id=LEADER_ID, user_ids=uids, chat_id=-1_000_000_000_002, title="Bench Orchard",
            product="Lychees", price=PRICE, team_price=TEAM_PRICE, stock=STOCK, size=size, minutes=60))
        openers, racers = uids[:teams], uids[teams:]
        team_ids = await open_teams(sessions, community_id=community_id, point_id=point_id, campaign_id=campaign_id,
                                    openers=openers)
        gate, all_ready = asyncio.Event(), asyncio.Event()
        call_latency: list[float] = []
        done_latency: list[float] = []
        outcomes: Counter = Counter()
        refusals: Counter = Counter()
        errors: Counter = Counter()
        calls_per_member: Counter = Counter()
        ready = 0
        released = 0.0
        counter, per_call = StatementCount(engine), PerCall.empty()

        async def racer(uid: int, first_team: int) -> None:
            nonlocal ready
            async with sessions() as s:
                community = await s.get(Community, community_id)
                await s.commit()
                ready += 1
                if ready == len(racers):
                    all_ready.set()
                await gate.wait()
                tried, team_id, outcome, calls = {first_team}, first_team, "refused", 0
                while calls < attempts:
                    calls += 1
                    started = time.perf_counter() if calls > 1 else released
                    sent = counter.mine()
                    try:
                        await groupbuy_join.join(
                            s, community=community, ref=JoinRef(campaign_id, JoinMode.TEAM, team_id), user_id=uid,
                            quantity=1, unit_price=TEAM_PRICE, payment_method=PaymentMethod.PICKUP,
                            checkout_key=f"race-{uid}-{calls}", now=utcnow(), pickup_point_id=point_id)
                        outcome = "joined"
                        per_call.add("seat", counter.mine() - sent)
                    except DomainError as err:
                        refusals[err.code] += 1
                        per_call.add(err.code, counter.mine() - sent)
                    except Exception as exc:  # a pool timeout or a deadlock is a finding, not a crash
                        errors[type(exc).__name__] += 1
                        outcome = "error"
                        await s.rollback()
                    call_latency.append(time.perf_counter() - started)
                    if outcome != "refused":
                        break
                    # What the campaign's card lists now: the open teams, the closest to full first.
                    still_open = [t.id for t in await groupbuys.open_teams(s, group_buy_id=campaign_id, now=utcnow())
                                  if t.id not in tried]
                    await s.commit()
                    if not still_open:
                        outcome = "no open team left"
                        break
                    team_id = rng.choice(still_open)
                    tried.add(team_id)
                calls_per_member[calls] += 1
                outcomes[outcome] += 1
                done_latency.append(time.perf_counter() - released)

        tasks = [asyncio.create_task(racer(uid, rng.choice(team_ids))) for uid in racers]
        await all_ready.wait()
        cpu = time.process_time()
        released = time.perf_counter()
        gate.set()
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - released
        cpu = time.process_time() - cpu
        counter.close()

        joined = outcomes["joined"]
        figures, problems = await check_database(sessions, campaign_id=campaign_id, product_id=product_id, size=size,
                                                 join_limit=1, joined=joined, openers=len(openers))
        if errors:
            problems.append(f"errors: {dict(errors)}")
        calls = sum(n * c for n, c in calls_per_member.items())
        statements, statements_ok = target_line("statements per seat", per_call.mean("seat"), STATEMENTS_BEFORE / 2, "",
                                                f"{STATEMENTS_BEFORE:g}")
        cpu_line, cpu_ok = target_line("CPU per join()", cpu * 1000 / max(1, calls), CPU_MS_BEFORE / 2, "ms",
                                       f"{CPU_MS_BEFORE:g} ms")
        ok = not problems
        refused = ", ".join(f"{code} {n}" for code, n in refusals.most_common()) or "none"
        print(label)
        print(f"  {'members joined':<24} {joined:<6} {'PASS' if ok else 'FAIL'}")
        print(f"  {'members left out':<24} {len(racers) - joined} "
              f"({', '.join(f'{k} {v}' for k, v in outcomes.items() if k != 'joined') or 'none'})")
        print(f"  {'join() calls':<24} {calls} (members by calls: "
              f"{', '.join(f'{n}: {c}' for n, c in sorted(calls_per_member.items()))}); refusals: {refused}")
        for line in figures:
            print(f"  {line}")
        print(f"  {latency_line('join() latency', call_latency)}")
        print(f"  {latency_line('member done', done_latency)}")
        print(f"  {'throughput':<24} {joined / wall:.0f} joins/s, {calls / wall:.0f} join() calls/s")
        print(f"  {'wall time':<24} {wall * 1000:.1f} ms (CPU of this process meanwhile: {cpu * 1000:.0f} ms)")
        print(f"  {statements}")
        print(f"  {'statements by outcome':<24} {per_call.describe()}")
        print(f"  {cpu_line}")
        for problem in problems:
            print(f"  FAIL: {problem}")
        return ok and statements_ok and cpu_ok
    finally:
        await engine.dispose()


async def main(args: argparse.Namespace) -> int:
    described = await prepare_database(args.database_url)
    shown = make_url(args.database_url).render_as_string(hide_password=True)
    racers = args.members - args.teams
    print(f"groupbuy_join_race: {args.members} members, {args.teams} teams of {args.size} opened by {args.teams} of them, "
          f"{racers} racing for {args.teams * (args.size - 1)} seats (up to {args.attempts} join() calls each)")
    print(f"database: {described} at {shown}")
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
    results = []
    for n in range(1, args.rounds + 1):
        results.append(await race_round(args.database_url, members=args.members, size=args.size, teams=args.teams,
                                        attempts=args.attempts, seed=args.seed + n, label=f"round {n}/{args.rounds}:"))
    print(f"machine: load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")
    print("PASS" if all(results) else "FAIL")
    return 0 if all(results) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--teams", type=int, default=40, help="teams opened before the race, one member each")
    parser.add_argument("--attempts", type=int, default=3, help="join() calls a member makes at most")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 0 < args.teams < args.members or not 2 <= args.size <= groupbuys.TEAM_SIZE_MAX or args.attempts < 1:
        parser.error(f"need 0 < --teams < --members, 2 <= --size <= {groupbuys.TEAM_SIZE_MAX}, --attempts >= 1")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
