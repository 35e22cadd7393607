"""/admin → Invites: the settings, each level's reward, and the doors to the other invite screens.

Switches carry the state they turn to and the requirement buttons the value they set, so a replayed
press sets the same again. Every number is a one-step form (`InviteSettingsForm`, the step named
after the option) with Back and Cancel, asked again with the reason when an answer does not fit.
Every change goes through `invite_settings.update_invite_settings`, which validates and audits it.
Rewards exist for levels 1 and 2 only: no button, form or forged press reaches a third.

A level's coupon is set in invites_coupon.py; the review queue is in invites_review.py; the
leaderboard, the chain view and the CSV export in invites_reports.py.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import invites
from bot.services.errors import DomainError
from bot.services.invite_settings import (
    MAX_REWARDED_LEVEL,
    POINTS_MAX,
    InviteSettings,
    LevelReward,
    Requirement,
    invite_settings,
    option_bounds,
    parse_option_number,
    parse_reward_points,
    update_invite_settings,
)
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views.errors_text import error_text
from bot.views.keyboards import (
    AdminNav,
    InviteAdmin,
    InviteFormNav,
    InviteFormOp,
    InviteOp,
    InviteOption,
    InviteSet,
    Section,
)
from bot.views.render import edit_or_send
from handlers.admin.checkin import on_off
from handlers.admin.coupon_terms import terms_text
from handlers.admin.form_nav import ask_again, form_press, step_name
from handlers.admin.menu import back_button, form_guard, guard
from handlers.forms import InviteChainForm, InviteCouponForm, InviteSettingsForm
from models import Community

router = Router(name=__name__)

SWITCHES = {InviteOption.ENABLED: "enabled", InviteOption.APPROVE_JOINS: "approve_joins"}
FORMS = {
    InviteOption.QUALIFY_DAYS: InviteSettingsForm.qualify_days,
    InviteOption.BURST_JOINS: InviteSettingsForm.burst_joins,
    InviteOption.BURST_MINUTES: InviteSettingsForm.burst_minutes,
    InviteOption.LEAVE_RATE: InviteSettingsForm.leave_rate_percent,
    InviteOption.LEAVE_MIN_INVITES: InviteSettingsForm.leave_rate_min_invites,
}
LEVELS = (1, MAX_REWARDED_LEVEL)


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- pieces the invite screens share ---------------------------------------------------------------

def form_button(text: str, op: InviteFormOp, step: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=InviteFormNav(op=op, step=step_name(step)).pack())


def form_nav_row(step: str) -> list[InlineKeyboardButton]:
    return [form_button(_("« Back"), InviteFormOp.BACK, step), form_button(_("✖ Cancel"), InviteFormOp.CANCEL, step)]


def action(text: str, op: InviteOp, community_id: int, item: int = 0) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=InviteAdmin(op=op, community_id=community_id,
                                                                     item=item).pack())


def third_level_text() -> str:
    return _("A third level is never rewarded: Chinese law treats rewards on three or more levels as pyramid selling.")


def requirement_label(requirement: Requirement) -> str:
    return {Requirement.NONE: _("just stay"), Requirement.MESSAGE: _("wrote in the group"),
            Requirement.PAID_ORDER: _("first paid order")}[requirement]


def level_reward(opts: InviteSettings, level: int) -> LevelReward:
    """The level's reward as stored, or an empty one (level 2 off)."""
    return (opts.level1 if level == 1 else opts.level2) or LevelReward()


def reward_text(reward: LevelReward, currency: str) -> str:
    if reward.empty:
        return _("nothing")
    if reward.coupon is None:
        return _("{points} points").format(points=reward.points)
    terms = terms_text(reward.coupon, currency)
    if reward.points == 0:
        return _("a coupon: {terms}").format(terms=terms)
    return _("{points} points and a coupon: {terms}").format(points=reward.points, terms=terms)


def reward_short(reward: LevelReward) -> str:
    if reward.empty:
        return _("off")
    if reward.coupon is None:
        return _("{points} points").format(points=reward.points)
    if reward.points == 0:
        return _("a coupon")
    return _("{points} points + a coupon").format(points=reward.points)


