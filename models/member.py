"""A user's membership of a community."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class MemberStatus(StrEnum):
    MEMBER = "member"
    LEFT = "left"
    KICKED = "kicked"


class Member(SQLModel, table=True):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("community_id", "user_id", name="uq_member"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id", index=True)
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False, index=True))
    status: str = Field(default=MemberStatus.MEMBER, max_length=16)
    # Creator or administrator as Telegram last reported it.
    is_leader: bool = Field(default=False)
    joined_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    left_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_active_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    message_count: int = Field(default=0)
    # The member's rhythm in community-local days (activity_days kept short): churn risk reads these
    # three, not a year of day rows. Kept by the activity flusher.
    first_active_on: date | None = Field(default=None)
    last_active_on: date | None = Field(default=None)
    active_days: int = Field(default=0)
    invited_by: int | None = Field(default=None, sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=True))
    invite_depth: int = Field(default=0)
