"""Orders: quoting, placing (stock reserved atomically), paying, fulfilling, cancelling, expiring.

Stock never goes below zero and no order is lost or doubled, on SQLite and PostgreSQL:
- the reservation is one conditional UPDATE (`stock >= quantity`) and it is the first write of the
  transaction, so it takes the product's row lock (PostgreSQL) or the database write lock
  (SQLite) before the per-member limit is counted;
- each checkout carries a key with a unique constraint, so a double tap or a redelivered Confirm
  finds the order it already made;
- every state change is a conditional UPDATE from the expected state, so two paths (a member
  cancelling, the expiry job, a payment arriving) cannot both apply.

A group-buy order (bot/services/groupbuy_join.py) takes its seat through the `Seat` hook inside the
same transaction. Rows are always locked in one order — the team or campaign, then orders, then
the product, then the coupon — so a join, a cancellation and a close cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from math import ceil
from types import EllipsisType
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, bindparam, case, delete, exists, func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.numbers import whole_number
from bot.services import audit, coupons, group_seats, points
from bot.services.errors import DomainError
from bot.services.money import precision
from bot.services.products import mark_cards_stale
from bot.services.shop_settings import ShopSettings, shop_settings
from bot.services.upsert import insert_in
from models import Community, PickupPoint, User
from models.shop import Coupon, Order, OrderStatus, PaymentMethod, Product, ProductStatus

QUANTITY_MAX = 999
ADDRESS_MAX = 300
# States in which an order still holds stock.
HOLDING = (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.FULFILLED, OrderStatus.PICKED_UP,
           OrderStatus.AWAITING_GROUP, OrderStatus.CONFIRMED)
OPEN = (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.FULFILLED, OrderStatus.AWAITING_GROUP,
        OrderStatus.CONFIRMED)
# States from which the buyer may still cancel (within the community's cancel window).
MEMBER_CANCELLABLE = (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.AWAITING_GROUP)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Quote:
    product: Product
    quantity: int
    unit_price: int
    subtotal: int
    discount: int
    total: int
    coupon: Coupon | None


class Seat(Protocol):
    """A group-buy's part in placing an order, run inside the order's transaction."""

    async def take(self, session: AsyncSession, *, user_id: int, quantity: int, unit_price: int,
                   now: datetime) -> dict[str, Any]:
        """Take the seat (the first write, locking the team or campaign) or raise, leaving nothing
        written; returns the order's group columns."""

    def guard(self, *, user_id: int, quantity: int) -> tuple[InsertGuard, dict[str, Any]] | None:
        """A condition the order's INSERT must meet, with its parameters: the member's own limits
        counted by the INSERT itself, under the product's lock. None: `check_member` counts them."""

    async def check_member(self, session: AsyncSession, *, user_id: int, quantity: int) -> None:
        """The member's own limits in the group-buy, counted under the product's lock, or raise (also
        asked why a guarded INSERT wrote nothing)."""

    async def give_back(self, session: AsyncSession) -> None:
        """Undo `take`: the order was refused after it."""

    async def placed(self, session: AsyncSession, order: Order, now: datetime) -> None:
        """The order exists: confirm the team if this order filled it."""


@dataclass(frozen=True, eq=False)
class InsertGuard:
    """A WHERE for the order's INSERT (bind parameters named g_*), built once: one statement fewer
    than counting first. Compared by identity, so the INSERT built for it is cached."""

    condition: ColumnElement


@dataclass(frozen=True, slots=True)
class Placed:
    order: Order
    created: bool  # False: this checkout had already made the order (double tap, redelivery)


def parse_quantity(raw: str) -> int:
    text = raw.strip()
    if text.startswith("-"):
        raise DomainError("quantity_negative")
    value = whole_number(text)
    if value is None:
        raise DomainError("quantity_format", value=text[:16])
    if value == 0:
        raise DomainError("quantity_zero")
    if value > QUANTITY_MAX:
        raise DomainError("quantity_too_large", max=QUANTITY_MAX)
    return value


def stars_for(total: int, currency: str, stars_per_unit: int) -> int:
    """Stars charged for `total` minor units, rounded up so the leader never receives less."""
    return max(1, ceil(total * stars_per_unit / 10 ** precision(currency)))


