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

from bot.services.errors import DomainError
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views.errors_text import error_text
from bot.views.keyboards import InviteAdmin, InviteFormNav, InviteFormOp, InviteOp
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
)
from handlers.admin.form_nav import ask_again, form_press, not_text_hint, step_name, typed_answer_step
from handlers.admin.invites import form_button, form_nav_row, level_of, level_view, save_level
from handlers.admin.menu import guard
from handlers.forms import InviteCouponForm

router = Router(name=__name__)

STEPS = (InviteCouponForm.kind, InviteCouponForm.value, InviteCouponForm.cap, InviteCouponForm.min_spend,
         InviteCouponForm.valid_days, InviteCouponForm.preview)
BUTTON_STEPS = {InviteCouponForm.kind.state, InviteCouponForm.preview.state}


def prompt(step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    key = step_name(step)
    terms = terms_prompt(key, data, lambda text, op: form_button(text, op, step), InviteFormOp)
    extra: list[list[InlineKeyboardButton]] = []
    if terms is not None:
        text, extra = terms
    elif key == "valid_days":
        text = _("For how many days after it is given is the coupon valid? Send a whole number from 1 to {max}, or "
                 "Skip: it never expires.").format(max=VALID_DAYS_MAX)
        extra = [[form_button(_("Skip"), InviteFormOp.SKIP, step)]]
    else:
        text = "\n".join([_("<b>Level {level} coupon</b> — check and save").format(level=data["level"]),
                          coupon_line(terms_of(data), data["currency"])])
        extra = [[form_button(_("💾 Save"), InviteFormOp.SAVE, step)]]
    return text, InlineKeyboardMarkup(inline_keyboard=[*extra, form_nav_row(step)])


async def _go(state: FSMContext, step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    await state.set_state(step)
    await state.set_data(data)
    return prompt(step, data)


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
    pressed = await form_press(query, callback_data, session, actor, state, InviteCouponForm)
    if pressed is None:
        return
    current, data, community = pressed
    op = callback_data.op
    if op is InviteFormOp.BACK:
        await query.answer()
        steps = form_steps(STEPS, data)
        if current == steps[0]:
            await state.clear()
            await edit_or_send(query.message, *level_view(community, data["level"]))
        else:
            await edit_or_send(query.message, *await _go(state, steps[steps.index(current) - 1], data))
        return
    if op is InviteFormOp.SAVE and current == InviteCouponForm.preview.state:
        try:
            await save_level(session, community, actor, data["level"], {"coupon": terms_of(data).model_dump()})
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
    changes = terms_button_answer(step_name(current), op, InviteFormOp, data)
    if changes is None:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    data.update(changes)
    await query.answer()
    await edit_or_send(query.message, *await _go(state, step_after(STEPS, current, data), data))


# --- typed answers ---------------------------------------------------------------------------------

@router.message(StateFilter(InviteCouponForm), F.chat.type == "private", ~F.text, SENT_BY_PERSON)
async def on_form_not_text(message: Message, state: FSMContext) -> None:
    current = await state.get_state()
    await ask_again(message, not_text_hint(current in BUTTON_STEPS), prompt(current, await state.get_data()))


@router.message(StateFilter(InviteCouponForm), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_answer(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    answered = await typed_answer_step(message, session, actor, state, BUTTON_STEPS, prompt)
    if answered is None:
        return
    current, data, community = answered
    key = step_name(current)
    try:
        if key in AMOUNT_STEPS:
            changes = parse_amount(key, message.text, kind=data.get("kind"), currency=data["currency"])
        else:
            changes = parse_valid_days(message.text, "invite_setting_number")
    except DomainError as err:
        await ask_again(message, error_text(err, currency=community.currency), prompt(current, data))
        return
    data.update(changes)
    text, markup = await _go(state, step_after(STEPS, current, data), data)
    await message.answer(text, reply_markup=markup)