def counts_after_text(opts: InviteSettings) -> str:
    texts = {
        Requirement.NONE: _("An invite counts once the new member has stayed {days} day(s)."),
        Requirement.MESSAGE: _("An invite counts once the new member has stayed {days} day(s) and written in the "
                               "group."),
        Requirement.PAID_ORDER: _("An invite counts once the new member has stayed {days} day(s) and paid a first "
                                  "order."),
    }
    return texts[opts.require].format(days=opts.qualify_days)


# --- the main screen -------------------------------------------------------------------------------

async def main_view(session: AsyncSession, community: Community) -> tuple[str, InlineKeyboardMarkup]:
    opts, cid = invite_settings(community), community.id
    held = await invites.review_count(session, community_id=cid)

    def option(text: str, which: InviteOption) -> InlineKeyboardButton:
        turn_on = not getattr(opts, SWITCHES[which]) if which in SWITCHES else None
        return InlineKeyboardButton(text=text, callback_data=InviteSet(option=which, community_id=cid,
                                                                       turn_on=turn_on).pack())

    lines = [_("<b>Invites · {title}</b>").format(title=escape(community.title))]
    if not opts.enabled:
        lines.append(_("Invites are off: joins are not tracked and nobody is rewarded."))
    level1, level2 = level_reward(opts, 1), level_reward(opts, 2)
    lines += [
        counts_after_text(opts),
        _("Level 1, the inviter: {reward}").format(reward=reward_text(level1, community.currency)),
        _("Level 2, the inviter's inviter: {reward}").format(
            reward=reward_text(level2, community.currency) if not level2.empty else _("off")),
        third_level_text(),
        _("Held for review instead of rewarded: self-invites, rejoins, bots, people who leave within 72 h, more than "
          "{joins} joins through one link within {minutes} min, and new invites of an inviter with {min} or more "
          "invites of whom over {percent}% left.").format(joins=opts.burst_joins, minutes=opts.burst_minutes,
                                                           min=opts.leave_rate_min_invites,
                                                           percent=opts.leave_rate_percent),
        _("Press an option to change it."),
    ]
    rows = [
        [option(_("✅ Invites: {state}").format(state=on_off(opts.enabled)), InviteOption.ENABLED)],
        [option(_("🚪 Approve joins: {state}").format(state=on_off(opts.approve_joins)), InviteOption.APPROVE_JOINS)],
        [option(_("⏳ Counts after {days} day(s)").format(days=opts.qualify_days), InviteOption.QUALIFY_DAYS),
         option(_("📝 Requirement: {choice}").format(choice=requirement_label(opts.require)), InviteOption.REQUIRE)],
        [action(_("🥇 Level 1: {reward}").format(reward=reward_short(level1)), InviteOp.LEVEL, cid, 1),
         action(_("🥈 Level 2: {reward}").format(reward=reward_short(level2)), InviteOp.LEVEL, cid, 2)],
        [option(_("💥 Burst: over {n} joins").format(n=opts.burst_joins), InviteOption.BURST_JOINS),
         option(_("⏱ Within {n} min").format(n=opts.burst_minutes), InviteOption.BURST_MINUTES)],
        [option(_("🏃 Leave rate: over {n}%").format(n=opts.leave_rate_percent), InviteOption.LEAVE_RATE),
         option(_("👥 From {n} invites").format(n=opts.leave_rate_min_invites), InviteOption.LEAVE_MIN_INVITES)],
        [action(_("🏆 Leaderboard"), InviteOp.TOP, cid),
         action(_("🔎 Review ({n})").format(n=held), InviteOp.REVIEW, cid)],
        [action(_("🔗 Chain"), InviteOp.CHAIN, cid), action(_("⬇️ CSV"), InviteOp.EXPORT, cid)],
        [back_button(cid)],
    ]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def require_view(community: Community) -> tuple[str, InlineKeyboardMarkup]:
    opts, cid = invite_settings(community), community.id
    text = _("What must a new member have done, besides staying {days} day(s), for the invite to count?").format(
        days=opts.qualify_days)
    rows = []
    for choice in Requirement:
        label = requirement_label(choice)
        rows.append([InlineKeyboardButton(
            text=("✓ " + label) if choice == opts.require else label,
            callback_data=InviteSet(option=InviteOption.REQUIRE, community_id=cid, value=choice.value).pack())])
    rows.append([back_button(cid, Section.INVITES)])
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


