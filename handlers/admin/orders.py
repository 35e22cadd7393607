"""/admin → Orders: filter, page, open an order and move it on, bulk marks at a pickup point,
pick lists and a CSV export.

Every press re-checks that the actor leads the community and that the order belongs to it; the
filter riding in the callback data only narrows what a leader may see anyway. Each state change
goes through `orders` (conditional updates: a double tap changes nothing twice) and the buyer is
told through `order_notify`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from html import escape

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.localtime import local_time
from bot.services import order_reports, orders, products, settings
from bot.services.communities import ID_MAX
from bot.services.errors import DomainError
from bot.services.money import format_money
from bot.services.order_reports import DELIVERY, STATUS_FILTERS, LeaderAction, ReportFilter
from bot.services.orders import OrderRow
from bot.services.shop_settings import shop_settings
from bot.telegram import refunds
from bot.telegram.middlewares.actor import Actor
from bot.telegram.sender import Sender
from bot.views import order_notify
from bot.views.errors_text import error_text
from bot.views.keyboards import AdminNav, AdminOrders, OrdersOp, Section
from bot.views.render import edit_or_send
from handlers.admin.menu import back_button, guard
from models import Community, PickupPoint, User
from models.shop import OrderStatus, Product

router = Router(name=__name__)

MESSAGE_LIMIT = 4096
PRODUCTS_IN_MENU = 40
NAME_IN_LIST = 40  # ten list lines with the longest names Telegram allows would not fit one message
# The longest op is two characters longer than the shortest: a button re-packed from a press
# must still fit Telegram's 64 bytes.
PACKED_MAX = 62


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _locale() -> str:
    return I18n.get_current().current_locale


def money(amount: int, currency: str) -> str:
    return format_money(amount, currency, _locale())


def filter_label(key: str) -> str:
    return {
        "open": _("Open"), "unpaid": _("Awaiting payment"), "paid": _("Paid"), "fulfilled": _("Fulfilled"),
        "picked": _("Picked up"), "cancelled": _("Cancelled"), "refund": _("Refund due"), "all": _("All states"),
    }[key]


def buyer_name(user: User, at: datetime, limit: int | None = None) -> str:
    """The name of whoever made a record at `at` (an order, a team): none if they erased their
    profile since, even when they came back under a new one."""
    return _("Erased member") if user.hidden_at(at) else escape(user.display_name[:limit])


def buyer_handle(user: User, at: datetime) -> str:
    return "" if user.hidden_at(at) or not user.username else "@" + escape(user.username)


# --- callback data helpers --------------------------------------------------------------------------

def _filter(cb: AdminOrders) -> ReportFilter:
    return ReportFilter(status=cb.status, product_id=cb.product_id or None, place=cb.place or None)


def _to(cb: AdminOrders, op: OrdersOp, **changes: object) -> str:
    return AdminOrders(**{**cb.model_dump(), "op": op, **changes}).pack()


def _button(text: str, cb: AdminOrders, op: OrdersOp, **changes: object) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=_to(cb, op, **changes))


async def _place_name(session: AsyncSession, community: Community, place: int | None) -> str | None:
    if place == DELIVERY:
        return _("Delivery")
    if place:
        point = await session.get(PickupPoint, place)
        if point is not None and point.community_id == community.id:
            return escape(point.name)
    return None


# --- the list -----------------------------------------------------------------------------------------

def order_line(row: OrderRow) -> str:
    order = row.order
    return " · ".join([f"#{order.id}", buyer_name(row.buyer, order.created_at, NAME_IN_LIST), f"{escape(row.product.title)} × {order.quantity}",
                       money(order.total, order.currency), order_notify.status_label(order.status)])


async def list_view(session: AsyncSession, community: Community, cb: AdminOrders) -> tuple[str, InlineKeyboardMarkup]:
    flt = _filter(cb)
    found = await order_reports.page(session, community_id=community.id, flt=flt, page=cb.page)
    cb = AdminOrders(**{**cb.model_dump(), "page": found.page})
    product = await session.get(Product, flt.product_id) if flt.product_id else None
    product_text = f"#{product.number} {escape(product.title)}" if product and product.community_id == community.id else _("All")
    place_text = await _place_name(session, community, flt.place) or _("All")
    lines = [
        _("<b>Orders · {title}</b>").format(title=escape(community.title)),
        _("State: {state} · Product: {product} · Place: {place}").format(
            state=filter_label(flt.status), product=product_text, place=place_text),
    ]
    if found.total:
        lines.append(_("{total} orders · page {page} of {pages}").format(total=found.total, page=found.page + 1, pages=found.pages))
        lines.extend(order_line(row) for row in found.rows)
    else:
        lines.append(_("No orders match."))
    rows = [[_button(_("State ▾"), cb, OrdersOp.STATUS_MENU), _button(_("Product ▾"), cb, OrdersOp.PRODUCT_MENU),
             _button(_("Place ▾"), cb, OrdersOp.PLACE_MENU)]]
    opens = [_button(f"#{row.order.id}", cb, OrdersOp.VIEW, order_id=row.order.id) for row in found.rows]
    rows.extend(opens[i:i + 5] for i in range(0, len(opens), 5))
    if found.pages > 1:
        pager = []
        if found.page > 0:
            pager.append(_button(_("‹ Newer"), cb, OrdersOp.LIST, page=found.page - 1))
        if found.page < found.pages - 1:
            pager.append(_button(_("Older ›"), cb, OrdersOp.LIST, page=found.page + 1))
        rows.append(pager)
    rows.append([_button(_("📋 Pick list"), cb, OrdersOp.PICK_LIST), _button(_("⬇️ CSV"), cb, OrdersOp.EXPORT)])
    if flt.place and flt.place != DELIVERY:
        rows.append([_button(_("✅ Mark all here fulfilled"), cb, OrdersOp.BULK_FULFILLED)])
        rows.append([_button(_("📦 Mark all here picked up"), cb, OrdersOp.BULK_PICKED_UP)])
    rows.append([back_button(community.id)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def _checked(text: str, on: bool) -> str:
    return ("✓ " + text) if on else text


async def status_menu(community: Community, cb: AdminOrders) -> tuple[str, InlineKeyboardMarkup]:
    buttons = [_button(_checked(filter_label(key), key == cb.status), cb, OrdersOp.LIST, status=key, page=0)
               for key in STATUS_FILTERS]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button(_("« Back"), cb, OrdersOp.LIST)])
    return _("Show orders in which state?"), InlineKeyboardMarkup(inline_keyboard=rows)


async def product_menu(session: AsyncSession, community: Community, cb: AdminOrders) -> tuple[str, InlineKeyboardMarkup]:
    listed = await products.listing(session, community_id=community.id, include_archived=True)
    listed = sorted(listed, key=lambda p: p.number, reverse=True)[:PRODUCTS_IN_MENU]
    buttons = [_button(_checked(_("All products"), not cb.product_id), cb, OrdersOp.LIST, product_id=0, page=0)]
    buttons += [_button(_checked(f"#{p.number} {p.title}"[:40], p.id == cb.product_id), cb, OrdersOp.LIST, product_id=p.id, page=0)
                for p in listed]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button(_("« Back"), cb, OrdersOp.LIST)])
    return _("Show orders for which product?"), InlineKeyboardMarkup(inline_keyboard=rows)


async def place_menu(session: AsyncSession, community: Community, cb: AdminOrders, *, op: OrdersOp,
                     prompt: str, with_all: bool) -> tuple[str, InlineKeyboardMarkup]:
    """Choose a pickup point (or delivery): as the list's filter, or for a pick list."""
    points = await settings.pickup_points(session, community_id=community.id)
    buttons = [_button(_checked(_("All places"), not cb.place), cb, op, place=0, page=0)] if with_all else []
    buttons += [_button(_checked(p.name, p.id == cb.place), cb, op, place=p.id, page=0) for p in points]
    if shop_settings(community).delivery_enabled:
        buttons.append(_button(_checked(_("Delivery"), cb.place == DELIVERY), cb, op, place=DELIVERY, page=0))
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button(_("« Back"), cb, OrdersOp.LIST)])
    return prompt, InlineKeyboardMarkup(inline_keyboard=rows)


