"""/admin → Campaigns as leaders read it: the buttons' callback data, a campaign's settings in plain
words, the dry run, the message preview and the results. The screens themselves are built in
handlers/admin/campaigns.py and campaign_runs.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from html import escape

from aiogram.filters.callback_data import CallbackData
from aiogram.utils.i18n import gettext as _

from bot.core.localtime import local_time
from bot.services.campaign_config import PLACEHOLDERS, WinbackConfig
from bot.services.campaign_history import RunSummary
from bot.services.campaigns import MIN_ARM, DryRun, Outcome, Outgoing, Sample
from bot.services.churn import Audience, RiskRule
from bot.services.money import format_money
from bot.views.winback_text import message, not_sent_lines
from models import Community
from models.campaign import Arm

BAR_WIDTH = 10
# A made-up code for previews: no coupon is issued until a run sends.
SAMPLE_CODE = "WB7K2Q9XPR"


class CampaignOp(StrEnum):
    LIST = "l"
    NEW = "n"
    OPEN = "o"
    SET = "s"
    DRY_RUN = "d"
    RUN = "r"
    RUN_GO = "g"
    RESULTS = "res"


class CampaignOption(StrEnum):
    AUDIENCE = "au"
    RULE = "ru"
    OFFER = "of"
    MESSAGE = "ms"
    SEND_TIME = "st"
    QUIET = "qh"
    CAP = "cd"
    HOLDOUT = "ho"
    WINDOW = "wd"
    ACTIVITY = "ca"
    ENABLED = "en"
    NAME = "nm"


class CampaignAdmin(CallbackData, prefix="cm"):
    """A campaign screen's button. `item`: a toggle's wanted value (1 on, 0 off), the audience
    (1 any active member), a run's id (results), or the newest run when Run now was asked (so a
    second tap on the confirmation starts nothing)."""

    community_id: int
    op: CampaignOp
    campaign_id: int = 0
    option: CampaignOption | None = None
    item: int = 0


class CampaignFormOp(StrEnum):
    FIXED = "kf"
    PERCENT = "kp"
    SKIP = "s"
    SAVE = "v"
    DEFAULT = "d"
    BACK = "b"
    CANCEL = "c"


class CampaignFormNav(CallbackData, prefix="cmf"):
    """Buttons of a campaign's setting forms; the community and campaign are in the FSM data,
    `step` names the step a button was shown for."""

    op: CampaignFormOp
    step: str


def on_off(value: bool) -> str:
    return _("on") if value else _("off")


def audience_text(audience: Audience) -> str:
    return _("members who bought before") if audience is Audience.BUYERS else _("any member active before")


def rule_text(config: WinbackConfig) -> str:
    if config.rule is RiskRule.PERSONAL:
        return _("personal: each member against their own rhythm")
    return _("fixed: {days} days without activity").format(days=config.fixed_days)


def placeholders_text() -> str:
    return " ".join("{" + p + "}" for p in PLACEHOLDERS)


def sample_outgoing(*, name: str, product: str | None, locale: str, config: WinbackConfig, now: datetime) -> Outgoing:
    """What a member's message would be built from, with a made-up code (nothing is issued)."""
    days = config.offer.valid_days
    return Outgoing(send_id=0, user_id=0, name=name, locale=locale, coupon_code=SAMPLE_CODE,
                    expires_at=now + timedelta(days=days) if days is not None else None, product=product)


def preview(outgoing: Outgoing, community: Community, config: WinbackConfig, default_locale: str) -> str:
    body, _markup = message(outgoing, community, config, default_locale)
    return _("Preview for {name}:").format(name=escape(outgoing.name)) + "\n<blockquote>" + body + "</blockquote>"


def made_up_preview(community: Community, config: WinbackConfig, locale: str, now: datetime) -> str:
    outgoing = sample_outgoing(name=_("Anna"), product=_("Honey"), locale=locale, config=config, now=now)
    return preview(outgoing, community, config, locale)


def setting_lines(config: WinbackConfig, community: Community, offer: str) -> list[str]:
    """Every setting in plain words; `offer` is the coupon's terms in one line."""
    activity = (_("Orders and renewed activity (a message, a check-in) count as coming back.") if config.count_activity
                else _("Only an order counts as coming back."))
    return [
        _("Audience: {audience}").format(audience=audience_text(config.audience)),
        _("Risk rule: {rule}").format(rule=rule_text(config)),
        _("Offer: {terms}").format(terms=offer),
        _("Message: {which}").format(which=_("the bot's own text, in each member's language") if config.message is None
                                     else _("your text")),
        _("Schedule: daily at {time}; quiet hours {start}–{end} ({tz}): nothing is sent then.").format(
            time=config.send_time, start=config.quiet_start, end=config.quiet_end, tz=community.timezone),
        _("Frequency cap: at most one win-back per member in {days} days, across all campaigns.").format(
            days=config.cap_days),
        _("Holdout: {percent}% of the chosen members get nothing, to measure the effect.").format(
            percent=config.holdout_percent),
        _("Attribution window: {days} days.").format(days=config.window_days) + " " + activity,
    ]


# --- the dry run ----------------------------------------------------------------------------------

def risk_bars(histogram: list[int]) -> str:
    """Scanned members by risk band, as bars scaled to the largest band, in a monospace block."""
    most = max(histogram, default=0)
    lines = []
    for index, count in enumerate(histogram):
        bar = "█" * round(BAR_WIDTH * count / most) if most else ""
        if count and not bar:
            bar = "▏"
        lines.append(f"{index / 10:.1f}–{(index + 1) / 10:.1f} {bar} {count}")
    return "<pre>" + "\n".join(lines) + "</pre>"


