"""Marks that a scheduled job already did a once-only thing (a daily summary for one day, say)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class JobMark(SQLModel, table=True):
    __tablename__ = "job_marks"
    __table_args__ = (UniqueConstraint("job", "key", name="uq_job_mark"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=64)
    key: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
