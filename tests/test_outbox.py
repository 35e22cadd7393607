"""The outbox (bot/telegram/outbox.py) on the real database: a durable message has a row from
before its update counts as handled until it is sent for good; one still queued when the sender
stops keeps its row and the next start sends it; a dead worker's rows are taken over by exactly one
live worker. The Bot API is the sandbox emulator over HTTP."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import SendDocument, SendMessage, SendPhoto
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters, Update
from redis.asyncio import Redis
from sqlalchemy import select

from bot.core.db import create_engine, session_factory
from bot.sandbox import TelegramEmulator
from bot.telegram.dedup import Claim, MemoryLedger
from bot.telegram.middlewares.dedup import DedupMiddleware
from bot.telegram.outbox import TABLE, Journal, JournalError, Recovery, rebuild, serialize
from bot.telegram.send_budget import MemoryBudget
from bot.telegram.sender import Sender

TOKEN = "123456:TEST"


class Clock:
    """The send budget's clock: the test lets the group's minute pass instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def emu():
    emu = TelegramEmulator(TOKEN)
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def group(emu):
    leader = emu.add_user("Lee")
    group = emu.create_group("Greens", leader)
    emu.add_bot_to_group(group, leader, admin=True)
    return group


@pytest.fixture
async def engines(db_url: str):
    """Engines of their own, one per simulated worker process."""
    made = []

    def make():
        made.append(create_engine(db_url))
        return made[-1]

    yield make
    for engine in made:
        await engine.dispose()


@pytest.fixture
async def bot(emu):
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(emu.url)))
    yield bot
    await bot.session.close()


@pytest.fixture
async def worker(bot, engines):
    """A worker's sender and journal on its own engine, with its budget on a test clock."""
    senders: list[Sender] = []

    def make(owner: str) -> Sender:
        engine = engines()
        clock = Clock()
        sender = Sender(bot, session_factory(engine), MemoryBudget(clock=clock), base_backoff=0.01,
                        journal=Journal(engine, owner, delete_every=0.01))
        sender.test_clock = clock
        sender.start()
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.stop(drain=False)


async def spend_minute(sender: Sender, chat_id: int) -> None:
    """The group's 20 messages of this minute are gone: what is submitted now waits."""
    while await sender.budget.acquire(chat_id) == 0:
        pass


async def a_minute_passes(sender: Sender) -> None:
    sender.test_clock.now += 64
    sender.wake()
    await sender.wait_idle()


async def rows(engine) -> list[tuple]:
    async with engine.connect() as conn:
        return (await conn.execute(select(TABLE.c.owner, TABLE.c.chat_id, TABLE.c.method).order_by(TABLE.c.id))).all()


async def until_empty(engine) -> None:
    for _ in range(500):
        if not await rows(engine):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"outbox still holds {await rows(engine)}")


def reply(group, text: str, message_id: int | None = None) -> SendMessage:
    return SendMessage(chat_id=group.id, text=text, parse_mode=None,
                       reply_parameters=ReplyParameters(message_id=message_id, allow_sending_without_reply=True)
                       if message_id else None)


def texts(emu: TelegramEmulator, chat) -> list[str]:
    return [m.visible for m in emu.bot_messages(chat)]


async def test_a_durable_message_is_in_the_outbox_until_it_is_delivered(worker, engines, emu, group):
    sender = worker("worker-a")
    await spend_minute(sender, group.id)
    delivery = sender.submit(reply(group, "late but sure"), durable=True)
    assert sender.persisting
    await sender.persisted()
    assert not sender.persisting
    engine = engines()
    assert await rows(engine) == [("worker-a", group.id, "SendMessage")]
    assert not delivery.done() and texts(emu, group) == []

    await a_minute_passes(sender)
    assert (await delivery).ok
    assert texts(emu, group) == ["late but sure"]
    await until_empty(engine)


async def test_a_message_not_durable_costs_nothing_and_a_durable_one_sent_at_once_leaves_no_row(
        worker, engines, emu, group):
    sender = worker("worker-a")
    plain = sender.submit(reply(group, "plain"))
    assert not sender.persisting  # nothing for the de-dup middleware to wait for
    assert (await plain).ok
    durable = sender.submit(reply(group, "quick"), durable=True)
    await sender.persisted()
    assert (await durable).ok
    await until_empty(engines())
    assert texts(emu, group) == ["plain", "quick"]


async def test_a_message_refused_for_good_leaves_the_outbox(worker, engines, emu, group):
    sender = worker("worker-a")
    await spend_minute(sender, group.id)
    delivery = sender.submit(SendMessage(chat_id=group.id, text="<b>unclosed", parse_mode="HTML"), durable=True)
    await sender.persisted()
    assert len(await rows(engines())) == 1
    await a_minute_passes(sender)
    assert (await delivery).error == "bad_request"
    await until_empty(engines())


async def test_given_up_at_shutdown_it_keeps_its_row_and_the_next_start_sends_it(worker, engines, emu, group):
    first = worker("worker-a")
    await spend_minute(first, group.id)
    for n in range(3):
        first.submit(reply(group, f"queued {n}"), durable=True)
    await first.stop(drain=False)  # not even persisted() was awaited: stop writes what is queued
    engine = engines()
    assert [r.owner for r in await rows(engine)] == ["worker-a"] * 3
    assert texts(emu, group) == []

    second = worker("worker-b")
    assert await Recovery(second.journal, second.adopt).sweep() == 3
    await second.wait_idle()
    assert texts(emu, group) == ["queued 0", "queued 1", "queued 2"]  # in the order they were queued
    await until_empty(engine)


