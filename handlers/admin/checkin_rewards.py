"""/admin → Check-in & points → Rewards: the catalogue members redeem points from, with /points.

One form (`RewardForm`) adds and edits: title → cost → kind → value → cap (percent only) →
minimum spend → valid days → preview, with Back and Cancel on every step, and Keep on a step that
already has a value (editing, or coming Back). Each typed answer is checked at once by
`points.check_reward` on the draft so far, so a refusal names the step's problem; amounts are
typed in the community's currency and kept in minor units. Deleting is soft (`points.delete_reward`):
a member who redeems a deleted reward is refused by the service.
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

from bot.core.numbers import whole_number
from bot.services import points
from bot.services.errors import DomainError
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views.errors_text import error_text
from bot.views.keyboards import CheckinAdmin, CheckinFormNav, CheckinFormOp, CheckinOp, Section
from bot.views.render import edit_or_send
from handlers.admin.checkin import form_button, form_nav_row
from handlers.admin.coupon_terms import (
    AMOUNT_STEPS,
    VALID_DAYS_MAX,
    coupon_line,
    form_steps,
    parse_amount,
    parse_valid_days,
    step_after,
    terms_button_answer,
    terms_prompt,
    terms_text,
)
from handlers.admin.form_nav import ask_again, form_press, not_text_hint, step_name, typed_answer_step
from handlers.admin.menu import back_button, guard
from handlers.forms import RewardForm
from handlers.member.coupons import money
from models import Community, CouponKind
from models.points import PointsReward

router = Router(name=__name__)

STEPS = (RewardForm.title, RewardForm.cost, RewardForm.kind, RewardForm.value, RewardForm.cap, RewardForm.min_spend,
         RewardForm.valid_days, RewardForm.preview)
BUTTON_STEPS = {RewardForm.kind.state, RewardForm.preview.state}
# Stand-ins for the fields not answered yet, so `check_reward` judges only what was typed so far.
_PLACEHOLDER = {"title": "-", "cost": 1, "kind": CouponKind.FIXED.value, "value": 1, "cap": None, "min_spend": 0,
                "valid_days": None}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _draft(data: dict) -> points.RewardDraft:
    values = {key: data[key] if data.get(key) is not None else default for key, default in _PLACEHOLDER.items()}
    return points.RewardDraft(title=values["title"], cost=values["cost"], kind=CouponKind(values["kind"]),
                              value=values["value"], cap=values["cap"], min_spend=values["min_spend"],
                              valid_days=values["valid_days"])


def _action(text: str, op: CheckinOp, community_id: int, item: int = 0) -> InlineKeyboardButton:
    data = CheckinAdmin(op=op, community_id=community_id, item=item).pack()
    return InlineKeyboardButton(text=text, callback_data=data)


# --- the catalogue --------------------------------------------------------------------------------

def reward_line(reward: PointsReward, currency: str) -> str:
    return _("{title}: {cost} points → {terms}").format(title=escape(reward.title), cost=reward.cost,
                                                        terms=terms_text(reward, currency))


async def list_view(session: AsyncSession, community: Community) -> tuple[str, InlineKeyboardMarkup]:
    listed = await points.rewards(session, community_id=community.id)
    cid = community.id
    lines = [_("<b>Rewards · {title}</b>").format(title=escape(community.title)),
             _("Members trade points for these coupons with /points.") if listed else _("No rewards yet.")]
    lines += [reward_line(r, community.currency) for r in listed]
    rows = [[_action(_("🎁 {title} · {cost}").format(title=r.title, cost=r.cost), CheckinOp.REWARD_OPEN, cid, r.id)]
            for r in listed]
    rows.append([_action(_("➕ New reward"), CheckinOp.REWARD_NEW, cid)])
    rows.append([back_button(cid, Section.CHECKIN)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def reward_view(reward: PointsReward, community: Community) -> tuple[str, InlineKeyboardMarkup]:
    cid = community.id
    text = "\n".join([f"<b>{escape(reward.title)}</b>", _("Costs {cost} points.").format(cost=reward.cost),
                      coupon_line(reward, community.currency)])
    rows = [[_action(_("✏️ Edit"), CheckinOp.REWARD_EDIT, cid, reward.id),
             _action(_("🗑 Delete"), CheckinOp.REWARD_DELETE, cid, reward.id)],
            [_action(_("« Back"), CheckinOp.REWARDS, cid)]]
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


# --- the form's prompts ---------------------------------------------------------------------------

def _value_shown(step: str, data: dict) -> str | None:
    """What the step holds already (editing, or after Back), as its prompt shows it; None: nothing yet."""
    key, currency = step_name(step), data["currency"]
    value = data.get(key)
    if value is None:
        # "no cap" and "never expires" are answers too, once the step was passed.
        passed = key in data
        return {"cap": _("no cap"), "valid_days": _("never expires")}.get(key) if passed else None
    if key == "kind":
        return _("a fixed amount") if value == CouponKind.FIXED else _("a percentage")
    if key == "value":
        return f"{value}%" if data.get("kind") == CouponKind.PERCENT else money(value, currency)
    if key in ("cap", "min_spend"):
        return money(value, currency) if value else _("none")
    if key == "title":
        return escape(value)
    return str(value)


def preview_text(data: dict) -> str:
    if data.get("reward_id"):
        head = _("<b>Edit reward</b> — check and save")
    else:
        head = _("<b>New reward</b> — check and save")
    return "\n".join([head, _("Title: {title}").format(title=escape(data["title"])),
                      _("Costs {cost} points.").format(cost=data["cost"]),
                      coupon_line(_draft(data), data["currency"])])


def prompt(step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    key = step_name(step)
    terms = terms_prompt(key, data, lambda text, op: form_button(text, op, step), CheckinFormOp)
    extra: list[list[InlineKeyboardButton]] = []
    if terms is not None:
        text, extra = terms
    elif key == "title":
        text = _("The reward's title, as members see it in /points (up to {max} characters)?").format(
            max=points.REWARD_TITLE_MAX)
    elif key == "cost":
        text = _("How many points does it cost? Send a whole number from 1 to {max}.").format(
            max=points.REWARD_COST_MAX)
    elif key == "valid_days":
        text = _("For how many days after redeeming is the coupon valid? Send a whole number from 1 to {max}, or Skip: "
                 "it never expires.").format(max=VALID_DAYS_MAX)
        extra = [[form_button(_("Skip"), CheckinFormOp.SKIP, step)]]
    else:
        text = preview_text(data)
        extra = [[form_button(_("💾 Save"), CheckinFormOp.SAVE, step)]]
    shown = _value_shown(step, data) if step != RewardForm.preview.state else None
    if shown is not None:
        text += "\n" + _("Now: {value}").format(value=shown)
        extra.append([form_button(_("Keep as is"), CheckinFormOp.KEEP, step)])
    return text, InlineKeyboardMarkup(inline_keyboard=[*extra, form_nav_row(step)])


async def _go(state: FSMContext, step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    await state.set_state(step)
    await state.set_data(data)
    return prompt(step, data)


def _reward_data(reward: PointsReward) -> dict:
    return {"reward_id": reward.id, "title": reward.title, "cost": reward.cost, "kind": reward.kind,
            "value": reward.value, "cap": reward.cap, "min_spend": reward.min_spend, "valid_days": reward.valid_days}


# --- presses on the catalogue ---------------------------------------------------------------------

@router.callback_query(CheckinAdmin.filter(F.op.in_({CheckinOp.REWARDS, CheckinOp.REWARD_OPEN, CheckinOp.REWARD_NEW,
                                                     CheckinOp.REWARD_EDIT, CheckinOp.REWARD_DELETE,
                                                     CheckinOp.REWARD_DELETE_CONFIRM})))
async def on_rewards(query: CallbackQuery, callback_data: CheckinAdmin, session: AsyncSession, actor: Actor,
                     state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    op, cid = callback_data.op, community.id
    await state.clear()
    if op is CheckinOp.REWARDS:
        await query.answer()
        await edit_or_send(query.message, *await list_view(session, community))
        return
    base = {"community_id": cid, "currency": community.currency}
    if op is CheckinOp.REWARD_NEW:
        if len(await points.rewards(session, community_id=cid)) >= points.REWARDS_MAX:
            refusal = DomainError("points_reward_too_many", max=points.REWARDS_MAX)
            await query.answer(error_text(refusal), show_alert=True)
            return
        await query.answer()
        await edit_or_send(query.message, *await _go(state, RewardForm.title.state, base))
        return
    try:
        reward = await points.get_reward(session, community_id=cid, reward_id=callback_data.item)
        if op is CheckinOp.REWARD_DELETE_CONFIRM:
            await points.delete_reward(session, community_id=cid, actor_id=actor.user.id, reward_id=reward.id,
                                       now=_now())
            await query.answer(_("Deleted."))
            text, markup = await list_view(session, community)
            done = _("“{title}” was deleted.").format(title=escape(reward.title))
            await edit_or_send(query.message, done + "\n\n" + text, markup)
            return
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        await edit_or_send(query.message, *await list_view(session, community))
        return
    await query.answer()
    if op is CheckinOp.REWARD_EDIT:
        await edit_or_send(query.message, *await _go(state, RewardForm.title.state, base | _reward_data(reward)))
    elif op is CheckinOp.REWARD_DELETE:
        text = _("Delete “{title}”? Members can no longer redeem it; coupons already issued stay valid.").format(
            title=escape(reward.title))
        rows = [[_action(_("Yes, delete it"), CheckinOp.REWARD_DELETE_CONFIRM, cid, reward.id)],
                [_action(_("« Back"), CheckinOp.REWARD_OPEN, cid, reward.id)]]
        await edit_or_send(query.message, text, InlineKeyboardMarkup(inline_keyboard=rows))
    else:
        await edit_or_send(query.message, *reward_view(reward, community))


# --- the form's buttons ---------------------------------------------------------------------------

@router.callback_query(CheckinFormNav.filter(), StateFilter(RewardForm))
async def on_form_button(query: CallbackQuery, callback_data: CheckinFormNav, session: AsyncSession, actor: Actor,
                         state: FSMContext) -> None:
    pressed = await form_press(query, callback_data, session, actor, state, RewardForm)
    if pressed is None:
        return
    current, data, community = pressed
    op = callback_data.op
    if op is CheckinFormOp.BACK:
        await query.answer()
        steps = form_steps(STEPS, data)
        if current == steps[0]:
            await state.clear()
            await edit_or_send(query.message, *await _back_to_catalogue(session, community, data))
        else:
            await edit_or_send(query.message, *await _go(state, steps[steps.index(current) - 1], data))
        return
    if op is CheckinFormOp.SAVE and current == RewardForm.preview.state:
        await _save(query, session, actor, state, community, data)
        return
    changes = _button_answer(op, current, data)
    if changes is None:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    data.update(changes)
    await query.answer()
    await edit_or_send(query.message, *await _go(state, step_after(STEPS, current, data), data))


def _button_answer(op: CheckinFormOp, step: str, data: dict) -> dict | None:
    """What a button answers at this step, or None when the button does not belong to it."""
    if op is CheckinFormOp.KEEP:
        return {} if _value_shown(step, data) is not None else None
    return terms_button_answer(step_name(step), op, CheckinFormOp, data)


async def _back_to_catalogue(session: AsyncSession, community: Community,
                             data: dict) -> tuple[str, InlineKeyboardMarkup]:
    if data.get("reward_id"):
        try:
            reward = await points.get_reward(session, community_id=community.id, reward_id=data["reward_id"])
            return reward_view(reward, community)
        except DomainError:
            pass  # deleted meanwhile: the catalogue shows what is left
    return await list_view(session, community)


async def _save(query: CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext, community: Community,
                data: dict) -> None:
    draft, cid = _draft(data), community.id
    try:
        if data.get("reward_id"):
            reward = await points.update_reward(session, community_id=cid, actor_id=actor.user.id,
                                                reward_id=data["reward_id"], draft=draft, now=_now())
        else:
            reward = await points.add_reward(session, community_id=cid, actor_id=actor.user.id, draft=draft, now=_now())
    except DomainError as err:
        await query.answer()
        if err.code in ("points_reward_deleted", "points_reward_unknown"):
            await state.clear()
            text, markup = await list_view(session, community)
        else:
            text, markup = prompt(RewardForm.preview.state, data)
        await edit_or_send(query.message, error_text(err, currency=community.currency) + "\n\n" + text, markup)
        return
    await state.clear()
    await query.answer(_("Saved."))
    text, markup = await list_view(session, community)
    await edit_or_send(query.message, _("Reward “{title}” saved.").format(title=escape(reward.title)) + "\n\n" + text,
                       markup)


# --- typed answers --------------------------------------------------------------------------------

@router.message(StateFilter(RewardForm), F.chat.type == "private", ~F.text, SENT_BY_PERSON)
async def on_form_not_text(message: Message, state: FSMContext) -> None:
    current = await state.get_state()
    await ask_again(message, not_text_hint(current in BUTTON_STEPS), prompt(current, await state.get_data()))


@router.message(StateFilter(RewardForm), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_answer(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    answered = await typed_answer_step(message, session, actor, state, BUTTON_STEPS, prompt)
    if answered is None:
        return
    current, data, community = answered
    try:
        changes = _typed_answer(current, data, message.text, community.currency)
        points.check_reward(_draft(data | changes))
    except DomainError as err:
        await ask_again(message, error_text(err, currency=community.currency), prompt(current, data))
        return
    data.update(changes)
    text, markup = await _go(state, step_after(STEPS, current, data), data)
    await message.answer(text, reply_markup=markup)


def _typed_answer(step: str, data: dict, raw: str, currency: str) -> dict:
    """Parse one typed answer into form data, or raise the DomainError that says what is wrong."""
    key = step_name(step)
    if key == "title":
        return {"title": " ".join(raw.split())}
    if key == "cost":
        cost = whole_number(raw.strip())
        if cost is None:
            raise DomainError("points_reward_cost_range", min=1, max=points.REWARD_COST_MAX)
        return {"cost": cost}
    if key in AMOUNT_STEPS:
        return parse_amount(key, raw, kind=data.get("kind"), currency=currency)
    return parse_valid_days(raw, "points_reward_valid_days")
