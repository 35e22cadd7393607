"""/admin → 📣 Campaigns: the community's win-back campaigns, a new one, and each campaign's settings.

The screens and the changes are dated by the dispatcher's `clock` when tests or the demo set one
(the made-up preview's expiry follows it), or the real time.

Switches (audience, renewed activity, on/off) change at a press and carry the value they set, so a
double tap sets it once. Every other setting is a one-step form (`CampaignForm`, the step named
after the option) with Back and Cancel; the offer is the coupon-terms form the check-in rewards and
invite levels use. Answers are checked here for their shape and by `campaigns.update_config` as a
whole (a run time inside the quiet hours is refused there); a refusal names the problem above the
question again. The dry run, Run now and the results are in campaign_runs.py.
"""

from __future__ import annotations

import re
from datetime import datetime
from html import escape

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InaccessibleMessage, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.localtime import local_time
from bot.core.numbers import whole_number
from bot.services import campaign_history, campaigns
from bot.services.campaign_config import MESSAGE_MAX, WinbackConfig, winback_config
from bot.services.churn import Audience, RiskRule
from bot.services.errors import DomainError
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views.campaign_admin import (
    CampaignAdmin,
    CampaignFormNav,
    CampaignFormOp,
    CampaignOp,
    CampaignOption,
    made_up_preview,
    on_off,
    placeholders_text,
    setting_lines,
)
from bot.views.errors_text import error_text
from bot.views.keyboards import AdminNav, Section
from bot.views.render import edit_or_send
from handlers.admin.coupon_terms import (
    AMOUNT_STEPS,
    VALID_DAYS_MAX,
    coupon_line,
    form_steps,
    parse_amount,
    parse_valid_days,
    step_after,
    terms_button_answer,
    terms_of,
    terms_prompt,
    terms_text,
)
from handlers.admin.form_nav import ask_again, form_press, not_text_hint, step_name, typed_answer_step
from handlers.admin.menu import back_button, guard
from handlers.group.checkin import Clock, received_at
from models import Campaign, Community

router = Router(name=__name__)


class CampaignForm(StatesGroup):
    name = State()
    fixed_days = State()
    message = State()
    send_time = State()
    quiet_hours = State()
    cap_days = State()
    holdout_percent = State()
    window_days = State()
    kind = State()
    value = State()
    cap = State()
    min_spend = State()
    valid_days = State()
    preview = State()


FORMS = {
    CampaignOption.NAME: CampaignForm.name,
    CampaignOption.RULE: CampaignForm.fixed_days,
    CampaignOption.MESSAGE: CampaignForm.message,
    CampaignOption.SEND_TIME: CampaignForm.send_time,
    CampaignOption.QUIET: CampaignForm.quiet_hours,
    CampaignOption.CAP: CampaignForm.cap_days,
    CampaignOption.HOLDOUT: CampaignForm.holdout_percent,
    CampaignOption.WINDOW: CampaignForm.window_days,
    CampaignOption.OFFER: CampaignForm.kind,
}
OFFER_STEPS = (CampaignForm.kind, CampaignForm.value, CampaignForm.cap, CampaignForm.min_spend,
               CampaignForm.valid_days, CampaignForm.preview)
OFFER_STATES = {s.state for s in OFFER_STEPS}
BUTTON_STEPS = {CampaignForm.kind.state, CampaignForm.preview.state}
NUMBER_KEYS = ("fixed_days", "cap_days", "holdout_percent", "window_days")
DEFAULT_WORDS = ("default", "默认")
_HHMM = re.compile(r"(\d{1,2})[:：](\d{2})")
_RANGE_DASH = re.compile(r"\s*(?:-|–|—|~|～|to|至|到)\s*", re.IGNORECASE)


def bounds(key: str) -> tuple[int, int]:
    """A number option's limits, as the configuration model declares them."""
    metadata = WinbackConfig.model_fields[key].metadata
    return (next(m.ge for m in metadata if hasattr(m, "ge")), next(m.le for m in metadata if hasattr(m, "le")))


# --- showing a screen -----------------------------------------------------------------------------

