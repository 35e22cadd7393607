"""Group chatter acknowledged to Telegram and killed before it was written is counted after restart.

Plain group messages have no effect but the members' activity, which the bot writes in batches.
With ACTIVITY_FLUSH_SECONDS far away, every message of the burst is handled and confirmed to the
emulator (a later getUpdates offset: Telegram will not deliver it again) while none is in the
database; the bot is then SIGKILLed. The bot started next finds the dead one's activity journal
(bot/services/activity_journal.py) and counts every message once.
"""

from __future__ import annotations

from test_cli import START, TOKEN, bot_env, emu, eventually, processes, query, sqlite_url  # noqa: F401  (fixtures)

MEMBERS = 12
PLAIN = 25  # plain messages per member: the chatter lane
COMMANDS = 4  # group commands, routed: the activity middleware records them


async def test_chatter_acknowledged_before_a_kill_is_counted_once_after_restart(emu, processes, redis_url,  # noqa: F811
                                                                                 tmp_path):
    db = tmp_path / "activity.db"
    env = bot_env(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=emu.url, DATABASE_URL=sqlite_url(db), REDIS_URL=redis_url,
                  LOG_LEVEL="WARNING", THROTTLE_RATE=100, ACTIVITY_FLUSH_SECONDS=600)
    leader = emu.add_user("Lee")
    group = emu.create_group("Chatty Street", leader)
    people = [emu.add_user(f"Member {n}") for n in range(MEMBERS)]
    for person in people:
        emu.join(group, person)

    def counted() -> int:
        return query(db, "SELECT COALESCE(SUM(message_count), 0) FROM members")[0][0]

    async def start_bot(name: str):
        before = len(emu.calls("deleteWebhook"))
        bot = await processes(env, tmp_path, name)
        await bot.until(eventually(lambda: len(emu.calls("deleteWebhook")) > before, START, "polling"), START, "polling")
        return bot

    first = await start_bot("first")
    emu.add_bot_to_group(group, leader, admin=True)
    await first.until(eventually(lambda: emu.bot_messages(group), START, "welcome"), START, "the welcome")
    for n in range(PLAIN):
        for person in people:
            emu.send(person, group, f"message {n} from {person.first_name}")
    for person in people[:COMMANDS]:
        emu.send(person, group, "/help")
    sent = MEMBERS * PLAIN + COMMANDS

    await first.until(eventually(lambda: emu.updates.pending == 0, START, "every update confirmed"), START,
                      "every message handled and confirmed to the emulator")
    assert counted() == 0, "the activity was flushed before the kill: the test proves nothing"
    await first.kill()

    second = await start_bot("second")
    await second.until(eventually(lambda: counted() >= sent, START, "the counts"), START,
                       "the killed bot's activity counted")
    assert await second.stop() == 0, second.stderr[-3000:]
    assert counted() == sent, f"{counted()} messages counted, {sent} sent"
    per_member = dict(query(db, "SELECT user_id, message_count FROM members WHERE message_count > 0"))
    assert per_member == {p.id: PLAIN + (1 if n < COMMANDS else 0) for n, p in enumerate(people)}
    journal = db.with_name(db.name + ".journal")
    assert list(journal.iterdir()) == [], "a bot stopped after a flush leaves no journal"
