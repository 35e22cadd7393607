"""The send budget: MemoryBudget on an injected clock, RedisBudget on the local Redis."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.telegram.send_budget import TELEGRAM_LIMITS, Limit, Limits, MemoryBudget, RedisBudget, Wait, create_budget

REDIS_URL = "redis://127.0.0.1:6379/15"
GROUP = -1001
USER = 42

# Telegram's own numbers; the production budget (TELEGRAM_LIMITS) keeps a small margin on top.
EXACT = Limits(overall=Limit(30, 1.0), group=Limit(20, 60.0), private=Limit(1, 1.0), paid_overall=Limit(1000, 1.0))
# Paid broadcasts at a size a test can exhaust: 30 free plus 50 paid a second.
PAID = Limits(overall=Limit(30, 1.0), group=Limit(20, 60.0), private=Limit(1, 1.0), paid_overall=Limit(50, 1.0))


def test_production_limits_are_never_looser_than_telegrams():
    for ours, theirs in ((TELEGRAM_LIMITS.overall, EXACT.overall), (TELEGRAM_LIMITS.group, EXACT.group),
                         (TELEGRAM_LIMITS.private, EXACT.private), (TELEGRAM_LIMITS.paid_overall, EXACT.paid_overall)):
        assert ours.count / ours.window <= theirs.count / theirs.window
        assert ours.count <= theirs.count


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def grants(budget, chat_ids, *, paid: bool = False) -> int:
    return sum([await budget.acquire(chat, paid=paid) == 0.0 for chat in chat_ids])


# --- MemoryBudget -------------------------------------------------------------------------------


async def test_overall_cap_is_30_per_second():
    clock = Clock()
    budget = MemoryBudget(EXACT, clock=clock)
    assert await grants(budget, range(1, 31)) == 30
    wait = await budget.acquire(31)
    assert wait == pytest.approx(1.0) and wait.overall == pytest.approx(1.0)
    clock.now += 0.5
    assert await budget.acquire(31) == pytest.approx(0.5)
    clock.now += 0.5
    assert await grants(budget, range(31, 62)) == 30


async def test_refusal_consumes_nothing():
    clock = Clock()
    budget = MemoryBudget(EXACT, clock=clock)
    assert await budget.acquire(USER) == 0.0
    for _ in range(10):
        assert await budget.acquire(USER) > 0  # the private chat is held, so the global log is untouched
    assert await grants(budget, range(100, 129)) == 29


async def test_group_gets_20_per_minute():
    clock = Clock()
    budget = MemoryBudget(EXACT, clock=clock)
    for _ in range(20):
        assert await budget.acquire(GROUP) == 0.0
        clock.now += 1.0
    wait = await budget.acquire(GROUP)
    assert wait == pytest.approx(40.0)
    assert wait.overall == 0.0  # only this group is held back
    assert await budget.acquire(-2002) == 0.0
    clock.now += 40.0
    assert await budget.acquire(GROUP) == 0.0


async def test_private_chat_gets_one_per_second():
    clock = Clock()
    budget = MemoryBudget(EXACT, clock=clock)
    assert await budget.acquire(USER) == 0.0
    clock.now += 0.25
    assert await budget.acquire(USER) == pytest.approx(0.75)
    assert await budget.acquire(USER + 1) == 0.0
    clock.now += 0.75
    assert await budget.acquire(USER) == 0.0


async def test_pause_after_429_holds_the_chat_or_everyone():
    clock = Clock()
    budget = MemoryBudget(EXACT, clock=clock)
    await budget.pause(GROUP, 5)
    await budget.pause(GROUP, 2)  # a shorter pause never cuts a longer one
    assert await budget.acquire(GROUP) == pytest.approx(5.0)
    assert await budget.acquire(USER) == 0.0
    await budget.pause(None, 3)
    wait = await budget.acquire(USER + 1)
    assert wait == pytest.approx(3.0) and wait.overall == pytest.approx(3.0)
    clock.now += 5
    assert await budget.acquire(GROUP) == 0.0


async def test_stale_chats_are_forgotten():
    clock = Clock()
    budget = MemoryBudget(EXACT, clock=clock)
    for chat in range(1, 11):
        await budget.acquire(chat)
    clock.now += 61
    await budget.acquire(USER)
    assert list(budget._chats) == [USER]


async def test_paid_sends_have_their_own_overall_limit():
    clock = Clock()
    budget = MemoryBudget(PAID, clock=clock)
    assert await grants(budget, range(1, 31)) == 30
    assert await budget.acquire(31) > 0  # the free 30 a second are spent...
    assert await grants(budget, range(31, 81), paid=True) == 50  # ...and do not hold back paid sends
    wait = await budget.acquire(81, paid=True)
    assert wait == pytest.approx(1.0) and wait.overall == pytest.approx(1.0)
    clock.now += 1.0
    assert await grants(budget, range(81, 111)) == 30


async def test_paid_sends_keep_the_chat_limits_and_pauses():
    clock = Clock()
    budget = MemoryBudget(PAID, clock=clock)
    assert await budget.acquire(USER) == 0.0
    wait = await budget.acquire(USER, paid=True)
    assert wait == pytest.approx(1.0) and wait.overall == 0.0
    for _ in range(20):
        assert await budget.acquire(GROUP, paid=True) == 0.0
    assert await budget.acquire(GROUP, paid=True) == pytest.approx(60.0)
    await budget.pause(None, 3)
    wait = await budget.acquire(USER + 1, paid=True)
    assert wait == pytest.approx(3.0) and wait.overall == pytest.approx(3.0)


async def test_a_send_counts_a_window_after_its_answer():
    """Telegram counts a request when it arrives, somewhere between the grant and the answer: a
    grant answered late keeps counting until a window after the answer."""
    clock = Clock()
    budget = MemoryBudget(EXACT, clock=clock)
    granted = [await budget.acquire(chat) for chat in range(1, 31)]
    assert all(g == 0.0 for g in granted)
    clock.now += 0.4
    for grant in granted[:10]:
        budget.answered(grant)  # answered 0.4 s after the grant: counts until 1.4
    budget.answered(granted[0])  # a second answer to the same grant changes nothing
    budget.answered(await budget.acquire(31))  # a refusal has nothing to answer
    clock.now += 0.6
    # The 20 never answered stopped counting a window after their grant; the 10 others still count.
    assert await grants(budget, range(31, 61)) == 20
    wait = await budget.acquire(61)
    assert wait == pytest.approx(0.4) and wait.overall == pytest.approx(0.4)
    clock.now += 0.4
    assert await grants(budget, range(61, 81)) == 10  # the answered 10 stopped counting at 1.4
    clock.now += 0.6
    assert await grants(budget, range(81, 111)) == 20  # the 20 granted at 1.0 at 2.0


async def test_an_answer_after_the_window_does_not_bring_a_grant_back():
    clock = Clock()
    budget = MemoryBudget(EXACT, clock=clock)
    late = await budget.acquire(USER)
    clock.now += 1.5
    budget.answered(late)  # it stopped counting at 1.0: the log does not take it up again
    assert await budget.acquire(USER) == 0.0


def test_wait_is_a_float():
    assert Wait() == 0.0 and Wait(1.5, 0.5) == 1.5 and Wait(1.5, 0.5).overall == 0.5
    assert isinstance(create_budget(None), MemoryBudget)


# --- RedisBudget ----------------------------------------------------------------------------------


@pytest.fixture
async def redis():
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisConnectionError, OSError) as exc:
        await client.aclose()
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is required in CI: {exc}")
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis):
    prefix = f"ccb:test:{uuid.uuid4().hex}"
    yield prefix
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)


async def test_redis_overall_cap_and_expiry(redis, prefix):
    budget = RedisBudget(redis, prefix=prefix, limits=EXACT)
    assert await grants(budget, range(1, 31)) == 30
    wait = await budget.acquire(31)
    assert 0.9 < wait <= 1.0 and wait.overall == wait
    assert 0 < await redis.pttl(f"{prefix}:until") <= 1000
    assert 0 < await redis.pttl(f"{prefix}:until:1") <= 1000


async def test_redis_group_and_private_limits(redis, prefix):
    budget = RedisBudget(redis, prefix=prefix, limits=EXACT)
    assert await grants(budget, [GROUP] * 25) == 20
    wait = await budget.acquire(GROUP)
    assert 59 < wait <= 60 and wait.overall == 0
    assert 59_000 < await redis.pttl(f"{prefix}:until:{GROUP}") <= 60_000
    assert await budget.acquire(USER) == 0.0
    assert 0.9 < await budget.acquire(USER) <= 1.0


async def test_redis_paid_sends_have_their_own_overall_limit(redis, prefix):
    budget = RedisBudget(redis, prefix=prefix, limits=PAID)
    assert await grants(budget, range(1, 31)) == 30
    assert await budget.acquire(31) > 0
    assert await grants(budget, range(31, 81), paid=True) == 50
    wait = await budget.acquire(81, paid=True)
    assert 0.9 < wait <= 1.0 and wait.overall == wait
    assert await redis.zcard(f"{prefix}:until") == 30 and await redis.zcard(f"{prefix}:paid-until") == 50
    assert 0 < await redis.pttl(f"{prefix}:paid-until") <= 1000


async def test_redis_windows_slide(redis, prefix):
    budget = RedisBudget(redis, prefix=prefix, limits=Limits(private=Limit(2, 0.2)))
    assert await grants(budget, [USER] * 3) == 2
    await asyncio.sleep(await budget.acquire(USER))
    assert await budget.acquire(USER) == 0.0


async def test_redis_answers_extend_the_grants_in_one_call(redis, prefix):
    budget = RedisBudget(redis, prefix=prefix, limits=Limits(overall=Limit(3, 0.3), private=Limit(1, 0.3)))
    granted = [await budget.acquire(chat) for chat in (1, 2, 3)]
    assert all(g == 0.0 for g in granted) and await budget.acquire(4) > 0
    await asyncio.sleep(0.2)
    calls = []
    original = budget._answered

    async def counting(**kwargs):
        calls.append(kwargs)
        return await original(**kwargs)

    budget._answered = counting
    for grant in granted[:2]:
        budget.answered(grant)
    await asyncio.sleep(0.15)  # the third stopped counting; the two answered count until about 0.5
    assert len(calls) == 1 and len(calls[0]["keys"]) == 4
    assert await budget.acquire(4) == 0.0
    wait = await budget.acquire(5)
    assert 0.05 < wait <= 0.3 and wait.overall == wait
    assert 100 < await redis.pttl(f"{prefix}:until:1") <= 300
    await asyncio.sleep(wait)
    assert await grants(budget, (5, 6)) == 2


async def test_redis_pause(redis, prefix):
    budget = RedisBudget(redis, prefix=prefix, limits=EXACT)
    await budget.pause(GROUP, 5)
    await budget.pause(GROUP, 1)
    assert 4.9 < await budget.acquire(GROUP) <= 5.0
    assert await budget.acquire(USER) == 0.0
    await budget.pause(None, 2)
    wait = await budget.acquire(USER + 1)
    assert 1.9 < wait <= 2.0 and wait.overall == wait
    assert 0 < await redis.pttl(f"{prefix}:pause") <= 2000


async def test_two_processes_share_one_budget(prefix):
    """Two instances on their own connections, both flooding: together never more than 30 a second."""
    granted: list[float] = []
    clients = [Redis.from_url(REDIS_URL) for _ in range(2)]
    budgets = [RedisBudget(client, prefix=prefix, limits=EXACT) for client in clients]
    deadline = time.monotonic() + 2.5

    async def flood(budget: RedisBudget, first_chat: int) -> None:
        chat = first_chat
        while time.monotonic() < deadline:
            wait = await budget.acquire(chat)
            if wait == 0.0:
                granted.append(time.monotonic())
                chat += 2
            else:
                await asyncio.sleep(min(wait, deadline - time.monotonic()))

    try:
        await asyncio.gather(flood(budgets[0], 1), flood(budgets[1], 2))
    finally:
        for client in clients:
            await client.aclose()

    assert len(granted) >= 80  # 30 at once, then 30 more at 1 s and 2 s: the budget is used in full
    granted.sort()
    # Grants are timed on this side of the socket, a few ms after Redis made them; the margin
    # absorbs that, and a second burst admitted early would still show as 60 in the window.
    window = 1.0 - 0.02
    for i, start in enumerate(granted):
        in_window = sum(1 for t in granted[i:] if t - start < window)
        assert in_window <= 30, f"{in_window} grants within {window:.2f}s"
