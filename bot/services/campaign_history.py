"""What the leader's campaign screens list about past runs: each campaign's latest run, and a
campaign's runs with how many were sent and held out.

Apart from bot/services/campaigns.py, which plans, sends and measures runs; these are read-only
summaries for the /admin screens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.campaign import Arm, CampaignRun, CampaignSend, RunStatus, SendStatus

RUNS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: int
    started_at: datetime
    status: RunStatus
    sent: int
    holdout: int


async def last_runs(session: AsyncSession, *, campaign_ids: Sequence[int]) -> dict[int, datetime]:
    """When each campaign last started a run; campaigns that never ran are left out."""
    if not campaign_ids:
        return {}
    rows = await session.execute(select(CampaignRun.campaign_id, func.max(CampaignRun.started_at))
                                 .where(CampaignRun.campaign_id.in_(list(campaign_ids)))
                                 .group_by(CampaignRun.campaign_id))
    return {campaign_id: started for campaign_id, started in rows.all()}


async def runs_of(session: AsyncSession, *, campaign_id: int, limit: int = RUNS_SHOWN) -> list[RunSummary]:
    """The campaign's latest runs, newest first, with their sent and held-out counts."""
    runs = (await session.execute(select(CampaignRun.id, CampaignRun.started_at, CampaignRun.status)
                                  .where(CampaignRun.campaign_id == campaign_id)
                                  .order_by(CampaignRun.id.desc()).limit(limit))).all()
    if not runs:
        return []
    counts = {run_id: (sent or 0, held or 0) for run_id, sent, held in (await session.execute(
        select(CampaignSend.run_id, func.sum(case((CampaignSend.status == SendStatus.SENT, 1), else_=0)),
               func.sum(case((CampaignSend.arm == Arm.HOLDOUT, 1), else_=0)))
        .where(CampaignSend.run_id.in_([r.id for r in runs])).group_by(CampaignSend.run_id))).all()}
    return [RunSummary(r.id, r.started_at, RunStatus(r.status), *counts.get(r.id, (0, 0))) for r in runs]


async def sending_run(session: AsyncSession, *, campaign_id: int) -> int | None:
    """The id of the campaign's run that is still sending (or waiting out quiet hours), if any."""
    return (await session.execute(select(CampaignRun.id).where(
        CampaignRun.campaign_id == campaign_id, CampaignRun.status == RunStatus.SENDING)
        .order_by(CampaignRun.id.desc()).limit(1))).scalar_one_or_none()
