"""/orders: a member's own orders in every community, newest first, a page at a time.

Each shows its number, product, quantity, total, state and where it is picked up. While the
community's cancel window is open the member can cancel (stock and coupon go back; paid Stars
are refunded at once, card payments become refund-due for the leader), and an unpaid online order
can have its invoice sent again. Every press re-reads the order and checks it is the member's.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from math import ceil

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.config import Settings
from bot.core.localtime import local_time
from bot.services import orders
from bot.services.errors import DomainError
from bot.telegram.group_reply import reply_in_group
from bot.telegram.middlewares.actor import Actor
from bot.telegram.refunds import refund
from bot.telegram.sender import Sender
from bot.views import deeplinks
from bot.views.errors_text import error_text
from bot.views.keyboards import MemberOrderAction, MemberOrders
from bot.views.order_notify import member_status, order_head, state_text, where_text
from bot.views.render import edit_or_send
from handlers.member.payments import send_invoice
from models import Community
from models.shop import Order, OrderStatus, PaymentMethod, Product

router = Router(name=__name__)

PAGE_SIZE = 5
ID_MAX = 2**31 - 1


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _button(text: str, action: MemberOrderAction, *, order_id: int = 0, page: int = 0) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=MemberOrders(action=action, order_id=order_id, page=page).pack())


def _payable(order: Order, now: datetime) -> bool:
    return (order.status == OrderStatus.PENDING_PAYMENT and order.payment_method != PaymentMethod.PICKUP
            and (order.expires_at is None or order.expires_at > now))


async def orders_view(session: AsyncSession, user_id: int, locale: str, page: int,
                      notice: str | None = None) -> tuple[str, InlineKeyboardMarkup | None]:
    now = _now()
    rows, total = await orders.member_orders(session, user_id=user_id, offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    pages = max(1, ceil(total / PAGE_SIZE))
    if page >= pages:  # orders shrank away under an old page button
        page = pages - 1
        rows, total = await orders.member_orders(session, user_id=user_id, offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    head = [notice, ""] if notice else []
    if not rows:
        return "\n".join(head + [_("You have no orders yet. Press Buy under a product in your group to order.")]), None
    lines = head + [_("<b>Your orders</b> · page {page} of {pages}").format(page=page + 1, pages=pages)]
    buttons = []
    for row in rows:
        order = row.order
        when = local_time(order.created_at, row.community)
        lines += ["", f"<b>{order_head(order, row.product, locale)}</b>",
                  _("{status} · {community} · {when}").format(status=member_status(order),
                                                              community=escape(row.community.title), when=when)]
        if where := where_text(order, row.pickup):
            lines.append(where)
        actions = []
        if _payable(order, now):
            actions.append(_button(_("💳 Pay #{id}").format(id=order.id), MemberOrderAction.PAY, order_id=order.id, page=page))
        if orders.member_may_cancel(order, row.community, now):
            actions.append(_button(_("✖ Cancel #{id}").format(id=order.id), MemberOrderAction.CANCEL, order_id=order.id, page=page))
        if actions:
            buttons.append(actions)
    paging = []
    if page > 0:
        paging.append(_button(_("‹ Newer"), MemberOrderAction.PAGE, page=page - 1))
    if page + 1 < pages:
        paging.append(_button(_("Older ›"), MemberOrderAction.PAGE, page=page + 1))
    if paging:
        buttons.append(paging)
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=buttons) if buttons else None


@router.message(Command("orders"), F.chat.type == "private")
async def cmd_orders(message: Message, session: AsyncSession, actor: Actor) -> None:
    text, markup = await orders_view(session, actor.user.id, actor.locale, 0)
    await message.answer(text, reply_markup=markup)


@router.message(Command("orders"))
async def cmd_orders_in_group(message: Message, bot_username: str, sender: Sender) -> None:
    """Orders are private: the group gets a pointer, never the list."""
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=_("🧾 My orders"), url=deeplinks.build(bot_username, "orders"))]])
    reply_in_group(sender, message, _("Your orders are in our private chat."), markup)


@deeplinks.route("orders")
async def link_orders(*, message: Message, session: AsyncSession, actor: Actor, **_data) -> None:
    text, markup = await orders_view(session, actor.user.id, actor.locale, 0)
    await message.answer(text, reply_markup=markup)


async def _own_order(session: AsyncSession, actor: Actor, order_id: int) -> tuple[Order, Product, Community] | None:
    order = await session.get(Order, order_id) if 0 < order_id <= ID_MAX else None
    if order is None or order.user_id != actor.user.id:
        return None
    return order, await session.get(Product, order.product_id), await session.get(Community, order.community_id)


@router.callback_query(MemberOrders.filter())
async def on_orders_press(query: CallbackQuery, callback_data: MemberOrders, session: AsyncSession, actor: Actor,
                          bot: Bot, settings: Settings) -> None:
    action, page = callback_data.action, max(0, min(callback_data.page, 10_000))
    if action is MemberOrderAction.PAGE:
        await query.answer()
        await edit_or_send(query.message, *await orders_view(session, actor.user.id, actor.locale, page))
        return
    found = await _own_order(session, actor, callback_data.order_id)
    if found is None:
        await query.answer(error_text(DomainError("order_unknown")), show_alert=True)
        return
    order, product, community = found
    if action is MemberOrderAction.PAY:
        if not _payable(order, _now()):
            await query.answer(error_text(DomainError("order_not_payable")), show_alert=True)
            return
        await query.answer()
        await send_invoice(bot, settings, order, product)
        return
    if action is MemberOrderAction.CANCEL:
        if not orders.member_may_cancel(order, community, _now()):
            await query.answer(_("This order can no longer be cancelled here. Ask the leader."), show_alert=True)
            return
        await query.answer()
        await edit_or_send(query.message, *_cancel_question(order, product, actor.locale, page))
        return
    try:
        await orders.cancel(session, order=order, reason="member", actor_id=actor.user.id, now=_now(), by_member=True)
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        await edit_or_send(query.message, *await orders_view(session, actor.user.id, actor.locale, page))
        return
    if order.status == OrderStatus.REFUND_DUE:
        await refund(bot, session, order, actor.user.id, _now())
    await query.answer(_("Order #{id} cancelled.").format(id=order.id))
    notice = _("Order #{id} is cancelled; the items are back on sale.").format(id=order.id)
    if order.status in (OrderStatus.REFUND_DUE, OrderStatus.REFUNDED):
        notice += "\n" + state_text(order)
    await edit_or_send(query.message, *await orders_view(session, actor.user.id, actor.locale, page, notice))


def _cancel_question(order: Order, product: Product, locale: str, page: int) -> tuple[str, InlineKeyboardMarkup]:
    lines = [_("Cancel this order?"), f"<b>{order_head(order, product, locale)}</b>"]
    if order.paid_at is not None:
        if order.payment_method == PaymentMethod.STARS:
            lines.append(_("Your {stars} ⭐ are refunded at once.").format(stars=order.stars_total))
        else:
            lines.append(_("The leader refunds your payment."))
    markup = InlineKeyboardMarkup(inline_keyboard=[
        [_button(_("Yes, cancel order #{id}").format(id=order.id), MemberOrderAction.CANCEL_CONFIRM, order_id=order.id, page=page)],
        [_button(_("« Back"), MemberOrderAction.PAGE, page=page)],
    ])
    return "\n".join(lines), markup
