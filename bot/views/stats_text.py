"""Words for the stats screens: each chart's caption (the chart itself holds no words, see
stats_charts.py), the screen buttons and the CSV.

A caption names what the chart shows, with the numbered panels and coloured squares the chart
uses, and the key numbers with their change against the previous period. Telegram allows 1,024
characters of visible caption: `fit` drops whole lines from the end before that could be passed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from html import escape, unescape
from typing import TYPE_CHECKING, Any

from aiogram.utils.i18n import gettext as _
from babel.dates import format_date, get_day_names

from bot.services.money import BABEL_LOCALE, format_money
from bot.views.invite_admin import label as source_label
from bot.views.keyboards import StatsScreen
from bot.views.stats_charts import (
    LEAVES_COLOUR,
    OVERVIEW_KEYS,
    SOURCE_COLOURS,
    SQUARES,
    engagement_figures,
    number,
    percent,
)

if TYPE_CHECKING:
    from bot.services.stats import Activity, Engagement, Figure, Funnel, Growth, Overview, Retention, Sales

CAPTION_LIMIT = 1024
KEYCAPS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟", "1️⃣1️⃣", "1️⃣2️⃣")
_TAG = re.compile(r"<[^>]+>")


def screen_names() -> dict[StatsScreen, str]:
    return {
        StatsScreen.OVERVIEW: _("Overview"),
        StatsScreen.GROWTH: _("Growth"),
        StatsScreen.RETENTION: _("Retention"),
        StatsScreen.ACTIVITY: _("Activity"),
        StatsScreen.SALES: _("Sales"),
        StatsScreen.FUNNEL: _("Funnel"),
        StatsScreen.ENGAGEMENT: _("Engagement"),
    }


def visible_length(html_text: str) -> int:
    return len(unescape(_TAG.sub("", html_text)))


def fit(lines: list[str]) -> str:
    """The caption, without as many trailing lines as it takes to fit Telegram's limit."""
    while len(lines) > 1 and visible_length("\n".join(lines)) > CAPTION_LIMIT:
        lines = lines[:-1]
    return "\n".join(lines)


def _day(value, locale: str) -> str:
    return format_date(value, "medium", locale=BABEL_LOCALE.get(locale, "en"))


def _period(start, end, locale: str) -> str:
    return _("{start} – {end}").format(start=_day(start, locale), end=_day(end, locale))


def _signed(value: float, locale: str, digits: int = 0) -> str:
    text = number(abs(value), locale, digits)
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


def _change(figure: Figure, shown: Callable[[float], str], *, share: bool, locale: str) -> str:
    """How a figure moved against the previous period: points for a share, else the difference (in
    the figure's own format: money as money) and the percentage."""
    if share:
        points = round((figure.value - figure.previous) * 100)
        return _("{points} pts vs {previous}").format(points=_signed(points, locale), previous=shown(figure.previous))
    delta = figure.change
    change = ("+" if delta > 0 else "−" if delta < 0 else "±") + shown(abs(delta))
    if figure.change_ratio is None:
        return _("{change} vs {previous}").format(change=change, previous=shown(figure.previous))
    return _("{change}, {ratio} vs {previous}").format(
        change=change, ratio=_signed(round(figure.change_ratio * 100), locale) + "%", previous=shown(figure.previous))


def _header(screen: StatsScreen, title: str, period: str) -> list[str]:
    return [_("<b>📊 {screen} · {title}</b>").format(screen=screen_names()[screen], title=escape(title)),
            f"<i>{period}</i>"]


# --- captions ------------------------------------------------------------------------------------