# --- one order ----------------------------------------------------------------------------------------

ACTION_OPS = {
    LeaderAction.MARK_PAID: OrdersOp.MARK_PAID,
    LeaderAction.MARK_FULFILLED: OrdersOp.MARK_FULFILLED,
    LeaderAction.MARK_PICKED_UP: OrdersOp.MARK_PICKED_UP,
    LeaderAction.CANCEL: OrdersOp.CANCEL,
    LeaderAction.REFUND_STARS: OrdersOp.REFUND_STARS,
    LeaderAction.MARK_REFUNDED: OrdersOp.MARK_REFUNDED,
}


def action_label(action: LeaderAction) -> str:
    return {
        LeaderAction.MARK_PAID: _("💵 Mark paid"),
        LeaderAction.MARK_FULFILLED: _("✅ Mark fulfilled"),
        LeaderAction.MARK_PICKED_UP: _("📦 Mark picked up"),
        LeaderAction.CANCEL: _("✖ Cancel order"),
        LeaderAction.REFUND_STARS: _("↩️ Refund the Stars"),
        LeaderAction.MARK_REFUNDED: _("↩️ Mark refunded"),
    }[action]


def cancel_reason(reason: str | None) -> str:
    if reason == "leader":
        return _("by a leader")
    if reason == "expired":
        return _("not paid in time")
    return escape(reason or "")


