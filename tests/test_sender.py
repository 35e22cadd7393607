"""The sender end to end: a real aiogram Bot over HTTP against the sandbox emulator, a real database."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import SendMessage
from aiogram.types import BufferedInputFile
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlmodel import select

import models
from bot.core.db import create_engine, session_factory
from bot.sandbox import ApiError, SimChat, SimUser, TelegramEmulator
from bot.telegram.flood import SpendGroupBudget
from bot.telegram.outbox import serialize
from bot.telegram.send_budget import Limit, Limits, MemoryBudget, RedisBudget
from bot.telegram.sender import Sender

TOKEN = "123456:TEST"
REDIS_URL = "redis://127.0.0.1:6379/15"
# The budget counts a send when it grants it; the emulator (like Telegram) when the request
# arrives. A burst's requests reach the emulator spread out (connections opening, and on a
# loaded CI machine one burst of 30 took over 50 ms), so windows of exactly equal length would
# see the next burst's first requests "early". A sender that does not pace at all still fails:
# its second burst comes at once, not a window later, and the elapsed-time checks need >= 1 s.
LATENCY_ALLOWANCE = 0.25
# A 1×1 PNG: the emulator, like Telegram, refuses photo bytes that are no image.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8ffff3f0005fe02fea7d6a4830000000049454e44ae426082"
)


@dataclass
class World:
    ann: SimUser  # started the bot
    leader: SimUser
    group: SimChat  # a supergroup with the bot in it


@pytest.fixture
async def emu():
    emu = TelegramEmulator(TOKEN, limits=True)
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def world(emu):
    ann = emu.add_user("Ann")
    emu.send(ann, None, "/start")
    leader = emu.add_user("Lee")
    group = emu.create_group("Greens", leader)
    emu.add_bot_to_group(group, leader, admin=True)
    return World(ann, leader, group)


@pytest.fixture
async def sessions(db_url: str, world):
    engine = create_engine(db_url)
    factory = session_factory(engine)
    async with factory() as session:
        session.add(models.User(id=world.ann.id, first_name="Ann", can_dm=True))
        session.add(models.Community(chat_id=world.group.id, title="Greens"))
        await session.commit()
    yield factory
    await engine.dispose()


@pytest.fixture
async def bot(emu):
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(emu.url)))
    yield bot
    await bot.session.close()


@pytest.fixture
async def make_sender(bot, sessions):
    """Senders with test-sized back-off; all are stopped at the end of the test."""
    senders: list[Sender] = []

    def make(budget=None, **options) -> Sender:
        options.setdefault("base_backoff", 0.01)
        sender = Sender(bot, sessions, budget or MemoryBudget(), **options)
        sender.start()
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.stop()


def texts(emu: TelegramEmulator, chat) -> list[str]:
    return [m.visible for m in emu.bot_messages(chat)]


def answered_429(emu: TelegramEmulator) -> int:
    return sum(1 for call in emu.requests if call.error_code == 429)


async def test_delivers_and_returns_the_message(make_sender, emu, world):
    sender = make_sender()
    delivery = await sender.send_message(world.group.id, "<b>Fresh</b> eggs")
    assert delivery.ok and delivery.error is None
    assert delivery.message.chat.id == world.group.id
    assert emu.bot_messages(world.group)[-1].html == "<b>Fresh</b> eggs"
    assert sender.stats.sent == 1


async def test_429_is_waited_out_and_the_message_arrives_once(make_sender, emu, world):
    sender = make_sender()
    emu.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    started = time.monotonic()
    delivery = await sender.send_message(world.group.id, "restock")
    assert delivery.ok
    assert time.monotonic() - started >= 1.0
    assert texts(emu, world.group) == ["restock"]
    assert (sender.stats.rate_limited, sender.stats.retried, sender.stats.sent) == (1, 1, 1)


async def test_403_from_a_blocked_user_clears_can_dm(make_sender, emu, world, sessions):
    sender = make_sender()
    emu.block_bot(world.ann)
    delivery = await sender.send_message(world.ann.id, "a coupon for you")
    assert (delivery.ok, delivery.error) == (False, "forbidden")
    assert delivery.description == "Forbidden: bot was blocked by the user"
    assert len(emu.calls("sendMessage")) == 1
    async with sessions() as session:
        assert (await session.get(models.User, world.ann.id)).can_dm is False
    assert sender.stats.failed == {"forbidden": 1}


async def test_403_from_a_group_deactivates_the_community(make_sender, emu, world, sessions):
    sender = make_sender()
    emu.remove_bot(world.group, world.leader)
    delivery = await sender.send_message(world.group.id, "new product")
    assert delivery.error == "forbidden" and "kicked" in delivery.description
    async with sessions() as session:
        community = (await session.exec(select(models.Community))).one()
        assert community.active is False


async def test_502_twice_then_delivered_once(make_sender, emu, world):
    sender = make_sender()
    emu.fail_next("sendMessage", 502, "Bad Gateway", times=2)
    delivery = await sender.send_message(world.group.id, "hello")
    assert delivery.ok
    assert len(emu.calls("sendMessage")) == 3
    assert texts(emu, world.group) == ["hello"]
    assert sender.stats.retried == 2


async def test_server_errors_give_up_after_max_attempts(make_sender, emu, world):
    sender = make_sender(max_attempts=3)
    emu.fail_next("sendMessage", 500, "Internal Server Error", times=5)
    delivery = await sender.send_message(world.group.id, "hello")
    assert (delivery.ok, delivery.error, delivery.description) == (False, "gave_up", "Internal Server Error")
    assert len(emu.calls("sendMessage")) == 3
    assert sender.stats.failed == {"gave_up": 1}


async def test_bad_html_is_a_bad_request_without_retries(make_sender, emu, world, caplog):
    sender = make_sender()
    delivery = await sender.send_message(world.group.id, "<b>unclosed")
    assert (delivery.ok, delivery.error) == (False, "bad_request")
    assert "can't parse entities" in delivery.description
    assert len(emu.calls("sendMessage")) == 1
    warning = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(str(world.group.id) in m and "can't parse entities" in m for m in warning)


async def test_missing_chat_and_message_are_not_found(make_sender, world):
    sender = make_sender()
    assert (await sender.send_message(-1009999, "hi")).error == "not_found"
    assert (await sender.edit_message_text(world.group.id, 9999, "hi")).error == "not_found"


async def test_edit_to_the_same_text_is_success(make_sender, emu, world):
    sender = make_sender()
    sent = await sender.send_message(world.group.id, "Eggs: 3 left")
    same = await sender.edit_message_text(world.group.id, sent.message.message_id, "Eggs: 3 left")
    assert same.ok and same.message is None and same.error is None
    changed = await sender.edit_message_text(world.group.id, sent.message.message_id, "Eggs: 2 left")
    assert changed.ok and changed.message.text == "Eggs: 2 left"
    assert texts(emu, world.group) == ["Eggs: 2 left"]


async def test_migrated_group_gets_the_message_at_its_new_id(make_sender, emu, world, monkeypatch):
    supergroup = emu.create_group("Greens (super)", world.leader)
    emu.add_bot_to_group(supergroup, world.leader)
    # The emulator has no group upgrade; inject Telegram's answer to a send into the old group.
    take_fault = emu.take_fault
    faults = [ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                       {"migrate_to_chat_id": supergroup.id})]
    monkeypatch.setattr(emu, "take_fault", lambda method: faults.pop() if faults else take_fault(method))
    sender = make_sender()
    delivery = await sender.send_message(world.group.id, "moved")
    assert delivery.ok and delivery.message.chat.id == supergroup.id
    assert texts(emu, supergroup) == ["moved"]


async def test_photo_and_document(make_sender, emu, world):
    sender = make_sender()
    photo = await sender.send_photo(world.group.id, BufferedInputFile(TINY_PNG, "eggs.png"), caption="<i>eggs</i>")
    document = await sender.send_document(world.ann.id, BufferedInputFile(b"a,b\n", "orders.csv"), caption="orders")
    assert photo.ok and document.ok
    assert texts(emu, world.group) == ["eggs"]
    assert emu.bot_messages(world.ann)[-1].document.text() == "a,b\n"


async def test_order_in_one_chat_is_kept(make_sender, emu, world):
    # 20 a second into private chats keeps the test short; the order must survive retries too.
    emu.rate_limits.per_private = (20, 1.0)
    bob = emu.add_user("Bob")
    emu.send(bob, None, "/start")
    sender = make_sender(MemoryBudget(Limits(private=Limit(20, 1.0))))
    emu.fail_next("sendMessage", 502, "Bad Gateway", times=3)
    futures = [sender.send_message(user.id, f"{user.first_name} {n}") for n in range(10) for user in (world.ann, bob)]
    deliveries = await asyncio.gather(*futures)
    assert all(d.ok for d in deliveries)
    for user in (world.ann, bob):
        assert texts(emu, user) == [f"{user.first_name} {n}" for n in range(10)]


async def test_sends_into_one_group_are_paced_without_429(make_sender, emu, world):
    """25 posts, 20 allowed per window: 20 go at once, 5 when the window moves on, no 429."""
    emu.rate_limits.per_group = (20, 1.0 - LATENCY_ALLOWANCE)
    sender = make_sender(MemoryBudget(Limits(group=Limit(20, 1.0))))
    started = time.monotonic()
    deliveries = await asyncio.gather(*(sender.send_message(world.group.id, f"post {n}") for n in range(25)))
    elapsed = time.monotonic() - started
    assert all(d.ok for d in deliveries)
    assert texts(emu, world.group) == [f"post {n}" for n in range(25)]
    assert answered_429(emu) == 0 and sender.stats.rate_limited == 0
    assert 1.0 <= elapsed < 2.0  # two windows; a third would begin at 2.0 s (the margin is for a loaded CI machine)


@pytest.fixture
async def handlers_bot(emu):
    """A second Bot, as the handlers have beside the sender's."""
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(emu.url)))
    yield bot
    await bot.session.close()


