"""Group-buys: a campaign on one product (team or community threshold) and its teams.

A member's part in a group-buy is an ordinary order carrying the campaign (and the team); the
counters here (`GroupBuy.units`, `GroupBuyTeam.seats`) are what the conditional UPDATEs race on,
so no team ever takes more than its size.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class GroupBuyKind(StrEnum):
    TEAM = "team"
    THRESHOLD = "threshold"


class GroupBuyStatus(StrEnum):
    DRAFT = "draft"
    LIVE = "live"
    # Team campaigns: no new teams (window over or ended by the leader); open teams run to their deadline.
    ENDED = "ended"
    # Threshold campaigns, at the cut-off (or ended early by the leader: failed).
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class TeamStatus(StrEnum):
    OPEN = "open"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class GroupBuy(SQLModel, table=True):
    __tablename__ = "group_buys"
    __table_args__ = (Index("ix_group_buys_status_ends_at", "status", "ends_at"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id", index=True)
    product_id: int = Field(foreign_key="products.id", index=True)
    kind: str = Field(max_length=16)
    status: str = Field(default=GroupBuyStatus.DRAFT, max_length=16)
    # Team: the team price. Threshold: what a member pays on joining, the price once `min_units` is reached.
    price: int
    # Team campaigns.
    team_size: int | None = Field(default=None)
    team_minutes: int | None = Field(default=None)
    open_limit: int = Field(default=1)  # teams one member may open
    join_limit: int = Field(default=1)  # teams one member may join that others opened
    solo_allowed: bool = Field(default=True)  # buying alone at the normal price stays possible
    # Threshold campaigns.
    min_units: int | None = Field(default=None)
    # JSON list of [min total units, unit price], ascending units, falling prices.
    tiers: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    member_limit: int | None = Field(default=None)  # units per member
    # Units held by the campaign's orders that are not cancelled (threshold).
    units: int = Field(default=0)
    starts_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Team: the end of the window for opening teams. Threshold: the cut-off.
    ends_at: datetime = Field(sa_type=UTCDateTime)
    final_price: int | None = Field(default=None)
    # Threshold: set at the cut-off. Team: set once the window is over and its last team closed.
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    close_reason: str | None = Field(default=None, max_length=32)
    # Set by the closing transaction; cleared by whoever claims the announcements (exactly once).
    announce_due: bool = Field(default=False, index=True)
    # The card in the group.
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    message_id: int | None = Field(default=None)
    rendered: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    refresh_due: bool = Field(default=False, index=True)
    created_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class GroupBuyTeam(SQLModel, table=True):
    __tablename__ = "group_buy_teams"
    __table_args__ = (
        UniqueConstraint("group_buy_id", "number", name="uq_team_number"),
        Index("ix_group_buy_teams_status_deadline", "status", "deadline_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_buy_id: int = Field(foreign_key="group_buys.id", index=True)
    community_id: int = Field(foreign_key="communities.id", index=True)
    number: int  # per campaign: "team 3"
    opener_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Terms as they were when the team opened: later edits of the campaign do not change them.
    size: int
    price: int
    seats: int = Field(default=0)  # seats held by orders that are not cancelled
    status: str = Field(default=TeamStatus.OPEN, max_length=16)
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deadline_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    close_reason: str | None = Field(default=None, max_length=32)
    announce_due: bool = Field(default=False, index=True)