def order_view(community: Community, row: OrderRow, cb: AdminOrders) -> tuple[str, InlineKeyboardMarkup]:
    order, product, buyer = row.order, row.product, row.buyer
    lines = [
        _("<b>Order #{id}</b> · {state}").format(id=order.id, state=order_notify.status_label(order.status)),
        _("Buyer: {name}").format(name=" ".join(p for p in (buyer_name(buyer, order.created_at), buyer_handle(buyer, order.created_at)) if p)),
        _("#{number} {title} × {qty} at {price}").format(number=product.number, title=escape(product.title),
                                                         qty=order.quantity, price=money(order.unit_price, order.currency)),
    ]
    if order.discount:
        lines.append(_("Coupon: −{amount}").format(amount=money(order.discount, order.currency)))
    lines.append(_("Total: {amount} · {method}").format(
        amount=money(order.total, order.currency), method=order_notify.method_label(order.payment_method, stars=order.stars_total)))
    if where := order_notify.where_text(order, row.pickup):
        lines.append(where)
    lines.append(_("Placed: {when}").format(when=local_time(order.created_at, community)))
    for stamp, label in ((order.paid_at, _("Paid: {when}")), (order.fulfilled_at, _("Fulfilled: {when}")),
                         (order.picked_up_at, _("Picked up: {when}"))):
        if stamp:
            lines.append(label.format(when=local_time(stamp, community)))
    if order.cancelled_at:
        lines.append(_("Cancelled: {when} ({reason})").format(when=local_time(order.cancelled_at, community),
                                                             reason=cancel_reason(order.cancel_reason)))
    rows = [[_button(action_label(a), cb, ACTION_OPS[a], order_id=order.id)] for a in order_reports.leader_actions(order)]
    rows.append([_button(_("« Back to the list"), cb, OrdersOp.LIST)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


# --- pick list ----------------------------------------------------------------------------------------

def split_messages(blocks: list[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Blocks joined by blank lines into as few messages as fit; a block too long alone is cut
    at line ends (a line is far shorter than a message)."""
    messages: list[str] = []
    current = ""
    for block in blocks:
        pieces = [block] if len(block) <= limit else _cut_lines(block, limit)
        for piece in pieces:
            joined = f"{current}\n\n{piece}" if current else piece
            if len(joined) <= limit:
                current = joined
            else:
                messages.append(current)
                current = piece
    if current:
        messages.append(current)
    return messages


def _cut_lines(block: str, limit: int) -> list[str]:
    pieces, current = [], ""
    for line in block.split("\n"):
        joined = f"{current}\n{line}" if current else line
        if len(joined) <= limit:
            current = joined
        else:
            pieces.append(current)
            current = line[:limit]
    return pieces + [current] if current else pieces


def pick_list_blocks(community: Community, place_name: str, collectors: list[order_reports.Collector]) -> list[str]:
    orders_count = sum(len(c.rows) for c in collectors)
    currency = community.currency
    due = sum(c.to_collect for c in collectors)
    head = [_("<b>Pick list · {place}</b>").format(place=place_name),
            _("{orders} orders for {members} members · to collect at pickup: {amount}").format(
                orders=orders_count, members=len(collectors), amount=money(due, currency)),
            _("To hand out: {items}").format(items=", ".join(
                f"#{p.number} {escape(p.title)} × {units}" for p, units in order_reports.product_totals(collectors)))]
    blocks = ["\n".join(head)]
    for collector in collectors:
        # A collector's orders all lie on the same side of an erasure: the first one speaks for all.
        placed = collector.rows[0].order.created_at
        lines = [" ".join(p for p in (f"<b>{buyer_name(collector.buyer, placed)}</b>", buyer_handle(collector.buyer, placed)) if p)]
        for row in collector.rows:
            order = row.order
            state = _("paid") if order.paid_at else _("to pay {amount}").format(amount=money(order.total, order.currency))
            line = f"#{order.id} · {escape(row.product.title)} × {order.quantity} · {state}"
            if order.delivery_address:
                line += " · " + escape(order.delivery_address)
            lines.append(line)
        if collector.to_collect:
            lines.append(_("To collect: {amount}").format(amount=money(collector.to_collect, currency)))
        blocks.append("\n".join(lines))
    return blocks


# --- the router ---------------------------------------------------------------------------------------

@router.callback_query(AdminNav.filter(F.section == Section.ORDERS))
async def on_orders(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor,
                    state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, *await list_view(session, community, AdminOrders(community_id=community.id, op=OrdersOp.LIST)))


Handler = Callable[..., Awaitable[None]]
OPS: dict[OrdersOp, Handler] = {}


def op(*names: OrdersOp) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        for name in names:
            OPS[name] = func
        return func

    return register


@router.callback_query(AdminOrders.filter())
async def on_orders_op(query: CallbackQuery, callback_data: AdminOrders, session: AsyncSession, actor: Actor,
                       sender: Sender, bot: Bot) -> None:
    cb = callback_data
    # Only a forged button carries ids no key can hold, an unknown filter, or so much that the
    # buttons built from it would not fit Telegram's 64 bytes.
    if (not all(0 <= value <= ID_MAX for value in (cb.product_id, cb.order_id, cb.page)) or not DELIVERY <= cb.place <= ID_MAX
            or cb.status not in STATUS_FILTERS or len(cb.pack()) > PACKED_MAX):
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    community = await guard(query, session, actor, cb.community_id)
    if community is None:
        return
    await OPS[cb.op](query=query, cb=cb, session=session, community=community, actor=actor, sender=sender, bot=bot)


@op(OrdersOp.LIST)
async def show_list(*, query: CallbackQuery, cb: AdminOrders, session: AsyncSession, community: Community, **_kw) -> None:
    await query.answer()
    await edit_or_send(query.message, *await list_view(session, community, cb))


@op(OrdersOp.STATUS_MENU, OrdersOp.PRODUCT_MENU, OrdersOp.PLACE_MENU)
async def show_filter_menu(*, query: CallbackQuery, cb: AdminOrders, session: AsyncSession, community: Community, **_kw) -> None:
    await query.answer()
    if cb.op is OrdersOp.STATUS_MENU:
        view = await status_menu(community, cb)
    elif cb.op is OrdersOp.PRODUCT_MENU:
        view = await product_menu(session, community, cb)
    else:
        view = await place_menu(session, community, cb, op=OrdersOp.LIST, prompt=_("Show orders for which place?"), with_all=True)
    await edit_or_send(query.message, *view)


async def _row(query: CallbackQuery, session: AsyncSession, community: Community, order_id: int) -> OrderRow | None:
    row = await order_reports.order_row(session, community_id=community.id, order_id=order_id)
    if row is None:
        await query.answer(error_text(DomainError("order_unknown")), show_alert=True)
    return row


async def _refresh_view(query: CallbackQuery, session: AsyncSession, community: Community, cb: AdminOrders) -> None:
    row = await order_reports.order_row(session, community_id=community.id, order_id=cb.order_id)
    if row is not None:
        await edit_or_send(query.message, *order_view(community, row, AdminOrders(**{**cb.model_dump(), "op": OrdersOp.VIEW})))


@op(OrdersOp.VIEW)
async def show_order(*, query: CallbackQuery, cb: AdminOrders, session: AsyncSession, community: Community, **_kw) -> None:
    row = await _row(query, session, community, cb.order_id)
    if row is None:
        return
    await query.answer()
    await edit_or_send(query.message, *order_view(community, row, cb))


MARK_STEPS = {
    OrdersOp.MARK_PAID: OrderStatus.PAID,
    OrdersOp.MARK_FULFILLED: OrderStatus.FULFILLED,
    OrdersOp.MARK_PICKED_UP: OrderStatus.PICKED_UP,
}


def marked_text(to: OrderStatus) -> str:
    return {OrderStatus.PAID: _("Marked paid."), OrderStatus.FULFILLED: _("Marked fulfilled."),
            OrderStatus.PICKED_UP: _("Marked picked up.")}[to]


@op(*MARK_STEPS)
async def mark_order(*, query: CallbackQuery, cb: AdminOrders, session: AsyncSession, community: Community, actor: Actor,
                     sender: Sender, **_kw) -> None:
    row = await _row(query, session, community, cb.order_id)
    if row is None:
        return
    to = MARK_STEPS[cb.op]
    if await orders.leader_mark(session, order=row.order, to=to, actor_id=actor.user.id, now=_now()):
        await order_notify.notify_member(sender, session, row.order)
        await query.answer(marked_text(to))
    else:
        await query.answer(error_text(DomainError("order_not_cancellable")), show_alert=True)
    await _refresh_view(query, session, community, cb)


@op(OrdersOp.CANCEL)
async def ask_cancel(*, query: CallbackQuery, cb: AdminOrders, session: AsyncSession, community: Community, **_kw) -> None:
    row = await _row(query, session, community, cb.order_id)
    if row is None:
        return
    await query.answer()
    text = _("Cancel order #{id}? The stock and any coupon go back and the buyer is told. A paid order is refunded: "
             "Stars at once; other payments are marked refund due for you to settle.").format(id=row.order.id)
    markup = InlineKeyboardMarkup(inline_keyboard=[[_button(_("Yes, cancel the order"), cb, OrdersOp.CANCEL_CONFIRM)],
                                                   [_button(_("« Back"), cb, OrdersOp.VIEW)]])
    await edit_or_send(query.message, text, markup)


@op(OrdersOp.CANCEL_CONFIRM)
async def cancel_order(*, query: CallbackQuery, cb: AdminOrders, session: AsyncSession, community: Community, actor: Actor,
                       sender: Sender, bot: Bot, **_kw) -> None:
    row = await _row(query, session, community, cb.order_id)
    if row is None:
        return
    order, now = row.order, _now()
    try:
        await orders.cancel(session, order=order, reason="leader", actor_id=actor.user.id, now=now)
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        await _refresh_view(query, session, community, cb)
        return
    if order.status == OrderStatus.REFUND_DUE:
        await refunds.refund(bot, session, order, actor.user.id, now)
    await order_notify.notify_member(sender, session, order)
    if order.status == OrderStatus.REFUNDED:
        done = _("Order cancelled and refunded.")
    elif order.status == OrderStatus.REFUND_DUE:
        done = _("Order cancelled. Refund the payment, then mark the order refunded.")
    else:
        done = _("Order cancelled.")
    await query.answer(done, show_alert=order.status == OrderStatus.REFUND_DUE)
    await _refresh_view(query, session, community, cb)


@op(OrdersOp.REFUND_STARS, OrdersOp.MARK_REFUNDED)
async def refund_order(*, query: CallbackQuery, cb: AdminOrders, session: AsyncSession, community: Community, actor: Actor,
                       sender: Sender, bot: Bot, **_kw) -> None:
    row = await _row(query, session, community, cb.order_id)
    if row is None:
        return
    order, now = row.order, _now()
    allowed = order_reports.leader_actions(order)
    if cb.op is OrdersOp.REFUND_STARS and LeaderAction.REFUND_STARS in allowed:
        done = await refunds.refund(bot, session, order, actor.user.id, now)
    elif cb.op is OrdersOp.MARK_REFUNDED and LeaderAction.MARK_REFUNDED in allowed:
        done = await orders.mark_refunded(session, order=order, actor_id=actor.user.id, now=now)
    else:
        done = False
    if done:
        await order_notify.notify_member(sender, session, order)
        await query.answer(_("Refunded."))
    elif cb.op is OrdersOp.REFUND_STARS and order.status == OrderStatus.REFUND_DUE:
        await query.answer(_("Telegram did not refund the Stars. Try again later."), show_alert=True)
    else:
        await query.answer(error_text(DomainError("order_not_cancellable")), show_alert=True)
    await _refresh_view(query, session, community, cb)


# --- bulk ---------------------------------------------------------------------------------------------

BULK = {
    OrdersOp.BULK_FULFILLED: (OrderStatus.FULFILLED, OrdersOp.BULK_FULFILLED_CONFIRM),
    OrdersOp.BULK_PICKED_UP: (OrderStatus.PICKED_UP, OrdersOp.BULK_PICKED_UP_CONFIRM),
}
BULK_CONFIRM = {confirm: (to, ask) for ask, (to, confirm) in BULK.items()}


def bulk_state(to: OrderStatus) -> str:
    return _("fulfilled") if to == OrderStatus.FULFILLED else _("picked up")


async def _bulk_point(query: CallbackQuery, session: AsyncSession, community: Community, cb: AdminOrders) -> PickupPoint | None:
    point = await session.get(PickupPoint, cb.place) if cb.place > 0 else None
    if point is None or point.community_id != community.id:
        await query.answer(error_text(DomainError("pickup_unknown")), show_alert=True)
        return None
    return point


@op(*BULK)
async def ask_bulk(*, query: CallbackQuery, cb: AdminOrders, session: AsyncSession, community: Community, **_kw) -> None:
    point = await _bulk_point(query, session, community, cb)
    if point is None:
        return
    to, confirm = BULK[cb.op]
    found = await order_reports.bulk_candidates(session, community_id=community.id, point_id=point.id, to=to)
    if not found:
        await query.answer(_("No order at {place} can be marked {state} now.").format(
            place=point.name, state=bulk_state(to)), show_alert=True)
        return
    await query.answer()
    text = _("Mark {count} orders at {place} as {state}? Each buyer gets a message.").format(
        count=len(found), place=escape(point.name), state=bulk_state(to))
    markup = InlineKeyboardMarkup(inline_keyboard=[
        [_button(_("Yes, mark {count}").format(count=len(found)), cb, confirm, order_id=found[-1].id)],
        [_button(_("« Back"), cb, OrdersOp.LIST)]])
    await edit_or_send(query.message, text, markup)


@op(*BULK_CONFIRM)
async def do_bulk(*, query: CallbackQuery, cb: AdminOrders, session: AsyncSession, community: Community, actor: Actor,
                  sender: Sender, **_kw) -> None:
    point = await _bulk_point(query, session, community, cb)
    if point is None:
        return
    to, _ask = BULK_CONFIRM[cb.op]
    moved = await order_reports.bulk_mark(session, community_id=community.id, point_id=point.id, to=to,
                                          actor_id=actor.user.id, now=_now(), upto_id=cb.order_id)
    for order in moved:
        await order_notify.notify_member(sender, session, order)
    await query.answer(_("{count} orders at {place} marked {state}.").format(
        count=len(moved), place=point.name, state=bulk_state(to)))
    await edit_or_send(query.message, *await list_view(session, community, AdminOrders(**{**cb.model_dump(), "op": OrdersOp.LIST})))


# --- pick list and export -----------------------------------------------------------------------------

@op(OrdersOp.PICK_LIST)
async def send_pick_list(*, query: CallbackQuery, cb: AdminOrders, session: AsyncSession, community: Community, **_kw) -> None:
    place_name = await _place_name(session, community, cb.place or None)
    if place_name is None:
        await query.answer()
        await edit_or_send(query.message, *await place_menu(session, community, cb, op=OrdersOp.PICK_LIST,
                                                            prompt=_("Pick list for which place?"), with_all=False))
        return
    await query.answer()
    await edit_or_send(query.message, *await list_view(session, community, AdminOrders(**{**cb.model_dump(), "op": OrdersOp.LIST})))
    collectors = await order_reports.pick_list(session, community_id=community.id, place=cb.place)
    if not collectors:
        await query.message.answer(_("Nothing waits to be collected at {place}.").format(place=place_name))
        return
    for text in split_messages(pick_list_blocks(community, place_name, collectors)):
        await query.message.answer(text)


def csv_header() -> list[str]:
    return [_("Order"), _("Created"), _("Buyer"), _("Username"), _("Product #"), _("Product"), _("Quantity"),
            _("Unit price"), _("Discount"), _("Total"), _("Currency"), _("Status"), _("Payment"), _("Pickup point"),
            _("Delivery address"), _("Paid at"), _("Fulfilled at"), _("Picked up at")]


@op(OrdersOp.EXPORT)
async def send_export(*, query: CallbackQuery, cb: AdminOrders, session: AsyncSession, community: Community, **_kw) -> None:
    flt = _filter(cb)
    rows = await order_reports.filtered(session, community_id=community.id, flt=flt)
    if not rows:
        await query.answer(_("No orders match."), show_alert=True)
        return
    await query.answer()
    payload = order_reports.export_csv(rows, tz=community.timezone, header=csv_header(), erased_name=_("Erased member"),
                                       status_label=order_notify.status_label, method_label=order_notify.method_label)
    day = local_time(_now(), community, "%Y-%m-%d")
    caption = _("{count} orders · {state} · times in {tz}").format(count=len(rows), state=filter_label(flt.status), tz=community.timezone)
    await query.message.answer_document(BufferedInputFile(payload, filename=f"orders-{community.id}-{day}.csv"), caption=caption)