async def test_a_dead_workers_rows_are_taken_over_by_one_of_two_racing_workers(worker, engines, emu, group):
    dead = worker("worker-dead")
    await spend_minute(dead, group.id)
    for n in range(20):
        dead.submit(reply(group, f"orphan {n}"), durable=True)
    await dead.persisted()
    dead.journal = None  # killed: it neither sends nor deletes anything any more
    await dead.stop(drain=False)

    a, b = worker("worker-a"), worker("worker-b")
    # Both found the dead worker's name (Recovery.sweep); each tries to take its rows.
    taken = await asyncio.gather(a.journal.take_over("worker-dead"), b.journal.take_over("worker-dead"))
    assert sorted(map(len, taken)) == [0, 20], [len(t) for t in taken]
    a.adopt(taken[0])
    b.adopt(taken[1])
    winner = a if taken[0] else b
    assert {r.owner for r in await rows(engines())} <= {winner.journal.owner}
    await asyncio.gather(a.wait_idle(), b.wait_idle())
    assert texts(emu, group) == [f"orphan {n}" for n in range(20)]
    await until_empty(engines())


async def test_with_redis_only_a_worker_whose_heartbeat_lapsed_is_taken_over(worker, engines, emu, group, redis_url):
    if redis_url is None:
        pytest.skip("REDIS_URL is not set")
    redis = Redis.from_url(redis_url)
    try:
        peer = worker("worker-peer")
        await spend_minute(peer, group.id)
        peer.submit(reply(group, "from a live peer"), durable=True)
        await peer.persisted()
        await redis.set("alive:worker-peer", "1", ex=10)
        me = worker("worker-me")
        recovery = Recovery(me.journal, me.adopt, redis=redis, alive_prefix="alive:", every=0.05)
        assert await recovery.sweep() == 0  # alive: its message is its own to send
        peer.journal = None
        await peer.stop(drain=False)
        recovery.start()
        await redis.delete("alive:worker-peer")  # its heartbeat lapses
        await me.wait_idle()
        for _ in range(200):
            if texts(emu, group):
                break
            await asyncio.sleep(0.01)
        await recovery.stop()
        assert texts(emu, group) == ["from a live peer"]
        await until_empty(engines())
    finally:
        await redis.aclose()


async def test_a_method_that_uploads_a_file_cannot_be_durable(worker, group):
    sender = worker("worker-a")
    upload = BufferedInputFile(b"%PDF-1.4", "orders.pdf")
    with pytest.raises(ValueError, match="SendDocument cannot be durable"):
        sender.submit(SendDocument(chat_id=group.id, document=upload), durable=True)
    with pytest.raises(ValueError, match="SendPhoto cannot be durable"):
        sender.submit(SendPhoto(chat_id=group.id, photo=upload), durable=True)
    # Without a journal too, so that a call site that cannot be durable fails in every test.
    bare = Sender(sender._bot, sender._sessions, MemoryBudget())
    with pytest.raises(ValueError):
        bare.submit(SendPhoto(chat_id=group.id, photo=upload), durable=True)
    assert sender.pending == 0
    # A photo already on Telegram's servers is a file id: that one can be.
    assert rebuild("SendPhoto", serialize(SendPhoto(chat_id=group.id, photo="AgAD-file-id"))).photo == "AgAD-file-id"


def test_a_method_comes_back_from_its_json_as_it_was():
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Buy", url="https://t.me/b?start=x")]])
    method = SendMessage(chat_id=-100123, text="<b>hi</b>", reply_markup=markup, message_thread_id=7,
                         reply_parameters=ReplyParameters(message_id=5, allow_sending_without_reply=True))
    assert rebuild("SendMessage", serialize(method)) == method
    # No parse mode given: the bot's default applies when it is sent. None given: none at all.
    assert rebuild("SendMessage", serialize(SendMessage(chat_id=1, text="x"))) == SendMessage(chat_id=1, text="x")
    assert rebuild("SendMessage", serialize(SendMessage(chat_id=1, text="x", parse_mode=None))).parse_mode is None
    with pytest.raises(ValueError):
        rebuild("Delete_everything", "{}")


async def test_an_update_counts_as_handled_only_once_its_durable_messages_are_written(worker, group, monkeypatch):
    sender = worker("worker-a")
    await spend_minute(sender, group.id)
    ledger = MemoryLedger()
    dedup = DedupMiddleware(ledger)
    update = Update(update_id=42)
    written: list[bool] = []

    async def handler(event, data):
        sender.submit(reply(group, "queued by the handler"), durable=True)

    real = sender.journal._insert

    async def observed(batch):
        await real(batch)
        written.append(await ledger.claim(42) is Claim.BUSY)  # not recorded done before the write

    monkeypatch.setattr(sender.journal, "_insert", observed)
    await dedup(handler, update, {"sender": sender})
    assert written == [True] and await ledger.claim(42) is Claim.DONE

    async def broken(batch):
        raise ConnectionError("database gone")

    monkeypatch.setattr(sender.journal, "_insert", broken)
    with pytest.raises(JournalError):
        await dedup(handler, Update(update_id=43), {"sender": sender})
    assert await ledger.claim(43) is Claim.NEW  # released: Telegram's next delivery is handled
