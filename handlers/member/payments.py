"""Paying for orders through Telegram: invoices, the pre-checkout check, the payment itself.

An invoice's payload is `order:<id>`. Telegram asks the bot to approve each checkout
(`pre_checkout_query`) and gives up after 10 seconds, so that answer is one indexed read with a
time budget of its own. `successful_payment` marks the order paid through a conditional update
keyed on Telegram's charge id: a second delivery changes nothing and says nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timezone

from aiogram import Bot, F, Router
from aiogram.types import LabeledPrice, Message, PreCheckoutQuery
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.config import Settings
from bot.services import orders
from bot.services.errors import DomainError
from bot.telegram.middlewares.actor import Actor
from bot.telegram.refunds import refund
from bot.views.errors_text import error_text
from bot.views.order_notify import order_message
from models import PickupPoint
from models.shop import Order, OrderStatus, PaymentMethod, Product

log = logging.getLogger(__name__)
router = Router(name=__name__)

PAYLOAD_RE = re.compile(r"^order:(\d{1,18})$")
# Telegram waits 10 s for the pre-checkout answer; a refusal sent in time beats a timeout.
PRE_CHECKOUT_BUDGET = 7.0
TITLE_MAX, DESCRIPTION_MAX = 32, 255  # Telegram's limits for an invoice


def payload_order_id(payload: str) -> int | None:
    match = PAYLOAD_RE.match(payload)
    return int(match.group(1)) if match else None


async def send_invoice(bot: Bot, settings: Settings, order: Order, product: Product) -> Message:
    """The invoice for an unpaid online order, in its currency or in Stars (XTR, no provider token).

    Invoice texts are plain text (no parse mode), so the product's title goes in unescaped.
    """
    title = product.title if len(product.title) <= TITLE_MAX else product.title[:TITLE_MAX - 1] + "…"
    description = _("Order #{id}: {title} × {qty}").format(id=order.id, title=product.title, qty=order.quantity)
    common = dict(chat_id=order.user_id, title=title, description=description[:DESCRIPTION_MAX], payload=f"order:{order.id}")
    label = f"{title} × {order.quantity}"
    if order.payment_method == PaymentMethod.STARS:
        return await bot.send_invoice(**common, currency="XTR", prices=[LabeledPrice(label=label, amount=order.stars_total)])
    return await bot.send_invoice(**common, currency=order.currency, provider_token=settings.PAYMENT_PROVIDER_TOKEN.get_secret_value(),
                                  prices=[LabeledPrice(label=label, amount=order.total)])


def _now() -> datetime:
    return datetime.now(timezone.utc)


@router.pre_checkout_query(F.invoice_payload.regexp(PAYLOAD_RE))
async def on_pre_checkout(query: PreCheckoutQuery, session: AsyncSession) -> None:
    """Still this user's order, unpaid, unexpired, for exactly this amount?"""
    try:
        async with asyncio.timeout(PRE_CHECKOUT_BUDGET):
            await orders.check_payment(session, order_id=payload_order_id(query.invoice_payload), user_id=query.from_user.id,
                                       currency=query.currency, amount=query.total_amount, now=_now())
    except DomainError as err:
        await query.answer(ok=False, error_message=error_text(err))
        return
    except TimeoutError:
        log.warning("pre-checkout for %s took longer than %.0fs; declined", query.invoice_payload, PRE_CHECKOUT_BUDGET)
        await query.answer(ok=False, error_message=_("The shop is busy right now. Nothing was charged; please try again in a minute."))
        return
    await query.answer(ok=True)


@router.message(F.successful_payment.invoice_payload.regexp(PAYLOAD_RE))
async def on_successful_payment(message: Message, session: AsyncSession, actor: Actor, bot: Bot) -> None:
    paid = message.successful_payment
    try:
        order, newly_paid = await orders.record_payment(
            session, order_id=payload_order_id(paid.invoice_payload), user_id=message.from_user.id, currency=paid.currency,
            amount=paid.total_amount, telegram_charge_id=paid.telegram_payment_charge_id,
            provider_charge_id=paid.provider_payment_charge_id or None, now=message.date)
    except DomainError:
        # Approved at pre-checkout, so the order existed and was this user's: money without an
        # order is for the operator to look into, with the charge id to find it.
        log.error("payment %s for %s matches no order of user %s", paid.telegram_payment_charge_id,
                  paid.invoice_payload, message.from_user.id)
        await message.answer(_("Your payment arrived, but I could not match it to an order. The shop will look into it."))
        return
    if not newly_paid and order.status != OrderStatus.REFUND_DUE:
        return  # this payment was recorded before: a second delivery
    if order.status == OrderStatus.REFUND_DUE:
        # Cancelled (expired) while the member was paying: give Stars back at once.
        await refund(bot, session, order, None, message.date)
    product = await session.get(Product, order.product_id)
    pickup = await session.get(PickupPoint, order.pickup_point_id) if order.pickup_point_id else None
    await message.answer(order_message(order, product, pickup, actor.locale))
