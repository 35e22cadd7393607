"""Stats charts: one PNG per screen, drawn with matplotlib's object API on the Agg canvas.

**No words in the picture.** Every chart is language-neutral: numbers, dates as ``MM-DD``,
weekdays as ISO digits 1–7 (Monday = 1), hours 0–23, percentages. Everything that is a word —
the screen's title, what each colour or numbered panel means, product names — lives in the
caption, which Telegram renders in the leader's language with the phone's own fonts. The choice
over shipping a CJK font:

- matplotlib bundles DejaVu Sans only. A CJK font would have to come from PyPI (the install may
  rely on nothing else: `make test` runs on a machine with only Python). What PyPI offers are
  font files re-packaged by third parties for their own tools (a PDF library's Japanese fallback,
  an animation tool's Noto copy), not packages published by a font's maintainers; tying the bot's
  install to one of them, at 10–20 MB per weight, buys little.
- Even with a CJK font, the picture would still hold text the bot cannot vouch for: product names
  are whatever the leader typed (emoji, Thai, Arabic...). Those would need the caption anyway.
- A caption is searchable, copyable, readable by screen readers, and sized by the phone.

So the colours in a chart are the colours of Telegram's square emoji (🟦🟧🟩🟪🟥), and the
caption names them with the same squares; numbered panels and bars are named by keycap numbers.
A test renders every chart for zh_Hans and asserts matplotlib reported no missing glyph.

**Threads.** Rendering runs off the event loop (`render_async`). matplotlib's object API keeps
each Figure to itself, but its font and text caches are process-wide and not documented as
thread-safe, so renders are serialised by a lock: the loop stays free and two charts never share
a cache mid-update.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from io import BytesIO
from typing import TYPE_CHECKING, Any

from babel.numbers import format_decimal

from bot.services.money import BABEL_LOCALE, precision
from models.invite import Via

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    from bot.services.stats import Activity, Engagement, Funnel, Growth, Overview, Retention, Sales

WIDTH_PX, HEIGHT_PX = 1000, 700
_DPI = 100

# Telegram's square emoji, so a caption can name a colour by showing it.
BLUE, ORANGE, GREEN, PURPLE, RED, YELLOW, BROWN = (
    "#3b88c3", "#f4900c", "#78b159", "#aa8ed6", "#dd2e44", "#fdcb58", "#c1694f")
SQUARES = {BLUE: "🟦", ORANGE: "🟧", GREEN: "🟩", PURPLE: "🟪", RED: "🟥", YELLOW: "🟨", BROWN: "🟫"}
BLACK, WHITE = "#31373d", "#d5d9dd"
SQUARES = {**SQUARES, BLACK: "⬛", WHITE: "⬜"}
GREY = "#b0b7bf"
INK = "#1f2933"
# Each way in keeps its colour on every chart, so a leader learns them.
SOURCE_COLOURS = {
    Via.MEMBER_LINK: BLUE, Via.JOIN_REQUEST: PURPLE, Via.DEEP_LINK: GREEN, Via.PRIMARY_LINK: YELLOW,
    Via.ADMIN_LINK: BROWN, Via.ADDED_BY_ADMIN: ORANGE, Via.GROUP_BUY_LINK: BLACK, Via.UNKNOWN: WHITE,
}
LEAVES_COLOUR = RED

BIG, MID, SMALL = 30, 22, 17

@cache
def _heat():
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("heat", ["#f4f7fb", "#a9cbe8", BLUE, "#1d4f7a"])
_lock = threading.Lock()


def number(value: float, locale: str, digits: int = 0) -> str:
    """Digits as the leader's locale groups them; both en and zh_Hans write ASCII digits."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=BABEL_LOCALE.get(locale, "en"))


def percent(share: float | None) -> str:
    return "" if share is None else f"{round(share * 100)}%"


def change_text(change: float | None) -> str:
    """A relative change as an arrow and a percentage; nothing when there is no base to compare."""
    if change is None:
        return ""
    arrow = "▲" if change > 0 else "▼" if change < 0 else "="
    return f"{arrow} {abs(round(change * 100))}%"


def day_label(day: date) -> str:
    return day.strftime("%m-%d")


def _figure() -> Figure:
    # matplotlib (and numpy, in each drawing) is imported at the first chart, not when the bot
    # starts: it is a second of every process's start-up (and its memory) for something a leader
    # asks for now and then.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_PX / _DPI, HEIGHT_PX / _DPI), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, facecolor="white")
    return buf.getvalue()


def _plain_axes(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=SMALL, colors=INK)


