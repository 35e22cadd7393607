"""The members' invite screens in words (bot.views.invite_member): what a qualified invite earns for
each requirement and level, the counts, the link screens and their share button, a friend's deep
link answered by status, the leaderboard (escaped names, erased people unnamed), in en and zh_Hans."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from bot.services.checkin_settings import CouponTerms
from bot.services.invite_settings import InviteSettings, LevelReward, Requirement
from bot.services.invite_stats import InviteCounts, InviterStanding
from bot.services.invites import IntentStatus
from bot.views import invite_member as views
from models import Community, CouponKind, User

GROUP = Community(id=7, chat_id=-100, title="Tea & <Cake>", currency="CNY")
COUNTS = InviteCounts(regular=3, left=1, fake=2, bonus=1, pending=4)
URL, DEEP = "https://t.me/+AbC_12-x", "https://t.me/shop_bot?start=inv-7KQ2MX9A"


def settings(**changes: object) -> InviteSettings:
    return InviteSettings.model_validate(changes)


@pytest.mark.parametrize(("require", "words"), [
    (Requirement.NONE, "joins through your link and stays 5 day(s), you get +10 points."),
    (Requirement.MESSAGE, "stays 5 day(s) and writes in the group, you get +10 points."),
    (Requirement.PAID_ORDER, "stays 5 day(s) and pays for an order, you get +10 points."),
])
def test_what_an_invite_earns_follows_the_requirement(require: Requirement, words: str) -> None:
    [line] = views.earnings_lines(settings(qualify_days=5, require=require), "CNY", "en")
    assert line.startswith("🎁 For each friend who ") and line.endswith(words)


def test_level_two_coupons_and_no_reward_at_all_are_said() -> None:
    coupon = CouponTerms(kind=CouponKind.FIXED, value=500, min_spend=0)
    both = settings(level1=LevelReward(points=10, coupon=coupon), level2=LevelReward(points=3))
    assert views.earnings_lines(both, "CNY", "en") == [
        "🎁 For each friend who joins through your link and stays 3 day(s), you get +10 points and a coupon, "
        "CN¥5.00 off, no minimum spend.",
        "➕ When a friend you invited brings someone who counts too, you get +3 points.",
    ]
    only_coupon = settings(level1=LevelReward(points=0, coupon=coupon))
    assert views.earnings_lines(only_coupon, "CNY", "en")[0].endswith(
        "you get a coupon, CN¥5.00 off, no minimum spend.")
    nothing = settings(level1=LevelReward(points=0))
    assert views.earnings_lines(nothing, "CNY", "en") == [
        "Invites are counted here, but the leaders give no reward for them at the moment."]


def test_the_link_screen_escapes_the_title_and_shares_the_link() -> None:
    text, markup = views.link_screen(GROUP, url=URL, deep_link=DEEP, approve_joins=True, counts=COUNTS,
                                     settings=settings(), locale="en")
    lines = text.splitlines()
    assert lines[0] == "<b>🤝 Invite friends to Tea &amp; &lt;Cake&gt;</b>"
    assert URL in lines and DEEP in lines
    assert "People who open it ask to join, and I let them in." in lines
    assert lines[-1] == ("📊 Your invites: ✅ 3 regular · ⏳ 4 pending · 🚪 1 left · ⚠️ 2 held or rejected · "
                         "🎁 1 bonus")
    [[button]] = markup.inline_keyboard
    shared = parse_qs(urlsplit(button.url).query)
    assert shared == {"url": [URL], "text": ["Join us in Tea & <Cake>!"]}
    zh, _markup = views.link_screen(GROUP, url=URL, deep_link=DEEP, approve_joins=False, counts=COUNTS,
                                    settings=settings(), locale="zh_Hans")
    assert "邀请好友加入" in zh and URL in zh and "有效 3" in zh


def test_without_the_right_the_deep_link_is_offered_and_shared() -> None:
    text, markup = views.right_missing_screen(GROUP, deep_link=DEEP, counts=COUNTS, settings=settings(), locale="en")
    assert "“Invite users via link”" in text and DEEP in text and "https://t.me/+" not in text
    assert parse_qs(urlsplit(markup.inline_keyboard[0][0].url).query)["url"] == [DEEP]


def test_a_friends_deep_link_is_answered_by_what_was_recorded() -> None:
    bob = User(id=1, first_name="Bob <3")
    recorded = views.intent_text(IntentStatus.RECORDED, GROUP, bob, URL, "en")
    assert recorded.splitlines()[0] == "<b>Bob &lt;3 invited you to Tea &amp; &lt;Cake&gt;</b>"
    assert "Join the group here:\n" + URL in recorded
    assert "Ask Bob &lt;3 to add you" in views.intent_text(IntentStatus.KEPT, GROUP, bob, None, "en")
    assert views.intent_text(IntentStatus.MEMBER, GROUP, bob, URL, "en").startswith("You are already in Tea &amp;")
    assert views.intent_text(IntentStatus.SELF, GROUP, None, None, "zh_Hans").startswith("这是你自己的邀请链接")


def test_the_leaderboard_ranks_and_leaves_erased_people_unnamed() -> None:
    standings = [InviterStanding(1, User(id=1, first_name="<Ann>"), 5),
                 InviterStanding(1, User(id=2, first_name="Bo"), 5),
                 InviterStanding(3, User(id=3, first_name="Gone", erased=True), 2)]
    text = views.top_text(GROUP, standings, settings(qualify_days=4), "en")
    assert text.splitlines() == ["<b>🤝 Tea &amp; &lt;Cake&gt; · top inviters</b>", "", "1. &lt;Ann&gt; · 5",
                                 "1. Bo · 5", "3. A member · 2", "",
                                 "<i>An invite counts once the friend has stayed 4 day(s).</i>"]
    empty = views.top_text(GROUP, [], settings(), "zh_Hans")
    assert "还没有有效邀请" in empty and "3 天" in empty