async def test_a_handlers_own_group_sends_share_the_senders_budget(make_sender, handlers_bot, emu, world):
    """3 queued and 3 sent by a handler itself, 3 allowed per window: two windows, no 429."""
    emu.rate_limits.per_group = (3, 1.0 - LATENCY_ALLOWANCE)
    sender = make_sender(MemoryBudget(Limits(group=Limit(3, 1.0))))
    handlers_bot.session.middleware(SpendGroupBudget(sender))
    started = time.monotonic()
    queued = [sender.send_message(world.group.id, f"queued {n}") for n in range(3)]
    direct = await asyncio.gather(*(handlers_bot.send_message(world.group.id, f"direct {n}") for n in range(3)))
    assert all(d.ok for d in await asyncio.gather(*queued)) and len(direct) == 3
    elapsed = time.monotonic() - started
    assert sorted(texts(emu, world.group)) == sorted([f"queued {n}" for n in range(3)] + [f"direct {n}" for n in range(3)])
    assert answered_429(emu) == 0
    assert 1.0 <= elapsed < 2.0  # two windows; a third would begin at 2.0 s (the margin is for a loaded CI machine)


async def test_a_429_on_a_handlers_group_send_pauses_the_group_for_the_sender_too(make_sender, handlers_bot, emu, world):
    """The wait is the shared budget's pause, which the sender's own messages wait out as well."""
    sender = make_sender()
    handlers_bot.session.middleware(SpendGroupBudget(sender))
    emu.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    started = time.monotonic()
    direct = asyncio.ensure_future(handlers_bot.send_message(world.group.id, "late but there"))
    while answered_429(emu) == 0:
        await asyncio.sleep(0.01)
    queued = await sender.send_message(world.group.id, "queued meanwhile")
    await direct
    assert queued.ok and time.monotonic() - started >= 1.0
    assert sorted(texts(emu, world.group)) == ["late but there", "queued meanwhile"]
    assert sender.stats.rate_limited == 0  # it never tried during the pause


