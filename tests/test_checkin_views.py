"""What the check-ins show, within Telegram's limits whatever the numbers and names: a toast at most
200 characters in every language, a digest at most one message (the rest wait for the next), and
every name escaped."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from bot.core.i18n import get_i18n
from bot.core.locales import LOCALES
from bot.services.checkin_cards import Line
from bot.services.checkin_settings import CouponTerms
from bot.services.checkins import CheckInResult, CheckInStatus, MilestoneGrant, NextMilestone
from bot.views.cards import TEXT_LIMIT, visible_length
from bot.views.checkin_card import digest
from bot.views.checkin_text import TOAST_LIMIT, toast_text
from models import Community, Coupon, CouponKind, User
from models.checkin_card import CheckinNotice

DAY = date(2026, 11, 1)
AT = datetime(2026, 11, 1, 1, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def catalogs() -> None:
    get_i18n()


def community() -> Community:
    return Community(id=1, chat_id=-100, title="Green Valley", currency="CNY", timezone="Asia/Shanghai")


def coupon(code: str) -> Coupon:
    return Coupon(id=1, community_id=1, code=code, kind=CouponKind.PERCENT, value=15, cap=99_999_999,
                  min_spend=99_999_999, created_at=AT)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_fullest_toast_fits_in_200_characters(locale: str) -> None:
    huge = 2_000_000_000
    result = CheckInResult(
        CheckInStatus.DONE, DAY, huge, 3650, 3650, huge, 2,
        NextMilestone(3651, 1, 0, CouponTerms(kind=CouponKind.PERCENT, value=100, cap=huge, min_spend=huge)),
        (MilestoneGrant(3000, DAY, 1_000_000, None), MilestoneGrant(3650, DAY, 0, coupon("X" * 32))),
        freeze_used=True, freezes_earned=1)
    text = toast_text(result, community(), locale)
    assert visible_length(text) <= TOAST_LIMIT
    assert text.splitlines()[0].startswith("✅")


def line(n: int, name: str) -> Line:
    notice = CheckinNotice(id=n, community_id=1, user_id=n, day=DAY, status=CheckInStatus.DONE, points=12, streak=5,
                           created_at=AT)
    return Line(notice, User(id=n, first_name=name))


@pytest.mark.parametrize("locale", LOCALES)
def test_a_digest_holds_what_fits_in_one_message_and_leaves_the_rest(locale: str) -> None:
    lines = [line(n, "W" * 200 + f"<{n}>") for n in range(120)]
    text, markup, shown = digest(lines, locale, "community_bot")
    assert visible_length(text) <= TEXT_LIMIT
    assert 40 <= len(shown) < 120 and shown == lines[:len(shown)]
    assert "W" * 31 + "… ✅ +12 · 🔥5" in text  # long names are cut
    assert markup.inline_keyboard[0][0].url == "https://t.me/community_bot?start=checkin"


def test_names_are_escaped_and_erased_members_stay_nameless() -> None:
    erased = User(id=2, first_name="", erased=True)
    text, _markup, shown = digest([line(1, "<i>Sly</i> & co"), Line(line(2, "x").notice, erased)], "en", "b")
    assert "&lt;i&gt;Sly&lt;/i&gt; &amp; co ✅ +12 · 🔥5" in text
    assert "A member ✅ +12 · 🔥5" in text and len(shown) == 2
