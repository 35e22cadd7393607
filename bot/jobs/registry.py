"""What a scheduled job is. The catalog (bot/jobs/catalog.py) names every one.

A job takes the bot's context and the moment it runs "as of" (its clock: tests and `jobs run
--at` move it); its effect is guarded by database state, so running it twice, late, or on two
workers changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.telegram.context import BotContext

log = logging.getLogger(__name__)

JobFunc = Callable[[BotContext, datetime], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    description: str
    func: JobFunc
    trigger: dict[str, Any] = field(default_factory=dict)
    # Also run once when the scheduler starts, on every worker: what fell due while the bot was
    # down is done now, not at the first tick.
    at_start: bool = False

    async def run(self, ctx: BotContext, now: datetime) -> str:
        """Run as of `now`; the summary is logged, and so is a failure before it is raised again."""
        try:
            summary = await self.func(ctx, now)
        except Exception:
            log.exception("job %s failed", self.name)
            raise
        log.info("job %s as of %s: %s", self.name, now.isoformat(), summary)
        return summary

    def describe_trigger(self) -> str:
        kind = self.trigger["trigger"]
        rest = ", ".join(f"{k}={v}" for k, v in self.trigger.items() if k != "trigger")
        return f"{kind}({rest})"


def job(name: str, description: str, *, at_start: bool = False, **trigger: Any) -> Callable[[JobFunc], Job]:
    def define(func: JobFunc) -> Job:
        return Job(name, description, func, trigger, at_start)

    return define