def _day_ticks(ax, days: Sequence[date], *, most: int = 8) -> None:
    step = max(1, -(-len(days) // most))
    positions = list(range(0, len(days), step))
    ax.set_xticks(positions, [day_label(days[i]) for i in positions])


# --- primitives on plain data ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tile:
    """One key number: its value now, the previous period's, and the relative change."""

    value: str
    previous: str
    change: float | None
    good_when_up: bool = True


def draw_tiles(tiles: Sequence[Tile]) -> bytes:
    """Small multiples: a numbered panel per key number (the caption names them by the same number)."""
    fig = _figure()
    cols = 4 if len(tiles) > 6 else 3
    rows = max(1, -(-len(tiles) // cols))
    for index, tile in enumerate(tiles):
        ax = fig.add_subplot(rows, cols, index + 1)
        ax.set_axis_off()
        ax.add_patch(_rounded(ax))
        ax.text(0.08, 0.86, str(index + 1), fontsize=SMALL, color="white", ha="center", va="center",
                bbox={"boxstyle": "circle,pad=0.3", "facecolor": INK, "edgecolor": "none"}, transform=ax.transAxes)
        ax.text(0.5, 0.55, tile.value, fontsize=BIG, color=INK, ha="center", va="center", weight="bold",
                transform=ax.transAxes)
        if tile.change is not None:
            rising = tile.change > 0
            colour = GREY if tile.change == 0 else GREEN if rising == tile.good_when_up else RED
            ax.text(0.5, 0.28, change_text(tile.change), fontsize=MID, color=colour, ha="center", va="center",
                    transform=ax.transAxes)
        ax.text(0.5, 0.1, tile.previous, fontsize=SMALL, color="#6b7785", ha="center", va="center",
                transform=ax.transAxes)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.97, bottom=0.03, wspace=0.08, hspace=0.12)
    return _png(fig)


def _rounded(ax) -> FancyBboxPatch:
    from matplotlib.patches import FancyBboxPatch

    return FancyBboxPatch((0.02, 0.02), 0.96, 0.96, boxstyle="round,pad=0,rounding_size=0.06",
                          transform=ax.transAxes, facecolor="#eef2f6", edgecolor="none")


def draw_stacked_days(days: Sequence[date], stacks: Sequence[tuple[str, Sequence[int]]],
                      below: tuple[str, Sequence[int]] | None = None) -> bytes:
    """Bars per day stacked by series (colour, counts), and optionally one series drawn below zero."""
    import numpy as np

    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    _plain_axes(ax)
    x = np.arange(len(days))
    bottom = np.zeros(len(days))
    for colour, counts in stacks:
        values = np.asarray(counts, dtype=float)
        ax.bar(x, values, bottom=bottom, color=colour, width=0.8)
        bottom += values
    if below is not None:
        colour, counts = below
        ax.bar(x, -np.asarray(counts, dtype=float), color=colour, width=0.8)
    ax.axhline(0, color=INK, linewidth=1)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_yticks(ax.get_yticks(), [str(abs(int(t))) for t in ax.get_yticks()])
    _day_ticks(ax, days)
    ax.grid(axis="y", alpha=0.3)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.95, bottom=0.1)
    return _png(fig)


def draw_cohorts(starts: Sequence[date], sizes: Sequence[int], shares: Sequence[Sequence[float | None]],
                 locale: str) -> bytes:
    """Rows: join weeks (their Monday); columns: weeks 1..N after joining; cells: share active, in %.
    A cohort's size is written at the row's right end. Weeks not reached yet stay blank."""
    import numpy as np

    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    weeks = max((len(row) for row in shares), default=8) or 8
    grid = np.full((max(1, len(starts)), weeks), np.nan)
    for r, row in enumerate(shares):
        for c, share in enumerate(row):
            if share is not None:
                grid[r, c] = share
    ax.imshow(np.ma.masked_invalid(grid), cmap=_heat(), vmin=0, vmax=1, aspect="auto")
    size = SMALL if len(starts) > 8 else MID
    for r in range(len(starts)):
        for c in range(weeks):
            if not np.isnan(grid[r, c]):
                share = grid[r, c]
                ax.text(c, r, percent(share), ha="center", va="center", fontsize=size,
                        color="white" if share > 0.5 else INK)
        ax.text(weeks - 0.4, r, number(sizes[r], locale), ha="left", va="center", fontsize=size, color=INK)
    ax.set_xticks(range(weeks), [str(c + 1) for c in range(weeks)])
    ax.set_yticks(range(len(starts)), [day_label(s) for s in starts])
    ax.tick_params(labelsize=SMALL, length=0, colors=INK)
    ax.xaxis.tick_top()
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.subplots_adjust(left=0.1, right=0.9, top=0.92, bottom=0.03)
    return _png(fig)


def draw_week_hours(grids: Sequence[Sequence[Sequence[int]]]) -> bytes:
    """One weekday × hour heat map per grid (rows Monday=1..Sunday=7, columns hours 0..23), stacked;
    each grid has its own scale, and its busiest hour is written in its cell."""
    import numpy as np

    fig = _figure()
    for index, grid in enumerate(grids):
        ax = fig.add_subplot(len(grids), 1, index + 1)
        values = np.asarray(grid, dtype=float).reshape(7, 24)
        top = values.max()
        ax.imshow(values, cmap=_heat(), vmin=0, vmax=top if top > 0 else 1, aspect="auto")
        if top > 0:
            r, c = np.unravel_index(int(values.argmax()), values.shape)
            ax.text(c, r, str(int(top)), ha="center", va="center", fontsize=SMALL - 3, color="white", weight="bold")
        ax.set_yticks(range(7), [str(d) for d in range(1, 8)])
        ax.set_xticks(range(0, 24, 3), [str(h) for h in range(0, 24, 3)])
        ax.tick_params(labelsize=SMALL, length=0, colors=INK)
        ax.text(-0.07, 1.0, str(index + 1), transform=ax.transAxes, fontsize=SMALL, color="white", ha="center",
                va="center", bbox={"boxstyle": "circle,pad=0.3", "facecolor": INK, "edgecolor": "none"})
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.95, bottom=0.06, hspace=0.3)
    return _png(fig)


def draw_days_and_ranking(days: Sequence[date], per_day: Sequence[float], ranking: Sequence[float],
                          locale: str, *, digits: int = 0) -> bytes:
    """Top: a value per day. Bottom: a ranking drawn as numbered horizontal bars (#1 at the top)."""
    import numpy as np

    fig = _figure()
    ax = fig.add_subplot(2, 1, 1) if ranking else fig.add_subplot(1, 1, 1)
    _plain_axes(ax)
    ax.bar(np.arange(len(days)), per_day, color=BLUE, width=0.8)
    _day_ticks(ax, days)
    ax.grid(axis="y", alpha=0.3)
    ax.yaxis.set_major_formatter(lambda v, _pos: number(v, locale))
    if ranking:
        bx = fig.add_subplot(2, 1, 2)
        _plain_axes(bx)
        y = np.arange(len(ranking))
        bx.barh(y, ranking, color=ORANGE, height=0.7)
        bx.set_yticks(y, [str(i + 1) for i in y])
        bx.invert_yaxis()
        bx.set_xticks([])
        bx.spines["bottom"].set_visible(False)
        peak = max(ranking) or 1
        for i, value in enumerate(ranking):
            bx.text(value + peak * 0.01, i, number(value, locale, digits), va="center", fontsize=SMALL, color=INK)
        bx.set_xlim(0, peak * 1.2)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.96, bottom=0.05, hspace=0.3)
    return _png(fig)