def overview_caption(data: Overview, title: str, locale: str, *, digest: bool = False) -> str:
    names = {
        "members": _("Members now"), "joins": _("Joins"), "leaves": _("Leaves"),
        "dau": _("Active yesterday (DAU)"), "wau": _("Active this week (WAU)"), "mau": _("Active in 30 days (MAU)"),
        "stickiness": _("Stickiness (DAU/MAU)"), "messages": _("Messages"), "orders": _("Orders"),
        "revenue": _("Revenue"), "checkin_participation": _("Check-in participation"),
    }
    period = _("7 days: {period}").format(period=_period(data.week_start, data.today, locale))
    if digest:
        lines = [_("<b>🗓 Your week · {title}</b>").format(title=escape(title)), f"<i>{period}</i>"]
    else:
        lines = _header(StatsScreen.OVERVIEW, title, period)
    for index, (key, _good) in enumerate(OVERVIEW_KEYS):
        figure = getattr(data, key)
        share = key in ("stickiness", "checkin_participation")
        if share:
            def shown(v: float) -> str:
                return percent(v)
        elif key == "revenue":
            def shown(v: float) -> str:
                return format_money(int(v), data.currency, locale)
        else:
            def shown(v: float) -> str:
                return number(v, locale)
        lines.append(_("{n} {name}: <b>{value}</b> ({change})").format(
            n=KEYCAPS[index], name=names[key], value=shown(figure.value),
            change=_change(figure, shown, share=share, locale=locale)))
    lines.append(_("Weeks and months end today; DAU is yesterday's, the last whole day."))
    if digest:
        lines.append(_("More in /admin → 📊 Stats. Turn this weekly message off or move it in /admin → Settings."))
    return fit(lines)


def digest_caption(data: Overview, title: str, locale: str) -> str:
    """The weekly digest's caption: the overview's numbers under the digest's own heading."""
    return overview_caption(data, title, locale, digest=True)


def growth_caption(data: Growth, title: str, locale: str) -> str:
    lines = _header(StatsScreen.GROWTH, title, _period(data.days[0], data.days[-1], locale) if data.days else "")
    lines.append(_("Joins <b>{joins}</b> · leaves <b>{leaves}</b> · net <b>{net}</b>").format(
        joins=number(data.total_joins, locale), leaves=number(data.total_leaves, locale),
        net=_signed(data.net, locale)))
    lines.append(_("Bars: joins per day by way in, leaves below the line."))
    for source in data.sources:
        total = sum(data.joins[source])
        if total:
            lines.append(f"{SQUARES[SOURCE_COLOURS[source]]} {escape(source_label(source))}: {number(total, locale)}")
    lines.append(f"{SQUARES[LEAVES_COLOUR]} " + _("left: {count}").format(count=number(data.total_leaves, locale)))
    return fit(lines)


def retention_caption(data: Retention, title: str, locale: str) -> str:
    start = data.cohorts[0].start if data.cohorts else None
    lines = _header(StatsScreen.RETENTION, title, _("Join weeks since {day}").format(day=_day(start, locale))
                    if start else "")

    def rate(name: str, value) -> str:
        if value.share is None:
            return _("{name}: no one yet").format(name=name)
        return _("{name}: <b>{share}</b> ({active} of {eligible})").format(
            name=name, share=percent(value.share), active=number(value.active, locale),
            eligible=number(value.eligible, locale))

    lines.append(" · ".join([rate(_("Day 1"), data.d1), rate(_("Day 7"), data.d7), rate(_("Day 30"), data.d30)]))
    lines.append(_("Rows: the week people first joined (its Monday). Columns: weeks 1–{weeks} after joining. "
                   "Cells: the share of them active that week. At the right: how many joined.").format(
        weeks=data.weeks))
    lines.append(_("Day N: members active on the Nth day after joining, of those who joined at least N days ago."))
    return fit(lines)


def activity_caption(data: Activity, title: str, timezone: str, locale: str) -> str:
    lines = _header(StatsScreen.ACTIVITY, title, _period(data.start, data.end, locale))
    days = get_day_names("abbreviated", locale=BABEL_LOCALE.get(locale, "en"))
    lines.append(_("{n} Messages: <b>{count}</b>").format(n=KEYCAPS[0], count=number(data.total_messages, locale)))
    if data.peak is not None:
        weekday, hour = data.peak
        lines.append(_("Busiest: {day} {hour}:00").format(day=days[weekday], hour=f"{hour:02d}"))
    lines.append(_("{n} Orders: <b>{count}</b>").format(n=KEYCAPS[1], count=number(data.total_orders, locale)))
    lines.append(_("Rows: weekdays, 1 = {monday} … 7 = {sunday}. Columns: hour of day in {tz}. "
                   "The darkest cell is the busiest; its count is written in it.").format(
        monday=days[0], sunday=days[6], tz=escape(timezone)))
    return fit(lines)


