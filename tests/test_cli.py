"""The command line as an operator meets it: real `python -m bot ...` processes with a controlled
environment, against the Telegram emulator running in the test's event loop.

Each process costs seconds (aiogram's import alone is most of it), so independent processes run
concurrently and the long end-to-end test shares one emulator and one database between steps.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables)
from bot.core.config import ROOT
from bot.core.migrate import alembic_config, upgrade_async
from bot.sandbox import SimMessage, TelegramEmulator
from bot.sandbox.serialize import message_json
from bot.telegram.update_types import ALLOWED_UPDATES

TOKEN = "123456:TEST-token_for-emulator"
OWNER_ID = 777_000_001
# Variables of the contract (and knobs) that must never leak from the developer's shell into a test.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "PYTHONDONTWRITEBYTECODE")
# Upper bounds, generous because a loaded machine starts Python slowly; passing tests never wait them out.
START, REPLY, STOP = 90.0, 30.0, 15.0
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ")


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def tables() -> set[str]:
    return set(SQLModel.metadata.tables)


# ----- processes ---------------------------------------------------------------------------------


def bot_env(**values: object) -> dict[str, str]:
    """A minimal environment: nothing of the contract from the parent, plus `values` (None drops)."""
    env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in values.items() if v is not None})
    return env


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def cli(*args: str, env: dict[str, str], timeout: float = 120) -> tuple[int, str, str]:
    """Run `python -m bot ARGS` to completion; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=env, cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"`bot {' '.join(args)}` did not finish within {timeout}s") from None
    return proc.returncode, out.decode(), err.decode()


def one_error_line(stderr: str, *, exactly: bool = True) -> str:
    """The single `error: ...` line. `exactly`: it is all of stderr; otherwise log records may
    precede it (a `run` that got as far as logging), but nothing else, and no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    if exactly:
        assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    else:
        others = [line for line in lines if not LOG_LINE.match(line)]
        assert len(others) == 1, f"expected one non-log line on stderr, got:\n{stderr}"
        assert lines[-1] == others[0], f"the error is not the last line:\n{stderr}"
    assert lines[-1].startswith("error: "), stderr
    return lines[-1]


class BotProcess:
    """A long-running `python -m bot run`; output goes to files so a chatty bot never blocks on a pipe."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str) -> None:
        self.env, self.name = env, name
        self.out_path, self.err_path = workdir / f"{name}.out", workdir / f"{name}.err"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> BotProcess:
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", env=self.env, cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err,
            )
        return self

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    async def until(self, awaitable: Awaitable[Any], timeout: float, what: str) -> Any:
        """Await `awaitable`, failing early (with the bot's stderr) if the process dies meanwhile."""
        assert self.proc is not None
        waiter = asyncio.ensure_future(awaitable)
        died = asyncio.ensure_future(self.proc.wait())
        try:
            done, _ = await asyncio.wait({waiter, died}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            died.cancel()
        if waiter in done:
            try:
                return waiter.result()
            except Exception as exc:  # e.g. the emulator's TimeoutError: add what the bot said
                raise AssertionError(f"{self.name}: waiting for {what}: {exc}\nstderr:\n{self.stderr[-4000:]}") from exc
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        state = f"exited with {self.proc.returncode}" if died in done else f"still running after {timeout}s"
        raise AssertionError(f"{self.name}: waiting for {what}: the bot {state}; stderr:\n{self.stderr[-4000:]}")

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP) -> int:
        """Send `sig`; the exit code, or a failure if it does not exit within `timeout`."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"{self.name} did not exit within {timeout}s of {sig!r}; stderr:\n"
                                 f"{self.stderr[-4000:]}") from None

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def processes():
    """Every BotProcess a test starts is killed at the end, whatever happened."""
    started: list[BotProcess] = []

    async def start(env: dict[str, str], workdir: Path, name: str) -> BotProcess:
        process = await BotProcess(env, workdir, name).start()
        started.append(process)
        return process

    yield start
    for process in started:
        await process.kill()


@pytest.fixture
async def emu() -> TelegramEmulator:
    emulator = TelegramEmulator(token=TOKEN)
    await emulator.start(host="127.0.0.1")
    yield emulator
    await emulator.stop()


async def eventually(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `predicate`. For emulator state that changes without waking `emu.wait_for`: a long poll
    sets allowed_updates and confirms earlier updates when it starts, but reports (and wakes
    waiters) only when it returns, up to the polling timeout later."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{what} not within {timeout}s")
        await asyncio.sleep(0.05)
    return result


def polling_started(emu: TelegramEmulator) -> Callable[[], bool]:
    """True once the bot's first getUpdates (which names allowed_updates) has arrived."""
    return lambda: "chat_member" in emu.updates.allowed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_healthy(port: int) -> dict:
    """What /healthz answers once the server on `port` is up and healthy."""
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return await response.json()
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)


