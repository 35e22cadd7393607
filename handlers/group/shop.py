"""Buying from the group: `/buy <n> [qty]` and the Buy button on a product card.

The group only ever sees that someone is buying product #n; the order itself continues in a
private chat. The Buy button answers with the deep link (Telegram opens the private chat with it).
/buy opens the checkout in the private chat at once when the member has started the bot, and then
says nothing in the group: the member's own notification is the answer, and a group confirmation
would tell everyone else nothing while spending one of the group's 20 messages a minute (deleting
it later would still have spent it, and notified everyone). Otherwise /buy replies in the group
with the link as a button. Refusals are short replies in the member's language. Group replies go
through the sender, so a rush of /buy is answered late rather than never.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from html import escape

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramForbiddenError
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.config import Settings
from bot.core.numbers import whole_number
from bot.services import orders, products, users
from bot.services.activity import ActivityTracker
from bot.services.errors import DomainError
from bot.telegram.group_reply import reply_in_group
from bot.telegram.middlewares.actor import Actor
from bot.telegram.sender import Sender
from bot.views import deeplinks
from bot.views.errors_text import error_text
from bot.views.keyboards import BuyProduct
from handlers.member import checkout
from models import Community, FunnelStep
from models.shop import Product

log = logging.getLogger(__name__)
router = Router(name=__name__)
router.message.filter(F.chat.type.in_({"group", "supergroup"}))

NUMBER_MAX = 2**31 - 1  # product numbers are 32-bit; a longer one cannot exist


def _usage() -> str:
    return _("Send /buy followed by the number on the product's card, for example /buy 3, or /buy 3 2 for two.")


@router.message(Command("buy"))
async def cmd_buy(message: Message, command: CommandObject, session: AsyncSession, actor: Actor, bot: Bot,
                  bot_username: str, settings: Settings, fsm_storage: BaseStorage, sender: Sender,
                  tracker: ActivityTracker | None = None) -> None:
    community = actor.community
    if community is None:
        reply_in_group(sender, message, _("I do not sell in this group."))
        return
    args = (command.args or "").split()
    if not args or len(args) > 2:
        reply_in_group(sender, message, _usage())
        return
    number = whole_number(args[0].removeprefix("#"))
    if number is None:
        reply_in_group(sender, message,
                       _("“{value}” is not a product number.").format(value=escape(args[0][:16])) + " " + _usage())
        return
    try:
        if number > NUMBER_MAX:
            raise DomainError("product_unknown_number", number=args[0].removeprefix("#")[:12])
        product = await products.by_number(session, community_id=community.id, number=number)
        quantity = _quantity(args[1], product) if len(args) == 2 else None
        orders.check_sellable(product, quantity or 1)
    except DomainError as err:
        reply_in_group(sender, message, error_text(err, currency=community.currency))
        return
    if tracker is not None:
        tracker.count_step(community_id=community.id, tz_name=community.timezone, product_id=product.id,
                           step=FunnelStep.BUY_PRESSED, at=message.date)
    if actor.user.can_dm and await _start_in_private(message, session, settings, bot, fsm_storage, actor, product,
                                                     quantity, tracker):
        return
    link = deeplinks.build(bot_username, "buy", f"{product.id}-{quantity}" if quantity else product.id)
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=_("🛒 Continue in private chat"), url=link)]])
    name = escape(actor.user.first_name or actor.user.display_name)
    text = _("{name}, press the button to order #{number} in a private chat with me.")
    reply_in_group(sender, message, text.format(name=name, number=product.number), markup)


def _quantity(raw: str, product: Product) -> int:
    """The quantity after the number. Past the most one order takes, a smaller stock is the reason
    given: "At most 999" helps nobody when 3 are left."""
    try:
        return orders.parse_quantity(raw)
    except DomainError as err:
        if err.code == "quantity_too_large":
            orders.check_sellable(product, orders.QUANTITY_MAX)
        raise


async def _start_in_private(message: Message, session: AsyncSession, settings: Settings, bot: Bot, storage: BaseStorage,
                            actor: Actor, product: Product, quantity: int | None,
                            tracker: ActivityTracker | None) -> bool:
    """Open the checkout in the member's private chat; False when they cannot be reached after all."""
    user_id = actor.user.id
    state = FSMContext(storage=storage, key=StorageKey(bot_id=bot.id, chat_id=user_id, user_id=user_id))
    text, markup = await checkout.start(state=state, session=session, settings=settings, user_id=user_id,
                                        product_id=product.id, quantity_raw=str(quantity) if quantity else None,
                                        tracker=tracker)
    try:
        await bot.send_message(user_id, text, reply_markup=markup)
    except TelegramForbiddenError:
        log.info("user %s blocked the bot; /buy falls back to the link", user_id)
        await state.clear()
        await users.set_can_dm(session, user_id=user_id, can_dm=False, now=message.date)
        return False
    return True


@router.callback_query(BuyProduct.filter())
async def on_buy_button(query: CallbackQuery, callback_data: BuyProduct, session: AsyncSession, actor: Actor,
                        bot_username: str, tracker: ActivityTracker | None = None) -> None:
    """Telegram opens `t.me/<bot>?start=buy-<id>` given as the answer's url: the checkout starts there."""
    product_id = callback_data.product_id
    product = await session.get(Product, product_id) if 0 < product_id <= NUMBER_MAX else None
    if product is None or (actor.community is not None and product.community_id != actor.community.id):
        await query.answer(error_text(DomainError("product_unknown")), show_alert=True)
        return
    try:
        orders.check_sellable(product, 1)
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        return
    if tracker is not None:
        community = actor.community or await session.get(Community, product.community_id)
        # A press carries no date: it happened when it arrived.
        tracker.count_step(community_id=product.community_id, tz_name=community.timezone, product_id=product.id,
                           step=FunnelStep.BUY_PRESSED, at=datetime.now(timezone.utc))
    await query.answer(url=deeplinks.build(bot_username, "buy", product.id))