async def show(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """A text screen in place of the pressed one; a results chart (a photo has no text to edit)
    stays, and the screen comes as a message of its own."""
    message = query.message
    if message is not None and not isinstance(message, InaccessibleMessage) and message.photo:
        await message.answer(text, reply_markup=markup)
        return
    await edit_or_send(message, text, markup)


def action(community_id: int, campaign_id: int, text: str, op: CampaignOp, item: int = 0) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=CampaignAdmin(
        community_id=community_id, op=op, campaign_id=campaign_id, item=item).pack())


def to_campaign(community_id: int, campaign_id: int) -> InlineKeyboardButton:
    return action(community_id, campaign_id, _("« Back"), CampaignOp.OPEN)


async def campaign_of(query: CallbackQuery, session: AsyncSession, actor: Actor,
                      data: CampaignAdmin) -> tuple[Community, Campaign] | None:
    """The community and campaign of a press, if the actor leads the community now and the
    campaign is one of its own; otherwise the press is answered and None."""
    community = await guard(query, session, actor, data.community_id)
    if community is None:
        return None
    try:
        return community, await campaigns.campaign(session, campaign_id=data.campaign_id, community_id=community.id)
    except DomainError:
        await query.answer(_("That campaign no longer exists."), show_alert=True)
        return None


# --- the list and one campaign --------------------------------------------------------------------

