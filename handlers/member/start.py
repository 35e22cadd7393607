"""/start in private chat, with deep-link payloads resolved through bot.views.deeplinks."""

from __future__ import annotations

from html import escape

from aiogram import F, Router
from aiogram.filters import CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.telegram.middlewares.actor import Actor
from bot.views import deeplinks

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")


def welcome_text(actor: Actor) -> str:
    return _(
        "Hi {name}! I run the shop of the Telegram groups I am in: products with buy buttons, "
        "group-buys, check-ins and rewards.\n\n"
        "Send /help to see what you can do. Send /lang to change the language."
    ).format(name=escape(actor.user.first_name or ""))


async def close_form(state: FSMContext, raw_state: str | None) -> None:
    """/start leaves any form the user had open. Forms hold data only while their state is set,
    so with no state there is nothing to clear (on Redis, clearing is two round trips)."""
    if raw_state is not None:
        await state.clear()


@router.message(CommandStart(deep_link=True))
async def cmd_start_payload(message: Message, command: CommandObject, actor: Actor, state: FSMContext, **data) -> None:
    await close_form(state, data.get("raw_state"))
    target = deeplinks.resolve(command.args or "")
    if target is None:
        await message.answer(_("This link is not valid or has expired.") + "\n\n" + welcome_text(actor))
        return
    handler, arg = target
    await handler(message=message, arg=arg, actor=actor, state=state, **data)


@router.message(CommandStart())
async def cmd_start(message: Message, actor: Actor, state: FSMContext, raw_state: str | None) -> None:
    await close_form(state, raw_state)
    await message.answer(welcome_text(actor))
