"""Win-back campaigns: what a leader set up, each run of it, and each member a run chose."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class CampaignKind(StrEnum):
    WINBACK = "winback"


class RunStatus(StrEnum):
    SENDING = "sending"  # planned; sends going out (or waiting out quiet hours)
    DONE = "done"
    CANCELLED = "cancelled"


class Arm(StrEnum):
    TREATMENT = "treatment"
    HOLDOUT = "holdout"  # chosen like the others, never messaged: the measure of what the message did


class SendStatus(StrEnum):
    HELD = "held"  # a holdout member: never messaged
    PENDING = "pending"  # not sent yet
    SENDING = "sending"  # handed to Telegram, answer not recorded yet
    SENT = "sent"
    BLOCKED = "blocked"  # 403: the member blocked the bot
    OPTED_OUT = "opted_out"  # /stop between planning and sending
    FAILED = "failed"
    IN_DOUBT = "in_doubt"  # the process died while Telegram had it: never sent again


class Campaign(SQLModel, table=True):
    __tablename__ = "campaigns"

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id", index=True)
    kind: str = Field(default=CampaignKind.WINBACK, max_length=16)
    name: str = Field(max_length=64)
    enabled: bool = Field(default=False)
    # bot/services/campaign_config.py WinbackConfig, as JSON.
    config: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The leader who set it up: progress and summaries of scheduled runs go to them.
    owner_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CampaignRun(SQLModel, table=True):
    __tablename__ = "campaign_runs"
    __table_args__ = (
        # One scheduled run per campaign and community-local day; runs started by hand have no day.
        UniqueConstraint("campaign_id", "scheduled_on", name="uq_campaign_run_day"),
        # One run of a campaign sending at a time: two "Run now" presses at once start one.
        Index("uq_campaign_run_sending", "campaign_id", unique=True, sqlite_where=text("status = 'sending'"),
              postgresql_where=text("status = 'sending'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", index=True)
    community_id: int = Field(foreign_key="communities.id")
    scheduled_on: date | None = Field(default=None)
    status: str = Field(default=RunStatus.SENDING, max_length=16)
    started_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # The configuration the run was planned with: later edits do not change a run's terms or window.
    config: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Who was looked at, and why some drifting members were not chosen.
    scanned: int = Field(default=0)
    drifting: int = Field(default=0)
    skipped: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The worker sending it (bot/telegram/presence.py names): another takes over once it is gone.
    runner: str | None = Field(default=None, max_length=64)
    # The leader's progress message, edited in place.
    progress_chat_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    progress_message_id: int | None = Field(default=None)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CampaignSend(SQLModel, table=True):
    __tablename__ = "campaign_sends"
    __table_args__ = (
        UniqueConstraint("run_id", "user_id", name="uq_campaign_send"),
        # The frequency cap: a member's latest win-back in a community.
        Index("ix_campaign_sends_member", "community_id", "user_id", "assigned_at"),
        # A run's next sends, in order.
        Index("ix_campaign_sends_run_status", "run_id", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="campaign_runs.id")
    campaign_id: int = Field(foreign_key="campaigns.id")
    community_id: int = Field(foreign_key="communities.id")
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False))
    arm: str = Field(max_length=16)
    risk: float = Field(default=0.0)
    status: str = Field(default=SendStatus.PENDING, max_length=16)
    coupon_id: int | None = Field(default=None, foreign_key="coupons.id")
    message_id: int | None = Field(default=None)
    # When the member was chosen, and when their attribution window closes (the same for both arms).
    assigned_at: datetime = Field(sa_type=UTCDateTime)
    window_ends_at: datetime = Field(sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error: str | None = Field(default=None, max_length=200)
