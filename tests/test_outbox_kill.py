"""A group reply still waiting for the group's budget survives a SIGKILL of the bot.

A group takes 20 bot messages a minute, so a rush of /help in one group leaves replies queued in
the sender for up to a minute after their updates were handled and acknowledged (a later
getUpdates offset): Telegram will not deliver those updates again. Only the outbox table keeps
the replies; the bot started after the kill sends each of them, once.

Both flood controls run on clocks the test moves instead of sleeping through the minute: the
emulator's (it dates messages and counts Telegram's limits), and with Redis the shared budget,
whose window for the group is emptied.
"""

from __future__ import annotations

import time
from collections import Counter

from redis.asyncio import Redis
from test_cli import START, TOKEN, bot_env, eventually, processes, query, sqlite_url  # noqa: F401  (fixtures)

from bot.sandbox import TelegramEmulator

MEMBERS = 30
GROUP_PER_MINUTE = 20
# A reply the killed bot sent but whose row it had not yet deleted (deletes are coalesced over a
# second) is sent again: the test waits for the deletes before the kill, so none is expected.
DOUBLES_ALLOWED = 0
# The second bot's start-up, plus with Redis the dead bot's heartbeat (10 s) and a recovery sweep (4 s).
RECOVERED = 45.0


class MovableClock:
    """Wall time plus whatever the test has let pass."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def test_replies_queued_for_the_groups_budget_are_sent_after_a_kill(processes, redis_url, tmp_path):  # noqa: F811
    clock = MovableClock()
    emu = TelegramEmulator(token=TOKEN, clock=clock)
    await emu.start(host="127.0.0.1")
    try:
        await _kill_while_queued(emu, clock, processes, redis_url, tmp_path)
    finally:
        await emu.stop()


async def _kill_while_queued(emu: TelegramEmulator, clock: MovableClock, processes, redis_url, tmp_path) -> None:  # noqa: F811
    db = tmp_path / "outbox.db"
    env = bot_env(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=emu.url, DATABASE_URL=sqlite_url(db), REDIS_URL=redis_url,
                  LOG_LEVEL="WARNING", THROTTLE_RATE=100)
    leader = emu.add_user("Lee")
    group = emu.create_group("Busy Street", leader)
    people = [emu.add_user(f"Member {n}") for n in range(MEMBERS)]
    for person in people:
        emu.join(group, person)

    async def start_bot(name: str):
        before = len(emu.calls("deleteWebhook"))
        bot = await processes(env, tmp_path, name)
        await bot.until(eventually(lambda: len(emu.calls("deleteWebhook")) > before, START, "polling"), START, "polling")
        return bot

    first = await start_bot("first")
    emu.add_bot_to_group(group, leader, admin=True)
    await first.until(eventually(lambda: emu.bot_messages(group), START, "welcome"), START, "the welcome")
    commands = {emu.send(person, group, "/help").message_id: person for person in people}

    def replies() -> Counter[int]:
        return Counter(m.reply_to.message_id for m in emu.bot_messages(group)
                       if m.reply_to is not None and m.reply_to.message_id in commands)

    def minute_spent_and_acknowledged() -> bool:
        # Every /help is handled and confirmed to the emulator (it will not deliver them again),
        # the group's minute is spent, and what was sent is no longer in the outbox.
        sent = sum(replies().values())
        return (len(emu.bot_messages(group)) == GROUP_PER_MINUTE and emu.updates.pending == 0
                and query(db, "SELECT COUNT(*) FROM outbox") == [(MEMBERS - sent,)])

    await first.until(eventually(minute_spent_and_acknowledged, START, "a spent minute"), START,
                      "20 messages in the group, every command acknowledged, the rest in the outbox")
    queued = MEMBERS - sum(replies().values())
    assert queued >= 5, f"only {queued} replies were still queued at the kill"
    await first.kill()

    # A minute passes for Telegram (the emulator) and for the bot's shared budget.
    clock.offset += 64
    if redis_url:
        redis = Redis.from_url(redis_url)
        await redis.delete(f"ccb:budget:until:{group.id}")  # bot/telegram/send_budget.py's key for the group
        await redis.aclose()

    second = await start_bot("second")
    await second.until(eventually(lambda: len(replies()) == MEMBERS, RECOVERED, "every reply"), RECOVERED,
                       "a reply to every /help")
    await second.until(eventually(lambda: query(db, "SELECT COUNT(*) FROM outbox") == [(0,)], START, "an empty outbox"),
                       START, "the outbox emptied")
    got = replies()
    doubled = {commands[m].first_name: n for m, n in got.items() if n > 1}
    assert sum(n - 1 for n in doubled.values()) <= DOUBLES_ALLOWED, (
        f"replies sent twice: {doubled}; only a reply sent in the last second before the kill (its row not yet "
        f"deleted) may go twice, and the kill came after the deletes")
    assert emu.updates.pending == 0
    assert not [c for c in emu.requests if c.error_code == 429], "the bot overran the group's budget"
    assert await second.stop() == 0, second.stderr[-3000:]