async def bought_by(session: AsyncSession, *, product_id: int, user_id: int) -> int:
    """Units of this product the member holds in orders that are not cancelled."""
    result = await session.exec(
        select(func.coalesce(func.sum(Order.quantity), 0))
        .where(Order.product_id == product_id, Order.user_id == user_id, col(Order.status).in_(HOLDING))
    )
    return int(result.one())


def check_sellable(product: Product, quantity: int) -> None:
    """The product can be ordered in this quantity now (status and stock; not the member's limit)."""
    if product.status == ProductStatus.PAUSED:
        raise DomainError("product_paused", number=product.number)
    if product.status == ProductStatus.ARCHIVED:
        raise DomainError("product_archived", number=product.number)
    if product.stock is not None:
        if product.stock <= 0:
            raise DomainError("product_sold_out", number=product.number)
        if quantity > product.stock:
            raise DomainError("quantity_over_stock", available=product.stock)


async def check_member_limit(session: AsyncSession, product: Product, user_id: int, quantity: int) -> None:
    if product.per_member_limit is not None:
        _check_limit(product.per_member_limit, await bought_by(session, product_id=product.id, user_id=user_id), quantity)


async def quote(session: AsyncSession, *, community: Community, product_id: int, user_id: int, quantity: int,
                coupon_code: str | None, now: datetime) -> Quote:
    """What this order would cost now, or the reason it cannot be placed. Reads only."""
    product = await session.get(Product, product_id)
    if product is None or product.community_id != community.id:
        raise DomainError("product_unknown")
    if not 1 <= quantity <= QUANTITY_MAX:
        raise DomainError("quantity_zero" if quantity < 1 else "quantity_too_large", max=QUANTITY_MAX)
    check_sellable(product, quantity)
    await check_member_limit(session, product, user_id, quantity)
    subtotal = product.price * quantity
    coupon, discount = None, 0
    if coupon_code:
        coupon = await coupons.find(session, community_id=community.id, code=coupon_code)
        discount = await coupons.check(session, coupon, user_id=user_id, subtotal=subtotal, now=now)
    return Quote(product, quantity, product.price, subtotal, discount, subtotal - discount, coupon)


async def by_checkout_key(session: AsyncSession, checkout_key: str) -> Order | None:
    return (await session.exec(select(Order).where(Order.checkout_key == checkout_key))).first()


