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
    erased: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or (f"@{self.username}" if self.username else str(self.id))
