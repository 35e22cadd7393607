"""How an order reads to its buyer, and telling the buyer when its state changes.

The wording lives here once: the checkout, /orders, the payment handlers, the expiry job and the
leader's order screens all describe an order the same way. Texts use `_()`, so callers outside an
update wrap them in the recipient's locale (`notify_member` does).
"""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import get_i18n
from bot.core.locales import resolve_locale
from bot.services.money import format_money
from bot.telegram.sender import Sender
from models import Community, PickupPoint, User
from models.shop import Order, OrderStatus, PaymentMethod, Product


def status_label(status: str) -> str:
    labels = {
        OrderStatus.PENDING_PAYMENT: _("awaiting payment"),
        OrderStatus.PAID: _("paid"),
        OrderStatus.FULFILLED: _("ready"),
        OrderStatus.PICKED_UP: _("picked up"),
        OrderStatus.AWAITING_GROUP: _("waiting for the group-buy"),
        OrderStatus.CONFIRMED: _("confirmed"),
        OrderStatus.CANCELLED: _("cancelled"),
        OrderStatus.REFUND_DUE: _("refund due"),
        OrderStatus.REFUNDED: _("refunded"),
    }
    return labels.get(status, status)


def member_status(order: Order) -> str:
    """The state as the buyer reads it: an unpaid pay-at-pickup order is not waiting for anything."""
    if order.status == OrderStatus.PENDING_PAYMENT and order.payment_method == PaymentMethod.PICKUP:
        return _("to pay at pickup")
    return status_label(order.status)


def method_label(method: str, *, stars: int | None = None) -> str:
    if method == PaymentMethod.PROVIDER:
        return _("card")
    if method == PaymentMethod.STARS:
        return _("Telegram Stars ({stars} ⭐)").format(stars=stars) if stars else _("Telegram Stars")
    return _("pay at pickup")


def amount_text(order: Order, locale: str) -> str:
    """What the buyer pays: the total, and the Stars it is charged as.

    A group-buy that closed below what was paid lowered the total after the payment; the Stars
    (or card payment) were for the old one. Paid, final and the credit given back then read
    together, or the Stars would seem to be for the lower total.
    """
    money = format_money(order.total, order.currency, locale)
    if not order.credit:
        return f"{money} ({order.stars_total} ⭐)" if order.stars_total else money
    paid = format_money(order.total + order.credit, order.currency, locale)
    if order.stars_total:
        paid = f"{paid} ({order.stars_total} ⭐)"
    return _("paid {paid} · final {final} · {credit} back as a coupon").format(
        paid=paid, final=money, credit=format_money(order.credit, order.currency, locale))


def where_text(order: Order, pickup: PickupPoint | None) -> str:
    if order.delivery_address:
        return _("Delivery to: {address}").format(address=escape(order.delivery_address))
    if pickup is not None:
        return _("Pickup: {place}").format(place=escape(pickup.name))
    return ""


def order_head(order: Order, product: Product, locale: str) -> str:
    """`Order #12 · Apples × 2 · $10.00`: the line every message about an order starts with."""
    return _("Order #{id} · {title} × {qty} · {amount}").format(
        id=order.id, title=escape(product.title), qty=order.quantity, amount=amount_text(order, locale))


def state_text(order: Order) -> str:
    """What the new state means for the buyer, one sentence."""
    status = order.status
    if status == OrderStatus.PENDING_PAYMENT:
        if order.payment_method == PaymentMethod.PICKUP:
            return _("Your order is placed. You pay when you pick it up.")
        return _("Your order is placed and waits for your payment.")
    if status == OrderStatus.PAID:
        return _("Payment received. Thank you!")
    if status == OrderStatus.FULFILLED:
        if order.delivery_address:
            return _("Your order is on its way.")
        return _("Your order is ready for pickup.")
    if status == OrderStatus.PICKED_UP:
        return _("Your order was picked up. Enjoy!")
    if status == OrderStatus.AWAITING_GROUP:
        return _("Your order waits for the group-buy to succeed.")
    if status == OrderStatus.CONFIRMED:
        return _("The group-buy succeeded; your order is confirmed.")
    if status == OrderStatus.CANCELLED:
        if order.cancel_reason == "expired":
            return _("Your order was cancelled because it was not paid in time. Order again if you still want it.")
        return _("Your order was cancelled.")
    if status == OrderStatus.REFUND_DUE:
        return _("Your order was cancelled after you paid. The leader will refund you.")
    if status == OrderStatus.REFUNDED:
        if order.payment_method == PaymentMethod.STARS:
            return _("Your payment was refunded: {stars} ⭐ are back in your balance.").format(stars=order.stars_total)
        return _("Your payment was refunded.")
    return status_label(status)


def order_message(order: Order, product: Product, pickup: PickupPoint | None, locale: str) -> str:
    lines = [f"<b>{order_head(order, product, locale)}</b>", state_text(order)]
    if order.status in (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.FULFILLED, OrderStatus.CONFIRMED):
        if where := where_text(order, pickup):
            lines.append(where)
    return "\n".join(lines)


async def notify_member(sender: Sender, session: AsyncSession, order: Order) -> None:
    """Tell the buyer, in their language, the state their order is in now.

    Only when the bot may write to them (they started it and did not block it); the sender
    queues the message and records a 403 if that changed meanwhile. Durable: nothing tells the
    buyer again once the change is committed (the handler's update is acknowledged, the job's
    order no longer due).
    """
    user = await session.get(User, order.user_id)
    if user is None or not user.can_dm or user.erased:
        return
    community = await session.get(Community, order.community_id)
    product = await session.get(Product, order.product_id)
    pickup = await session.get(PickupPoint, order.pickup_point_id) if order.pickup_point_id else None
    locale = resolve_locale(user, community, community.default_locale if community else "en")
    with get_i18n().use_locale(locale):
        text = order_message(order, product, pickup, locale)
    sender.send_message(user.id, text, durable=True)
