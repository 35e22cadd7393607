"""Selling: products, their posts in the group, orders, coupons and coupon redemptions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class ProductStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class Product(SQLModel, table=True):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("community_id", "number", name="uq_product_number"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id", index=True)
    # The number members type after /buy; counts up per community and is never reused.
    number: int
    title: str = Field(max_length=64)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    price: int  # minor units of the community's currency
    # Units still available to order; None means unlimited.
    stock: int | None = Field(default=None)
    # Units in orders that are not cancelled.
    sold: int = Field(default=0)
    per_member_limit: int | None = Field(default=None)
    photo_file_id: str | None = Field(default=None, max_length=255)
    status: str = Field(default=ProductStatus.ACTIVE, max_length=16, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PostStatus(StrEnum):
    SCHEDULED = "scheduled"
    POSTING = "posting"  # claimed by one worker; never sent twice
    POSTED = "posted"
    MISSED = "missed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class ProductPost(SQLModel, table=True):
    __tablename__ = "product_posts"

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id", index=True)
    product_id: int = Field(foreign_key="products.id", index=True)
    status: str = Field(default=PostStatus.SCHEDULED, max_length=16, index=True)
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    # A post found late by more than this is reported as missed instead of going out.
    grace_minutes: int = Field(default=60)
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    message_id: int | None = Field(default=None)
    with_photo: bool = Field(default=False)
    posted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # What the card shows now, so an edit is only sent when the content really changed.
    rendered: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Set when the card may be stale (stock changed); the card updater clears it.
    refresh_due: bool = Field(default=False, index=True)
    created_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    FULFILLED = "fulfilled"
    PICKED_UP = "picked_up"
    AWAITING_GROUP = "awaiting_group"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    REFUND_DUE = "refund_due"
    REFUNDED = "refunded"


class PaymentMethod(StrEnum):
    PROVIDER = "provider"
    STARS = "stars"
    PICKUP = "pickup"


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    # Statistics read one community's orders in a range of days.
    __table_args__ = (Index("ix_orders_community_created", "community_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id", index=True)
    product_id: int = Field(foreign_key="products.id", index=True)
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False, index=True))
    quantity: int
    unit_price: int
    discount: int = Field(default=0)
    total: int
    currency: str = Field(max_length=3)
    # Amount in Telegram Stars when paid in XTR.
    stars_total: int | None = Field(default=None)
    status: str = Field(default=OrderStatus.PENDING_PAYMENT, max_length=16, index=True)
    payment_method: str = Field(default=PaymentMethod.PICKUP, max_length=16)
    pickup_point_id: int | None = Field(default=None, foreign_key="pickup_points.id")
    delivery_address: str | None = Field(default=None, max_length=300)
    coupon_id: int | None = Field(default=None, foreign_key="coupons.id")
    # One checkout, one order: a double tap or a redelivered Confirm carries the same key.
    checkout_key: str = Field(max_length=64, unique=True)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    telegram_charge_id: str | None = Field(default=None, max_length=255, unique=True)
    provider_charge_id: str | None = Field(default=None, max_length=255)
    cancel_reason: str | None = Field(default=None, max_length=32)
    # A part in a group-buy: the campaign, the team (team campaigns) and who shared the link.
    group_buy_id: int | None = Field(default=None, foreign_key="group_buys.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="group_buy_teams.id", index=True)
    invited_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # Paid above the final group price and given back as a coupon (minor units), and that coupon.
    credit: int = Field(default=0)
    credit_coupon_id: int | None = Field(default=None, foreign_key="coupons.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    fulfilled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    picked_up_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CouponKind(StrEnum):
    FIXED = "fixed"
    PERCENT = "percent"


class Coupon(SQLModel, table=True):
    __tablename__ = "coupons"
    __table_args__ = (UniqueConstraint("community_id", "code", name="uq_coupon_code"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id", index=True)
    code: str = Field(max_length=32)
    # None: any member of the community may use it.
    owner_id: int | None = Field(default=None, sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=True, index=True))
    kind: str = Field(max_length=8)
    # Minor units for a fixed coupon, whole percent for a percent coupon.
    value: int
    cap: int | None = Field(default=None)  # the most a percent coupon takes off, minor units
    min_spend: int = Field(default=0)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Single use: one redemption in all. Otherwise each member may use it once.
    single_use: bool = Field(default=True)
    uses: int = Field(default=0)
    source: str = Field(default="manual", max_length=16)
    created_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CouponRedemption(SQLModel, table=True):
    __tablename__ = "coupon_redemptions"
    __table_args__ = (UniqueConstraint("coupon_id", "user_id", name="uq_coupon_redemption_user"),)

    id: int | None = Field(default=None, primary_key=True)
    coupon_id: int = Field(foreign_key="coupons.id", index=True)
    order_id: int = Field(foreign_key="orders.id", unique=True)
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id"), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
