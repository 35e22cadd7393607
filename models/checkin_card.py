"""What the check-in feature keeps about its messages in a group: the daily card, the results owed
to members the bot cannot write to in private (sent together as a digest), and each group's last
leaderboard and digest, which bound how often the group hears from the feature."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class CheckinCard(SQLModel, table=True):
    """One community's check-in card for one community-local day. The row is claimed before the card
    is sent, so the card job never posts a day's card twice."""

    __tablename__ = "checkin_cards"
    __table_args__ = (UniqueConstraint("community_id", "day", name="uq_checkin_card_day"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    day: date
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    # None until Telegram accepted the card.
    message_id: int | None = Field(default=None)
    # What the card shows (bot.views.cards.fingerprint), so a redraw that changes nothing sends nothing.
    rendered: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # A check-in changed what the card would show; the refresh job claims it.
    refresh_due: bool = Field(default=False)
    # When the card was last sent or edited: edits are spaced to spare the group's budget.
    edited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    pinned: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CheckinNotice(SQLModel, table=True):
    """A /checkin typed in the group by someone the bot cannot reach in private: their result waits
    here for the group's next digest. One per member and day, so repeating the command adds nothing."""

    __tablename__ = "checkin_notices"
    __table_args__ = (
        UniqueConstraint("community_id", "user_id", "day", name="uq_checkin_notice_day"),
        # The digest job: a community's results not sent yet, oldest first.
        Index("ix_checkin_notices_pending", "community_id", "sent_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False))
    day: date
    status: str = Field(max_length=12)  # a CheckInStatus
    points: int = Field(default=0)
    bonus: int = Field(default=0)  # milestone points this check-in gave
    coupon: bool = Field(default=False)  # a milestone gave a coupon (its code stays private)
    streak: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CheckinChat(SQLModel, table=True):
    """When the group last got a leaderboard, a digest and a pointer to the private chat: each is
    sent at most once per interval, whatever the number of people asking (a conditional UPDATE)."""

    __tablename__ = "checkin_chats"

    community_id: int = Field(sa_column=Column(Integer, ForeignKey("communities.id"), primary_key=True,
                                               autoincrement=False))
    top_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    digest_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    hint_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