def sales_caption(data: Sales, title: str, locale: str) -> str:
    lines = _header(StatsScreen.SALES, title, _period(data.days[0], data.days[-1], locale) if data.days else "")

    def money(v: float) -> str:
        return format_money(int(v), data.currency, locale)

    def count(v: float) -> str:
        return number(v, locale)

    lines.append(_("Revenue: <b>{value}</b> ({change})").format(
        value=money(data.total_revenue.value), change=_change(data.total_revenue, money, share=False, locale=locale)))
    lines.append(_("Orders: <b>{value}</b> ({change})").format(
        value=count(data.total_orders.value), change=_change(data.total_orders, count, share=False, locale=locale)))
    lines.append(_("Average order: <b>{value}</b> ({change})").format(
        value=money(data.average_order.value), change=_change(data.average_order, money, share=False, locale=locale)))
    rate = data.group_buy_success_rate
    if rate is not None:
        lines.append(_("Group-buys: <b>{rate}</b> succeeded ({ok} of {total})").format(
            rate=percent(rate), ok=data.group_buys_succeeded,
            total=data.group_buys_succeeded + data.group_buys_failed))
    lines.append(_("Top: revenue per day. Below: the best-selling products by revenue:"))
    for index, product in enumerate(data.top_products):
        name = product.title if len(product.title) <= 40 else product.title[:39] + "…"
        lines.append(_("{n} {name}: {revenue} · {units} sold").format(
            n=KEYCAPS[index], name=escape(name), revenue=money(product.revenue), units=number(product.units, locale)))
    if not data.top_products:
        lines.append(_("Nothing sold in this period."))
    return fit(lines)


def funnel_step_names() -> dict[str, str]:
    return {
        "posted": _("Product cards posted"),
        "buy_pressed": _("Buy pressed"),
        "checkout_started": _("Checkout started"),
        "confirmed": _("Orders confirmed"),
        "paid": _("Paid"),
        "fulfilled": _("Fulfilled"),
    }


def funnel_caption(data: Funnel, title: str, locale: str) -> str:
    lines = _header(StatsScreen.FUNNEL, title, _period(data.start, data.end, locale))
    names = funnel_step_names()
    for index, (step, count) in enumerate(zip(data.steps, data.counts, strict=True)):
        line = _("{n} {name}: <b>{count}</b>").format(n=KEYCAPS[index], name=names.get(step, step),
                                                      count=number(count, locale))
        if index and data.counts[index - 1]:
            line += " · " + _("{share} of the step before").format(share=percent(count / data.counts[index - 1]))
        lines.append(line)
    return fit(lines)


def engagement_caption(data: Engagement, title: str, locale: str) -> str:
    lines = _header(StatsScreen.ENGAGEMENT, title, _("Now, and invites of the last 30 days"))
    lines.append(_("{n} Live check-in streaks by length in days: <b>{count}</b> members").format(
        n=KEYCAPS[0], count=number(data.members_with_streak, locale)))
    figures = engagement_figures(data, locale)
    lines.append(_("{n} K-factor <b>{k}</b>: {invites} invites that counted, from {inviters} inviters, per {members} "
                   "members").format(n=KEYCAPS[1], k=figures[0], invites=number(data.invites, locale),
                                     inviters=number(data.inviters, locale), members=number(data.members, locale)))
    if len(figures) > 1 and data.winback is not None:
        won = data.winback
        lines.append(_("{n} Win-back lift <b>{lift}</b>: {back} of {treated} came back after a coupon, "
                       "{held_back} of {holdout} without").format(
            n=KEYCAPS[2], lift=figures[1], back=won.treated_back, treated=won.treated, held_back=won.holdout_back,
            holdout=won.holdout))
    return fit(lines)


def caption(screen: StatsScreen, data: Any, *, title: str, timezone: str, locale: str) -> str:
    if screen is StatsScreen.ACTIVITY:
        return activity_caption(data, title, timezone, locale)
    return {
        StatsScreen.OVERVIEW: overview_caption, StatsScreen.GROWTH: growth_caption,
        StatsScreen.RETENTION: retention_caption, StatsScreen.SALES: sales_caption,
        StatsScreen.FUNNEL: funnel_caption, StatsScreen.ENGAGEMENT: engagement_caption,
    }[screen](data, title, locale)


def csv_bytes(rows: list[list]) -> bytes:
    """Rows as CSV in UTF-8 with a BOM, so that Excel reads Chinese names."""
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")
