"""The members' check-in and points buttons (the leaders' are in bot/views/keyboards.py).

Callback data comes from the client: handlers re-read every community, day and reward, and check
that the member belongs to the community.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class CheckinPress(CallbackData, prefix="ckc"):
    """✅ Check in on a group's daily card."""

    community_id: int


class CheckinPick(CallbackData, prefix="ckp"):
    """Check in, in private, at this community (the picker of private /checkin, a reminder)."""

    community_id: int


class MakeUpAction(StrEnum):
    LIST = "l"  # the missed days
    PICK = "p"  # one day: what it costs
    CONFIRM = "y"


class MakeUp(CallbackData, prefix="ckm"):
    action: MakeUpAction
    community_id: int
    day: int = 0  # yyyymmdd


class PointsAction(StrEnum):
    SHOW = "s"  # a community's balance, recent entries and rewards
    REWARD = "r"  # one reward: confirm the redeem
    REDEEM = "y"


class PointsNav(CallbackData, prefix="ckr"):
    action: PointsAction
    community_id: int
    reward_id: int = 0
    cost: int = 0  # the cost the member was shown: a changed price is refused, not charged
    nonce: int = 0  # names one confirmation screen: its double tap redeems once


def day_code(day: date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


def code_day(code: int) -> date | None:
    """The day a button names, or None for data no button of ours carries."""
    try:
        return date(code // 10_000, code // 100 % 100, code % 100)
    except ValueError:
        return None
