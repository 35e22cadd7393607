"""Foundation benchmark: the real bot polling the sandbox emulator over HTTP, against targets.

    .venv/bin/python bench/foundation.py [--database-url URL] [--redis-url URL] [--only a,b,c,c100,a0]

(a) 20,000 plain group messages from 5,000 members (activity tracking only, no reply)
(b) 20,000 /start commands in private chats (one new user each), each answered
(c) a bare aiogram echo bot on the same emulator, 20,000 private messages (the reference);
    c100 is the same echo bot with tasks_concurrency_limit=100
(a0) aiogram with no routers, counting the messages of (a): the framework's floor for (a)

A burst still running after --timeout seconds is stopped; its rate is what it handled by then
(marked "partial"), which keeps a run under three minutes however slow the bot is.

Three kinds of process: this one (orchestrates, samples the bot's RSS every 50 ms), the emulator
(bench/emulator_proc.py, a fresh one per scenario) and the bot (bench/bot_worker.py, a fresh one per
scenario). See bench/README.md for what each figure means. Exits 0 whatever the verdicts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

DEFAULT_TOKEN = "700800900:BENCH-foundation-token"  # any "<digits>:<secret>" the emulator accepts

TARGET_A_RATE = 5_000
TARGET_A_WRITES = 20
TARGET_RSS_MB = 250
TARGET_B_RATIO = 0.5


@dataclass
class Run:
    key: str
    label: str
    updates: int
    result: dict[str, Any] = field(default_factory=dict)
    peak_sampled_mb: float = 0.0
    wall: float = 0.0
    others_cpu: float = 0.0  # CPUs' worth of work by processes not ours, averaged over the scenario

    @property
    def ok(self) -> bool:
        return bool(self.result) and "error" not in self.result

    @property
    def seconds(self) -> float | None:
        r = self.result
        if not self.ok or not r.get("start_at") or not r.get("end_at"):
            return None
        return r["end_at"] - r["start_at"]

    @property
    def done(self) -> int:
        """Updates handled: all of them, unless the scenario hit its time limit."""
        return int(self.result.get("done", self.updates)) if self.ok else 0

    @property
    def partial(self) -> bool:
        return bool(self.result.get("partial"))

    @property
    def rate(self) -> float | None:
        return self.done / self.seconds if self.seconds else None

    @property
    def writes_per_1k(self) -> float | None:
        return self.result["writes"] * 1000 / self.done if self.ok and "writes" in self.result and self.done else None

    @property
    def peak_rss(self) -> float | None:
        if not self.ok:
            return None
        return max(self.peak_sampled_mb, self.result.get("maxrss_mb", 0.0))


# ----- processes ---------------------------------------------------------------------------------

class Emulator:
    """bench/emulator_proc.py in a child process; closing its stdin stops it."""

    def __init__(self, python: str, log: Path) -> None:
        self._log = open(log, "w")
        self.proc = subprocess.Popen([python, str(BENCH / "emulator_proc.py"), "--token", DEFAULT_TOKEN],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the emulator did not start; see {log}")
        urls = json.loads(line)
        self.api, self.control = urls["api"], urls["control"]

    def call(self, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.control + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as response:
            return json.loads(response.read())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.process, self.every = psutil.Process(pid), every
        self.peak = 0.0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss / 2**20)
            except psutil.Error:
                return
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_worker(python: str, args: list[str], log: Path, timeout: float,
               profile: Path | None = None) -> tuple[dict, float]:
    command = [python, str(BENCH / "bot_worker.py"), *args]
    if profile is not None:
        # py-spy samples the worker (its child); the RSS then includes py-spy's own, ignore it.
        py_spy = shutil.which("py-spy") or str(Path(python).parent / "py-spy")
        command = [py_spy, "record", "--rate", "250", "--format", "raw", "--output", str(profile), "--", *command]
    with open(log, "w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
        sampler = RssSampler(proc.pid)
        sampler.start()
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            out += "\nRESULT " + json.dumps({"error": f"worker timed out after {timeout}s"})
        finally:
            sampler.stop()
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:]), sampler.peak
    return {"error": f"worker printed no result (exit {proc.returncode}); see {log}"}, sampler.peak


# ----- databases ---------------------------------------------------------------------------------

class Databases:
    """A fresh, migrated database per scenario: a copy of a migrated SQLite file, or (with
    --database-url) the given database migrated and emptied. Redis keys of the bot are deleted."""

    def __init__(self, workdir: Path, database_url: str | None, redis_url: str | None) -> None:
        self.workdir, self.database_url, self.redis_url = workdir, database_url, redis_url
        from bot.core.migrate import upgrade

        if database_url:
            upgrade(database_url)
        else:
            self.template = workdir / "template.db"
            upgrade(f"sqlite+aiosqlite:///{self.template}")

    @property
    def backend(self) -> str:
        from sqlalchemy.engine import make_url

        db = make_url(self.database_url).get_backend_name() if self.database_url else "sqlite (temp file)"
        return f"{db}; redis {'at ' + self.redis_url if self.redis_url else 'off (in-process ledger and FSM storage)'}"

    def fresh(self, name: str) -> str:
        self._clear_redis()
        if not self.database_url:
            path = self.workdir / f"{name}.db"
            shutil.copy(self.template, path)
            return f"sqlite+aiosqlite:///{path}"
        import asyncio

        from sqlalchemy import text
        from sqlmodel import SQLModel

        import models  # noqa: F401
        from bot.core.db import create_engine

        async def truncate() -> None:
            engine = create_engine(self.database_url)
            tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
            async with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                else:
                    for t in reversed(SQLModel.metadata.sorted_tables):
                        await conn.execute(t.delete())
            await engine.dispose()

        asyncio.run(truncate())
        return self.database_url

    def _clear_redis(self) -> None:
        if not self.redis_url:
            return
        from redis import Redis

        # The emulator numbers updates from the same id every run: stale de-dup keys would drop them.
        client = Redis.from_url(self.redis_url)
        try:
            for pattern in ("ccb:*", "fsm:*"):
                keys = list(client.scan_iter(match=pattern, count=1000))
                for i in range(0, len(keys), 1000):
                    client.delete(*keys[i:i + 1000])
        finally:
            client.close()


# ----- scenarios ---------------------------------------------------------------------------------

def busy_cpu_seconds() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)


def scenario(run: Run, opts: argparse.Namespace, dbs: Databases, workdir: Path) -> None:
    started = time.perf_counter()
    machine_before = busy_cpu_seconds()
    ours_before = psutil.Process().cpu_times()
    emulator = Emulator(opts.python, workdir / f"emulator-{run.key}.log")
    try:
        common = ["--api", emulator.api, "--control", emulator.control, "--token", DEFAULT_TOKEN,
                  "--messages", str(run.updates), "--timeout", str(opts.timeout)]
        if run.key == "a":
            prepared = emulator.call("/prepare", {"kind": "group", "members": opts.members})
            args = ["--bot", "app", "--scenario", "group", "--text", "hello from the group",
                    "--group-chat-id", str(prepared["chat_id"]),
                    "--group-owner-id", str(prepared["owner_id"]), "--database-url", dbs.fresh(run.key)]
        elif run.key == "a0":
            emulator.call("/prepare", {"kind": "group", "members": opts.members})
            args = ["--bot", "bare", "--scenario", "group", "--text", "hello from the group"]
        else:
            users = opts.private_users or run.updates
            emulator.call("/prepare", {"kind": "private", "users": users, "text": "/start"})
            if run.key == "b":
                args = ["--bot", "app", "--scenario", "private", "--text", "/start", "--database-url", dbs.fresh(run.key)]
            else:
                args = ["--bot", "echo", "--scenario", "private", "--text", "/start"]
                if run.key == "c100":
                    args += ["--tasks-concurrency-limit", "100"]
        if run.key in ("a", "b"):
            if opts.redis_url:
                args += ["--redis-url", opts.redis_url]
            if opts.updates_in_flight:
                args += ["--updates-in-flight", str(opts.updates_in_flight)]
        profile = Path(opts.profile) / f"profile-{run.key}.txt" if opts.profile else None
        if opts.cprofile:
            args += ["--cprofile", str(Path(opts.cprofile) / f"cprofile-{run.key}.prof")]
        run.result, run.peak_sampled_mb = run_worker(opts.python, common + args, workdir / f"bot-{run.key}.log",
                                                     timeout=opts.timeout + 60, profile=profile)
    finally:
        emulator.close()
    run.wall = time.perf_counter() - started
    # CPU the rest of the machine used meanwhile: our own three processes are subtracted.
    ours = psutil.Process().cpu_times()
    ours_used = (ours.user - ours_before.user + ours.system - ours_before.system
                 + ours.children_user - ours_before.children_user + ours.children_system - ours_before.children_system)
    run.others_cpu = max(0.0, (busy_cpu_seconds() - machine_before - ours_used) / run.wall)


# ----- report ------------------------------------------------------------------------------------

def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def verdicts(runs: dict[str, Run]) -> dict[str, tuple[str, bool | None]]:
    """scenario → (target text, passed); None when it cannot be judged."""
    out: dict[str, tuple[str, bool | None]] = {}
    ref = runs.get("c")
    if (a := runs.get("a")) is not None:
        ok = None
        if a.ok and a.rate is not None:
            ok = (a.rate >= TARGET_A_RATE and a.writes_per_1k < TARGET_A_WRITES and a.peak_rss < TARGET_RSS_MB
                  and a.result["verify"] == {"members": a.result["expected_members"],
                                             "message_count_sum": a.done})
        out["a"] = (f">= {TARGET_A_RATE:,}/s, < {TARGET_A_WRITES} w/1k, < {TARGET_RSS_MB} MB, counts exact", ok)
    if (b := runs.get("b")) is not None:
        ok = None
        if b.ok and b.rate is not None and ref is not None and ref.rate:
            ok = b.rate >= TARGET_B_RATIO * ref.rate and b.peak_rss < TARGET_RSS_MB and not b.result.get("handler_errors")
        out["b"] = (f">= {TARGET_B_RATIO:.0%} of (c), < {TARGET_RSS_MB} MB, no errors", ok)
    if "a0" in runs:
        out["a0"] = ("floor for (a): aiogram alone", None)
    if ref is not None:
        out["c"] = ("reference (~1,000/s on this class)", None)
    if "c100" in runs:
        out["c100"] = ("reference", None)
    return out


def report(runs: dict[str, Run], dbs: Databases, opts: argparse.Namespace, total: float) -> None:
    print()
    print(f"backend: {dbs.backend}")
    print(f"machine: {os.cpu_count()} CPUs; emulator and bot in separate processes; "
          f"{opts.messages:,} updates per scenario")
    judged = verdicts(runs)
    header = ["scenario", "updates", "seconds", "updates/s", "writes/1k", "peak RSS MB", "target", "verdict"]
    rows = []
    for key, run in runs.items():
        target, ok = judged.get(key, ("", None))
        verdict = "—" if ok is None else ("PASS" if ok else "FAIL")
        if not run.ok:
            verdict = "ERROR"
        if run.partial:
            verdict += " (partial)"
        updates = f"{run.done:,}" + (f" of {run.updates:,}" if run.partial else "")
        rows.append([run.label, updates, fmt(run.seconds, ".2f"), fmt(run.rate, ",.0f"),
                     fmt(run.writes_per_1k, ".2f"), fmt(run.peak_rss, ".0f"), target, verdict])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))

    ref = runs.get("c")
    print()
    for key, name in (("a", "(a)/(c)"), ("b", "(b)/(c)")):
        run = runs.get(key)
        if run is not None and ref is not None and run.rate and ref.rate:
            print(f"ratio {name}: {run.rate / ref.rate:.2f}")
    if "a" in runs and "a0" in runs and runs["a"].rate and runs["a0"].rate:
        print(f"ratio (a)/(a0): {runs['a'].rate / runs['a0'].rate:.2f}  (the bot's share of the aiogram floor for chatter)")
    if ref is not None and "c100" in runs and runs["c100"].rate and ref.rate:
        print(f"ratio (c100)/(c): {runs['c100'].rate / ref.rate:.2f}")

    print()
    for key, run in runs.items():
        r = run.result
        if not run.ok:
            print(f"{run.label}: ERROR {r.get('error')} (logs in {opts.workdir})")
            continue
        extra = [f"RSS before burst {r.get('rss_before_burst_mb')} MB", f"enqueue {r.get('enqueue_seconds')} s",
                 f"wall {run.wall:.1f} s",
                 f"other processes (a local database server among them) used {run.others_cpu:.2f} of {os.cpu_count()} CPUs"]
        if run.seconds:
            # Includes the enqueue (emulator) and the few ms between the burst call and the first batch.
            extra.insert(0, f"CPU during burst: bot {r['cpu_seconds']:.1f} s, emulator {r['emulator_cpu_seconds']:.1f} s "
                            f"(over {run.seconds:.1f} s)")
        if key == "a":
            v = r["verify"]
            exact = v == {"members": r["expected_members"], "message_count_sum": run.done}
            print(f"(a) check: members rows {v['members']:,} (expected {r['expected_members']:,}), "
                  f"message_count sum {v['message_count_sum']:,} (expected {run.done:,}) → "
                  f"{'OK' if exact else 'MISMATCH'}; writes {r['writes']} (final flush included); "
                  f"handling done {r['handled_at'] - r['start_at']:.2f} s, final flush {r['end_at'] - r['handled_at']:.2f} s")
        if key == "b":
            v = r["verify"]
            print(f"(b) check: answers {r['emulator'].get('sendMessage', 0):,} sendMessage in total; users rows "
                  f"{v['users']:,}, can_dm {v['can_dm']:,}; writes {r['writes']} ({run.writes_per_1k:.0f}/1k); "
                  f"handler errors {r.get('handler_errors', 0)}")
        print(f"    {run.label}: " + "; ".join(extra))
    noisy = [run.label for run in runs.values() if run.others_cpu > 0.2]
    if noisy:
        print(f"\nWARNING: other processes kept the machine busy during {', '.join(noisy)} "
              f"(see 'other processes used' above): absolute figures are low; the ratios suffer less.")
    print(f"\ntotal time {total:.0f} s; load average now {os.getloadavg()[0]:.1f}; logs in {opts.workdir}"
          + ("" if opts.keep else " (removed)"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000, help="updates per scenario (default 20,000)")
    parser.add_argument("--members", type=int, default=5_000, help="group members in (a) (default 5,000)")
    parser.add_argument("--private-users", type=int, default=0,
                        help="distinct users sending the private messages of (b)/(c) (default: one per message)")
    parser.add_argument("--database-url", help="run (a)/(b) against this database (it is MIGRATED and EMPTIED)")
    parser.add_argument("--redis-url", help="give the bot this Redis (its ccb:* and fsm:* keys are deleted)")
    parser.add_argument("--updates-in-flight", type=int, help="override the bot's UPDATES_IN_FLIGHT")
    parser.add_argument("--only", default="a,b,c,c100,a0",
                        help="scenarios to run, comma-separated (a,b,c,c100,a0; default all)")
    parser.add_argument("--timeout", type=float, default=35,
                        help="seconds per burst; a slower bot is stopped there and its rate is what it did (default 35)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with databases and logs")
    parser.add_argument("--profile", metavar="DIR",
                        help="run each bot under `py-spy record` (pip install py-spy); raw collapsed stacks in DIR")
    parser.add_argument("--cprofile", metavar="DIR",
                        help="cProfile each burst (start-up excluded) into DIR/cprofile-<scenario>.prof")
    opts = parser.parse_args()
    opts.python = sys.executable
    for folder in (opts.profile, opts.cprofile):
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
    wanted = [k.strip() for k in opts.only.split(",") if k.strip()]
    labels = {"a": "(a) group chatter", "b": "(b) /start answered", "c": "(c) aiogram echo",
              "c100": "(c100) echo, limit 100", "a0": "(a0) bare aiogram, chatter"}
    unknown = set(wanted) - set(labels)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}")

    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-foundation-"))
    opts.workdir = workdir
    try:
        dbs = Databases(workdir, opts.database_url, opts.redis_url)
        print(f"backend: {dbs.backend}", flush=True)
        runs: dict[str, Run] = {}
        for key in [k for k in labels if k in wanted]:
            run = runs[key] = Run(key, labels[key], opts.messages)
            print(f"running {run.label} ...", end=" ", flush=True)
            scenario(run, opts, dbs, workdir)
            if key == "a" and run.ok:
                run.result["expected_members"] = min(opts.members, run.done)
            print(f"{fmt(run.rate, ',.0f')} updates/s" if run.ok else f"ERROR {run.result.get('error')}", flush=True)
        report(runs, dbs, opts, time.perf_counter() - started)
    finally:
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
