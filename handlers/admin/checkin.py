"""/admin → Check-in & points: the settings, the streak milestones and today's figures.

Toggles change at a press; every other option is a one-step form (`CheckinSettingsForm`, the step
is named after the option) with Back and Cancel, asked again with the reason when an answer does
not fit. Every change goes through `checkin_settings.update_checkin_settings`, which validates and
audits it. The rewards catalogue is in checkin_rewards.py, manual adjustments in checkin_adjust.py;
all three share this module's screen and its form buttons.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from html import escape

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import checkins, points
from bot.services.checkin_settings import (
    MILESTONE_DAY_MIN,
    MILESTONE_POINTS_MAX,
    MILESTONES_MAX,
    STREAK_MAX_DAYS,
    CheckinSettings,
    CouponTerms,
    checkin_settings,
    option_bounds,
    parse_milestone_day,
    parse_milestones,
    parse_option_number,
    parse_option_or_off,
    parse_quiet_hours,
    parse_time_or_off,
    update_checkin_settings,
    with_coupon_milestone,
    with_point_milestones,
)
from bot.services.errors import DomainError
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views.errors_text import error_text
from bot.views.keyboards import (
    AdminNav,
    CheckinAdmin,
    CheckinFormNav,
    CheckinFormOp,
    CheckinOp,
    CheckinOption,
    CheckinSet,
    Section,
)
from bot.views.render import edit_or_send
from handlers.admin.coupon_terms import terms_text
from handlers.admin.form_nav import ask_again, form_press, step_name
from handlers.admin.menu import back_button, form_guard, guard
from handlers.forms import CheckinSettingsForm, PointsAdjustForm, RewardForm
from models import Community

router = Router(name=__name__)

TOGGLES = {CheckinOption.ENABLED: "enabled", CheckinOption.PIN_CARD: "pin_card", CheckinOption.FREEZE: "freeze_enabled"}
FORMS = {
    CheckinOption.CARD_TIME: CheckinSettingsForm.card_time,
    CheckinOption.BASE_POINTS: CheckinSettingsForm.base_points,
    CheckinOption.DAILY_INCREMENT: CheckinSettingsForm.daily_increment,
    CheckinOption.INCREMENT_CAP: CheckinSettingsForm.increment_cap_days,
    CheckinOption.MAKEUP_DAYS: CheckinSettingsForm.makeup_days,
    CheckinOption.MAKEUP_COST: CheckinSettingsForm.makeup_cost,
    CheckinOption.MAKEUPS_PER_MONTH: CheckinSettingsForm.makeups_per_month,
    CheckinOption.PURCHASE_POINTS: CheckinSettingsForm.purchase_points_per_unit,
    CheckinOption.REMINDER_HOUR: CheckinSettingsForm.reminder_hour,
    CheckinOption.EXPIRY_MONTHS: CheckinSettingsForm.points_expiry_months,
    CheckinOption.QUIET_HOURS: CheckinSettingsForm.quiet_hours,
}
# Steps edited from the milestones screen; Back and a saved answer return there.
MILESTONE_STEPS = {CheckinSettingsForm.milestones.state, CheckinSettingsForm.milestone_day.state}
# What the step's "off" button stores.
OFF_CHANGES: dict[str, Callable[[CheckinSettings], dict[str, object]]] = {
    CheckinSettingsForm.card_time.state: lambda opts: {"card_time": None},
    CheckinSettingsForm.reminder_hour.state: lambda opts: {"reminder_hour": None},
    CheckinSettingsForm.points_expiry_months.state: lambda opts: {"points_expiry_months": 0},
    CheckinSettingsForm.quiet_hours.state: lambda opts: {"quiet_start": None, "quiet_end": None},
    CheckinSettingsForm.milestones.state: lambda opts: {"milestones": with_point_milestones(opts, {})},
}
CHART_WIDTH = 10


def _now() -> datetime:
    return datetime.now(timezone.utc)


def on_off(value: bool) -> str:
    return _("on") if value else _("off")


# --- buttons the three check-in forms share -------------------------------------------------------

def form_button(text: str, op: CheckinFormOp, step: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=CheckinFormNav(op=op, step=step_name(step)).pack())


def form_nav_row(step: str) -> list[InlineKeyboardButton]:
    return [form_button(_("« Back"), CheckinFormOp.BACK, step), form_button(_("✖ Cancel"), CheckinFormOp.CANCEL, step)]


# --- the main screen ------------------------------------------------------------------------------

def curve_text(opts: CheckinSettings) -> str:
    if opts.daily_increment == 0 or opts.increment_cap_days == 1:
        return _("Every check-in earns {points} points.").format(points=opts.base_points)
    return _("Day 1 of a streak earns {base} points, each next day {step} more, up to {top} from day {cap} on.").format(
        base=opts.base_points, step=opts.daily_increment, top=opts.points_for(opts.increment_cap_days),
        cap=opts.increment_cap_days)


def milestone_text(day: int, reward: int | CouponTerms, currency: str) -> str:
    if isinstance(reward, int):
        return _("Day {day}: +{points} points").format(day=day, points=reward)
    return _("Day {day}: a coupon, {terms}").format(day=day, terms=terms_text(reward, currency))


def checkin_view(community: Community, reward_count: int) -> tuple[str, InlineKeyboardMarkup]:
    opts, cid = checkin_settings(community), community.id

    def option(text: str, which: CheckinOption) -> InlineKeyboardButton:
        turn_on = not getattr(opts, TOGGLES[which]) if which in TOGGLES else None
        return InlineKeyboardButton(text=text, callback_data=CheckinSet(option=which, community_id=cid,
                                                                        turn_on=turn_on).pack())

    def action(text: str, op: CheckinOp) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=CheckinAdmin(op=op, community_id=cid).pack())

    milestones = ", ".join(milestone_text(day, reward, community.currency) for day, reward in opts.milestones.items())
    lines = [
        _("<b>Check-in &amp; points · {title}</b>").format(title=escape(community.title)),
        curve_text(opts),
        _("Milestones: {list}").format(list=milestones or _("none")),
        _("Press an option to change it. Times are in {tz}.").format(tz=community.timezone),
    ]
    quiet = f"{opts.quiet_start}–{opts.quiet_end}" if opts.quiet_start else _("off")
    reminder = f"{opts.reminder_hour:02d}:00" if opts.reminder_hour is not None else _("off")
    expiry = (_("after {n} months").format(n=opts.points_expiry_months) if opts.points_expiry_months else _("never"))
    rows = [
        [option(_("✅ Check-in: {state}").format(state=on_off(opts.enabled)), CheckinOption.ENABLED)],
        [option(_("🗓 Daily card: {time}").format(time=opts.card_time or _("off")), CheckinOption.CARD_TIME),
         option(_("📌 Pin the card: {state}").format(state=on_off(opts.pin_card)), CheckinOption.PIN_CARD)],
        [option(_("🎯 Day 1: {n} points").format(n=opts.base_points), CheckinOption.BASE_POINTS),
         option(_("📈 Each day: +{n}").format(n=opts.daily_increment), CheckinOption.DAILY_INCREMENT)],
        [option(_("⛰ Growth stops at day {n}").format(n=opts.increment_cap_days), CheckinOption.INCREMENT_CAP),
         action(_("🏅 Milestones ({n})").format(n=len(opts.milestones)), CheckinOp.MILESTONES)],
        [option(_("↩️ Make-up: last {n} days").format(n=opts.makeup_days), CheckinOption.MAKEUP_DAYS),
         option(_("💸 Make-up cost: {n}").format(n=opts.makeup_cost), CheckinOption.MAKEUP_COST)],
        [option(_("🔢 Make-ups a month: {n}").format(n=opts.makeups_per_month), CheckinOption.MAKEUPS_PER_MONTH),
         option(_("🧊 Streak freezes: {state}").format(state=on_off(opts.freeze_enabled)), CheckinOption.FREEZE)],
        [option(_("🛍 Points per {currency} spent: {n}").format(currency=community.currency,
                                                                n=opts.purchase_points_per_unit),
                CheckinOption.PURCHASE_POINTS)],
        [option(_("⏰ Reminder: {time}").format(time=reminder), CheckinOption.REMINDER_HOUR),
         option(_("🌙 Quiet hours: {hours}").format(hours=quiet), CheckinOption.QUIET_HOURS)],
        [option(_("⌛ Points expire: {when}").format(when=expiry), CheckinOption.EXPIRY_MONTHS)],
        [action(_("🎁 Rewards ({n})").format(n=reward_count), CheckinOp.REWARDS),
         action(_("✍️ Adjust points"), CheckinOp.ADJUST)],
        [action(_("📊 Today"), CheckinOp.TODAY)],
        [back_button(cid)],
    ]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def main_view(session: AsyncSession, community: Community) -> tuple[str, InlineKeyboardMarkup]:
    return checkin_view(community, len(await points.rewards(session, community_id=community.id)))


def milestones_view(community: Community) -> tuple[str, InlineKeyboardMarkup]:
    opts, cid = checkin_settings(community), community.id
    lines = [_("<b>Milestones · {title}</b>").format(title=escape(community.title)),
             _("A bonus given once, when a streak reaches the day.")]
    listed = [milestone_text(day, reward, community.currency) for day, reward in opts.milestones.items()]
    lines += listed or [_("No milestones yet.")]

    def action(text: str, op: CheckinOp, item: int = 0) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=CheckinAdmin(op=op, community_id=cid, item=item).pack())

    removals = [action(_("🗑 Day {day}").format(day=day), CheckinOp.MILESTONE_REMOVE, day) for day in opts.milestones]
    rows = [[action(_("✏️ Point milestones"), CheckinOp.MILESTONE_POINTS),
             action(_("🎟 Add a coupon milestone"), CheckinOp.MILESTONE_COUPON)]]
    rows += [removals[i:i + 3] for i in range(0, len(removals), 3)]
    rows.append([back_button(cid, Section.CHECKIN)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


# --- today ----------------------------------------------------------------------------------------

def streak_chart(stats: checkins.TodayStats) -> str:
    """Members by current streak as bars scaled to the largest bucket, in a monospace block."""
    labels = [str(b.low) if b.high == b.low else f"{b.low}–{b.high}" if b.high is not None else f"{b.low}+"
              for b in stats.buckets]
    width = max(len(label) for label in labels)
    most = max((b.members for b in stats.buckets), default=0)
    lines = []
    for label, bucket in zip(labels, stats.buckets, strict=True):
        bar = "█" * round(CHART_WIDTH * bucket.members / most) if most else ""
        if bucket.members and not bar:
            bar = "▏"
        lines.append(f"{label.ljust(width)} {bar} {bucket.members}")
    return "<pre>" + "\n".join(lines) + "</pre>"


async def today_view(session: AsyncSession, community: Community) -> tuple[str, InlineKeyboardMarkup]:
    stats = await checkins.today_stats(session, community=community, now=_now())
    percent = round(100 * stats.checked_in / stats.members) if stats.members else 0
    lines = [_("<b>Today · {title}</b> ({day}, {tz})").format(title=escape(community.title), day=stats.day.isoformat(),
                                                               tz=community.timezone)]
    if not checkin_settings(community).enabled:
        lines.append(_("Check-in is off."))
    lines += [_("Checked in: {checked} of {members} members ({percent}%)").format(
                  checked=stats.checked_in, members=stats.members, percent=percent),
              _("Members by current streak (days):"), streak_chart(stats)]
    refresh = CheckinAdmin(op=CheckinOp.TODAY, community_id=community.id).pack()
    rows = [[InlineKeyboardButton(text=_("🔄 Refresh"), callback_data=refresh)],
            [back_button(community.id, Section.CHECKIN)]]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


# --- the settings forms ---------------------------------------------------------------------------

def _shown(key: str, opts: CheckinSettings) -> str:
    """An option's value as its form shows it under "Now:"."""
    if key == "card_time":
        return opts.card_time or _("off")
    if key == "reminder_hour":
        return str(opts.reminder_hour) if opts.reminder_hour is not None else _("off")
    if key == "points_expiry_months":
        return str(opts.points_expiry_months) if opts.points_expiry_months else _("never")
    if key == "quiet_hours":
        return f"{opts.quiet_start}-{opts.quiet_end}" if opts.quiet_start else _("off")
    if key == "milestones":
        typed = ", ".join(f"{day}:{reward}" for day, reward in opts.milestones.items() if isinstance(reward, int))
        return typed or _("none")
    return str(getattr(opts, key))


