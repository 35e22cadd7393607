"""What the leader's check-in and invite forms do alike around their steps: the press on a form's
button that may be stale, Cancel, the answer that is not text, and the member named by forwarding
one of their messages. Each form keeps its own handlers and steps; these are the pieces it calls.
"""

from __future__ import annotations

from collections.abc import Callable, Container

from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, MessageOriginUser
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.telegram.middlewares.actor import Actor
from bot.views.keyboards import CheckinFormNav, InviteFormNav
from bot.views.render import edit_or_send
from handlers.admin.menu import form_guard, guard
from models import Community

Screen = tuple[str, InlineKeyboardMarkup]


def step_name(state: str) -> str:
    """The option (or form field) a form step edits: the step is named after it."""
    return state.split(":", 1)[1]


async def open_form(query: CallbackQuery, state: FSMContext, callback_data: CheckinFormNav | InviteFormNav,
                    group: type) -> tuple[str, dict] | None:
    """The open form's step and data if this button belongs to it; otherwise the press is answered
    and None. A press on a form that is gone (a double tap after Confirm, an old message) only gets
    a toast: the screen that closed the form stays as it is."""
    current, data = await state.get_state(), await state.get_data()
    if current is None or not current.startswith(group.__name__ + ":") or "community_id" not in data:
        await query.answer(_("This form is no longer open."))
        return None
    if step_name(current) != callback_data.step:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return None
    return current, data


async def cancel_form(query: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, _("Cancelled. Nothing was changed. Send /admin to open the menu again."))


async def form_press(query: CallbackQuery, callback_data: CheckinFormNav | InviteFormNav, session: AsyncSession,
                     actor: Actor, state: FSMContext, group: type) -> tuple[str, dict, Community] | None:
    """The open form's step, data and community for a press on one of its buttons; None when the
    press is already dealt with: a stale button, Cancel, or an actor who no longer leads the
    community (the form closes)."""
    found = await open_form(query, state, callback_data, group)
    if found is None:
        return None
    current, data = found
    if callback_data.op is type(callback_data.op).CANCEL:
        await cancel_form(query, state)
        return None
    community = await guard(query, session, actor, data["community_id"])
    if community is None:
        await state.clear()
        return None
    return current, data, community


def not_text_hint(buttons: bool) -> str:
    """Why a message that is not text was not taken: the step wants a button, or typed text."""
    return _("Please choose with the buttons.") if buttons else _("Please answer with text.")


async def ask_again(message: Message, why: str, screen: Screen) -> None:
    """The reason an answer was not taken, then the step's question again."""
    text, markup = screen
    await message.answer(why + "\n\n" + text, reply_markup=markup)


async def typed_answer_step(message: Message, session: AsyncSession, actor: Actor, state: FSMContext,
                            button_steps: Container[str],
                            prompt: Callable[[str, dict], Screen]) -> tuple[str, dict, Community] | None:
    """The open form's step, data and community for a typed answer; None when it is dealt with here:
    the actor no longer leads the community (the form closes), or the step takes buttons only (it is
    asked again)."""
    current, data = await state.get_state(), await state.get_data()
    community = await form_guard(message, session, actor, state)
    if community is None:
        return None
    if current in button_steps:
        await ask_again(message, not_text_hint(True), prompt(current, data))
        return None
    return current, data, community


async def forwarded_sender(message: Message, screen: Screen) -> str | None:
    """The id of whoever wrote a forwarded message, as a member step takes it typed; None (and the
    step asked again) when their privacy settings hide them."""
    origin = message.forward_origin
    if not isinstance(origin, MessageOriginUser):
        await ask_again(message, _("That forward does not show who wrote it (their privacy settings hide it). Send "
                                   "their @username or numeric Telegram id instead."), screen)
        return None
    return str(origin.sender_user.id)
