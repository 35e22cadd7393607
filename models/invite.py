"""Invitations: members' invite links and deep-link codes, inviters named before a join, and one
referral per person and community saying how they came and what became of the invite."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class Via(StrEnum):
    """How someone came into a community."""

    MEMBER_LINK = "member_link"  # a member's own invite link, made by the bot
    JOIN_REQUEST = "join_request"  # a request through a member's link, approved by the bot
    DEEP_LINK = "deep_link"  # `/start inv-<code>` first, then the group by any link that names nobody
    PRIMARY_LINK = "primary_link"  # the group's primary link
    ADMIN_LINK = "admin_link"  # a link some administrator made, not the bot
    ADDED_BY_ADMIN = "added_by_admin"
    GROUP_BUY_LINK = "group_buy_link"  # a group-buy "join my team" link brought them
    UNKNOWN = "unknown"  # no link in the update (a public group's Join button, a rejoin)


class ReferralState(StrEnum):
    PENDING = "pending"  # waiting to qualify
    QUALIFIED = "qualified"  # qualified, nobody to reward (no inviter, or no reward was due)
    REWARDED = "rewarded"  # qualified and its inviter(s) rewarded
    LEFT = "left"  # left before qualifying: never rewarded
    FLAGGED = "flagged"  # held for a leader's review
    REJECTED = "rejected"  # a leader rejected it


class ReferralFlag(StrEnum):
    SELF_INVITE = "self_invite"
    REJOIN = "rejoin"
    BOT = "bot"
    LEFT_WITHIN_72H = "left_within_72h"
    BURST = "burst"
    HIGH_LEAVE_RATE = "high_leave_rate"


class InviteLink(SQLModel, table=True):
    """A member's invite link into a community, as createChatInviteLink made it. Revoked links stay
    (referrals name them); at most one live link per member, community and kind."""

    __tablename__ = "invite_links"
    __table_args__ = (
        Index("uq_invite_link_live", "community_id", "owner_id", "creates_join_request", unique=True,
              sqlite_where=text("revoked_at IS NULL"), postgresql_where=text("revoked_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    owner_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False, index=True))
    url: str = Field(max_length=255, unique=True)
    name: str = Field(max_length=32)
    creates_join_request: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InviteCode(SQLModel, table=True):
    """A member's short code for the deep link `/start inv-<code>`, one per member and community."""

    __tablename__ = "invite_codes"
    __table_args__ = (UniqueConstraint("community_id", "user_id", name="uq_invite_code_member"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False))
    code: str = Field(max_length=16, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class InviteIntent(SQLModel, table=True):
    """An inviter named before the join (a deep link, a group-buy link): the join is credited to
    them when its own link names nobody."""

    __tablename__ = "invite_intents"
    __table_args__ = (UniqueConstraint("community_id", "user_id", name="uq_invite_intent"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False))
    inviter_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False, index=True))
    via: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Referral(SQLModel, table=True):
    """How one person came into one community, once: the first attribution wins."""

    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("community_id", "invitee_id", name="uq_referral"),
        # Bursts: joins through one link in a window.
        Index("ix_referrals_link_joined", "link_id", "joined_at"),
        # Counts, leaderboards, downlines and leave rates per inviter.
        Index("ix_referrals_inviter", "community_id", "inviter_id", "state"),
        # The qualification job walks one community's pending referrals in id order.
        Index("ix_referrals_state", "community_id", "state", "id"),
        # Second-level rewards per member (their "bonus" invites).
        Index("ix_referrals_bonus", "community_id", "bonus_to"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    invitee_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False))
    # None: the join named nobody (primary or admin link, added by an admin, no link), or the
    # inviter erased their data since.
    inviter_id: int | None = Field(default=None, sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=True))
    via: str = Field(max_length=16)
    link_id: int | None = Field(default=None, foreign_key="invite_links.id")
    # The invitee's place in the chain: 1 invited by someone nobody invited, 2 one further; 0 no inviter.
    depth: int = Field(default=0)
    state: str = Field(default=ReferralState.PENDING, max_length=12)
    flags: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Who got the second-level reward (the inviter's inviter), when one was given.
    bonus_to: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    joined_at: datetime = Field(sa_type=UTCDateTime)
    qualified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    rewarded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    left_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reviewed_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
