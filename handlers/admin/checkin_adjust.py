"""/admin → Check-in & points → Adjust points: a leader adds or takes a member's points by hand.

The form (`PointsAdjustForm`) asks member → change → reason → confirmation, with Back and Cancel.
The member is named by @username or numeric id, or by forwarding one of their messages. Entering
the confirmation draws a key kept in the form's data, and Confirm passes it to `points.adjust`: two
taps on one confirmation (even handled at once) write one entry, while the next adjustment, even
from the same message, gets a key of its own. The service writes the audit row and never lets a
balance go below zero.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from html import escape

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import coupons, points
from bot.services.errors import DomainError
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views.errors_text import error_text
from bot.views.keyboards import CheckinAdmin, CheckinFormNav, CheckinFormOp, CheckinOp, Section
from bot.views.render import edit_or_send
from handlers.admin.checkin import form_button, form_nav_row, main_view
from handlers.admin.form_nav import ask_again, form_press, forwarded_sender, not_text_hint, typed_answer_step
from handlers.admin.menu import back_button, guard
from handlers.forms import PointsAdjustForm
from models import Community, User

router = Router(name=__name__)

STEPS = (PointsAdjustForm.member.state, PointsAdjustForm.delta.state, PointsAdjustForm.note.state,
         PointsAdjustForm.confirm.state)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _label(user: User) -> str:
    return f"{user.display_name} (@{user.username})" if user.username else f"{user.display_name} ({user.id})"


def signed(delta: int) -> str:
    return f"+{delta}" if delta > 0 else str(delta)


def prompt(step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    extra: list[list[InlineKeyboardButton]] = []
    if step == PointsAdjustForm.member.state:
        text = _("Whose points? Send the member's @username or numeric Telegram id, or forward me a message they "
                 "wrote.")
    elif step == PointsAdjustForm.delta.state:
        text = _("{member} has {balance} points. How many to add or take? Send for example +50 or -20.").format(
            member=escape(data["member"]), balance=data["balance"])
    elif step == PointsAdjustForm.note.state:
        text = _("Why? Send the reason (up to {max} characters); it is kept with the entry and in the audit "
                 "log.").format(max=points.NOTE_MAX)
    else:
        text = "\n".join([
            _("<b>Adjust points</b> — check and confirm"),
            _("Member: {member}").format(member=escape(data["member"])),
            _("Change: {delta} points").format(delta=signed(data["delta"])),
            _("Balance: {before} → {after}").format(before=data["balance"], after=data["balance"] + data["delta"]),
            _("Reason: {note}").format(note=escape(data["note"])),
        ])
        extra = [[form_button(_("✅ Confirm"), CheckinFormOp.CONFIRM, step)]]
    return text, InlineKeyboardMarkup(inline_keyboard=[*extra, form_nav_row(step)])


async def _go(state: FSMContext, step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    if step == PointsAdjustForm.confirm.state:
        data = data | {"key": secrets.token_hex(8)}
    await state.set_state(step)
    await state.set_data(data)
    return prompt(step, data)


async def _with_balance(session: AsyncSession, data: dict) -> dict:
    """The form's data with the member's balance as it is now (it moves while the leader types)."""
    return data | {"balance": await points.balance(session, community_id=data["community_id"], user_id=data["user_id"])}


def result_view(community: Community, member: str, delta: int, balance: int) -> tuple[str, InlineKeyboardMarkup]:
    text = _("Done: {delta} points for {member}. Balance now: {balance}.").format(
        delta=signed(delta), member=escape(member), balance=balance)
    rows = [[InlineKeyboardButton(text=_("✍️ Adjust another"),
                                  callback_data=CheckinAdmin(op=CheckinOp.ADJUST, community_id=community.id).pack())],
            [back_button(community.id, Section.CHECKIN)]]
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


@router.callback_query(CheckinAdmin.filter(F.op == CheckinOp.ADJUST))
async def on_adjust(query: CallbackQuery, callback_data: CheckinAdmin, session: AsyncSession, actor: Actor,
                    state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await query.answer()
    await edit_or_send(query.message, *await _go(state, PointsAdjustForm.member.state, {"community_id": community.id}))


@router.callback_query(CheckinFormNav.filter(), StateFilter(PointsAdjustForm))
async def on_form_button(query: CallbackQuery, callback_data: CheckinFormNav, session: AsyncSession, actor: Actor,
                         state: FSMContext) -> None:
    pressed = await form_press(query, callback_data, session, actor, state, PointsAdjustForm)
    if pressed is None:
        return
    current, data, community = pressed
    if callback_data.op is CheckinFormOp.BACK:
        await query.answer()
        if current == STEPS[0]:
            await state.clear()
            await edit_or_send(query.message, *await main_view(session, community))
        else:
            back = STEPS[STEPS.index(current) - 1]
            if back == PointsAdjustForm.delta.state:
                data = await _with_balance(session, data)
            await edit_or_send(query.message, *await _go(state, back, data))
        return
    if callback_data.op is not CheckinFormOp.CONFIRM or current != PointsAdjustForm.confirm.state:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    try:
        done = await points.adjust(session, community_id=community.id, user_id=data["user_id"], delta=data["delta"],
                                   note=data["note"], actor_id=actor.user.id, now=_now(), key=data["key"])
    except DomainError as err:
        # The balance moved or the member is gone since the form was filled: ask that step again.
        back = {"points_adjust_below_zero": PointsAdjustForm.delta.state,
                "points_member_unknown": PointsAdjustForm.member.state}.get(err.code, PointsAdjustForm.confirm.state)
        if back != PointsAdjustForm.member.state:
            data = await _with_balance(session, data)
        await query.answer()
        text, markup = await _go(state, back, data)
        await edit_or_send(query.message, error_text(err) + "\n\n" + text, markup)
        return
    await state.clear()
    await query.answer(_("Saved."))
    # A repeated confirmation (created False) shows the same result, so its edit changes nothing.
    await edit_or_send(query.message, *result_view(community, data["member"], done.delta, done.balance))


# --- typed answers --------------------------------------------------------------------------------

@router.message(StateFilter(PointsAdjustForm.member), F.chat.type == "private", F.forward_origin)
async def on_forwarded_member(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    raw = await forwarded_sender(message, prompt(PointsAdjustForm.member.state, await state.get_data()))
    if raw is not None:
        await _answer(message, session, actor, state, raw)


@router.message(StateFilter(PointsAdjustForm), F.chat.type == "private", ~F.text, SENT_BY_PERSON)
async def on_form_not_text(message: Message, state: FSMContext) -> None:
    current = await state.get_state()
    await ask_again(message, not_text_hint(current == PointsAdjustForm.confirm.state),
                    prompt(current, await state.get_data()))


@router.message(StateFilter(PointsAdjustForm), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_answer(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    await _answer(message, session, actor, state, message.text)


async def _answer(message: Message, session: AsyncSession, actor: Actor, state: FSMContext, raw: str) -> None:
    answered = await typed_answer_step(message, session, actor, state, {PointsAdjustForm.confirm.state}, prompt)
    if answered is None:
        return
    current, data, community = answered
    try:
        if current == PointsAdjustForm.member.state:
            user = await _member(session, community, raw)
            data = await _with_balance(session, data | {"user_id": user.id, "member": _label(user)})
        elif current == PointsAdjustForm.delta.state:
            data = data | {"delta": points.parse_delta(raw)}
        else:
            data = data | {"note": points.check_note(raw)}
            data = await _with_balance(session, data)
    except DomainError as err:
        await ask_again(message, error_text(err), prompt(current, data))
        return
    text, markup = await _go(state, STEPS[STEPS.index(current) + 1], data)
    await message.answer(text, reply_markup=markup)


async def _member(session: AsyncSession, community: Community, raw: str) -> User:
    """A present member named by @username or id; refused as `points_member_unknown` (value)."""
    try:
        return await coupons.resolve_owner(session, community_id=community.id, raw=raw)
    except DomainError as err:
        raise DomainError("points_member_unknown", value=err.params.get("value", raw.strip()[:64])) from None