def level_view(community: Community, level: int) -> tuple[str, InlineKeyboardMarkup]:
    opts, cid = invite_settings(community), community.id
    reward = level_reward(opts, level)
    lines = [_("<b>Level {level} reward · {title}</b>").format(level=level, title=escape(community.title))]
    if level == 1:
        lines.append(_("The inviter gets this once, when an invite counts."))
    else:
        lines.append(_("The inviter's inviter gets this once, when an invite counts. Off until you set points or a "
                       "coupon."))
    lines += [_("Points: {points}").format(points=reward.points),
              _("Coupon: {terms}").format(terms=terms_text(reward.coupon, community.currency) if reward.coupon
                                          else _("none")),
              third_level_text()]
    rows = [[action(_("🎯 Points: {n}").format(n=reward.points), InviteOp.LEVEL_POINTS, cid, level)]]
    if reward.coupon is None:
        rows.append([action(_("🎟 Set a coupon"), InviteOp.LEVEL_COUPON, cid, level)])
    else:
        rows.append([action(_("🎟 Change the coupon"), InviteOp.LEVEL_COUPON, cid, level),
                     action(_("🗑 No coupon"), InviteOp.LEVEL_NO_COUPON, cid, level)])
    if level == MAX_REWARDED_LEVEL and not reward.empty:
        rows.append([action(_("⛔ Turn level 2 off"), InviteOp.LEVEL_OFF, cid, level)])
    rows.append([back_button(cid, Section.INVITES)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def save(session: AsyncSession, community: Community, actor: Actor, **changes: object) -> None:
    await update_invite_settings(session, community=community, actor_id=actor.user.id, now=_now(), **changes)


async def save_level(session: AsyncSession, community: Community, actor: Actor, level: int,
                     changes: dict | None) -> None:
    """Change part of a level's reward (None: level 2 off). Given as a dict, so the service
    validates the whole reward again."""
    reward = None if changes is None else level_reward(invite_settings(community), level).model_dump() | changes
    await save(session, community, actor, **{f"level{level}": reward})


async def level_of(query: CallbackQuery, level: int) -> int | None:
    """A level from callback data (a client can forge it): 1 or 2; otherwise the law, and None."""
    if level in LEVELS:
        return level
    await query.answer(third_level_text(), show_alert=True)
    return None


# --- the settings forms ----------------------------------------------------------------------------

def prompt(step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    key = step_name(step)
    if key == "level_points":
        text = _("How many points does level {level} get for each invite that counts (0: none)? Send a whole number "
                 "from {min} to {max}.\nNow: {value}").format(level=data["level"], min=0, max=POINTS_MAX,
                                                              value=data["current"])
    else:
        low, high = option_bounds(key)
        texts = {
            "qualify_days": _("How many days must a new member stay before their invite counts and is rewarded? Send "
                              "a whole number from {min} to {max}.\nNow: {value}"),
            "burst_joins": _("How many joins through one link within the burst window are still normal? More are held "
                             "for review. Send a whole number from {min} to {max}.\nNow: {value}"),
            "burst_minutes": _("How long is the burst window, in minutes? Send a whole number from {min} to {max}.\n"
                               "Now: {value}"),
            "leave_rate_percent": _("Over what share of an inviter's invitees leaving, in percent, are their new "
                                    "invites held for review? Send a whole number from {min} to {max}.\nNow: {value}"),
            "leave_rate_min_invites": _("From how many invites on is an inviter's leave rate judged? Send a whole "
                                        "number from {min} to {max}.\nNow: {value}"),
        }
        text = texts[key].format(min=low, max=high, value=data["current"])
    return text, InlineKeyboardMarkup(inline_keyboard=[form_nav_row(step)])


async def _start_form(query: CallbackQuery, state: FSMContext, community: Community, step: str,
                      **extra: object) -> None:
    opts = invite_settings(community)
    key = step_name(step)
    current = level_reward(opts, extra["level"]).points if key == "level_points" else getattr(opts, key)
    data = {"community_id": community.id, "current": current, **extra}
    await state.set_state(step)
    await state.set_data(data)
    await query.answer()
    await edit_or_send(query.message, *prompt(step, data))


async def after_form(session: AsyncSession, community: Community, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    """The screen a settings form returns to: its level's, or the main one."""
    return level_view(community, data["level"]) if "level" in data else await main_view(session, community)


# --- presses ---------------------------------------------------------------------------------------

@router.callback_query(AdminNav.filter(F.section == Section.INVITES))
async def on_invites(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor,
                     state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, *await main_view(session, community))


@router.callback_query(InviteSet.filter())
async def on_option(query: CallbackQuery, callback_data: InviteSet, session: AsyncSession, actor: Actor,
                    state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    option, opts = callback_data.option, invite_settings(community)
    if option in FORMS:
        await _start_form(query, state, community, FORMS[option].state)
        return
    await state.clear()
    if option is InviteOption.REQUIRE and not callback_data.value:
        await query.answer()
        await edit_or_send(query.message, *require_view(community))
        return
    if option in SWITCHES:
        now_on = getattr(opts, SWITCHES[option])
        turn_on = not now_on if callback_data.turn_on is None else callback_data.turn_on
        changes: dict[str, object] = {SWITCHES[option]: turn_on}
    else:
        changes = {"require": callback_data.value}
    try:
        await save(session, community, actor, **changes)
    except DomainError as err:  # a forged requirement
        await query.answer(error_text(err), show_alert=True)
        return
    await query.answer(_("Saved."))
    await edit_or_send(query.message, *await main_view(session, community))


@router.callback_query(InviteAdmin.filter(F.op.in_({InviteOp.LEVEL, InviteOp.LEVEL_POINTS, InviteOp.LEVEL_NO_COUPON,
                                                    InviteOp.LEVEL_OFF})))
async def on_level(query: CallbackQuery, callback_data: InviteAdmin, session: AsyncSession, actor: Actor,
                   state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    level = await level_of(query, callback_data.item)
    if level is None:
        return
    op = callback_data.op
    if op is InviteOp.LEVEL_POINTS:
        await _start_form(query, state, community, InviteSettingsForm.level_points.state, level=level)
        return
    await state.clear()
    if op is InviteOp.LEVEL_NO_COUPON:
        await save_level(session, community, actor, level, {"coupon": None})
        await query.answer(_("Saved."))
    elif op is InviteOp.LEVEL_OFF and level == MAX_REWARDED_LEVEL:
        await save_level(session, community, actor, level, None)
        await query.answer(_("Saved."))
    else:
        await query.answer()
    await edit_or_send(query.message, *level_view(community, level))


@router.callback_query(InviteFormNav.filter(), StateFilter(InviteSettingsForm))
async def on_form_button(query: CallbackQuery, callback_data: InviteFormNav, session: AsyncSession, actor: Actor,
                         state: FSMContext) -> None:
    pressed = await form_press(query, callback_data, session, actor, state, InviteSettingsForm)
    if pressed is None:
        return
    _current, data, community = pressed
    if callback_data.op is InviteFormOp.BACK:
        await state.clear()
        await query.answer()
        await edit_or_send(query.message, *await after_form(session, community, data))
        return
    await query.answer(_("This button is no longer valid."), show_alert=True)


# A press on an invitation form's button when none is open (finished, cancelled, replaced): a toast
# only, so a double tap leaves the screen the first tap made.
@router.callback_query(InviteFormNav.filter(), ~StateFilter(InviteSettingsForm, InviteCouponForm, InviteChainForm))
async def on_stale_form_button(query: CallbackQuery) -> None:
    await query.answer(_("This form is no longer open."))


# --- typed answers ---------------------------------------------------------------------------------

@router.message(StateFilter(InviteSettingsForm), F.chat.type == "private", ~F.text, SENT_BY_PERSON)
async def on_form_not_text(message: Message, state: FSMContext) -> None:
    await ask_again(message, _("Please answer with text."), prompt(await state.get_state(), await state.get_data()))


@router.message(StateFilter(InviteSettingsForm), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_answer(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    current, data = await state.get_state(), await state.get_data()
    community = await form_guard(message, session, actor, state)
    if community is None:
        return
    key = step_name(current)
    try:
        if key == "level_points":
            level = data["level"]
            await save_level(session, community, actor, level, {"points": parse_reward_points(message.text)})
        else:
            await save(session, community, actor, **{key: parse_option_number(key, message.text)})
    except DomainError as err:
        await ask_again(message, error_text(err), prompt(current, data))
        return
    await state.clear()
    text, markup = await after_form(session, community, data)
    await message.answer(_("Saved.") + "\n\n" + text, reply_markup=markup)
