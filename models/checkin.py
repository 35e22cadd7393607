"""Daily check-ins: one row per member and community-local day."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class CheckInKind(StrEnum):
    CHECKIN = "checkin"  # the member checked in that day
    MAKEUP = "makeup"  # a missed day bought back later with points (补签)
    FREEZE = "freeze"  # a missed day a streak freeze covered: keeps the streak, adds nothing to it


class CheckIn(SQLModel, table=True):
    __tablename__ = "checkins"
    __table_args__ = (
        UniqueConstraint("community_id", "user_id", "day", name="uq_checkin_day"),
        # Today's count and the card: every check-in of one community on one day.
        Index("ix_checkins_community_day", "community_id", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False))
    # The community-local calendar day this row covers.
    day: date
    kind: str = Field(default=CheckInKind.CHECKIN, max_length=8)
    # Length of the streak ending on this day; recomputed when a make-up joins two streaks.
    streak: int = Field(default=1)
    # Points this day earned when it was recorded; never rewritten (a new curve is for new days).
    points: int = Field(default=0)
    # When the member acted (the update's own date, or when a button press arrived), UTC.
    at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