async def place(
    session: AsyncSession,
    *,
    community: Community,
    user_id: int,
    product_id: int,
    quantity: int,
    unit_price: int,
    payment_method: PaymentMethod,
    checkout_key: str,
    now: datetime,
    pickup_point_id: int | None = None,
    delivery_address: str | None = None,
    coupon_code: str | None = None,
    seat: Seat | None = None,
) -> Placed:
    """Reserve stock and create the order, all or nothing, and commit.

    `unit_price` is the price the member saw on the summary; if the leader changed it since, the
    order is refused with `price_changed` so the member confirms the new price. An order with
    nothing to pay (a coupon covers it all) is settled at once: Telegram sends no invoice for 0.
    With a `seat` (a group-buy) the seat checks the group price, and the order waits in
    awaiting-group once nothing is left to pay online.

    In a rush this is the queue every member waits in, so it sends few statements, all Core: the
    reservation (which also checks the pickup point), the order (whose checkout key's unique
    constraint answers a double tap), the cards' stale marks, the commit. A refusal after a write
    undoes what was written in the same transaction, under the locks those writes took, so no
    one saw it; neither a savepoint (two more statements each time) nor a rollback (which would
    expire what the caller loaded in this session and words the refusal from) is needed.
    """
    settings = shop_settings(community)
    if not 1 <= quantity <= QUANTITY_MAX:
        raise DomainError("quantity_zero" if quantity < 1 else "quantity_too_large", max=QUANTITY_MAX)
    _check_delivery(community, pickup_point_id, delivery_address)
    undo: list[Callable[[], Awaitable[Any]]] = []
    existing_id: int | None | EllipsisType = ...  # the order this checkout made, once looked up
    try:
        subtotal = unit_price * quantity
        coupon, discount = None, 0
        if coupon_code:
            # Read before the locks; `coupons.redeem` takes it atomically below.
            coupon = await coupons.find(session, community_id=community.id, code=coupon_code)
            discount = await coupons.check(session, coupon, user_id=user_id, subtotal=subtotal, now=now)
        total = subtotal - discount
        free = total == 0
        if not free:
            _check_payment_method(settings, payment_method)
        group: dict[str, Any] = {}
        if seat is not None:
            group = await seat.take(session, user_id=user_id, quantity=quantity, unit_price=unit_price, now=now)
            undo.append(lambda: seat.give_back(session))
        # Named apart from the columns: an UPDATE takes a parameter named as a column for its SET.
        params = {"b_product": product_id, "b_community": community.id, "b_quantity": quantity, "b_now": now,
                  "b_price": unit_price, "b_point": pickup_point_id, "b_key": checkout_key}
        reserved = (await session.execute(
            _reservation(price=seat is None, pickup=pickup_point_id is not None), params)).first()
        if reserved is None:
            refusal, existing_id = await _unreserved(session, community=community, quantity=quantity, params=params)
            raise refusal
        undo.append(lambda: session.execute(_UNRESERVE, params))
        # Counted under the lock the reservation took (every order of this product takes it), so
        # two checkouts by one member cannot both pass; this order's row does not exist yet.
        if reserved.per_member_limit is not None:
            _check_limit(reserved.per_member_limit, await bought_by(session, product_id=product_id, user_id=user_id),
                         quantity)
        guarded = seat.guard(user_id=user_id, quantity=quantity) if seat is not None else None
        if seat is not None and guarded is None:
            await seat.check_member(session, user_id=user_id, quantity=quantity)
        online = payment_method in (PaymentMethod.PROVIDER, PaymentMethod.STARS)
        if seat is None:
            status = OrderStatus.PAID if free else OrderStatus.PENDING_PAYMENT
        else:
            status = OrderStatus.PENDING_PAYMENT if online and not free else OrderStatus.AWAITING_GROUP
        values = {**dict(
            community_id=community.id, product_id=product_id, user_id=user_id, quantity=quantity,
            unit_price=unit_price, discount=discount, total=total, currency=community.currency,
            stars_total=stars_for(total, community.currency, settings.stars_per_unit) if payment_method == PaymentMethod.STARS and not free else None,
            status=status, payment_method=payment_method, pickup_point_id=pickup_point_id,
            delivery_address=delivery_address, coupon_id=coupon.id if coupon else None, checkout_key=checkout_key,
            expires_at=now + timedelta(minutes=settings.unpaid_minutes) if online and status == OrderStatus.PENDING_PAYMENT else None,
            credit=0, created_at=now, updated_at=now, group_buy_id=None, team_id=None, invited_by=None), **group}
        dialect = session.get_bind().dialect.name
        if guarded is None:
            row = (await session.execute(_new_order(dialect), values)).first()
        else:
            row = (await session.execute(_new_order(dialect, guarded[0]),
                                         {**{f"o_{name}": value for name, value in values.items()}, **guarded[1]})).first()
        if row is None:
            # This checkout confirmed twice at once (the other attempt made the order), or the
            # INSERT's guard refused the member.
            existing_id = (await session.execute(_EXISTING_ID, params)).scalar()
            if existing_id is None and seat is not None and guarded is not None:
                await seat.check_member(session, user_id=user_id, quantity=quantity)
            return Placed(await _give_up(session, undo, checkout_key, existing_id), created=False)
        order = adopt(session, Order, row._mapping)
        undo.append(lambda: session.execute(_DROP_ORDER, {"order_id": order.id}))
        if coupon is not None:
            await coupons.redeem(session, coupon, user_id=user_id, order_id=order.id, now=now)
        if seat is not None:
            await seat.placed(session, order, now)
        await mark_cards_stale(session, product_id=product_id)
        await session.commit()
    except DomainError:
        # The same checkout confirmed twice at once: the other attempt made the order while this
        # one waited for the lock, then found the stock, the limit or the coupon taken by it.
        existing = await _give_up(session, undo, checkout_key, existing_id)
        if existing is not None:
            return Placed(existing, created=False)
        raise
    if (product := session.identity_map.get(identity_key(Product, product_id))) is not None:
        # The caller's product as the reservation left it, without reading it back.
        for name in ("stock", "sold", "updated_at"):
            set_committed_value(product, name, getattr(reserved, name))
    return Placed(order, created=True)