async def test_broadcast_runs_at_the_overall_limit(make_sender, emu, world):
    """60 private chats at 30 a second: two bursts a second apart, without asking once per chat meanwhile."""

    class CountingBudget(MemoryBudget):
        calls = 0

        async def acquire(self, chat_id, *, paid=False):
            CountingBudget.calls += 1
            return await super().acquire(chat_id, paid=paid)

    emu.rate_limits.overall = (30, 1.0 - LATENCY_ALLOWANCE)
    users = [emu.add_user(f"U{n}") for n in range(60)]
    for user in users:
        emu.send(user, None, "/start")
    sender = make_sender(CountingBudget())
    started = time.monotonic()
    deliveries = await asyncio.gather(*(sender.send_message(user.id, "sale") for user in users))
    elapsed = time.monotonic() - started
    assert all(d.ok for d in deliveries) and sender.stats.sent == 60
    assert answered_429(emu) == 0
    assert 1.0 <= elapsed < 2.0  # two windows; a third would begin at 2.0 s (the margin is for a loaded CI machine)
    assert CountingBudget.calls <= 60 + 2 * 8  # at most one refusal per worker per wait


async def test_paid_broadcast_is_not_held_to_30_a_second(make_sender, emu, world):
    """60 paid messages go out at once (0.1 Star each) where free ones would take two windows."""
    emu.rate_limits.overall = (30, 1.0 - LATENCY_ALLOWANCE)
    emu.bot_star_balance = 10
    users = [emu.add_user(f"U{n}") for n in range(60)]
    for user in users:
        emu.send(user, None, "/start")
    sender = make_sender()
    started = time.monotonic()
    deliveries = await asyncio.gather(*(sender.send_message(u.id, "sale", paid_broadcast=True) for u in users))
    elapsed = time.monotonic() - started
    assert all(d.ok for d in deliveries) and answered_429(emu) == 0
    assert elapsed < 0.9  # the free budget would hold the second 30 until 1.03 s
    assert (emu.paid_messages, emu.bot_star_balance) == (60, pytest.approx(4.0))
    free = await sender.send_message(world.ann.id, "receipt")
    assert free.ok and emu.paid_messages == 60
    assert "allow_paid_broadcast" not in emu.calls("sendMessage")[-1].params