def query(db: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


# ----- configuration errors: exit 2, one line naming the variable ----------------------------------


CONFIG_CASES = [
    pytest.param(["run"], {}, "BOT_TOKEN", id="run-without-token"),
    pytest.param(["run"], {"BOT_TOKEN": "   "}, "BOT_TOKEN", id="blank-token"),
    pytest.param(["run"], {"BOT_TOKEN": "abc"}, "BOT_TOKEN", id="token-abc"),
    pytest.param(["run"], {"BOT_TOKEN": "123:"}, "BOT_TOKEN", id="token-no-secret"),
    pytest.param(["run"], {"BOT_TOKEN": "12 34:x"}, "BOT_TOKEN", id="token-with-space"),
    pytest.param(["run"], {"BOT_TOKEN": TOKEN, "OWNER_IDS": "12,alice"}, "OWNER_IDS", id="owner-ids"),
    pytest.param(["run"], {"BOT_TOKEN": TOKEN, "DEFAULT_TIMEZONE": "Mars/Olympus_Mons"}, "DEFAULT_TIMEZONE", id="timezone"),
    pytest.param(["migrate"], {"DEFAULT_TIMEZONE": "UTC+8"}, "DEFAULT_TIMEZONE", id="migrate-checks-settings-too"),
    pytest.param(["jobs", "run", "refresh_leaders", "--at", "garbage"], {"BOT_TOKEN": TOKEN}, "--at", id="jobs-at-garbage"),
    pytest.param(["jobs", "run", "refresh_leaders"], {}, "BOT_TOKEN", id="jobs-run-without-token"),
]


@pytest.mark.parametrize(("args", "values", "named"), CONFIG_CASES)
async def test_configuration_errors_exit_2_with_one_line(args, values, named, tmp_path):
    db = tmp_path / "never.db"
    code, out, err = await cli(*args, env=bot_env(DATABASE_URL=sqlite_url(db), **values))
    assert code == 2, (code, out, err)
    assert named in one_error_line(err)
    assert not db.exists(), "a configuration error must stop before the database is touched"


async def test_unknown_command_is_a_usage_error():
    code, _, err = await cli("serve", env=bot_env())
    assert code == 2
    assert "Traceback" not in err and "invalid choice" in err


# ----- unreachable services: exit 1 (or 2 for a rejected token), one line, no traceback ------------


async def test_unreachable_services_and_rejected_token(emu, tmp_path):
    """Four processes at once: database, Redis and Bot API out of reach, and a token the API refuses."""
    migrated = tmp_path / "ok.db"
    await upgrade_async(sqlite_url(migrated))
    common = {"BOT_TOKEN": TOKEN, "DATABASE_URL": sqlite_url(migrated), "TELEGRAM_API_URL": emu.url, "LOG_LEVEL": "INFO"}
    cases = {
        "database": bot_env(**common | {"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/x"}),
        "redis": bot_env(**common | {"REDIS_URL": "redis://127.0.0.1:1/0"}),
        "bot api": bot_env(**common | {"TELEGRAM_API_URL": "http://127.0.0.1:1"}),
        "token": bot_env(**common | {"BOT_TOKEN": "654321:some-other-bot"}),
    }
    results = dict(zip(cases, await asyncio.gather(*(cli("run", env=env) for env in cases.values()))))

    code, _, err = results["database"]
    assert code == 1, err
    line = one_error_line(err)  # nothing else: not even log noise before it
    assert "database" in line and "127.0.0.1:1" in line

    code, _, err = results["redis"]
    assert code == 1, err
    assert "Redis" in one_error_line(err, exactly=False)

    code, _, err = results["bot api"]
    assert code == 1, err
    line = one_error_line(err, exactly=False)
    assert "Bot API" in line and "127.0.0.1:1" in line

    code, _, err = results["token"]
    assert code == 2, err
    assert "BOT_TOKEN" in one_error_line(err, exactly=False)
    assert not emu.calls("getMe") and not emu.calls("getUpdates"), "only the right token gets answers"


# ----- migrate ------------------------------------------------------------------------------------


async def test_migrate_creates_the_schema_and_is_idempotent(tmp_path):
    db = tmp_path / "sub" / "fresh.db"
    env = bot_env(DATABASE_URL=sqlite_url(db))
    code, out, err = await cli("migrate", env=env)
    assert code == 0, err
    assert "migrations applied" in out and "Running upgrade" in err
    found = {name for (name,) in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables() | {"alembic_version"} <= found
    assert query(db, "SELECT version_num FROM alembic_version") == [(head_revision(),)]

    code, out, err = await cli("migrate", env=env)
    assert code == 0, err
    assert "migrations applied" in out and "Running upgrade" not in err
    assert query(db, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


# ----- jobs ---------------------------------------------------------------------------------------


async def test_jobs_list_and_unknown_job(tmp_path):
    env = bot_env(DATABASE_URL=sqlite_url(tmp_path / "never.db"))
    (code, out, err), (code_nope, out_nope, err_nope) = await asyncio.gather(
        cli("jobs", "list", env=env), cli("jobs", "run", "nope", env=env | {"BOT_TOKEN": TOKEN}))
    assert code == 0, err
    assert re.search(r"^refresh_leaders\s+interval\(minutes=10\)", out, re.MULTILINE), out
    assert code_nope == 2 and not out_nope
    line = one_error_line(err_nope)
    assert "nope" in line and "jobs list" in line


async def test_jobs_run_as_of_a_time_against_the_emulator(emu, tmp_path):
    """Two stale communities: one whose group the emulator knows (refreshed), one it does not."""
    from bot.core.db import create_engine, session_factory
    from models import Community

    alice = emu.add_user("Alice", username="alice")
    group = emu.create_group("Greens", alice)
    emu.add_bot_to_group(group, by=alice, admin=True)
    db = tmp_path / "jobs.db"
    url = sqlite_url(db)
    await upgrade_async(url)
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        session.add(Community(chat_id=group.id, title="Greens"))
        session.add(Community(chat_id=-100999, title="Gone"))
        await session.commit()
    await engine.dispose()

    env = bot_env(BOT_TOKEN=TOKEN, DATABASE_URL=url, TELEGRAM_API_URL=emu.url, LOG_LEVEL="WARNING")
    code, out, err = await cli("jobs", "run", "refresh_leaders", "--at", "2026-01-01T00:00:00+08:00", env=env)
    assert code == 0, err
    assert out.strip() == "refresh_leaders: 1 refreshed, 1 unavailable", out
    assert "Traceback" not in err
    # As of --at, converted to UTC: the time the job believed it was.
    assert query(db, "SELECT chat_id, leaders_refreshed_at FROM communities ORDER BY id") == [
        (group.id, "2025-12-31 16:00:00.000000"), (-100999, None)]
    assert query(db, "SELECT user_id, is_leader FROM members") == [(alice.id, 1)]
    assert not emu.calls("setMyCommands") and not emu.calls("getUpdates"), "a job run neither publishes nor polls"


# ----- the real bot: polling, SIGTERM, restart ---------------------------------------------------


def last_bot_message_with(emu: TelegramEmulator, chat, text: str) -> Callable[[], SimMessage | None]:
    def find() -> SimMessage | None:
        message = emu.last_bot_message(chat)
        return message if message is not None and text in message.visible + json.dumps(message.buttons, ensure_ascii=False) else None

    return find


async def test_run_polls_survives_restart_and_flushes_activity_on_sigterm(emu, processes, redis_url, tmp_path):
    alice = emu.add_user("Alice", username="alice")
    bob, carol = emu.add_user("Bob"), emu.add_user("Carol")
    group = emu.create_group("Veggie Club", alice)
    db = tmp_path / "data" / "bot.db"  # does not exist yet: `run` must migrate it
    env = bot_env(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=emu.url, DATABASE_URL=sqlite_url(db), OWNER_IDS=str(OWNER_ID),
                  REDIS_URL=redis_url, LOG_LEVEL="INFO",
                  # Only the shutdown flush may write activity: that is what this test is about.
                  ACTIVITY_FLUSH_SECONDS=3600)

    # --- first start: migrations, commands, polling with the contract's allowed_updates
    first = await processes(env, tmp_path, "first")
    await first.until(eventually(polling_started(emu), START, "polling"), START, "polling")
    assert query(db, "SELECT version_num FROM alembic_version") == [(head_revision(),)]
    assert "Running upgrade" in first.stderr
    assert "start" in {c["command"] for c in emu.commands_for({"type": "all_private_chats"})}, "commands not published"
    assert set(ALLOWED_UPDATES) <= emu.updates.allowed and "chat_member" in emu.updates.allowed

    # --- a leader sets the timezone through /admin → Settings → Timezone
    emu.add_bot_to_group(group, by=alice, admin=True)
    await first.until(emu.wait_bot_message(group, contains="Veggie Club", timeout=REPLY), REPLY, "the welcome")
    emu.send(alice, text="/start")
    await first.until(emu.wait_bot_message(alice, timeout=REPLY), REPLY, "the reply to /start")
    emu.send(alice, text="/admin")
    menu = await first.until(emu.wait_bot_message(alice, contains="Timezone: UTC", timeout=REPLY), REPLY, "the menu")
    emu.press(alice, menu, "⚙️ Settings")
    await first.until(emu.wait_for(last_bot_message_with(emu, alice, "🕒 Timezone: UTC"), timeout=REPLY), REPLY, "settings")
    emu.press(alice, emu.last_bot_message(alice), "🕒 Timezone: UTC")
    await first.until(emu.wait_for(last_bot_message_with(emu, alice, "IANA"), timeout=REPLY), REPLY, "the prompt")
    emu.send(alice, text="Asia/Shanghai")
    await first.until(emu.wait_bot_message(alice, contains="Timezone set to Asia/Shanghai", timeout=REPLY), REPLY, "saved")

    # --- chatter in the group right before SIGTERM: fetched, not yet flushed
    for member in (bob, carol):
        emu.join(group, member)
    for user, text in [(bob, "hi"), (carol, "hello"), (bob, "who sells eggs?"), (bob, "anyone?"), (carol, "me")]:
        emu.send(user, group, text)
    # Every update confirmed (the bot asked for the next batch): they are in the bot's hands now.
    await first.until(eventually(lambda: emu.updates.pending == 0, REPLY, "confirmation"), REPLY, "the chatter to be fetched")
    assert query(db, "SELECT COUNT(*) FROM members WHERE message_count > 0") == [(0,)], "flushed before shutdown"

    code = await first.stop(signal.SIGTERM, timeout=STOP)
    assert code == 0, first.stderr[-4000:]
    assert "Traceback" not in first.stderr, first.stderr
    counts = dict(query(db, "SELECT user_id, message_count FROM members WHERE message_count > 0"))
    assert counts == {bob.id: 3, carol.id: 2}, "the activity buffer was lost at shutdown"
    assert query(db, "SELECT timezone FROM communities WHERE chat_id = ?", group.id) == [("Asia/Shanghai",)]

    # --- second start: the setting survived; nothing to migrate
    # Polling starts right after deleteWebhook; what is sent from then on waits in the queue for it.
    before = len(emu.calls("deleteWebhook"))
    second = await processes(env, tmp_path, "second")
    await second.until(eventually(lambda: len(emu.calls("deleteWebhook")) > before, START, "deleteWebhook"), START, "polling")
    emu.send(alice, text="/admin")
    menu = await second.until(emu.wait_bot_message(alice, contains="Timezone:", timeout=REPLY), REPLY, "menu")
    assert "Timezone: Asia/Shanghai" in menu.visible, menu.visible
    assert "Running upgrade" not in second.stderr
    code = await second.stop(signal.SIGINT, timeout=STOP)
    assert code == 0, second.stderr[-4000:]
    assert "Traceback" not in second.stderr, second.stderr
    counts = dict(query(db, "SELECT user_id, message_count FROM members WHERE message_count > 0"))
    assert counts == {bob.id: 3, carol.id: 2}, "updates handled before the restart were counted again"


# ----- webhook mode -------------------------------------------------------------------------------


async def test_sigterm_while_starting_is_a_clean_stop(emu, processes, tmp_path):
    """Telegram holds the bot in its start (a 429 on deleteWebhook, waited out); SIGTERM then must
    stop it cleanly, as it would once polling runs, not kill it with the default action."""
    db = tmp_path / "bot.db"
    env = bot_env(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=emu.url, DATABASE_URL=sqlite_url(db), LOG_LEVEL="INFO")
    emu.fail_next("deleteWebhook", 429, "Too Many Requests: retry after 20", retry_after=20)
    bot = await processes(env, tmp_path, "starting")
    await bot.until(eventually(lambda: emu.calls("deleteWebhook"), START, "deleteWebhook"), START, "the start")
    started = time.monotonic()
    code = await bot.stop(signal.SIGTERM, timeout=STOP)
    assert code == 0, bot.stderr[-4000:]
    assert time.monotonic() - started < 10, "the stop waited out Telegram's 20 s instead of stopping"
    assert "Traceback" not in bot.stderr, bot.stderr
    assert not polling_started(emu)(), "polling started after the SIGTERM"


async def test_webhook_mode(emu, processes, tmp_path):
    """Telegram (and the emulator) only accept an https WEBHOOK_URL; TLS ends at the proxy, so the
    bot itself serves plain HTTP on PORT and the test posts there directly."""
    port = free_port()
    common = {"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": emu.url, "DATABASE_URL": sqlite_url(tmp_path / "hook.db"),
              "PORT": port, "WEBHOOK_SECRET": "s3cret", "LOG_LEVEL": "INFO"}
    hook = await processes(bot_env(**common, WEBHOOK_URL=f"https://127.0.0.1:{port}/tg"), tmp_path, "webhook")
    # A plain-http WEBHOOK_URL is refused by the Bot API: a configuration error, told in one line.
    refused = asyncio.ensure_future(cli("run", env=bot_env(**common | {"PORT": free_port(), "DATABASE_URL": sqlite_url(tmp_path / "h2.db")},
                                                           WEBHOOK_URL="http://127.0.0.1:1/tg")))
    try:
        await hook.until(emu.wait_for(lambda: emu.webhook_url, timeout=START), START, "setWebhook")
        call = [c for c in emu.calls("setWebhook") if c.ok][-1]
        assert call.params["url"] == f"https://127.0.0.1:{port}/tg"
        assert call.params["secret_token"] == "s3cret"
        allowed = call.params["allowed_updates"]
        allowed = json.loads(allowed) if isinstance(allowed, str) else allowed
        assert "chat_member" in allowed and set(ALLOWED_UPDATES) <= set(allowed)
        assert not emu.calls("getUpdates")

        alice = emu.add_user("Alice")
        hook_url = f"http://127.0.0.1:{port}/tg"
        secret = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}

        def update_for(text: str, update_id: int) -> tuple[SimMessage, dict]:
            message = emu.send(alice, text=text)  # the emulator only queues it (it never pushes): we post it
            return message, {"update_id": update_id, "message": message_json(message)}

        start, start_update = update_for("/start", 900_000_001)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
            for headers in ({"X-Telegram-Bot-Api-Secret-Token": "wrong"}, {}):
                async with http.post(hook_url, json=start_update, headers=headers) as response:
                    assert response.status in (401, 403), (headers, response.status)
            async with http.post(hook_url, json=start_update, headers=secret) as response:
                assert response.status == 200
            reply = await hook.until(emu.wait_bot_message(alice, timeout=REPLY, after=start), REPLY, "the reply to /start")
            assert len(emu.bot_messages(alice)) == 1, "a refused post was handled"
            # Telegram retries a delivery it thinks failed: the same update_id has no second effect.
            async with http.post(hook_url, json=start_update, headers=secret) as response:
                assert response.status == 200
            help_, help_update = update_for("/help", 900_000_002)
            async with http.post(hook_url, json=help_update, headers=secret) as response:
                assert response.status == 200
            await hook.until(emu.wait_bot_message(alice, timeout=REPLY, after=help_), REPLY, "the reply to /help")
            assert [m.message_id for m in emu.bot_messages(alice)][:1] == [reply.message_id]
            assert len(emu.bot_messages(alice)) == 2, [m.visible[:40] for m in emu.bot_messages(alice)]

        code = await hook.stop(signal.SIGTERM, timeout=STOP)
        assert code == 0, hook.stderr[-4000:]
        assert "Traceback" not in hook.stderr, hook.stderr
    finally:
        code, _, err = await refused
    assert code == 2, err
    assert "WEBHOOK_URL" in one_error_line(err, exactly=False)