def draw_funnel(counts: Sequence[int], locale: str) -> bytes:
    """Numbered steps as horizontal bars, each with its count and its share of the step before."""
    import numpy as np

    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    _plain_axes(ax)
    y = np.arange(len(counts))
    colours = [BLUE, BLUE, ORANGE, ORANGE, GREEN, GREEN][: len(counts)] or [BLUE]
    ax.barh(y, counts, color=colours, height=0.7)
    ax.set_yticks(y, [str(i + 1) for i in y])
    ax.invert_yaxis()
    ax.set_xticks([])
    ax.spines["bottom"].set_visible(False)
    peak = max(counts, default=0) or 1
    for i, count in enumerate(counts):
        label = number(count, locale)
        if i and counts[i - 1]:
            label += f"   {percent(count / counts[i - 1])}"
        ax.text(count + peak * 0.01, i, label, va="center", fontsize=MID, color=INK)
    ax.set_xlim(0, peak * 1.35)
    ax.tick_params(axis="y", labelsize=MID, length=0)
    fig.subplots_adjust(left=0.07, right=0.97, top=0.96, bottom=0.04)
    return _png(fig)


def draw_histogram(labels: Sequence[str], counts: Sequence[int], big_numbers: Sequence[str], locale: str) -> bytes:
    """Vertical bars over digit labels (e.g. streak lengths), with up to two big numbered figures at
    the right (e.g. the K-factor), which the caption names by number."""
    import numpy as np

    fig = _figure()
    ax = fig.add_axes((0.08, 0.1, 0.6 if big_numbers else 0.88, 0.85))
    _plain_axes(ax)
    x = np.arange(len(labels))
    ax.bar(x, counts, color=PURPLE, width=0.75)
    ax.set_xticks(x, list(labels))
    peak = max(counts, default=0) or 1
    for i, count in enumerate(counts):
        ax.text(i, count + peak * 0.01, number(count, locale), ha="center", va="bottom", fontsize=SMALL, color=INK)
    ax.set_ylim(0, peak * 1.15)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    for index, figure in enumerate(big_numbers):
        y = 0.72 - index * 0.42
        fig.text(0.71, y + 0.12, str(index + 2), fontsize=SMALL, color="white", ha="center", va="center",
                 bbox={"boxstyle": "circle,pad=0.3", "facecolor": INK, "edgecolor": "none"})
        fig.text(0.85, y, figure, fontsize=BIG + 6, color=INK, ha="center", va="center", weight="bold")
    return _png(fig)