_products, _orders = Product.__table__, Order.__table__
# Statements built once: building and hashing a statement cost more CPU than sending it.
_UNRESERVE = (update(_products).where(_products.c.id == bindparam("b_product"))
              .values(stock=_products.c.stock + bindparam("b_quantity"), sold=_products.c.sold - bindparam("b_quantity")))
_DROP_ORDER = delete(_orders).where(_orders.c.id == bindparam("order_id"))
_EXISTING = select(_orders.c.id).where(_orders.c.checkout_key == bindparam("b_key")).scalar_subquery()
_UNSELLABLE = (select(Product, _EXISTING).where(Product.id == bindparam("b_product"))
               .execution_options(populate_existing=True))


@cache
def _reservation(*, price: bool, pickup: bool):
    """The conditional UPDATE that reserves stock, or matches nothing when the product cannot be
    sold now (state, stock, the price the member saw, a pickup point that is not this community's)."""
    products = _products.c
    quantity = bindparam("b_quantity")
    where = [products.id == bindparam("b_product"), products.community_id == bindparam("b_community"),
             products.status == ProductStatus.ACTIVE, products.stock.is_(None) | (products.stock >= quantity)]
    if price:
        where.append(products.price == bindparam("b_price"))
    if pickup:
        points = PickupPoint.__table__.c
        where.append(exists().where(points.id == bindparam("b_point"),
                                    points.community_id == bindparam("b_community"), points.removed_at.is_(None)))
    # NULL stock (unlimited) stays NULL: NULL - n is NULL in SQL.
    return (update(_products).where(*where)
            .values(stock=products.stock - quantity, sold=products.sold + quantity, updated_at=bindparam("b_now"))
            .returning(products.per_member_limit, products.stock, products.sold, products.updated_at))


_EXISTING_ID = select(_orders.c.id).where(_orders.c.checkout_key == bindparam("b_key"))
# The columns `place` writes; a guarded INSERT selects them as bind parameters named o_<column>.
_PLACED = ("community_id", "product_id", "user_id", "quantity", "unit_price", "discount", "total", "currency",
           "stars_total", "status", "payment_method", "pickup_point_id", "delivery_address", "coupon_id", "checkout_key",
           "expires_at", "credit", "created_at", "updated_at", "group_buy_id", "team_id", "invited_by")


@cache
def _new_order(dialect: str, guard: InsertGuard | None = None):
    stmt = insert_in(dialect, _orders)
    if guard is not None:
        # Typed parameters: PostgreSQL types a bare parameter in a SELECT list as text.
        chosen = select(*(bindparam(f"o_{name}", type_=_orders.c[name].type) for name in _PLACED)).where(guard.condition)
        stmt = stmt.from_select(list(_PLACED), chosen)
    return stmt.on_conflict_do_nothing(index_elements=["checkout_key"]).returning(*_orders.c)


async def _unreserved(session: AsyncSession, *, community: Community, quantity: int,
                      params: dict[str, Any]) -> tuple[DomainError, int | None]:
    """Why the reservation matched nothing, read as things are now (the caller's product included),
    and the order this checkout already made, if any, in the same statement."""
    found = (await session.execute(_UNSELLABLE, params)).first()
    if found is None:
        return DomainError("product_unknown"), None
    product, existing_id = found
    if product.community_id != community.id:
        return DomainError("product_unknown"), existing_id
    try:
        check_sellable(product, quantity)
    except DomainError as err:
        return err, existing_id
    if params["b_point"] is not None:
        point = await session.get(PickupPoint, params["b_point"])
        if point is None or point.community_id != community.id or point.removed_at is not None:
            return DomainError("pickup_unknown"), existing_id
    return DomainError("price_changed", price=product.price), existing_id


async def _give_up(session: AsyncSession, undo: list[Callable[[], Awaitable[Any]]], checkout_key: str,
                   existing_id: int | None | EllipsisType) -> Order | None:
    """Undo this attempt's writes and commit; the order its checkout already made, if any."""
    for step in reversed(undo):
        await step()
    if existing_id is ...:
        existing = await by_checkout_key(session, checkout_key)
    else:
        existing = await session.get(Order, existing_id) if existing_id is not None else None
    await session.commit()
    return existing


