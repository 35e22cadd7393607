"""/admin → Invites → Level 1 / Level 2 → coupon: the coupon a level gives for each invite that counts.

One form (`InviteCouponForm`, the level in its data): kind → value → cap (percent only) → minimum
spend → valid days → preview, with Back and Cancel on every step; terms as the check-in rewards
have them, typed in the community's currency and kept in minor units. Each typed answer is checked
at once, so a refusal names the step's problem; Save hands the whole reward to
`update_invite_settings`, which validates it again and audits it.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.numbers import whole_number
from bot.services import coupons
from bot.services.checkin_settings import CouponTerms
from bot.services.errors import DomainError
from bot.services.money import parse_money
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views.errors_text import error_text
from bot.views.keyboards import InviteAdmin, InviteFormNav, InviteFormOp, InviteOp
from bot.views.render import edit_or_send
from handlers.admin.checkin import cancel_form, open_form, terms_text
from handlers.admin.invites import form_button, form_nav_row, level_of, level_view, save_level
from handlers.admin.menu import form_guard, guard
from handlers.forms import InviteCouponForm
from models import CouponKind

router = Router(name=__name__)

STEPS = (InviteCouponForm.kind, InviteCouponForm.value, InviteCouponForm.cap, InviteCouponForm.min_spend,
         InviteCouponForm.valid_days, InviteCouponForm.preview)
BUTTON_STEPS = {InviteCouponForm.kind.state, InviteCouponForm.preview.state}
VALID_DAYS_MAX = 3650


def _steps(data: dict) -> list[str]:
    """The form's steps for this coupon: a cap only makes sense for a percentage."""
    return [s.state for s in STEPS if s is not InviteCouponForm.cap or data.get("kind") == CouponKind.PERCENT]


def _terms(data: dict) -> CouponTerms:
    return CouponTerms(kind=CouponKind(data["kind"]), value=data["value"], cap=data.get("cap"),
                       min_spend=data.get("min_spend", 0), valid_days=data.get("valid_days"))