async def list_view(session: AsyncSession, community: Community) -> tuple[str, InlineKeyboardMarkup]:
    listed = await campaigns.campaigns_of(session, community_id=community.id)
    last = await campaign_history.last_runs(session, campaign_ids=[c.id for c in listed])
    lines = [_("<b>📣 Campaigns · {title}</b>").format(title=escape(community.title)),
             _("A win-back finds members who are drifting away and sends each a personal coupon. A share of them is "
               "held out and gets nothing, so the results show what the message itself did.")]
    for c in listed:
        when = local_time(last[c.id], community, "%Y-%m-%d") if c.id in last else _("not yet")
        lines.append(_("• {name}: {state} · last run: {when}").format(name=escape(c.name), state=on_off(c.enabled),
                                                                      when=when))
    if not listed:
        lines.append(_("No campaigns yet."))
    rows = [[action(community.id, c.id, _("📣 {name}").format(name=c.name), CampaignOp.OPEN)] for c in listed]
    rows.append([action(community.id, 0, _("➕ New win-back"), CampaignOp.NEW, item=len(listed))])
    rows.append([back_button(community.id)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def campaign_view(campaign: Campaign, community: Community, locale: str,
                  now: datetime | None = None) -> tuple[str, InlineKeyboardMarkup]:
    config, cid, kid = winback_config(campaign.config), community.id, campaign.id

    def option(text: str, which: CampaignOption, item: int = 0) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=CampaignAdmin(
            community_id=cid, op=CampaignOp.SET, campaign_id=kid, option=which, item=item).pack())

    lines = [_("<b>📣 {name}</b>").format(name=escape(campaign.name)),
             _("Status: {state}").format(state=on_off(campaign.enabled)),
             *setting_lines(config, community, terms_text(config.offer, community.currency)),
             "", made_up_preview(community, config, locale, now or received_at(None))]
    buyers = config.audience is Audience.BUYERS
    rule = _("personal") if config.rule is RiskRule.PERSONAL else _("{days} days").format(days=config.fixed_days)
    rows = [
        [option(_("👥 Audience: {value}").format(value=_("buyers") if buyers else _("any active")),
                CampaignOption.AUDIENCE, item=int(buyers)),
         option(_("🎯 Risk rule: {value}").format(value=rule), CampaignOption.RULE)],
        [option(_("🎟 Offer"), CampaignOption.OFFER), option(_("✉️ Message"), CampaignOption.MESSAGE)],
        [option(_("🕙 Daily at {time}").format(time=config.send_time), CampaignOption.SEND_TIME),
         option(_("🌙 Quiet {start}–{end}").format(start=config.quiet_start, end=config.quiet_end),
                CampaignOption.QUIET)],
        [option(_("🔁 Cap: {days} days").format(days=config.cap_days), CampaignOption.CAP),
         option(_("⚖️ Holdout: {percent}%").format(percent=config.holdout_percent), CampaignOption.HOLDOUT)],
        [option(_("📏 Window: {days} days").format(days=config.window_days), CampaignOption.WINDOW),
         option(_("💬 Activity counts: {state}").format(state=on_off(config.count_activity)),
                CampaignOption.ACTIVITY, item=int(not config.count_activity))],
        [option(_("✏️ Rename"), CampaignOption.NAME),
         option(_("⏸ Turn off") if campaign.enabled else _("🟢 Turn on"), CampaignOption.ENABLED,
                item=int(not campaign.enabled))],
        [action(cid, kid, _("🔍 Dry run"), CampaignOp.DRY_RUN), action(cid, kid, _("🚀 Run now"), CampaignOp.RUN)],
        [action(cid, kid, _("📈 Results"), CampaignOp.RESULTS)],
        [action(cid, 0, _("« Back"), CampaignOp.LIST)],
    ]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


@router.callback_query(AdminNav.filter(F.section == Section.CAMPAIGNS))
@router.callback_query(CampaignAdmin.filter(F.op == CampaignOp.LIST))
async def on_list(query: CallbackQuery, callback_data: AdminNav | CampaignAdmin, session: AsyncSession, actor: Actor,
                  state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await state.clear()
    await query.answer()
    await show(query, *await list_view(session, community))


@router.callback_query(CampaignAdmin.filter(F.op == CampaignOp.NEW))
async def on_new(query: CallbackQuery, callback_data: CampaignAdmin, session: AsyncSession, actor: Actor,
                 clock: Clock | None = None) -> None:
    now = received_at(clock)
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    listed = await campaigns.campaigns_of(session, community_id=community.id)
    if len(listed) != callback_data.item:
        # A second tap, or a list that changed since it was shown: the list as it is now.
        await query.answer(_("The list has changed; here it is as it is now."))
        await show(query, *await list_view(session, community))
        return
    created = await campaigns.create_winback(session, community=community, owner_id=actor.user.id,
                                             name=_("Win-back {n}").format(n=len(listed) + 1), now=now)
    await query.answer(_("Created. It is off until you turn it on."))
    await show(query, *campaign_view(created, community, actor.locale, now))


@router.callback_query(CampaignAdmin.filter(F.op == CampaignOp.OPEN))
async def on_open(query: CallbackQuery, callback_data: CampaignAdmin, session: AsyncSession, actor: Actor,
                  state: FSMContext, clock: Clock | None = None) -> None:
    found = await campaign_of(query, session, actor, callback_data)
    if found is None:
        return
    community, campaign = found
    await state.clear()
    await query.answer()
    await show(query, *campaign_view(campaign, community, actor.locale, received_at(clock)))


@router.callback_query(CampaignAdmin.filter(F.op == CampaignOp.SET))
async def on_option(query: CallbackQuery, callback_data: CampaignAdmin, session: AsyncSession, actor: Actor,
                    state: FSMContext, clock: Clock | None = None) -> None:
    now = received_at(clock)
    found = await campaign_of(query, session, actor, callback_data)
    if found is None:
        return
    community, campaign = found
    option, wanted = callback_data.option, bool(callback_data.item)
    if option is CampaignOption.ENABLED:
        await campaigns.set_enabled(session, campaign=campaign, enabled=wanted, actor_id=actor.user.id, now=now)
    elif option is CampaignOption.AUDIENCE:
        await campaigns.update_config(session, campaign=campaign, actor_id=actor.user.id, now=now,
                                      changes={"audience": Audience.ACTIVE if wanted else Audience.BUYERS})
    elif option is CampaignOption.ACTIVITY:
        await campaigns.update_config(session, campaign=campaign, actor_id=actor.user.id, now=now,
                                      changes={"count_activity": wanted})
    elif option in FORMS:
        await _start_form(query, state, community, campaign, actor.locale, FORMS[option].state, now)
        return
    else:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    await query.answer(_("Saved."))
    await show(query, *campaign_view(campaign, community, actor.locale, now))


# --- the setting forms ----------------------------------------------------------------------------

def form_button(text: str, op: CampaignFormOp, step: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=CampaignFormNav(op=op, step=step_name(step)).pack())


def form_nav_row(step: str) -> list[InlineKeyboardButton]:
    return [form_button(_("« Back"), CampaignFormOp.BACK, step), form_button(_("✖ Cancel"), CampaignFormOp.CANCEL, step)]


def _current(key: str, config: WinbackConfig, campaign: Campaign) -> str:
    """An option's value as its form shows it under "Now:"."""
    if key == "name":
        return campaign.name
    if key == "fixed_days":
        return _("personal") if config.rule is RiskRule.PERSONAL else str(config.fixed_days)
    if key == "quiet_hours":
        return f"{config.quiet_start}-{config.quiet_end}"
    if key == "message":
        return config.message if config.message is not None else _("the bot's own text")
    if key in NUMBER_KEYS or key == "send_time":
        return str(getattr(config, key))
    return ""


def prompt(step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    key = step_name(step)
    rows: list[list[InlineKeyboardButton]] = []
    terms = terms_prompt(key, data, lambda text, op: form_button(text, op, step), CampaignFormOp)
    if terms is not None:
        text, rows = terms
    elif key == "valid_days":
        text = _("For how many days after it is sent is the coupon valid? Send a whole number from 1 to {max}, or "
                 "Skip: it never expires.").format(max=VALID_DAYS_MAX)
        rows = [[form_button(_("Skip"), CampaignFormOp.SKIP, step)]]
    elif key == "preview":
        text = "\n".join([_("<b>Offer of {name}</b> — check and save").format(name=escape(data["name"])),
                          coupon_line(terms_of(data), data["currency"])])
        rows = [[form_button(_("💾 Save"), CampaignFormOp.SAVE, step)]]
    elif key == "name":
        text = _("Send the campaign's new name (up to 64 characters).\nNow: {value}").format(
            value=escape(data["current"]))
    elif key == "fixed_days":
        low, high = bounds(key)
        text = _("Who counts as drifting away? The personal rule (the default) compares each member's silence with "
                 "their own rhythm: a weekly buyer drifts sooner than a monthly one. Or send a number of days from "
                 "{min} to {max}: everyone silent that long.\nNow: {value}").format(min=low, max=high,
                                                                                   value=data["current"])
        rows = [[form_button(_("Personal rule"), CampaignFormOp.DEFAULT, step)]]
    elif key == "message":
        text = "\n".join([
            _("Send the message members get, up to {max} characters. Use {placeholders} for the member's name, their "
              "favourite product, their coupon code and when it expires. Send default for the bot's own text in each "
              "member's language.").format(max=MESSAGE_MAX, placeholders=escape(placeholders_text())),
            _("Now: {value}").format(value=escape(data["current"])), "", data["preview"]])
        rows = [[form_button(_("The bot's own text"), CampaignFormOp.DEFAULT, step)]]
    elif key == "send_time":
        text = _("At what time ({tz}) should it run each day? Send HH:MM, for example 10:00. It may not fall in the "
                 "quiet hours.\nNow: {value}").format(tz=data["tz"], value=data["current"])
    elif key == "quiet_hours":
        text = _("During which hours ({tz}) should nothing be sent? Send a range such as 21:00-09:00.\n"
                 "Now: {value}").format(tz=data["tz"], value=data["current"])
    else:
        low, high = bounds(key)
        texts = {
            "cap_days": _("At most one win-back per member in how many days, across all campaigns? Send a whole number "
                          "from {min} to {max}.\nNow: {value}"),
            "holdout_percent": _("What percentage of the chosen members should get nothing, so the results can show "
                                 "what the message did? Send a whole number from {min} to {max}.\nNow: {value}"),
            "window_days": _("For how many days after being chosen does a member's order count as coming back? Send a "
                             "whole number from {min} to {max}.\nNow: {value}"),
        }
        text = texts[key].format(min=low, max=high, value=data["current"])
    rows.append(form_nav_row(step))
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def _go(state: FSMContext, step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    await state.set_state(step)
    await state.set_data(data)
    return prompt(step, data)


async def _start_form(query: CallbackQuery, state: FSMContext, community: Community, campaign: Campaign, locale: str,
                      step: str, now: datetime) -> None:
    config = winback_config(campaign.config)
    data = {"community_id": community.id, "campaign_id": campaign.id, "name": campaign.name, "tz": community.timezone,
            "currency": community.currency, "current": _current(step_name(step), config, campaign)}
    if step == CampaignForm.message.state:
        data["preview"] = made_up_preview(community, config, locale, now)
    await query.answer()
    await show(query, *await _go(state, step, data))


def refusal(err: DomainError, changes: dict, config: WinbackConfig) -> str:
    """A refused setting in the leader's language, from the check's stable `reason`."""
    if err.code == "campaign_name":
        return _("The name must be 1 to {max} characters.").format(max=err.params.get("max", 64))
    if err.code != "campaign_setting":
        return error_text(err)
    merged = config.model_copy(update=changes)
    match err.params.get("reason"):
        case "in_quiet_hours":
            return _("The run time {time} would fall in the quiet hours {start}–{end}: nothing could be sent. Choose "
                     "a time outside them.").format(time=merged.send_time, start=merged.quiet_start,
                                                    end=merged.quiet_end)
        case "quiet_same":
            return _("Quiet hours must start and end at different times.")
        case "message_empty":
            return _("The message is empty.")
        case "message_too_long":
            return _("The message is longer than {max} characters; send a shorter one.").format(max=MESSAGE_MAX)
        case "unknown_placeholder":
            return _("{placeholder} is not a placeholder I know. Use only {placeholders}.").format(
                placeholder=escape(str(err.params.get("placeholder") or "{}")), placeholders=escape(placeholders_text()))
        case "unpaired_brace":
            return _("A curly bracket has no pair. Use only the placeholders {placeholders}.").format(
                placeholders=escape(placeholders_text()))
    return _("That setting is not allowed: {detail}.").format(detail=escape(str(err.params.get("detail", ""))))


def _hhmm(raw: str) -> str | None:
    found = _HHMM.fullmatch(raw.strip())
    if found is None or int(found[1]) > 23 or int(found[2]) > 59:
        return None
    return f"{int(found[1]):02d}:{found[2]}"


def typed_changes(key: str, raw: str) -> dict | str:
    """The configuration changes a typed answer asks for, or the reason it cannot be taken."""
    text = raw.strip()
    if key in NUMBER_KEYS:
        low, high = bounds(key)
        value = whole_number(text)
        if value is None or not low <= value <= high:
            return _("“{value}” is not allowed. Send a whole number from {min} to {max}.").format(
                value=escape(text[:16]), min=low, max=high)
        return {"rule": RiskRule.FIXED, key: value} if key == "fixed_days" else {key: value}
    if key == "send_time":
        at = _hhmm(text)
        if at is None:
            return _("“{value}” is not a time. Send HH:MM, for example 10:00.").format(value=escape(text[:16]))
        return {"send_time": at}
    if key == "quiet_hours":
        parts = _RANGE_DASH.split(text)
        ends = [_hhmm(p) for p in parts] if len(parts) == 2 else [None]
        if None in ends:
            return _("“{value}” is not a range of hours. Send the start and the end, for example 21:00-09:00.").format(
                value=escape(text[:32]))
        return {"quiet_start": ends[0], "quiet_end": ends[1]}
    return {"message": None if text.lower() in DEFAULT_WORDS else text}


async def _saved(target: Message | CallbackQuery, session: AsyncSession, state: FSMContext, community: Community,
                 campaign_id: int, locale: str, now: datetime) -> None:
    await state.clear()
    campaign = await campaigns.campaign(session, campaign_id=campaign_id, community_id=community.id)
    text, markup = campaign_view(campaign, community, locale, now)
    if isinstance(target, CallbackQuery):
        await target.answer(_("Saved."))
        await show(target, _("Saved.") + "\n\n" + text, markup)
    else:
        await target.answer(_("Saved.") + "\n\n" + text, reply_markup=markup)


@router.callback_query(CampaignFormNav.filter(), StateFilter(CampaignForm))
async def on_form_button(query: CallbackQuery, callback_data: CampaignFormNav, session: AsyncSession, actor: Actor,
                         state: FSMContext, clock: Clock | None = None) -> None:
    now = received_at(clock)
    pressed = await form_press(query, callback_data, session, actor, state, CampaignForm)
    if pressed is None:
        return
    current, data, community = pressed
    try:
        campaign = await campaigns.campaign(session, campaign_id=data["campaign_id"], community_id=community.id)
    except DomainError:
        await state.clear()
        await query.answer(_("That campaign no longer exists."), show_alert=True)
        return
    op, key = callback_data.op, step_name(current)
    if op is CampaignFormOp.BACK:
        await query.answer()
        steps = form_steps(OFFER_STEPS, data)
        if current in OFFER_STATES and current != steps[0]:
            await show(query, *await _go(state, steps[steps.index(current) - 1], data))
        else:
            await state.clear()
            await show(query, *campaign_view(campaign, community, actor.locale, now))
        return
    changes: dict | None = None
    if op is CampaignFormOp.DEFAULT and key == "fixed_days":
        changes = {"rule": RiskRule.PERSONAL}
    elif op is CampaignFormOp.DEFAULT and key == "message":
        changes = {"message": None}
    elif op is CampaignFormOp.SAVE and current == CampaignForm.preview.state:
        changes = {"offer": terms_of(data).model_dump()}
    if changes is not None:
        try:
            await campaigns.update_config(session, campaign=campaign, changes=changes, actor_id=actor.user.id,
                                          now=now)
        except DomainError as err:
            await query.answer()
            text, markup = prompt(current, data)
            await show(query, refusal(err, changes, winback_config(campaign.config)) + "\n\n" + text, markup)
            return
        await _saved(query, session, state, community, campaign.id, actor.locale, now)
        return
    answered = terms_button_answer(key, op, CampaignFormOp, data) if current in OFFER_STATES else None
    if answered is None:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    data.update(answered)
    await query.answer()
    await show(query, *await _go(state, step_after(OFFER_STEPS, current, data), data))


# A press on a campaign form's button when no campaign form is open: a toast only, so a double tap
# leaves the screen the first tap made.
@router.callback_query(CampaignFormNav.filter(), ~StateFilter(CampaignForm))
async def on_stale_form_button(query: CallbackQuery) -> None:
    await query.answer(_("This form is no longer open."))


@router.message(StateFilter(CampaignForm), F.chat.type == "private", ~F.text, SENT_BY_PERSON)
async def on_form_not_text(message: Message, state: FSMContext) -> None:
    current = await state.get_state()
    await ask_again(message, not_text_hint(current in BUTTON_STEPS), prompt(current, await state.get_data()))


@router.message(StateFilter(CampaignForm), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_answer(message: Message, session: AsyncSession, actor: Actor, state: FSMContext,
                         clock: Clock | None = None) -> None:
    now = received_at(clock)
    answered = await typed_answer_step(message, session, actor, state, BUTTON_STEPS, prompt)
    if answered is None:
        return
    current, data, community = answered
    key = step_name(current)
    try:
        campaign = await campaigns.campaign(session, campaign_id=data["campaign_id"], community_id=community.id)
    except DomainError:
        await state.clear()
        await message.answer(_("That campaign no longer exists."))
        return
    if current in OFFER_STATES:
        try:
            if key in AMOUNT_STEPS:
                changes = parse_amount(key, message.text, kind=data.get("kind"), currency=data["currency"])
            else:
                changes = parse_valid_days(message.text, "campaign_offer_days")
        except DomainError as err:
            why = (_("“{value}” is not allowed. Send a whole number from {min} to {max}.").format(
                value=escape(str(err.params.get("value", ""))), min=1, max=VALID_DAYS_MAX)
                if err.code == "campaign_offer_days" else error_text(err, currency=community.currency))
            await ask_again(message, why, prompt(current, data))
            return
        data.update(changes)
        text, markup = await _go(state, step_after(OFFER_STEPS, current, data), data)
        await message.answer(text, reply_markup=markup)
        return
    try:
        if key == "name":
            await campaigns.rename(session, campaign=campaign, name=message.text, actor_id=actor.user.id, now=now)
        else:
            changes = typed_changes(key, message.text)
            if isinstance(changes, str):
                await ask_again(message, changes, prompt(current, data))
                return
            await campaigns.update_config(session, campaign=campaign, changes=changes, actor_id=actor.user.id,
                                          now=now)
    except DomainError as err:
        config = winback_config(campaign.config)
        why = refusal(err, changes if key != "name" else {}, config)
        await ask_again(message, why, prompt(current, data))
        return
    await _saved(message, session, state, community, campaign.id, actor.locale, now)
