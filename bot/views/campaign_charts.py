"""A campaign's results as a picture: each arm's return rate with its 95 % Wilson interval.

House style of bot/views/stats_charts.py: matplotlib's object API on the Agg canvas, numbers only
in the picture (the caption names the colours with the same square emoji), rendered off the event
loop with `stats_charts.render_async`.
"""

from __future__ import annotations

from io import BytesIO

from bot.services.campaigns import Outcome
from bot.services.lift import wilson
from bot.views.stats_charts import BLUE, INK, MID, ORANGE, SMALL, percent

WIDTH_PX, HEIGHT_PX, DPI = 800, 600, 100


def draw_arms(result: Outcome) -> bytes:
    """Two bars, messaged (blue) and held out (orange): the share who came back, whiskers for the
    95 % interval, the share written above each whisker."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # at the first chart: see stats_charts._figure
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.12, 0.08, 0.84, 0.86))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=SMALL, colors=INK)
    top = 0.0
    for x, (arm, colour) in enumerate(((result.treatment, BLUE), (result.holdout, ORANGE))):
        if not arm.members:
            continue
        rate, interval = arm.returned / arm.members, wilson(arm.returned, arm.members)
        ax.bar(x, rate, color=colour, width=0.6)
        # Clamped: at 0 of n, Wilson's low end comes out a rounding error above the rate.
        whiskers = [[max(0.0, rate - interval.low)], [max(0.0, interval.high - rate)]]
        ax.errorbar(x, rate, yerr=whiskers, color=INK, capsize=14, linewidth=2)
        ax.text(x, interval.high + 0.02, percent(rate), ha="center", va="bottom", fontsize=MID, color=INK)
        top = max(top, interval.high)
    ax.set_xlim(-0.6, 1.6)
    ax.set_xticks([])
    ax.set_ylim(0, min(1.0, top + 0.15) if top else 1.0)
    ax.yaxis.set_major_formatter(lambda value, _pos: percent(value))
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()
