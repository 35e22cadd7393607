"""deploy/ as someone would copy it: the files parse, agree with each other, and the workers start
from them (the command and environment they give, against the emulator instead of Telegram, on the
test's database instead of the compose file's PostgreSQL).

PyYAML is not a dependency, so compose.yaml is read by `read_yaml`, which knows the block subset
the file uses (mappings, lists, JSON-style flow lists, comments) and fails on anything else.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import aiohttp
import test_cli
from test_cli import REPLY, START, STOP, TOKEN, bot_env, free_port, sqlite_url, wait_healthy

from bot.core.config import ROOT
from bot.sandbox.serialize import message_json

DEPLOY = ROOT / "deploy"
emu, processes = test_cli.emu, test_cli.processes


def read_yaml(text: str) -> dict:
    """The block-style YAML subset of compose.yaml, strictly."""
    lines = []
    for raw in text.splitlines():
        stripped = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if stripped.strip():
            lines.append((len(stripped) - len(stripped.lstrip(" ")), stripped.strip()))

    def scalar(value: str):
        if value.startswith("["):
            return json.loads(value)
        if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'":
            return value[1:-1]
        return value

    def block(i: int, indent: int):
        if lines[i][1].startswith("- "):
            items = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                items.append(scalar(lines[i][1][2:]))
                i += 1
            return items, i
        mapping = {}
        while i < len(lines) and lines[i][0] == indent:
            key, sep, value = lines[i][1].partition(":")
            assert sep and re.fullmatch(r"[A-Za-z0-9_.-]+", key), f"not a mapping entry: {lines[i][1]!r}"
            assert key not in mapping, f"duplicate key {key!r}"
            value = value.strip()
            i += 1
            if value:
                mapping[key] = scalar(value)
            elif i < len(lines) and lines[i][0] > indent:
                mapping[key], i = block(i, lines[i][0])
            else:
                mapping[key] = None
        return mapping, i

    parsed, end = block(0, 0)
    assert end == len(lines), f"unexpected indentation at {lines[end][1]!r}"
    return parsed


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}."""
    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        assert op != ":?", f"{name} is required: {arg}"
        return arg if op == ":-" else ""

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, value)


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def systemd_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"not a unit line: {line!r}"
        current.append((key, value))
    return sections



