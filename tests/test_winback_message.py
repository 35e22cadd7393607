"""A member's win-back message is in their language, whether the bot knows their own choice or only
Telegram's language code (zh-hans, en-US), and in the community's when it knows neither."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.services.campaign_config import WinbackConfig
from bot.services.campaigns import Outgoing
from bot.views.winback_text import message
from models import Community

EXPIRES = datetime(2027, 1, 17, 15, 59, tzinfo=timezone.utc)


def community(default_locale: str = "en") -> Community:
    return Community(id=1, chat_id=-1001, title="Green Valley", timezone="Asia/Shanghai", currency="CNY",
                     default_locale=default_locale)


def offer(locale: str | None) -> Outgoing:
    return Outgoing(send_id=1, user_id=7, name="Bob", locale=locale, coupon_code="WBABCDEFGH", expires_at=EXPIRES,
                    product="Honey")


@pytest.mark.parametrize(("locale", "greeting"), [
    ("zh_Hans", "Bob"), ("zh-hans", "Bob"), ("zh-CN", "Bob"), ("en-US", "Hi Bob"), ("en", "Hi Bob"),
])
def test_the_message_follows_the_members_language_code(locale: str, greeting: str) -> None:
    text, markup = message(offer(locale), community(), WinbackConfig(), "en")
    chinese = locale.lower().startswith("zh")
    assert greeting in text and "WBABCDEFGH" in text and "2027-01-17" in text
    assert ("Hi Bob" not in text) is chinese
    assert (markup.inline_keyboard[0][0].text != "Stop offers") is chinese


def test_without_a_known_language_the_communitys_is_used() -> None:
    text, _markup = message(offer("fr"), community("zh_Hans"), WinbackConfig(), "en")
    assert "Hi Bob" not in text and "WBABCDEFGH" in text
