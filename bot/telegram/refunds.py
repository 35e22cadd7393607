"""Giving money back for cancelled paid orders.

Telegram Stars go back through the Bot API (`refundStarPayment`), so the bot refunds them itself.
Card payments are settled by the payment provider, outside Telegram: those orders stay
refund-due until the leader has refunded the buyer and marks them refunded.
"""

from __future__ import annotations

import logging
from datetime import datetime

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import orders
from models.shop import Order, OrderStatus, PaymentMethod

log = logging.getLogger(__name__)


async def refund(bot: Bot, session: AsyncSession, order: Order, actor_id: int | None, now: datetime) -> bool:
    """Refund a refund-due Stars order and mark it refunded; True when it is refunded now.

    False leaves the order refund-due for the leader: a card payment, or Telegram refused (logged).
    A charge Telegram reports as already refunded (an earlier attempt that could not record it,
    or a leader and the member at the same moment) is recorded as refunded.
    """
    if order.status != OrderStatus.REFUND_DUE or order.payment_method != PaymentMethod.STARS or not order.telegram_charge_id:
        return False
    try:
        await bot.refund_star_payment(user_id=order.user_id, telegram_payment_charge_id=order.telegram_charge_id)
    except TelegramBadRequest as exc:
        if "CHARGE_ALREADY_REFUNDED" not in exc.message:
            log.warning("order %s: Stars refund refused: %s", order.id, exc.message)
            return False
    except TelegramAPIError as exc:
        log.warning("order %s: Stars refund failed, left refund-due: %s", order.id, exc)
        return False
    if not await orders.mark_refunded(session, order=order, actor_id=actor_id, now=now):
        await session.refresh(order)  # someone else recorded it first
    return order.status == OrderStatus.REFUNDED