def adopt(session: AsyncSession, model: type[T], row: Mapping[str, Any]) -> T:
    """The ORM object of a row this transaction wrote with Core (every column, from RETURNING), as
    if the session had loaded it: callers read it as before, and nothing reads the row back."""
    found = session.identity_map.get(identity_key(model, row["id"]))
    if found is not None:
        for name, value in row.items():
            set_committed_value(found, name, value)
        return found
    obj = model(**row)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


def _check_limit(limit: int, already: int, quantity: int) -> None:
    if already + quantity > limit:
        raise DomainError("quantity_over_limit", limit=limit, left=max(0, limit - already))


def _check_delivery(community: Community, pickup_point_id: int | None, delivery_address: str | None) -> None:
    """A pickup point (checked by the reservation) or a delivery address the shop accepts."""
    if pickup_point_id is not None:
        return
    if delivery_address is None:
        raise DomainError("pickup_required")
    if not shop_settings(community).delivery_enabled:
        raise DomainError("delivery_disabled")
    clean_address(delivery_address)


def _check_payment_method(settings: ShopSettings, method: PaymentMethod) -> None:
    """Stars and pay-at-pickup are the community's choice; card payments the operator's (the
    handler offers them only with a provider token)."""
    if method == PaymentMethod.STARS and not (settings.stars_enabled and settings.stars_per_unit > 0):
        raise DomainError("payment_unavailable")
    if method == PaymentMethod.PICKUP and not settings.pay_at_pickup:
        raise DomainError("payment_unavailable")


def clean_address(raw: str) -> str:
    """A delivery address as typed, trimmed; refused when empty or too long."""
    address = raw.strip()
    if not address:
        raise DomainError("address_empty")
    if len(address) > ADDRESS_MAX:
        raise DomainError("address_too_long", max=ADDRESS_MAX)
    return address


async def get(session: AsyncSession, order_id: int) -> Order:
    order = await session.get(Order, order_id)
    if order is None:
        raise DomainError("order_unknown")
    return order


async def _transition(session: AsyncSession, order: Order, *, from_: tuple[str, ...], to: OrderStatus | ColumnElement,
                      now: datetime, **values: object) -> bool:
    """Move the order from one of `from_` to `to` if nobody else moved it first (and refresh it)."""
    result = await session.execute(
        update(Order).where(Order.id == order.id, col(Order.status).in_(from_))
        .values(status=to, updated_at=now, **values)
    )
    if result.rowcount != 1:
        return False
    await session.refresh(order)
    return True


async def _return_stock(session: AsyncSession, order: Order, now: datetime) -> None:
    await group_seats.release(session, order, now)
    await session.execute(
        update(Product).where(Product.id == order.product_id)
        .values(stock=Product.stock + order.quantity, sold=Product.sold - order.quantity, updated_at=now)
    )
    await coupons.release(session, order_id=order.id)
    await mark_cards_stale(session, product_id=order.product_id)


