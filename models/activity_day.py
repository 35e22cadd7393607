"""Activity by day: one row per member and community-local day they were active."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime


class ActivityDay(SQLModel, table=True):
    __tablename__ = "activity_days"
    __table_args__ = (
        UniqueConstraint("community_id", "user_id", "day", name="uq_activity_day"),
        # Active members, cohorts and churn read one community's days in a range; with the user
        # the distinct active members of a range are counted from the index alone.
        Index("ix_activity_days_community_day_user", "community_id", "day", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False))
    # The community-local calendar day, in the community's timezone when the activity was written.
    day: date
    # Group messages; a button press in the group makes the day active without adding one.
    messages: int = Field(default=0)
    checkins: int = Field(default=0)
    orders: int = Field(default=0)  # orders placed, whatever became of them
    first_at: datetime = Field(sa_type=UTCDateTime)
    last_at: datetime = Field(sa_type=UTCDateTime)
