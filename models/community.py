"""Communities (one per Telegram group) and their pickup points."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow

# The administrator rights the features rely on; onboarding reports any that are missing.
REQUIRED_RIGHTS = ("can_invite_users", "can_delete_messages", "can_pin_messages")
# bot_status of a community started from group chatter before any my_chat_member told us the
# bot's real status: the first my_chat_member then counts as the bot being added.
BOT_STATUS_UNKNOWN = "unknown"


class Community(SQLModel, table=True):
    __tablename__ = "communities"

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_column=Column(BigInteger, unique=True, nullable=False))
    title: str = Field(default="", max_length=255)
    timezone: str = Field(default="UTC", max_length=64)
    currency: str = Field(default="USD", max_length=3)
    default_locale: str = Field(default="en", max_length=16)
    active: bool = Field(default=True)
    # The bot's own status in the group ("member", "administrator", "left", "kicked") and rights.
    bot_status: str = Field(default="member", max_length=16)
    bot_rights: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Later features keep their per-community options here, keyed by feature.
    settings: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    leaders_refreshed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def missing_rights(self) -> list[str]:
        if self.bot_status != "administrator":
            return list(REQUIRED_RIGHTS)
        return [r for r in REQUIRED_RIGHTS if not self.bot_rights.get(r)]


class PickupPoint(SQLModel, table=True):
    __tablename__ = "pickup_points"
    __table_args__ = (UniqueConstraint("community_id", "name", name="uq_pickup_point_name"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id", index=True)
    name: str = Field(max_length=64)
    # Removed points stay for the orders that name them; they leave every menu.
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