# --- the screens: the stats service's results in, PNG bytes out ---------------------------------------

# The overview's key numbers, in the order of their numbered panels (the caption uses the same order),
# and whether a rise is good news.
OVERVIEW_KEYS: tuple[tuple[str, bool], ...] = (
    ("members", True), ("joins", True), ("leaves", False), ("dau", True), ("wau", True), ("mau", True),
    ("stickiness", True), ("messages", True), ("orders", True), ("revenue", True), ("checkin_participation", True),
)
_SHARES = {"stickiness", "checkin_participation"}


def money_number(amount: int, currency: str, locale: str) -> str:
    """An amount in minor units as digits only (the currency is named in the caption)."""
    digits = precision(currency)
    return number(amount / 10**digits, locale, digits)


def overview_value(data: Overview, key: str, value: float, locale: str) -> str:
    if key in _SHARES:
        return percent(value)
    if key == "revenue":
        return money_number(int(value), data.currency, locale)
    return number(value, locale)


def render_overview(data: Overview, locale: str) -> bytes:
    tiles = []
    for key, good_when_up in OVERVIEW_KEYS:
        figure = getattr(data, key)
        tiles.append(Tile(overview_value(data, key, figure.value, locale),
                          overview_value(data, key, figure.previous, locale), figure.change_ratio, good_when_up))
    return draw_tiles(tiles)


def render_growth(data: Growth, locale: str) -> bytes:
    stacks = [(SOURCE_COLOURS.get(source, GREY), data.joins[source]) for source in data.sources]
    return draw_stacked_days(data.days, stacks, (LEAVES_COLOUR, data.leaves))


def render_retention(data: Retention, locale: str) -> bytes:
    cohorts = data.cohorts
    return draw_cohorts([c.start for c in cohorts], [c.size for c in cohorts], [c.active for c in cohorts], locale)


def render_activity(data: Activity, locale: str) -> bytes:
    return draw_week_hours([data.messages, data.orders])


def render_sales(data: Sales, locale: str) -> bytes:
    scale = 10 ** precision(data.currency)
    return draw_days_and_ranking(data.days, [r / scale for r in data.revenue],
                                 [p.revenue / scale for p in data.top_products], locale,
                                 digits=precision(data.currency))


def render_funnel(data: Funnel, locale: str) -> bytes:
    return draw_funnel(data.counts, locale)


def engagement_figures(data: Engagement, locale: str) -> list[str]:
    """The big numbers beside the streaks: the K-factor, then the win-back lift when there is one."""
    figures = [number(data.k_factor, locale, 2)]
    if data.winback is not None and data.winback.lift is not None:
        figures.append(f"{round(data.winback.lift * 100):+d}%")
    return figures


def render_engagement(data: Engagement, locale: str) -> bytes:
    return draw_histogram([b.label for b in data.streaks], [b.members for b in data.streaks],
                          engagement_figures(data, locale), locale)


RENDERERS: dict[str, Callable[[Any, str], bytes]] = {
    "overview": render_overview, "growth": render_growth, "retention": render_retention,
    "activity": render_activity, "sales": render_sales, "funnel": render_funnel, "engagement": render_engagement,
}


async def render_async(render: Callable[..., bytes], *args: Any) -> bytes:
    """Run a chart render in a worker thread, one render at a time (see the module docstring)."""
    def locked() -> bytes:
        with _lock:
            return render(*args)

    return await asyncio.to_thread(locked)
