"""Telegram users as the bot knows them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    first_name: str = Field(default="", max_length=128)
    last_name: str | None = Field(default=None, max_length=128)
    username: str | None = Field(default=None, max_length=64)
    # Telegram's language_code as last seen; `locale` is the user's own choice through /lang.
    language_code: str | None = Field(default=None, max_length=16)
    locale: str | None = Field(default=None, max_length=16)
    # True once the user has started the bot in private chat and not blocked it since.
    can_dm: bool = Field(default=False)
    marketing_opt_out: bool = Field(default=False)
    # `erased`: the profile is erased and the user has not written since. `erased_at` stays when
    # they come back: what was recorded until then (orders, teams, coupons) never shows a name again.
    erased: bool = Field(default=False)
    erased_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or (f"@{self.username}" if self.username else str(self.id))

    def hidden_at(self, moment: datetime) -> bool:
        """Whether a record made at `moment` must not name this user: it belongs to a profile
        that was erased since, whoever writes from this account now."""
        return self.erased or (self.erased_at is not None and moment <= self.erased_at)
