"""/admin → Campaigns' words and picture, without Telegram: the settings screen, the dry run and the
results in both languages (a results caption fits Telegram's 1,024 characters), and the chart of
the two arms as a PNG drawn without a missing glyph."""

from __future__ import annotations

import io
import logging
import re
import warnings
from datetime import date, datetime, timedelta, timezone

import pytest
from PIL import Image

from bot.core.i18n import get_i18n
from bot.services.campaign_config import WinbackConfig
from bot.services.campaign_history import RunSummary
from bot.services.campaigns import ArmOutcome, DryRun, Outcome, Plan, Sample
from bot.services.churn import AtRisk, RiskScan
from bot.services.lift import lift
from bot.views.campaign_admin import dry_run_text, results_text, risk_bars
from bot.views.campaign_charts import HEIGHT_PX, WIDTH_PX, draw_arms
from handlers.admin.campaigns import campaign_view
from models import Campaign, Community
from models.campaign import Arm, RunStatus

NOW = datetime(2026, 12, 6, 13, 0, tzinfo=timezone.utc)  # 21:00 in Shanghai: quiet hours
CJK = re.compile(r"[\u4e00-\u9fff]")
LONG_NAME = "Win-back for everyone who loved our honey & <jam>, spring edition!"[:64]


def community() -> Community:
    return Community(id=1, chat_id=-1001, title="Green <Valley>", timezone="Asia/Shanghai", currency="CNY")


def member(user_id: int, risk: float, silent: int, gap: float, orders: int) -> AtRisk:
    return AtRisk(user_id=user_id, risk=risk, days_silent=silent, typical_gap=gap, active_days=12,
                  last_active_on=date(2026, 11, 12), orders=orders)


def dry() -> DryRun:
    chosen = [member(1, 0.97, 24, 9.4, 5), member(2, 0.95, 30, 12.0, 2), member(3, 0.91, 18, 8.0, 1)]
    scan = RiskScan(drifting=chosen, scanned=40, excluded_new=3, excluded_recent_buyers=4,
                    histogram=[10, 8, 5, 4, 3, 2, 2, 1, 2, 3], community_gap=7.0)
    plan = Plan(scan, [], {"unreachable": 2, "capped": 1})
    samples = [Sample(chosen[0], "Anna <A>", "Honey", Arm.TREATMENT), Sample(chosen[1], "Ben", None, Arm.HOLDOUT),
               Sample(chosen[2], "Cai", "Tea", Arm.TREATMENT)]
    return DryRun(plan, samples, quiet_now=True)


def measured(treatment: tuple[int, int], holdout: tuple[int, int]) -> Outcome:
    t, h = ArmOutcome(treatment[1], treatment[0], 123_456), ArmOutcome(holdout[1], holdout[0], 7_800)
    return Outcome(t, h, sent=treatment[1], redeemed=7, window_ends=NOW - timedelta(days=1),
                   lift=lift(treatment[0], treatment[1], holdout[0], holdout[1]), runs=[1])


@pytest.mark.parametrize("locale", ["en", "zh_Hans"])
def test_campaign_screen_says_every_setting_and_previews_the_message(locale):
    campaign = Campaign(id=5, community_id=1, name="Win-back <1>", enabled=False, owner_id=7,
                        config=WinbackConfig(message="Hi {name}, {coupon} for {product}!").model_dump(mode="json"))
    with get_i18n().use_locale(locale):
        text, markup = campaign_view(campaign, community(), locale)
    assert "Win-back &lt;1&gt;" in text
    assert bool(CJK.search(text)) == (locale == "zh_Hans")
    assert "21:00–09:00" in text and "Asia/Shanghai" in text
    assert "<blockquote>Hi " in text and "<code>WB7K2Q9XPR</code>" in text
    assert len(markup.inline_keyboard) == 9


@pytest.mark.parametrize("locale", ["en", "zh_Hans"])
def test_dry_run_counts_bands_samples_and_the_quiet_hours(locale):
    config = WinbackConfig()
    with get_i18n().use_locale(locale):
        text = dry_run_text("Win-back 1", dry(), config, community(), locale, NOW)
    assert bool(CJK.search(text)) == (locale == "zh_Hans")
    assert risk_bars([10, 8, 5, 4, 3, 2, 2, 1, 2, 3]) in text
    samples = [line for line in text.splitlines() if line.startswith("• ")]
    assert len(samples) == 3 and "Anna &lt;A&gt;" in samples[0] and "0.97" in samples[0] and "Honey" in samples[0]
    assert "09:00" in text  # when a run started in the quiet hours would go on
    if locale == "en":
        assert samples[0] == ("• Anna &lt;A&gt;: silent 24 days, usually back within 9 (risk 0.97), orders: 5, "
                              "favourite: Honey")
        assert samples[1].endswith("(held out)")


def test_risk_bars_scale_to_the_biggest_band():
    assert risk_bars([0, 4, 2, 1, 0, 0, 0, 0, 0, 40]).splitlines()[1:4] == ["0.1–0.2 █ 4", "0.2–0.3 ▏ 2", "0.3–0.4 ▏ 1"]


@pytest.mark.parametrize("locale", ["en", "zh_Hans"])
def test_results_with_a_lift_fit_a_caption(locale):
    result = measured((30, 120), (2, 24))
    run = RunSummary(3, NOW - timedelta(days=20), RunStatus.DONE, 120, 24)
    with get_i18n().use_locale(locale):
        text = results_text(LONG_NAME, result, community(), locale, run=run, legend=True)
    assert len(text) <= 1024
    assert bool(CJK.search(text)) == (locale == "zh_Hans")
    if locale == "en":
        lines = text.splitlines()
        assert lines[1:5] == ["Messaged: 120 members, 30 came back (25.0%)", "Held out: 24 members, 2 came back (8.3%)",
                              f"Lift: +16.7 percentage points (95% interval {result.lift.interval.low * 100:+.1f} to "
                              f"{result.lift.interval.high * 100:+.1f})", "Relative lift: +200%"]


@pytest.mark.parametrize(("reason", "window_ends", "expected"), [
    ("small", NOW - timedelta(days=1), "Not enough data yet: each group needs at least 20 members to compare."),
    ("window", NOW + timedelta(days=3), "Not enough data yet: the attribution window closes on 2026-12-09 21:00."),
    ("window", None, "Not enough data yet: it has not run so far."),
])
def test_results_without_a_lift_say_why(reason, window_ends, expected):
    result = Outcome(ArmOutcome(5, 1, 0), ArmOutcome(1, 0, 0), 5, 0, window_ends, None, reason)
    with get_i18n().use_locale("en"):
        assert expected in results_text("W", result, community(), "en").splitlines()


def test_chart_is_a_png_with_no_words(caplog):
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, logger="matplotlib"):
        warnings.simplefilter("always")
        png = draw_arms(measured((30, 120), (0, 24)))
    assert [str(w.message) for w in caught] == []
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (WIDTH_PX, HEIGHT_PX))
