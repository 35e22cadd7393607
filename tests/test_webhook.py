"""Webhook workers as an operator runs them: real `python -m bot run` processes against the emulator.

What Telegram, a load balancer and Prometheus see: refused garbage, secrets during a rotation,
/healthz, /metrics, no access-log line per update, and the webhook and menus registered once per
deploy (`webhook set`, or the first of several workers when Redis is shared).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal

import aiohttp
import pytest
import test_cli
from aiohttp import web
from redis.asyncio import Redis
from test_cli import REPLY, START, STOP, TOKEN, bot_env, cli, free_port, one_error_line, sqlite_url, wait_healthy

from bot.core.db import create_engine
from bot.sandbox.serialize import message_json
from bot.telegram.ops import Health, add_ops_routes

# The emulator and the bot processes, as the command-line tests have them.
emu, processes = test_cli.emu, test_cli.processes
MENUS = 6  # three scopes, two languages


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from a Prometheus exposition."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{re.escape('{' + wanted + '}') if wanted else ''} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{name}{{{wanted}}} not in /metrics:\n{text[:3000]}"
    return float(found.group(1))


async def test_webhook_worker_refuses_garbage_accepts_both_secrets_and_reports(emu, processes, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = bot_env(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=emu.url, DATABASE_URL=sqlite_url(tmp_path / "hook.db"),
                  WEBHOOK_URL="https://bot.example/tg", WEBHOOK_SECRET="new_1,old-0", HOST="127.0.0.1",
                  PORT=port, LOG_LEVEL="INFO")
    hook = await processes(env, tmp_path, "webhook")
    await hook.until(emu.wait_for(lambda: emu.webhook_url, timeout=START), START, "setWebhook")
    # The first secret is the one Telegram is given.
    assert [c.params.get("secret_token") for c in emu.calls("setWebhook")] == ["new_1"]
    await hook.until(emu.wait_for(lambda: len(emu.calls("setMyCommands")) == MENUS, timeout=REPLY), REPLY, "menus")
    alice = emu.add_user("Alice")

    def update(text: str, update_id: int) -> dict:
        return {"update_id": update_id, "message": message_json(emu.send(alice, text=text))}

    async with aiohttp.ClientSession() as http:
        async def post(body: bytes | str, secret: str = "new_1") -> tuple[int, str]:
            headers = {"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}
            async with http.post(f"{base}/tg", data=body, headers=headers) as response:
                return response.status, await response.text()

        # Garbage is refused with 400, never accepted and then failed in the background.
        for body in ("null", "[]", '{"update_id": "abc"}', '{"update_id": true}', "{not json", ""):
            status, _ = await post(body)
            assert status == 400, (body, status)
        # A sound id with content aiogram cannot parse (a newer Bot API): logged and skipped, not retried.
        status, _ = await post(json.dumps({"update_id": 900_000_100, "message": {"message_id": "x"}}))
        assert status == 200
        # A wrong secret is refused before the body is even read.
        assert (await post("null", secret="wrong"))[0] == 401
        # During a rotation both secrets are accepted: the old one (workers and Telegram not yet
        # moved) and the new one.
        assert (await post(json.dumps(update("/start", 900_000_001)), secret="old-0"))[0] == 200
        # A 200 means handled: the reply was sent before it.
        assert len(emu.bot_messages(alice)) == 1
        assert (await post(json.dumps(update("/help", 900_000_002)), secret="new_1"))[0] == 200
        await hook.until(emu.wait_for(lambda: len(emu.bot_messages(alice)) == 2, timeout=REPLY), REPLY, "/help")

        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200
            assert await response.json() == {"ok": True, "database": "ok", "redis": "not used"}
        async with http.get(f"{base}/metrics") as response:
            assert response.status == 200
            exposed = await response.text()
    assert metric(exposed, "ccb_updates_total", type="message") == 2
    assert metric(exposed, "ccb_update_seconds_count", type="message") == 2
    assert metric(exposed, "ccb_scheduler_lease_held") == 1
    assert metric(exposed, "ccb_send_queue_depth") >= 0
    assert "ccb_telegram_429_total" in exposed and "ccb_update_errors_total" in exposed
    assert re.search(r'^ccb_jobs_run_total\{job="\w+",outcome="ok"\} [1-9]', exposed, re.MULTILINE), exposed[:3000]

    code = await hook.stop(signal.SIGTERM, timeout=STOP)
    assert code == 0, hook.stderr[-4000:]
    err = hook.stderr
    assert "Traceback" not in err and "Task exception was never retrieved" not in err, err[-4000:]
    assert err.count("refused JSON that is not an update") == 4 and err.count("refused a body that is not JSON") == 2, err
    assert "update 900000100 could not be parsed and is skipped" in err, err[-4000:]
    assert "aiohttp.access" not in err and '"POST /tg' not in err, "an access-log line per update at INFO"
    assert len(emu.bot_messages(alice)) == 2


async def test_webhook_set_registers_once_for_the_deploy(emu, tmp_path, redis_url):
    """`webhook set` in the deploy step registers the webhook and the menus; a configuration error
    is one line naming the variable."""
    common = {"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": emu.url, "DATABASE_URL": sqlite_url(tmp_path / "never.db"),
              "REDIS_URL": redis_url}
    (code, out, err), (missing, _, missing_err), (bad, _, bad_err) = await asyncio.gather(
        cli("webhook", "set", env=bot_env(**common, WEBHOOK_URL="https://bot.example/tg", WEBHOOK_SECRET="s3cret")),
        cli("webhook", "set", env=bot_env(**common)),
        cli("webhook", "set", env=bot_env(**common, WEBHOOK_URL="https://bot.example/tg", WEBHOOK_SECRET="no spaces")),
    )
    assert code == 0, err
    assert out.strip() == "webhook set: https://bot.example/tg"
    assert [(c.params["url"], c.params.get("secret_token")) for c in emu.calls("setWebhook")] == [
        ("https://bot.example/tg", "s3cret")]
    assert len(emu.calls("setMyCommands")) == MENUS
    assert missing == 2 and "WEBHOOK_URL" in one_error_line(missing_err, exactly=False)
    assert bad == 2 and "WEBHOOK_SECRET" in one_error_line(bad_err)
    assert not (tmp_path / "never.db").exists(), "registering needs no database"


async def test_three_workers_register_the_webhook_and_menus_once(emu, processes, tmp_path, db_url, redis_url):
    """Three workers started together (and a fourth after `webhook set`): one setWebhook and one set of
    menus in all, where each used to make its own. Needs the shared Redis."""
    if redis_url is None:
        pytest.skip("REDIS_URL is not set: without Redis there is one worker, and it registers at start")
    common = {"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": emu.url, "DATABASE_URL": db_url, "REDIS_URL": redis_url,
              "WEBHOOK_URL": "https://bot.example/tg", "WEBHOOK_SECRET": "s3cret", "HOST": "127.0.0.1"}
    ports = [free_port() for _ in range(3)]
    workers = [await processes(bot_env(**common, PORT=port), tmp_path, f"worker{i}") for i, port in enumerate(ports)]

    for worker, port in zip(workers, ports):
        await worker.until(wait_healthy(port), START, "/healthz")
    assert len(emu.calls("setWebhook")) == 1 and len(emu.calls("setMyCommands")) == MENUS
    for worker in workers:
        assert await worker.stop() == 0, worker.stderr[-3000:]


async def test_healthz_answers_503_when_the_database_or_redis_is_unreachable():
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    app = web.Application()
    add_ops_routes(app, Health(engine, redis))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, host="127.0.0.1", port=port).start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 503
            answer = await response.json()
        assert answer["ok"] is False
        assert answer["database"].startswith("unreachable") and answer["redis"].startswith("unreachable"), answer
    finally:
        await runner.cleanup()
        await redis.aclose()
        await engine.dispose()


async def test_healthz_is_ok_on_a_reachable_database(db_url, redis_url):
    engine = create_engine(db_url)
    redis = Redis.from_url(redis_url) if redis_url else None
    try:
        expected = {"database": "ok", "redis": "ok" if redis else "not used"}
        assert await Health(engine, redis).check() == expected
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
