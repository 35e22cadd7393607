"""What a call costs whatever the machine's load: statements sent to the database and CPU time.

Wall-clock figures on a shared machine measure the other processes as much as the code; the number
of statements a call sends and the CPU the process spends per call do not change with load. The
benchmarks print both beside their targets (issue 10: at most half of what they were before).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


class StatementCount:
    """Round trips to the database per asyncio task: every statement (savepoints included) and
    every COMMIT or ROLLBACK. Concurrent calls each run in a task of their own, and SQLAlchemy's
    greenlet runs inside the awaiting task, so each call is counted apart from the others."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.by_task: Counter = Counter()
        self.engine = engine
        for name in ("before_cursor_execute", "commit", "rollback"):
            event.listen(engine.sync_engine, name, self._count)

    def _count(self, *_args, **_kwargs) -> None:
        self.by_task[asyncio.current_task()] += 1

    def mine(self) -> int:
        """Statements the current task has sent so far."""
        return self.by_task[asyncio.current_task()]

    def close(self) -> None:
        for name in ("before_cursor_execute", "commit", "rollback"):
            event.remove(self.engine.sync_engine, name, self._count)


@dataclass
class PerCall:
    """Statements of calls sorted by outcome ("order", "sold out", ...)."""

    calls: Counter
    statements: Counter

    @classmethod
    def empty(cls) -> PerCall:
        return cls(Counter(), Counter())

    def add(self, outcome: str, statements: int) -> None:
        self.calls[outcome] += 1
        self.statements[outcome] += statements

    def mean(self, outcome: str | None = None) -> float:
        if outcome is None:
            return sum(self.statements.values()) / max(1, sum(self.calls.values()))
        return self.statements[outcome] / max(1, self.calls[outcome])

    def describe(self) -> str:
        return ", ".join(f"{outcome} {self.mean(outcome):.1f} ({n} calls)" for outcome, n in self.calls.most_common())


def target_line(label: str, value: float, target: float, unit: str, before: str) -> tuple[str, bool]:
    """`label value unit (target ≤ target; before: ...) PASS|FAIL`, and whether it holds."""
    ok = value <= target
    return (f"{label:<24} {value:.1f} {unit} (target ≤ {target:g}; before {before})  {'PASS' if ok else 'FAIL'}",
            ok)
