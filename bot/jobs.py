"""Scheduled jobs: a registry that the scheduler, `jobs list` and `jobs run` all read.

A job takes the running App and the moment it runs "as of"; its effect is guarded by database
state, so running it twice, late, or on two workers changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.app import App

JobFunc = Callable[["App", datetime], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    description: str
    func: JobFunc
    trigger: dict[str, Any] = field(default_factory=dict)

    def describe_trigger(self) -> str:
        kind = self.trigger["trigger"]
        rest = ", ".join(f"{k}={v}" for k, v in self.trigger.items() if k != "trigger")
        return f"{kind}({rest})"


JOBS: dict[str, Job] = {}


def job(name: str, description: str, **trigger: Any) -> Callable[[JobFunc], JobFunc]:
    def register(func: JobFunc) -> JobFunc:
        if name in JOBS:
            raise ValueError(f"job {name!r} registered twice")
        JOBS[name] = Job(name, description, func, trigger)
        return func

    return register


@job("refresh_leaders", "Re-read creator and administrators of groups not refreshed in the last hour",
     trigger="interval", minutes=10)
async def refresh_leaders(app: App, now: datetime) -> str:
    from bot import leaders
    from bot.services import communities

    refreshed = failed = 0
    async with app.sessions() as session:
        for community in await communities.stale_leader_communities(session, now=now):
            if await leaders.refresh(app.bot, session, community, now=now):
                refreshed += 1
            else:
                failed += 1
    return f"{refreshed} refreshed, {failed} unavailable"


# Feature modules register their jobs on import (each feature adds its line here).
from bot import jobs_posts  # noqa: E402,F401
from bot import jobs_orders  # noqa: E402,F401
from bot import jobs_summary  # noqa: E402,F401
from bot import jobs_groupbuys  # noqa: E402,F401
from bot import jobs_groupbuy_cards  # noqa: E402,F401