async def test_paid_broadcast_follows_the_paid_budget(make_sender, emu):
    emu.bot_star_balance = 10
    users = [emu.add_user(f"U{n}") for n in range(40)]
    for user in users:
        emu.send(user, None, "/start")
    sender = make_sender(MemoryBudget(Limits(paid_overall=Limit(10, 0.5))))
    started = time.monotonic()
    deliveries = await asyncio.gather(*(sender.send_message(u.id, "sale", paid_broadcast=True) for u in users))
    elapsed = time.monotonic() - started
    assert all(d.ok for d in deliveries) and emu.paid_messages == 40
    assert 1.5 <= elapsed < 2.5  # four paid windows of 10 (the free budget would take 1.03 s)


async def test_paid_broadcast_without_stars_is_refused(make_sender, emu, world):
    emu.bot_star_balance = 0
    sender = make_sender()
    delivery = await sender.send_message(world.ann.id, "sale", paid_broadcast=True)
    assert (delivery.ok, delivery.error) == (False, "bad_request")
    assert delivery.description == "Bad Request: BALANCE_TOO_LOW"
    assert texts(emu, world.ann) == [] and emu.paid_messages == 0
    assert '"allow_paid_broadcast":true' in serialize(SendMessage(chat_id=1, text="x", allow_paid_broadcast=True))


async def test_two_senders_share_one_redis_budget(bot, sessions, emu, world):
    """Two "processes" (a sender and a Redis connection each) broadcast together at 30 a second."""
    clients = [Redis.from_url(REDIS_URL) for _ in range(2)]
    try:
        await clients[0].ping()
    except (RedisConnectionError, OSError) as exc:
        for client in clients:
            await client.aclose()
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is required in CI: {exc}")
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    emu.rate_limits.overall = (30, 1.0 - LATENCY_ALLOWANCE)
    users = [emu.add_user(f"U{n}") for n in range(60)]
    for user in users:
        emu.send(user, None, "/start")
    prefix = f"ccb:test:{uuid.uuid4().hex}"
    senders = [Sender(bot, sessions, RedisBudget(client, prefix=prefix)) for client in clients]
    for sender in senders:
        sender.start()
    started = time.monotonic()
    try:
        deliveries = await asyncio.gather(
            *(senders[n % 2].send_message(user.id, "sale") for n, user in enumerate(users))
        )
        elapsed = time.monotonic() - started
    finally:
        for sender in senders:
            await sender.stop()
        for client in clients:
            await client.aclose()
    assert all(d.ok for d in deliveries)
    assert [s.stats.sent for s in senders] == [30, 30]
    assert answered_429(emu) == 0
    assert 1.0 <= elapsed < 2.0  # two windows; a third would begin at 2.0 s (the margin is for a loaded CI machine)


async def test_a_paused_chat_does_not_hold_back_others(make_sender, emu, world):
    sender = make_sender()
    emu.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    later = sender.send_message(world.group.id, "later")
    await asyncio.sleep(0.05)
    users = [emu.add_user(f"U{n}") for n in range(10)]
    for user in users:
        emu.send(user, None, "/start")
    started = time.monotonic()
    others = await asyncio.gather(*(sender.send_message(user.id, "now") for user in users))
    assert all(d.ok for d in others) and time.monotonic() - started < 0.9  # before the 1 s pause ends
    assert not later.done()
    assert (await later).ok


async def test_stop_drains_then_refuses(make_sender, world):
    sender = make_sender()
    last = sender.send_message(world.group.id, "last one")
    await sender.stop(drain=True)
    assert last.result().ok
    with pytest.raises(RuntimeError):
        sender.send_message(world.group.id, "too late")


async def test_stop_resolves_what_it_could_not_send(make_sender, emu, world):
    sender = make_sender()
    emu.fail_next("sendMessage", 429, "Too Many Requests: retry after 5", retry_after=5)
    futures = [sender.send_message(world.group.id, f"m{n}") for n in range(3)]
    await asyncio.sleep(0.1)
    await sender.stop(drain=True, timeout=0.1)
    assert [f.result().error for f in futures] == ["gave_up"] * 3
    assert texts(emu, world.group) == []


async def test_withdrawn_message_is_not_sent(make_sender, emu, world):
    sender = make_sender()
    emu.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    first = sender.send_message(world.group.id, "first")
    withdrawn = sender.send_message(world.group.id, "never mind")
    withdrawn.cancel()
    assert (await first).ok
    await sender.stop()
    assert texts(emu, world.group) == ["first"]
