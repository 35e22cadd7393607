"""Points: the append-only ledger, each member's cached account, and the rewards catalogue."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class PointsReason(StrEnum):
    CHECKIN = "checkin"
    MILESTONE = "milestone"
    MAKEUP = "makeup"
    PURCHASE = "purchase"
    PURCHASE_REVERSAL = "purchase_reversal"
    INVITE = "invite"
    ADJUST = "adjust"
    REDEEM = "redeem"
    EXPIRY = "expiry"


class PointsEntry(SQLModel, table=True):
    """One movement of a member's points. Rows are only ever added: the ledger is the truth and
    the balance is its sum. (reason, reference) names the event, so recording it twice is a no-op."""

    __tablename__ = "points_entries"
    __table_args__ = (
        UniqueConstraint("community_id", "user_id", "reason", "reference", name="uq_points_entry"),
        # Points earned this month, expiry sweeps: one community's entries by time.
        Index("ix_points_entries_community_created", "community_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False))
    delta: int
    reason: str = Field(max_length=24)
    # The event's key within its reason: a local day ("2026-12-06"), "order:123", "coupon:45".
    reference: str = Field(max_length=64)
    # A leader's reason for a manual adjustment, or why an amount was clamped.
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # A coupon this entry paid for (a redeem) or granted (a milestone).
    coupon_id: int | None = Field(default=None, foreign_key="coupons.id")
    created_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PointsAccount(SQLModel, table=True):
    """A member's cached state in one community, kept in step with the ledger and the check-ins in
    the same transactions. Every change to a member's points or streak locks this row first (an
    UPDATE of it), so concurrent redeems and check-ins of one member queue here."""

    __tablename__ = "points_accounts"
    __table_args__ = (UniqueConstraint("community_id", "user_id", name="uq_points_account"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False))
    balance: int = Field(default=0)
    # The streak ending on `last_day` (whether it is still alive depends on today).
    streak: int = Field(default=0)
    best_streak: int = Field(default=0)
    last_day: date | None = Field(default=None)
    freezes: int = Field(default=0)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PointsReward(SQLModel, table=True):
    """A reward leaders offer for points: redeeming one issues a coupon made from these terms."""

    __tablename__ = "points_rewards"

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id", index=True)
    title: str = Field(max_length=64)
    cost: int  # points
    kind: str = Field(max_length=8)  # a CouponKind
    value: int  # minor units (fixed) or whole percent
    cap: int | None = Field(default=None)
    min_spend: int = Field(default=0)
    # The coupon is valid until the end of the community-local day this many days after the
    # redeem; None: it never expires.
    valid_days: int | None = Field(default=None)
    created_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Soft delete: a redeem that loaded the reward before the leader deleted it is refused clearly.
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
