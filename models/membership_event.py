"""Joins and leaves, one row each, with how the person came: growth by day and source."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, Index
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class MembershipChange(StrEnum):
    JOIN = "join"
    LEAVE = "leave"  # left, or was removed


class MembershipEvent(SQLModel, table=True):
    __tablename__ = "membership_events"
    __table_args__ = (
        # Growth reads one community's events in a range of days.
        Index("ix_membership_events_community_at", "community_id", "at"),
        # A person's latest change (a redelivered update adds nothing) and first join (retention).
        Index("ix_membership_events_person", "community_id", "user_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False))
    change: str = Field(max_length=8)
    # A join's source (models.invite.Via); a leave's "left" or "kicked".
    via: str = Field(max_length=16)
    at: datetime = Field(sa_type=UTCDateTime)
