"""What leaders type into the check-in and points forms: each refusal names what was wrong and the range."""

from __future__ import annotations

import pytest

from bot.services import points
from bot.services.checkin_settings import (
    CheckinSettings,
    CouponTerms,
    parse_milestone_day,
    parse_milestones,
    parse_option_or_off,
    parse_quiet_hours,
    with_coupon_milestone,
    with_point_milestones,
)
from bot.services.errors import DomainError
from models import CouponKind

COUPON = CouponTerms(kind=CouponKind.FIXED, value=500)


def refusal(call, *args) -> tuple[str, dict]:
    with pytest.raises(DomainError) as exc:
        call(*args)
    return exc.value.code, exc.value.params


def test_milestones_name_the_bad_day_or_points_and_the_range() -> None:
    assert parse_milestones("7:20，30=100") == {7: 20, 30: 100}
    assert parse_milestones("off") == {}
    assert refusal(parse_milestones, "1:5") == ("checkin_milestone_day", {"value": 1, "min": 2, "max": 3650})
    assert refusal(parse_milestones, "7:0") == ("checkin_milestone_points", {"value": 0, "min": 1, "max": 1_000_000})
    assert refusal(parse_milestones, ", ".join(f"{d}:1" for d in range(2, 23))) == ("checkin_milestones_too_many", {"max": 20})
    assert refusal(parse_milestone_day, "x") == ("checkin_milestone_day", {"value": "x", "min": 2, "max": 3650})
    assert parse_milestone_day(" 14 ") == 14


def test_typed_point_milestones_keep_coupon_milestones_unless_they_take_the_day() -> None:
    current = CheckinSettings(milestones={7: 20, 14: COUPON, 30: COUPON})
    assert with_point_milestones(current, {7: 25, 30: 90}) == {7: 25, 14: COUPON, 30: 90}
    assert with_point_milestones(current, {}) == {14: COUPON, 30: COUPON}
    assert with_coupon_milestone(current, 7, COUPON) == {7: COUPON, 14: COUPON, 30: COUPON}
    full = CheckinSettings(milestones={d: 1 for d in range(2, 22)})
    assert refusal(with_coupon_milestone, full, 40, COUPON) == ("checkin_milestones_too_many", {"max": 20})


def test_quiet_hours_and_options_that_switch_off() -> None:
    assert parse_quiet_hours("22:00-8:00") == ("22:00", "08:00")
    assert parse_quiet_hours("23:30 至 07:00") == ("23:30", "07:00")
    assert parse_quiet_hours("off") == (None, None)
    assert refusal(parse_quiet_hours, "22:00") == ("checkin_quiet_hours_format", {"value": "22:00"})
    assert refusal(parse_quiet_hours, "22:00-25:00") == ("checkin_setting_time", {"value": "25:00"})
    assert refusal(parse_quiet_hours, "8:00-08:00") == ("checkin_quiet_hours_same", {})
    assert parse_option_or_off("reminder_hour", "off") is None
    assert parse_option_or_off("points_expiry_months", "off") == 0
    assert refusal(parse_option_or_off, "reminder_hour", "24") == ("checkin_setting_number", {"value": "24", "min": 0, "max": 23})


def test_adjustment_amounts_and_reasons() -> None:
    assert [points.parse_delta(raw) for raw in ("+50", "-20", "50", "－5", "- 3")] == [50, -20, 50, -5, -3]
    assert refusal(points.parse_delta, "+-5") == ("points_adjust_format", {"value": "+-5"})
    assert refusal(points.parse_delta, "0") == ("points_adjust_zero", {})
    assert refusal(points.parse_delta, "2000000") == ("points_adjust_too_large", {"max": 1_000_000})
    assert points.check_note("  wrong   order ") == "wrong order"
    assert refusal(points.check_note, "   ") == ("points_note_required", {})
    assert refusal(points.check_note, "x" * 201) == ("points_note_too_long", {"max": 200})
