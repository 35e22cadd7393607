"""Moments shown in a community's own clock. Stored times are UTC; people read their local time."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo


class HasTimezone(Protocol):
    timezone: str


def local_time(moment: datetime, where: HasTimezone | str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """`moment` on the wall clock of `where`: a community (or anything with a timezone), or an IANA name."""
    return moment.astimezone(ZoneInfo(where if isinstance(where, str) else where.timezone)).strftime(fmt)
