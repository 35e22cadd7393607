"""Messages a worker has queued and not yet sent for good (bot/telegram/outbox.py).

A row lives from shortly after a fire-and-forget message is queued until it is sent or refused for
good; a worker that dies leaves its rows to whoever takes them over (`owner`, its name).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, Text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow

# SQLite numbers rows itself only for an INTEGER primary key; PostgreSQL's may outgrow 32 bits.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_owner", "owner"),)

    id: int | None = Field(default=None, sa_column=Column(ROW_ID, primary_key=True))
    owner: str = Field(max_length=200)
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The Bot API method's class name in aiogram.methods, and its JSON.
    method: str = Field(max_length=64)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