def test_compose_caddy_and_env_agree():
    compose = read_yaml((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "bot", "caddy"} <= services.keys()
    bot = services["bot"]
    env = env_file(DEPLOY / "env.example")
    given = {k: interpolate(str(v), env) for k, v in bot["environment"].items()}
    assert given["DATABASE_URL"].startswith("postgresql+asyncpg://") and given["REDIS_URL"].startswith("redis://")
    assert int(interpolate(bot["deploy"]["replicas"], env)) >= 2, "several workers"
    assert bot["command"] == ["python", "-m", "bot", "run"]
    assert set(bot["depends_on"]) == {"postgres", "redis"}
    # Caddy terminates TLS for the webhook's host and forwards its path to the workers' port.
    webhook = urlparse(given["WEBHOOK_URL"])
    assert webhook.scheme == "https" and webhook.hostname == env["BOT_DOMAIN"]
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert caddyfile.count("{") == caddyfile.count("}")
    assert "{$BOT_DOMAIN} {" in caddyfile and f"handle {webhook.path} {{" in caddyfile
    assert f"dynamic a bot {given['PORT']}" in caddyfile
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in services["caddy"]["volumes"]
    assert set(services["caddy"]["ports"]) == {"80:80", "443:443"}
    # The image installs the project the compose file builds from.
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert bot["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    for copied in ("bot", "handlers", "models", "migrations", "locales"):
        assert f"COPY {copied} {copied}" in dockerfile and (ROOT / copied).is_dir()
    # The activity journal lives on a named volume the workers share, writable by the image's user.
    journal = given["JOURNAL_DIR"]
    assert f"journal:{journal}" in bot["volumes"] and "journal" in compose["volumes"]
    assert f"chown bot data {journal}" in dockerfile


async def test_compose_workers_start_and_answer(emu, processes, tmp_path, db_url, redis_url):
    """Two workers with the compose file's command and environment; what only exists inside compose
    (PostgreSQL, Redis, Telegram, one port per container) is replaced by the test's own."""
    bot = read_yaml((DEPLOY / "compose.yaml").read_text())["services"]["bot"]
    env = env_file(DEPLOY / "env.example") | {"BOT_TOKEN": TOKEN}
    given = {k: interpolate(str(v), env) for k, v in bot["environment"].items()}
    command = bot["command"]
    assert command[0] == "python" and command[1:3] == ["-m", "bot"]
    ports = [free_port(), free_port()]
    workers = []
    for i, port in enumerate(ports):
        values = given | {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "TELEGRAM_API_URL": emu.url, "PORT": port}
        worker = test_cli.BotProcess(bot_env(**values), tmp_path, f"worker{i}")
        worker.proc = await asyncio.create_subprocess_exec(
            sys.executable, *command[1:], env=worker.env, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
            stdout=worker.out_path.open("wb"), stderr=worker.err_path.open("wb"))
        workers.append(worker)
    try:
        for worker, port in zip(workers, ports):
            health = await worker.until(wait_healthy(port), START, "/healthz")
            assert health["database"] == "ok"
        assert emu.webhook_url == given["WEBHOOK_URL"]
        alice = emu.add_user("Alice")
        message = emu.send(alice, text="/start")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{ports[1]}{urlparse(given['WEBHOOK_URL']).path}",
                                 json={"update_id": 1, "message": message_json(message)},
                                 headers={"X-Telegram-Bot-Api-Secret-Token": given["WEBHOOK_SECRET"]}) as response:
                assert response.status == 200
        # A 200 means handled: the reply was sent before it.
        await workers[1].until(emu.wait_bot_message(alice, timeout=REPLY, after=message), REPLY, "the reply to /start")
        for worker in workers:
            assert await worker.stop(timeout=STOP) == 0, worker.stderr[-3000:]
    finally:
        for worker in workers:
            await worker.kill()


async def test_the_systemd_unit_starts_the_single_process_bot(emu, tmp_path):
    unit = systemd_unit(DEPLOY / "community-bot.service")
    service = dict(unit["Service"])
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"] == "2"
    assert service["KillSignal"] == "SIGTERM" and "EnvironmentFile" in service
    assert dict(unit["Install"])["WantedBy"] == "multi-user.target"
    environment = dict(value.split("=", 1) for key, value in unit["Service"] if key == "Environment")
    assert environment["DATABASE_URL"].startswith("sqlite+aiosqlite:////var/lib/community-bot/")
    assert service["StateDirectory"] == "community-bot"
    executable, *args = service["ExecStart"].split()
    assert executable == "/opt/community-bot/.venv/bin/python" and args == ["-m", "bot", "run"]

    # The unit's environment, with the test's database, port and Telegram.
    port = free_port()
    values = environment | {"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": emu.url, "METRICS_PORT": port,
                            "DATABASE_URL": sqlite_url(tmp_path / "bot.db")}
    process = test_cli.BotProcess(bot_env(**values), tmp_path, "systemd")
    process.proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, env=process.env, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
        stdout=process.out_path.open("wb"), stderr=process.err_path.open("wb"))
    try:
        assert await process.until(wait_healthy(port), START, "/healthz on METRICS_PORT") == {
            "ok": True, "database": "ok", "redis": "not used"}
        alice = emu.add_user("Alice")
        await process.until(test_cli.eventually(test_cli.polling_started(emu), START, "polling"), START, "polling")
        emu.send(alice, text="/start")
        await process.until(emu.wait_bot_message(alice, timeout=REPLY), REPLY, "the reply to /start")
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200 and 'ccb_updates_total{type="message"}' in await response.text()
        assert await process.stop(timeout=STOP) == 0, process.stderr[-3000:]
    finally:
        await process.kill()
