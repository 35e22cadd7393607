"""Stats charts: real PNGs of the expected size, for every screen and both languages, drawn without
a glyph missing (the pictures hold digits only: words go in the caption), and off the event loop."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import threading
import warnings
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest
from PIL import Image

from bot.core.i18n import get_i18n
from bot.services import stats
from bot.services.stats import (
    Activity,
    Cohort,
    Engagement,
    Figure,
    Funnel,
    Growth,
    Overview,
    Rate,
    Retention,
    Sales,
    StreakBucket,
    TopProduct,
    WinbackLift,
)
from bot.views import stats_charts, stats_text
from bot.views.keyboards import StatsScreen
from bot.views.stats_charts import HEIGHT_PX, RENDERERS, WIDTH_PX, draw_histogram, render_async
from handlers.admin.stats import SERVICE_NAMES
from models import Via

TODAY = date(2026, 11, 30)
DAYS = tuple(TODAY - timedelta(days=27 - i) for i in range(28))


def screens() -> dict[str, object]:
    """One result per screen, with the awkward cases: zeros, None changes, Chinese product names."""
    joins = {via.value: tuple((i * (k + 1)) % 5 for i in range(28)) for k, via in enumerate(Via)}
    return {
        "overview": Overview(
            today=TODAY, week_start=TODAY - timedelta(days=6), currency="CNY",
            members=Figure(1234, 1200), joins=Figure(56, 40), leaves=Figure(12, 20), dau=Figure(300, 0),
            wau=Figure(800, 790), mau=Figure(1100, 1000), stickiness=Figure(0.27, 0.3), messages=Figure(5000, 4000),
            orders=Figure(87, 87), revenue=Figure(1234560, 1000000), checkin_participation=Figure(0.4, 0.35),
            checkins=Figure(490, 420)),
        "growth": Growth(days=DAYS, sources=tuple(v.value for v in Via), joins=joins, leaves=(1,) * 28,
                         total_joins=sum(map(sum, joins.values())), total_leaves=28,
                         net=sum(map(sum, joins.values())) - 28),
        "retention": Retention(
            weeks=8, d1=Rate(40, 100), d7=Rate(20, 80), d30=Rate(0, 0),
            cohorts=tuple(Cohort(start=TODAY - timedelta(days=TODAY.weekday() + 7 * (7 - w)), size=10 * w + 1,
                                 active=tuple((0.9 - 0.1 * k) if k < 7 - w else None for k in range(8)))
                          for w in range(8))),
        "activity": Activity(start=DAYS[0], end=TODAY, messages=tuple(tuple((d * h) % 17 for h in range(24))
                                                                      for d in range(7)),
                             orders=tuple(tuple(0 for _ in range(24)) for _ in range(7)), total_messages=2000,
                             total_orders=0, peak=(1, 20)),
        "sales": Sales(currency="CNY", days=DAYS, revenue=tuple(i * 1000 for i in range(28)), orders=(2,) * 28,
                       total_revenue=Figure(378000, 0), total_orders=Figure(56, 50), average_order=Figure(6750, 7000),
                       top_products=(TopProduct(1, "有机草莓 500克", 12, 240000), TopProduct(2, "Bread 🍞", 3, 9000)),
                       group_buys_succeeded=3, group_buys_failed=1),
        "funnel": Funnel(start=DAYS[0], end=TODAY,
                         steps=("posted", "buy_pressed", "checkout_started", "confirmed", "paid", "fulfilled"),
                         counts=(40, 400, 200, 150, 120, 0)),
        "engagement": Engagement(streaks=(StreakBucket("1", 1, 1, 50), StreakBucket("2-3", 2, 3, 20),
                                          StreakBucket("30+", 30, None, 0)),
                                 members_with_streak=70, invites=12, inviters=5, members=300, k_factor=0.04,
                                 invites_per_inviter=2.4, winback=WinbackLift(100, 30, 20, 3)),
    }


def test_every_service_screen_has_a_renderer():
    assert set(RENDERERS) == set(stats.SCREENS) == set(screens())


def _render_watching_glyphs(render, data, locale: str, caplog) -> tuple[bytes, list[str]]:
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, logger="matplotlib"):
        warnings.simplefilter("always")
        png = render(data, locale)
    problems = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records if r.name.startswith("matplotlib")]
    return png, problems


@pytest.mark.parametrize("locale", ["en", "zh_Hans"])
@pytest.mark.parametrize("screen", sorted(RENDERERS))
def test_chart_is_a_png_of_the_phone_size_with_every_glyph(screen, locale, caplog):
    png, problems = _render_watching_glyphs(RENDERERS[screen], screens()[screen], locale, caplog)
    assert problems == []
    image = Image.open(io.BytesIO(png))
    image.verify()
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (WIDTH_PX, HEIGHT_PX))
    # A real chart, not a blank canvas: a good share of its pixels is not white.
    pixels = np.asarray(image.convert("L"))
    assert (pixels < 250).mean() > 0.02


def test_the_glyph_check_catches_words_in_the_picture(caplog):
    """The check above can fail: a Chinese word drawn into a chart is reported as missing glyphs."""
    _png, problems = _render_watching_glyphs(
        lambda _data, locale: draw_histogram(["签到"], [1], [], locale), None, "zh_Hans", caplog)
    assert any("missing" in p.lower() for p in problems)


def test_empty_community_renders():
    empty = Growth(days=DAYS, sources=tuple(v.value for v in Via), joins={v.value: (0,) * 28 for v in Via},
                   leaves=(0,) * 28, total_joins=0, total_leaves=0, net=0)
    no_cohorts = Retention(weeks=8, cohorts=(), d1=Rate(0, 0), d7=Rate(0, 0), d30=Rate(0, 0))
    nothing_sold = Sales(currency="JPY", days=DAYS, revenue=(0,) * 28, orders=(0,) * 28, total_revenue=Figure(0, 0),
                         total_orders=Figure(0, 0), average_order=Figure(0, 0), top_products=(),
                         group_buys_succeeded=0, group_buys_failed=0)
    for render, data in ((stats_charts.render_growth, empty), (stats_charts.render_retention, no_cohorts),
                         (stats_charts.render_sales, nothing_sold)):
        assert Image.open(io.BytesIO(render(data, "en"))).size == (WIDTH_PX, HEIGHT_PX)


async def test_rendering_runs_off_the_event_loop():
    seen: list[threading.Thread] = []

    def render(data, locale):
        seen.append(threading.current_thread())
        return stats_charts.render_funnel(data, locale)

    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    png = await render_async(render, screens()["funnel"], "en")
    task.cancel()
    assert png.startswith(b"\x89PNG") and seen and seen[0] is not threading.main_thread()
    assert ticks > 1  # the loop kept running while the chart was drawn


@pytest.mark.parametrize("locale", ["en", "zh_Hans"])
def test_captions_fit_telegram_and_speak_the_language(locale):
    """Every caption stays within 1,024 visible characters, even with five long product names, and
    is written in the reader's language."""
    data = screens()
    long_names = tuple(TopProduct(i, "草莓" * 30 + str(i), 1, 100) for i in range(5))
    data["sales"] = replace(data["sales"], top_products=long_names)
    with get_i18n().use_locale(locale):
        for screen in StatsScreen:
            name = SERVICE_NAMES[screen]
            text = stats_text.caption(screen, data[name], title="<Green> & Valley", timezone="Asia/Shanghai",
                                      locale=locale)
            assert stats_text.visible_length(text) <= stats_text.CAPTION_LIMIT
            assert "&lt;Green&gt; &amp; Valley" in text
            assert bool(re.search(r"[\u4e00-\u9fff]", re.sub("[草莓]", "", text))) == (locale == "zh_Hans")
        digest = stats_text.digest_caption(data["overview"], "Green Valley", locale)
        assert ("本周回顾" in digest) == (locale == "zh_Hans")


def test_fit_drops_whole_lines_from_the_end():
    lines = ["<b>head</b>", "x" * 600, "y" * 600, "z"]
    assert stats_text.fit(lines) == "<b>head</b>\n" + "x" * 600
    assert stats_text.fit(["&amp;" * 1024]) == "&amp;" * 1024  # an entity counts as one character
