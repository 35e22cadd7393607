"""A polling bot killed (SIGKILL) at random moments of a burst loses no update it had confirmed.

The bot confirms an update to Telegram (a later getUpdates offset) only once it is handled, so
whatever a killed bot had in hand is delivered again to the next one. With Redis the ledger knows
what was handled, and an update is handled again only if it was cut off mid-handler; the
in-process ledger dies with the process, so there an update finished while an older one still ran
may be handled twice (README: "What a crash costs").
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from test_cli import START, TOKEN, bot_env, emu, eventually, processes, query, sqlite_url  # noqa: F401  (fixtures)

MEMBERS = 40
ROUNDS = 3


async def test_killed_mid_burst_then_restarted_every_command_is_answered(emu, processes, redis_url, tmp_path):  # noqa: F811
    rng = random.Random(20261206)
    db = tmp_path / "kill.db"
    env = bot_env(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=emu.url, DATABASE_URL=sqlite_url(db), REDIS_URL=redis_url,
                  LOG_LEVEL="WARNING", THROTTLE_RATE=100)
    people = [emu.add_user(f"Member {n}") for n in range(MEMBERS)]
    sent: Counter[int] = Counter()
    kills = []

    def answered() -> Counter[int]:
        return Counter({p.id: len(emu.bot_messages(p)) for p in people})

    async def start_bot(name: str):
        before = len(emu.calls("deleteWebhook"))
        bot = await processes(env, tmp_path, name)
        await bot.until(eventually(lambda: len(emu.calls("deleteWebhook")) > before, START, "polling"), START, "polling")
        return bot

    for round_ in range(ROUNDS):
        bot = await start_bot(f"bot-{round_}")
        for person in people:
            emu.send(person, text="/help")
            sent[person.id] += 1
        # Kill it somewhere in the burst: after a random number of answers of this round.
        target = sum(sent.values()) - MEMBERS + rng.randint(1, MEMBERS - 1)
        await bot.until(eventually(lambda: sum(answered().values()) >= target, START, "answers"), START, "answers")
        await bot.kill()
        kills.append(target)

    last = await start_bot("last")
    await last.until(eventually(lambda: all(answered()[p.id] >= sent[p.id] for p in people), START, "every answer"),
                     START, "every command answered")
    await asyncio.sleep(0)
    got = answered()
    lost = {p.name: sent[p.id] - got[p.id] for p in people if got[p.id] < sent[p.id]}
    assert lost == {}, f"commands never answered after kills at {kills}: {lost}"
    doubled = sum(got[p.id] - sent[p.id] for p in people)
    # Answered twice can only be what a killed bot had in hand: never more than it ran at once.
    assert doubled <= ROUNDS * 100, doubled
    if redis_url:
        # The ledger outlives the process: only an update cut off between its answer and its record
        # (a millisecond or so) is answered again.
        assert doubled <= ROUNDS * 2, f"{doubled} answers sent twice with the shared ledger"
    users = query(db, "SELECT COUNT(*) FROM users WHERE id IN (%s)" % ",".join(str(p.id) for p in people))
    assert users == [(MEMBERS,)]