async def cancel(session: AsyncSession, *, order: Order, reason: str, actor_id: int | None, now: datetime,
                 by_member: bool = False) -> Order:
    """Cancel, return stock and coupon, and commit. A paid order becomes refund-due (Stars are
    refunded by the caller through Telegram, then `mark_refunded`). With `by_member` the actor must
    be the buyer, within the community's cancel window, before the order is fulfilled."""
    if by_member:
        if order.user_id != actor_id:
            raise DomainError("order_unknown")
        community = await session.get(Community, order.community_id)
        window = timedelta(hours=shop_settings(community).cancel_hours)
        if order.status not in MEMBER_CANCELLABLE:
            raise DomainError("order_not_cancellable", status=order.status)
        if now - order.created_at > window:
            raise DomainError("order_cancel_window", hours=int(window.total_seconds() // 3600))
    # A member's cancel must not overtake a leader who fulfilled the order meanwhile.
    return await _cancel(session, order, from_=MEMBER_CANCELLABLE if by_member else OPEN, reason=reason,
                         actor_id=actor_id, now=now)


async def _cancel(session: AsyncSession, order: Order, *, from_: tuple[str, ...], reason: str, actor_id: int | None,
                  now: datetime) -> Order:
    if not await cancel_within(session, order, from_=from_, reason=reason, actor_id=actor_id, now=now):
        # Nothing was written. Commit rather than roll back, which would expire what the caller
        # loaded in this session; the refusal names the state the order is really in.
        await session.commit()
        await session.refresh(order)
        raise DomainError("order_not_cancellable", status=order.status)
    await session.commit()
    return order


def _settled() -> ColumnElement:
    # Paid or not is read from the row as the UPDATE finds it, not from the order as the caller
    # loaded it: a payment landing meanwhile must turn into refund-due, not vanish in a plain
    # cancellation.
    return case((col(Order.paid_at).is_(None), OrderStatus.CANCELLED.value), else_=OrderStatus.REFUND_DUE.value)


async def cancel_all_within(session: AsyncSession, where: ColumnElement, *, from_: tuple[str, ...], reason: str,
                            now: datetime) -> int:
    """Cancel every order matching `where` that is in `from_`, as `cancel_within` cancels one, in a
    few statements however many there are (no commit); how many were cancelled. For a group-buy
    close, which holds the teams' or campaign's locks: payments and cancellations of these orders
    take them first, so none slips in between, and their seats need no release. One by one, 1,000
    teams failing in the same minute took two minutes (bench/groupbuy_deadlines.py)."""
    o = _orders.c
    cancelled = (await session.execute(
        update(_orders).where(where, o.status.in_(from_))
        .values(status=_settled(), updated_at=now, cancelled_at=now, cancel_reason=reason[:32])
        .returning(*_orders.c))).all()
    returned: dict[int, int] = {}
    entries = []
    for row in cancelled:
        # Orders the session holds show the change (callers read them on); no object is made for the rest.
        if (loaded := session.identity_map.get(identity_key(Order, row.id))) is not None:
            for name, value in row._mapping.items():
                set_committed_value(loaded, name, value)
        returned[row.product_id] = returned.get(row.product_id, 0) + row.quantity
        if row.coupon_id is not None:
            await coupons.release(session, order_id=row.id)
        entries.append({"community_id": row.community_id, "actor_id": None, "action": "order.cancel", "details": {
            "id": row.id, "reason": reason, "refund_due": row.status == OrderStatus.REFUND_DUE}})
    for product_id, quantity in sorted(returned.items()):
        await session.execute(update(Product).where(Product.id == product_id)
                              .values(stock=Product.stock + quantity, sold=Product.sold - quantity, updated_at=now))
        await mark_cards_stale(session, product_id=product_id)
    await audit.record_many(session, entries, now=now)
    return len(cancelled)


async def cancel_within(session: AsyncSession, order: Order, *, from_: tuple[str, ...], reason: str,
                        actor_id: int | None, now: datetime) -> bool:
    """Cancel inside the caller's transaction (no commit); False when the order was not in `from_`."""
    await group_seats.lock(session, order)
    if not await _transition(session, order, from_=from_, to=_settled(), now=now, cancelled_at=now, cancel_reason=reason[:32]):
        return False
    refund_due = order.status == OrderStatus.REFUND_DUE
    await _return_stock(session, order, now)
    await points.reverse_purchase(session, order=order, now=now)
    audit.record(session, community_id=order.community_id, actor_id=actor_id, action="order.cancel",
                 details={"id": order.id, "reason": reason, "refund_due": refund_due}, now=now)
    return True


def member_may_cancel(order: Order, community: Community, now: datetime) -> bool:
    """Whether the buyer's own Cancel is still offered: the rules `cancel(by_member=True)` applies."""
    window = timedelta(hours=shop_settings(community).cancel_hours)
    return order.status in MEMBER_CANCELLABLE and now - order.created_at <= window


async def expire_due(session: AsyncSession, *, now: datetime, limit: int = 500) -> list[Order]:
    """Cancel unpaid online orders past their deadline (the job's work); each is its own commit."""
    due = list(await session.exec(
        select(Order).where(Order.status == OrderStatus.PENDING_PAYMENT, col(Order.expires_at).is_not(None),
                            col(Order.expires_at) <= now).order_by(Order.id).limit(limit)
    ))
    expired = []
    for order in due:
        try:
            # Only from pending-payment: an order paid since the list was read stays paid.
            expired.append(await _cancel(session, order, from_=(OrderStatus.PENDING_PAYMENT,), reason="expired",
                                         actor_id=None, now=now))
        except DomainError:
            continue  # paid or cancelled meanwhile
    return expired


async def check_payment(session: AsyncSession, *, order_id: int, user_id: int, currency: str, amount: int,
                        now: datetime) -> Order:
    """Pre-checkout: the order is this user's, still unpaid and unexpired, and the amount is right."""
    order = await session.get(Order, order_id)
    if order is None or order.user_id != user_id:
        raise DomainError("order_unknown")
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise DomainError("order_not_payable", status=order.status)
    if order.expires_at is not None and order.expires_at <= now:
        raise DomainError("order_expired")
    expected = (order.stars_total, "XTR") if order.payment_method == PaymentMethod.STARS else (order.total, order.currency)
    if (amount, currency) != expected:
        raise DomainError("payment_amount_mismatch")
    return order


async def record_payment(session: AsyncSession, *, order_id: int, user_id: int, currency: str, amount: int,
                         telegram_charge_id: str, provider_charge_id: str | None, now: datetime) -> tuple[Order, bool]:
    """`successful_payment`: mark paid exactly once, and commit. Returns (order, newly_paid).

    A second delivery of the same payment finds its charge id and changes nothing. Money that
    arrives for an order that was cancelled meanwhile is kept visible as refund-due. A different
    payment for an order that is already paid leaves the order as it is and is audited
    (`order.payment_extra`, with its charge ids) for the leader to refund.
    """
    same = (await session.exec(select(Order).where(Order.telegram_charge_id == telegram_charge_id))).first()
    if same is not None:
        return same, False
    order = await session.get(Order, order_id)
    if order is None or order.user_id != user_id:
        raise DomainError("order_unknown")
    values = {"telegram_charge_id": telegram_charge_id, "provider_charge_id": provider_charge_id, "paid_at": now}
    try:
        # A group-buy order, once paid, waits for its group (or is confirmed at once in a team that
        # filled meanwhile: read under the team's lock, so the team's confirmation cannot miss it).
        target = await group_seats.paid_status(session, order) or OrderStatus.PAID
        if await _transition(session, order, from_=(OrderStatus.PENDING_PAYMENT,), to=target, now=now,
                             expires_at=None, **values):
            audit.record(session, community_id=order.community_id, actor_id=user_id, action="order.paid",
                         details={"id": order.id, "amount": amount, "currency": currency}, now=now)
            await points.credit_purchase(session, order=order, now=now)
            await session.commit()
            return order, True
        # Cancelled (expired) before the money arrived: the member paid for nothing.
        late = await session.execute(update(Order).where(Order.id == order.id, Order.status == OrderStatus.CANCELLED)
                                     .values(status=OrderStatus.REFUND_DUE, updated_at=now, **values))
        if late.rowcount == 1:
            audit.record(session, community_id=order.community_id, actor_id=user_id, action="order.paid_after_cancel",
                         details={"id": order.id, "amount": amount, "currency": currency}, now=now)
            await session.commit()
            await session.refresh(order)
            return order, False
    except IntegrityError:
        await session.rollback()
        same = (await session.exec(select(Order).where(Order.telegram_charge_id == telegram_charge_id))).first()
        if same is None:
            raise
        return same, False
    # Neither pending nor cancelled: this payment's own redelivery recorded it meanwhile, or the
    # order already holds another payment (two invoices, both paid). That one is not written over:
    # the second charge goes on record for the leader to refund.
    await session.refresh(order)
    if order.telegram_charge_id != telegram_charge_id:
        audit.record(session, community_id=order.community_id, actor_id=user_id, action="order.payment_extra",
                     details={"id": order.id, "amount": amount, "currency": currency,
                              "telegram_charge_id": telegram_charge_id, "provider_charge_id": provider_charge_id}, now=now)
    await session.commit()
    return order, False


async def mark_refunded(session: AsyncSession, *, order: Order, actor_id: int | None, now: datetime) -> bool:
    moved = await _transition(session, order, from_=(OrderStatus.REFUND_DUE,), to=OrderStatus.REFUNDED, now=now)
    if moved:
        audit.record(session, community_id=order.community_id, actor_id=actor_id, action="order.refunded",
                     details={"id": order.id}, now=now)
        await points.reverse_purchase(session, order=order, now=now)
        await session.commit()
    return moved


LEADER_STEPS = {
    OrderStatus.PAID: ((OrderStatus.PENDING_PAYMENT,), "paid_at"),
    OrderStatus.FULFILLED: ((OrderStatus.PAID, OrderStatus.PENDING_PAYMENT, OrderStatus.CONFIRMED), "fulfilled_at"),
    OrderStatus.PICKED_UP: ((OrderStatus.FULFILLED, OrderStatus.PAID, OrderStatus.CONFIRMED), "picked_up_at"),
}


async def leader_mark(session: AsyncSession, *, order: Order, to: OrderStatus, actor_id: int, now: datetime) -> bool:
    """A leader moves an order forward (paid at pickup, fulfilled, picked up) and commits.

    Only pay-at-pickup orders can be marked paid by hand; online payments come from Telegram.
    Returns False when the order was not in a state that allows the step (nothing changes).
    """
    sources, stamp = LEADER_STEPS[to]
    if to == OrderStatus.PAID and order.payment_method != PaymentMethod.PICKUP:
        return False
    if to == OrderStatus.FULFILLED and order.status == OrderStatus.PENDING_PAYMENT and order.payment_method != PaymentMethod.PICKUP:
        return False
    moved = await _transition(session, order, from_=sources, to=to, now=now, **{stamp: now}, **({"expires_at": None} if to == OrderStatus.PAID else {}))
    if moved:
        audit.record(session, community_id=order.community_id, actor_id=actor_id, action=f"order.{to.value}",
                     details={"id": order.id}, now=now)
        await points.credit_purchase(session, order=order, now=now)
        await session.commit()
    return moved


@dataclass(frozen=True, slots=True)
class OrderRow:
    order: Order
    product: Product
    buyer: User
    pickup: PickupPoint | None


async def search(session: AsyncSession, *, community_id: int, product_id: int | None = None,
                 pickup_point_id: int | None = None, statuses: tuple[str, ...] | None = None,
                 user_id: int | None = None, limit: int | None = 50) -> list[OrderRow]:
    query = (
        select(Order, Product, User, PickupPoint)
        .join(Product, Product.id == Order.product_id)
        .join(User, User.id == Order.user_id)
        .join(PickupPoint, PickupPoint.id == Order.pickup_point_id, isouter=True)
        .where(Order.community_id == community_id)
        .order_by(col(Order.created_at).desc(), col(Order.id).desc())
    )
    if product_id is not None:
        query = query.where(Order.product_id == product_id)
    if pickup_point_id is not None:
        query = query.where(Order.pickup_point_id == pickup_point_id)
    if statuses:
        query = query.where(col(Order.status).in_(statuses))
    if user_id is not None:
        query = query.where(Order.user_id == user_id)
    if limit is not None:
        query = query.limit(limit)
    return [OrderRow(*row) for row in await session.exec(query)]


@dataclass(frozen=True, slots=True)
class MemberOrderRow:
    order: Order
    product: Product
    community: Community
    pickup: PickupPoint | None


async def member_orders(session: AsyncSession, *, user_id: int, offset: int = 0,
                        limit: int = 5) -> tuple[list[MemberOrderRow], int]:
    """One page of a member's orders in every community, newest first, and how many there are."""
    total = (await session.exec(select(func.count()).select_from(Order).where(Order.user_id == user_id))).one()
    rows = await session.exec(
        select(Order, Product, Community, PickupPoint)
        .join(Product, Product.id == Order.product_id)
        .join(Community, Community.id == Order.community_id)
        .join(PickupPoint, PickupPoint.id == Order.pickup_point_id, isouter=True)
        .where(Order.user_id == user_id)
        .order_by(col(Order.created_at).desc(), col(Order.id).desc())
        .offset(offset).limit(limit)
    )
    return [MemberOrderRow(*row) for row in rows], int(total)
