"""`python -m bot demo` prints the conversation and nothing else: the logs go to a file it names."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a log record looks like in our format, and what Python prints for a warning.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) |^(INFO|WARNING|ERROR)[: ]|Warning: ")


def test_demo_prints_the_conversation_and_keeps_its_logs_in_a_file() -> None:
    done = subprocess.run([sys.executable, "-m", "bot", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "INFO"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert [line for line in lines if LOG_LINE.search(line)] == []
    assert "=== Onboarding: the bot joins the group ===" in lines
    assert any(line.startswith("[Green Valley Neighbours] bot: Hello, Green Valley Neighbours!") for line in lines)
    # The win-back chapter ends on the measured lift; the members it adds in bulk stay out of the transcript.
    assert any(line.startswith("=== Win-back:") for line in lines)
    assert any("Lift: +" in line and "95% interval" in line for line in lines)
    assert not any(line.startswith("[private Neighbour ") for line in lines)
    log_file = ROOT / "data" / "demo.log"
    assert lines[-1] == f"The bot's logs of this run are in {log_file} (--verbose shows them as they come)."
    logged = log_file.read_text(encoding="utf-8")
    assert " INFO alembic.runtime.migration: Running upgrade" in logged and " INFO bot.app: bot @community_demo_bot ready" in logged