def prompt(step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    key = step_name(step)
    if key == "milestone_day":
        text = _("At which streak day does a member get the coupon of “{title}”? Send a whole number from {min} to "
                 "{max}.").format(title=escape(data["reward_title"]), min=MILESTONE_DAY_MIN, max=STREAK_MAX_DAYS)
        return text, InlineKeyboardMarkup(inline_keyboard=[form_nav_row(step)])
    if key == "milestones":
        text = _("Send the point milestones as streak days and bonus points, for example 7:20, 30:100 (days "
                 "{min_day} to {max_day}, 1 to {max_points} points, at most {max} milestones), or off for none. "
                 "Coupon milestones stay as they are.\nNow: {value}").format(
            min_day=MILESTONE_DAY_MIN, max_day=STREAK_MAX_DAYS, max_points=MILESTONE_POINTS_MAX, max=MILESTONES_MAX,
            value=data["current"])
        off = _("No point milestones")
    elif key == "card_time":
        text = _("At what time ({tz}) should I post the daily check-in card in the group? Send HH:MM, for example "
                 "08:00, or off for no card.\nNow: {value}").format(tz=data["tz"], value=data["current"])
        off = _("No card")
    elif key == "quiet_hours":
        text = _("During which hours ({tz}) should I send no reminders? Send a range such as 22:00-08:00, or off.\n"
                 "Now: {value}").format(tz=data["tz"], value=data["current"])
        off = _("No quiet hours")
    else:
        low, high = option_bounds(key)
        texts = {
            "base_points": _("How many points does day 1 of a streak earn? Send a whole number from {min} to "
                             "{max}.\nNow: {value}"),
            "daily_increment": _("How many more points does each next day of a streak earn (0: every day the same)? "
                                 "Send a whole number from {min} to {max}.\nNow: {value}"),
            "increment_cap_days": _("From which day of a streak do the points stop growing? Send a whole number "
                                    "from {min} to {max}.\nNow: {value}"),
            "makeup_days": _("How many days back may a member make up a missed day (0: no make-ups)? Send a whole "
                             "number from {min} to {max}.\nNow: {value}"),
            "makeup_cost": _("How many points does a make-up cost? Send a whole number from {min} to {max}.\n"
                             "Now: {value}"),
            "makeups_per_month": _("How many make-ups may a member use in a calendar month? Send a whole number "
                                   "from {min} to {max}.\nNow: {value}"),
            "purchase_points_per_unit": _("How many points does a member earn for each 1 {currency} paid (0: none)? "
                                          "Send a whole number from {min} to {max}.\nNow: {value}"),
            "reminder_hour": _("From which hour ({tz}) should members about to lose a streak of 3 days or more get a "
                               "reminder? Send an hour from {min} to {max}, or off.\nNow: {value}"),
            "points_expiry_months": _("After how many months do points expire, oldest first? Send a whole number from "
                                      "{min} to {max} (0: never), or off.\nNow: {value}"),
        }
        text = texts[key].format(min=low, max=high, value=data["current"], tz=data["tz"], currency=data["currency"])
        off = {"reminder_hour": _("No reminders"), "points_expiry_months": _("Points never expire")}.get(key)
    rows = [[form_button(off, CheckinFormOp.OFF, step)]] if off else []
    rows.append(form_nav_row(step))
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def _start_form(query: CallbackQuery, state: FSMContext, community: Community, step: str,
                      **extra: object) -> None:
    opts = checkin_settings(community)
    current = "" if step == CheckinSettingsForm.milestone_day.state else _shown(step_name(step), opts)
    data = {"community_id": community.id, "tz": community.timezone, "currency": community.currency, "current": current,
            **extra}
    await state.set_state(step)
    await state.set_data(data)
    await query.answer()
    await edit_or_send(query.message, *prompt(step, data))


def _typed_changes(step: str, raw: str, opts: CheckinSettings) -> dict[str, object]:
    """Parse one typed answer into the options it changes, or raise the DomainError that says why not."""
    key = step_name(step)
    if key == "card_time":
        return {"card_time": parse_time_or_off(raw)}
    if key == "quiet_hours":
        start, end = parse_quiet_hours(raw)
        return {"quiet_start": start, "quiet_end": end}
    if key == "milestones":
        return {"milestones": with_point_milestones(opts, parse_milestones(raw))}
    if key in ("reminder_hour", "points_expiry_months"):
        return {key: parse_option_or_off(key, raw)}
    return {key: parse_option_number(key, raw)}


async def _save(session: AsyncSession, community: Community, actor: Actor, changes: dict[str, object]) -> None:
    await update_checkin_settings(session, community=community, actor_id=actor.user.id, now=_now(), **changes)


async def _after_save(session: AsyncSession, community: Community, step: str) -> tuple[str, InlineKeyboardMarkup]:
    return milestones_view(community) if step in MILESTONE_STEPS else await main_view(session, community)


# --- presses --------------------------------------------------------------------------------------

@router.callback_query(AdminNav.filter(F.section == Section.CHECKIN))
async def on_checkin(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor,
                     state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, *await main_view(session, community))


@router.callback_query(CheckinSet.filter())
async def on_option(query: CallbackQuery, callback_data: CheckinSet, session: AsyncSession, actor: Actor,
                    state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    option = callback_data.option
    if option in TOGGLES:
        key = TOGGLES[option]
        now_on = getattr(checkin_settings(community), key)
        turn_on = not now_on if callback_data.turn_on is None else callback_data.turn_on
        if turn_on != now_on:
            await _save(session, community, actor, {key: turn_on})
        await query.answer(_("Saved."))
        await edit_or_send(query.message, *await main_view(session, community))
        return
    await _start_form(query, state, community, FORMS[option].state)


@router.callback_query(CheckinAdmin.filter(F.op.in_({CheckinOp.MILESTONES, CheckinOp.MILESTONE_POINTS,
                                                     CheckinOp.MILESTONE_REMOVE, CheckinOp.MILESTONE_COUPON,
                                                     CheckinOp.MILESTONE_COUPON_PICK})))
async def on_milestones(query: CallbackQuery, callback_data: CheckinAdmin, session: AsyncSession, actor: Actor,
                        state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    op, opts = callback_data.op, checkin_settings(community)
    if op is CheckinOp.MILESTONE_POINTS:
        await _start_form(query, state, community, CheckinSettingsForm.milestones.state)
        return
    if op is CheckinOp.MILESTONE_COUPON:
        await query.answer()
        await edit_or_send(query.message, *await _coupon_templates_view(session, community))
        return
    if op is CheckinOp.MILESTONE_COUPON_PICK:
        try:
            reward = await points.get_reward(session, community_id=community.id, reward_id=callback_data.item)
        except DomainError as err:
            await query.answer(error_text(err), show_alert=True)
            await edit_or_send(query.message, *await _coupon_templates_view(session, community))
            return
        await _start_form(query, state, community, CheckinSettingsForm.milestone_day.state,
                          reward_id=reward.id, reward_title=reward.title)
        return
    await state.clear()
    if op is CheckinOp.MILESTONE_REMOVE and callback_data.item in opts.milestones:
        kept = {day: reward for day, reward in opts.milestones.items() if day != callback_data.item}
        await _save(session, community, actor, {"milestones": kept})
        await query.answer(_("Removed."))
    else:
        await query.answer()
    await edit_or_send(query.message, *milestones_view(community))


async def _coupon_templates_view(session: AsyncSession, community: Community) -> tuple[str, InlineKeyboardMarkup]:
    """The rewards whose coupon terms a milestone can give."""
    listed = await points.rewards(session, community_id=community.id)
    cid = community.id
    if listed:
        text = _("Which coupon should the milestone give? It copies the coupon of a reward in the catalogue; changing "
                 "the reward later does not change the milestone.")
    else:
        text = _("A coupon milestone copies the coupon of a reward in the catalogue. Add a reward first.")
    rows = [[InlineKeyboardButton(text=_("🎁 {title}").format(title=r.title), callback_data=CheckinAdmin(
        op=CheckinOp.MILESTONE_COUPON_PICK, community_id=cid, item=r.id).pack())] for r in listed]
    if not listed:
        rewards = CheckinAdmin(op=CheckinOp.REWARDS, community_id=cid).pack()
        rows.append([InlineKeyboardButton(text=_("🎁 Rewards"), callback_data=rewards)])
    back = CheckinAdmin(op=CheckinOp.MILESTONES, community_id=cid).pack()
    rows.append([InlineKeyboardButton(text=_("« Back"), callback_data=back)])
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


@router.callback_query(CheckinAdmin.filter(F.op == CheckinOp.TODAY))
async def on_today(query: CallbackQuery, callback_data: CheckinAdmin, session: AsyncSession, actor: Actor) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await query.answer()
    await edit_or_send(query.message, *await today_view(session, community))


@router.callback_query(CheckinFormNav.filter(), StateFilter(CheckinSettingsForm))
async def on_form_button(query: CallbackQuery, callback_data: CheckinFormNav, session: AsyncSession, actor: Actor,
                         state: FSMContext) -> None:
    pressed = await form_press(query, callback_data, session, actor, state, CheckinSettingsForm)
    if pressed is None:
        return
    current, _data, community = pressed
    if callback_data.op is CheckinFormOp.BACK:
        await state.clear()
        await query.answer()
        await edit_or_send(query.message, *await _after_save(session, community, current))
        return
    if callback_data.op is CheckinFormOp.OFF and current in OFF_CHANGES:
        await _save(session, community, actor, OFF_CHANGES[current](checkin_settings(community)))
        await state.clear()
        await query.answer(_("Saved."))
        await edit_or_send(query.message, *await _after_save(session, community, current))
        return
    await query.answer(_("This button is no longer valid."), show_alert=True)


# A press on any check-in form's button when no check-in form is open (the form was finished,
# cancelled or replaced): a toast only, so a double tap leaves the screen the first tap made.
@router.callback_query(CheckinFormNav.filter(), ~StateFilter(CheckinSettingsForm, RewardForm, PointsAdjustForm))
async def on_stale_form_button(query: CallbackQuery) -> None:
    await query.answer(_("This form is no longer open."))


# --- typed answers --------------------------------------------------------------------------------

@router.message(StateFilter(CheckinSettingsForm), F.chat.type == "private", ~F.text, SENT_BY_PERSON)
async def on_form_not_text(message: Message, state: FSMContext) -> None:
    await ask_again(message, _("Please answer with text."), prompt(await state.get_state(), await state.get_data()))


@router.message(StateFilter(CheckinSettingsForm), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_answer(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    current, data = await state.get_state(), await state.get_data()
    community = await form_guard(message, session, actor, state)
    if community is None:
        return
    opts = checkin_settings(community)
    try:
        if current == CheckinSettingsForm.milestone_day.state:
            day = parse_milestone_day(message.text)
            reward = await points.get_reward(session, community_id=community.id, reward_id=data["reward_id"])
            terms = CouponTerms(kind=reward.kind, value=reward.value, cap=reward.cap, min_spend=reward.min_spend,
                                valid_days=reward.valid_days)
            changes: dict[str, object] = {"milestones": with_coupon_milestone(opts, day, terms)}
        else:
            changes = _typed_changes(current, message.text, opts)
        await _save(session, community, actor, changes)
    except DomainError as err:
        if err.code in ("points_reward_deleted", "points_reward_unknown"):
            await state.clear()
            await ask_again(message, error_text(err), milestones_view(community))
            return
        await ask_again(message, error_text(err, currency=community.currency), prompt(current, data))
        return
    await state.clear()
    text, markup = await _after_save(session, community, current)
    await message.answer(_("Saved.") + "\n\n" + text, reply_markup=markup)
