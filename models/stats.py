"""Counters for the leaders' statistics that no other table holds, written in the activity
tracker's batches (bot/services/activity.py), never one statement per message or press."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class FunnelStep(StrEnum):
    """The steps of the sales funnel that leave no row of their own (posts and orders do)."""

    BUY_PRESSED = "buy_pressed"  # a product card's Buy button, or /buy <number>
    CHECKOUT_STARTED = "checkout_started"  # the private checkout opened for a product


class FunnelDay(SQLModel, table=True):
    __tablename__ = "funnel_days"
    __table_args__ = (UniqueConstraint("community_id", "day", "product_id", "step", name="uq_funnel_day"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    product_id: int = Field(foreign_key="products.id")
    day: date  # community-local
    step: str = Field(max_length=16)
    count: int = Field(default=0)


class CommunityHour(SQLModel, table=True):
    """A community's activity per community-local hour: the weekday x hour heat map."""

    __tablename__ = "community_hours"
    __table_args__ = (UniqueConstraint("community_id", "day", "hour", name="uq_community_hour"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="communities.id")
    day: date  # community-local
    hour: int  # 0-23, community-local
    messages: int = Field(default=0)
    orders: int = Field(default=0)
