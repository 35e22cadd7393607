"""The win-back job: every few minutes, campaigns whose community-local run time has come (outside
quiet hours, once a day) start a run, and runs that a stopped worker or quiet hours left are taken
up again. The job waits for the runs it started or took up: `jobs run winback_campaigns --at ...`
then returns once they have sent what they can, and the scheduler does not start the job again
meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

from bot.jobs.registry import job
from bot.services import campaigns
from bot.telegram.context import BotContext


@job("winback_campaigns", "Start the win-back runs due today (local time, outside quiet hours) and resume unfinished ones",
     trigger="interval", minutes=5, at_start=True)
async def winback_campaigns(ctx: BotContext, now: datetime) -> str:
    # The runs' own clock moves on from `now`, so a job run as of a moment judges quiet hours then.
    started_at = time.monotonic()

    def clock() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started_at)

    runner = ctx.campaigns
    resumed = await runner.resume(clock=clock)
    async with ctx.sessions() as session:
        due = await campaigns.due(session, now=now)
    started = []
    for item in due:
        run = await runner.start(campaign=item.campaign, community=item.community, now=now, scheduled_on=item.day,
                                 clock=clock)
        if run is not None:
            started.append(run.id)
    await asyncio.gather(*(runner.wait(run_id) for run_id in started + resumed))
    return f"{len(started)} run(s) started, {len(resumed)} resumed"