def prompt(step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    currency = data["currency"]
    extra: list[list[InlineKeyboardButton]] = []
    if step == InviteCouponForm.kind.state:
        text = _("The coupon it gives: a fixed amount off, or a percentage?")
        extra = [[form_button(_("Fixed amount"), InviteFormOp.FIXED, step),
                  form_button(_("Percent"), InviteFormOp.PERCENT, step)]]
    elif step == InviteCouponForm.value.state:
        if data.get("kind") == CouponKind.PERCENT:
            text = _("How many percent off? Send a whole number from 1 to 100.")
        else:
            text = _("How much off? Send an amount in {currency}, for example 5 or 12.50.").format(currency=currency)
    elif step == InviteCouponForm.cap.state:
        text = _("The most it takes off, in {currency}? Send an amount, or Skip for no cap.").format(currency=currency)
        extra = [[form_button(_("Skip"), InviteFormOp.SKIP, step)]]
    elif step == InviteCouponForm.min_spend.state:
        text = _("Minimum spend for the coupon to work, in {currency}? Send an amount, or Skip for none.").format(
            currency=currency)
        extra = [[form_button(_("Skip"), InviteFormOp.SKIP, step)]]
    elif step == InviteCouponForm.valid_days.state:
        text = _("For how many days after it is given is the coupon valid? Send a whole number from 1 to {max}, or "
                 "Skip: it never expires.").format(max=VALID_DAYS_MAX)
        extra = [[form_button(_("Skip"), InviteFormOp.SKIP, step)]]
    else:
        text = "\n".join([_("<b>Level {level} coupon</b> — check and save").format(level=data["level"]),
                          _("Coupon: {terms}").format(terms=terms_text(_terms(data), currency))])
        extra = [[form_button(_("💾 Save"), InviteFormOp.SAVE, step)]]
    return text, InlineKeyboardMarkup(inline_keyboard=[*extra, form_nav_row(step)])


async def _go(state: FSMContext, step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    await state.set_state(step)
    await state.set_data(data)
    return prompt(step, data)


def _after(step: str, data: dict) -> str:
    steps = _steps(data)
    return steps[steps.index(step) + 1]


@router.callback_query(InviteAdmin.filter(F.op == InviteOp.LEVEL_COUPON))
async def on_coupon(query: CallbackQuery, callback_data: InviteAdmin, session: AsyncSession, actor: Actor,
                    state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    level = await level_of(query, callback_data.item)
    if level is None:
        return
    data = {"community_id": community.id, "currency": community.currency, "level": level}
    await query.answer()
    await edit_or_send(query.message, *await _go(state, InviteCouponForm.kind.state, data))


@router.callback_query(InviteFormNav.filter(), StateFilter(InviteCouponForm))
async def on_form_button(query: CallbackQuery, callback_data: InviteFormNav, session: AsyncSession, actor: Actor,
                         state: FSMContext) -> None:
    found = await open_form(query, state, callback_data, InviteCouponForm)
    if found is None:
        return
    current, data = found
    op = callback_data.op
    if op is InviteFormOp.CANCEL:
        await cancel_form(query, state)
        return
    community = await guard(query, session, actor, data["community_id"])
    if community is None:
        await state.clear()
        return
    if op is InviteFormOp.BACK:
        await query.answer()
        steps = _steps(data)
        if current == steps[0]:
            await state.clear()
            await edit_or_send(query.message, *level_view(community, data["level"]))
        else:
            await edit_or_send(query.message, *await _go(state, steps[steps.index(current) - 1], data))
        return
    if op is InviteFormOp.SAVE and current == InviteCouponForm.preview.state:
        try:
            await save_level(session, community, actor, data["level"], {"coupon": _terms(data).model_dump()})
        except DomainError as err:
            await query.answer()
            text, markup = prompt(current, data)
            await edit_or_send(query.message, error_text(err) + "\n\n" + text, markup)
            return
        await state.clear()
        await query.answer(_("Saved."))
        text, markup = level_view(community, data["level"])
        await edit_or_send(query.message, _("Saved.") + "\n\n" + text, markup)
        return
    changes = _button_answer(op, current, data)
    if changes is None:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    data.update(changes)
    await query.answer()
    await edit_or_send(query.message, *await _go(state, _after(current, data), data))


def _button_answer(op: InviteFormOp, step: str, data: dict) -> dict | None:
    """What a button answers at this step, or None when the button does not belong to it."""
    if step == InviteCouponForm.kind.state and op in (InviteFormOp.FIXED, InviteFormOp.PERCENT):
        kind = CouponKind.FIXED if op is InviteFormOp.FIXED else CouponKind.PERCENT
        # A new kind makes the old value meaningless (5.00 off is not 500% off): it is asked again.
        return {} if data.get("kind") == kind else {"kind": kind.value, "value": None, "cap": None}
    skips = {InviteCouponForm.cap.state: {"cap": None}, InviteCouponForm.min_spend.state: {"min_spend": 0},
             InviteCouponForm.valid_days.state: {"valid_days": None}}
    return skips.get(step) if op is InviteFormOp.SKIP else None


# --- typed answers ---------------------------------------------------------------------------------

@router.message(StateFilter(InviteCouponForm), F.chat.type == "private", ~F.text, SENT_BY_PERSON)
async def on_form_not_text(message: Message, state: FSMContext) -> None:
    current = await state.get_state()
    text, markup = prompt(current, await state.get_data())
    hint = _("Please choose with the buttons.") if current in BUTTON_STEPS else _("Please answer with text.")
    await message.answer(hint + "\n\n" + text, reply_markup=markup)


@router.message(StateFilter(InviteCouponForm), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_answer(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    current, data = await state.get_state(), await state.get_data()
    community = await form_guard(message, session, actor, state)
    if community is None:
        return
    if current in BUTTON_STEPS:
        text, markup = prompt(current, data)
        await message.answer(_("Please choose with the buttons.") + "\n\n" + text, reply_markup=markup)
        return
    try:
        changes = _typed_answer(current, data, message.text)
    except DomainError as err:
        text, markup = prompt(current, data)
        await message.answer(error_text(err, currency=community.currency) + "\n\n" + text, reply_markup=markup)
        return
    data.update(changes)
    text, markup = await _go(state, _after(current, data), data)
    await message.answer(text, reply_markup=markup)


def _typed_answer(step: str, data: dict, raw: str) -> dict:
    """Parse one typed answer into form data, or raise the DomainError that says what is wrong."""
    currency = data["currency"]
    if step == InviteCouponForm.value.state:
        if data.get("kind") == CouponKind.PERCENT:
            return {"value": coupons.parse_percent(raw)}
        return {"value": _positive(parse_money(raw, currency))}
    if step == InviteCouponForm.cap.state:
        return {"cap": _positive(parse_money(raw, currency))}
    if step == InviteCouponForm.min_spend.state:
        return {"min_spend": parse_money(raw, currency)}
    days = whole_number(raw.strip())
    if days is None or not 1 <= days <= VALID_DAYS_MAX:
        raise DomainError("invite_setting_number", value=raw.strip()[:16], min=1, max=VALID_DAYS_MAX)
    return {"valid_days": days}


def _positive(amount: int) -> int:
    if amount <= 0:
        raise DomainError("coupon_value_zero")
    return amount