def sample_line(sample: Sample, config: WinbackConfig) -> str:
    m = sample.member
    risk = f"{m.risk:.2f}"
    if config.rule is RiskRule.PERSONAL:
        line = _("{name}: silent {days} days, usually back within {gap} (risk {risk})").format(
            name=escape(sample.name), days=m.days_silent, gap=round(m.typical_gap), risk=risk)
    else:
        line = _("{name}: silent {days} days, the rule is {gap} (risk {risk})").format(
            name=escape(sample.name), days=m.days_silent, gap=config.fixed_days, risk=risk)
    line += ", " + _("orders: {n}").format(n=m.orders)
    if sample.product:
        line += ", " + _("favourite: {product}").format(product=escape(sample.product))
    if sample.arm is Arm.HOLDOUT:
        line += " " + _("(held out)")
    return "• " + line


def dry_run_text(name: str, dry: DryRun, config: WinbackConfig, community: Community, locale: str,
                 now: datetime) -> str:
    plan, scan = dry.plan, dry.plan.scan
    lines = [_("<b>🔍 Dry run · {name}</b>").format(name=escape(name)),
             _("If it ran now: {treatment} members get a message, {holdout} are held out to measure the effect.").format(
                 treatment=plan.treatment, holdout=plan.holdout),
             _("{drifting} of {scanned} members scored are drifting. Never targeted: {new} who joined recently, "
               "{recent} who bought recently.").format(drifting=len(scan.drifting), scanned=scan.scanned,
                                                        new=scan.excluded_new, recent=scan.excluded_recent_buyers)]
    skipped = not_sent_lines(plan.skipped, config, locale)
    if skipped:
        lines += [_("Drifting but not messaged:"), *skipped]
    lines += [_("Members by churn risk (0 = sure to come back, 1 = gone):"), risk_bars(scan.histogram)]
    if dry.samples:
        lines.append(_("Examples:"))
        lines += [sample_line(s, config) for s in dry.samples]
    if dry.quiet_now:
        lines.append(_("⚠️ It is quiet hours now ({start}–{end}, {tz}): a run started now waits until {time}.").format(
            start=config.quiet_start, end=config.quiet_end, tz=community.timezone,
            time=local_time(config.quiet_ends(now, community.timezone), community, "%H:%M")))
    if dry.samples:
        first = dry.samples[0]
        outgoing = sample_outgoing(name=first.name, product=first.product, locale=locale, config=config, now=now)
        lines += ["", preview(outgoing, community, config, locale)]
    return "\n".join(lines)


# --- results --------------------------------------------------------------------------------------

def rate_text(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def points_text(share: float) -> str:
    return f"{share * 100:+.1f}"


def run_label(run: RunSummary, community: Community) -> str:
    return _("{date}: {sent} sent, {holdout} held out").format(
        date=local_time(run.started_at, community, "%Y-%m-%d"), sent=run.sent, holdout=run.holdout)


def results_text(name: str, result: Outcome, community: Community, locale: str, *,
                 run: RunSummary | None = None, legend: bool = False) -> str:
    """The outcome in words; short enough for a photo's caption (1024 characters)."""
    title = (_("<b>📈 Results · {name}</b>").format(name=escape(name)) if run is None else
             _("<b>📈 Results · {name} · run of {date}</b>").format(
                 name=escape(name), date=local_time(run.started_at, community, "%Y-%m-%d")))
    t, h = result.treatment, result.holdout
    lines = [title,
             _("Messaged: {n} members, {returned} came back ({rate})").format(
                 n=t.members, returned=t.returned, rate=rate_text(t.rate)),
             _("Held out: {n} members, {returned} came back ({rate})").format(
                 n=h.members, returned=h.returned, rate=rate_text(h.rate))]
    if result.lift is not None:
        lift = result.lift
        lines.append(_("Lift: {absolute} percentage points (95% interval {low} to {high})").format(
            absolute=points_text(lift.absolute), low=points_text(lift.interval.low),
            high=points_text(lift.interval.high)))
        lines.append(_("Relative lift: {relative}").format(relative=f"{lift.relative * 100:+.0f}%")
                     if lift.relative is not None else
                     _("Relative lift: none to compare (nobody held out came back)"))
    elif result.reason == "small":
        lines.append(_("Not enough data yet: each group needs at least {min} members to compare.").format(min=MIN_ARM))
    elif result.window_ends is not None:
        lines.append(_("Not enough data yet: the attribution window closes on {date}.").format(
            date=local_time(result.window_ends, community, "%Y-%m-%d %H:%M")))
    else:
        lines.append(_("Not enough data yet: it has not run so far."))
    lines.append(_("Messages sent: {sent} · coupons redeemed: {redeemed}").format(sent=result.sent,
                                                                                  redeemed=result.redeemed))
    lines.append(_("Revenue from members who came back: {messaged} messaged, {held} held out").format(
        messaged=format_money(t.revenue, community.currency, locale),
        held=format_money(h.revenue, community.currency, locale)))
    if legend:
        lines.append(_("Chart: 🟦 messaged, 🟧 held out; each bar the share who came back, its whisker the 95% "
                       "interval."))
    return "\n".join(lines)
