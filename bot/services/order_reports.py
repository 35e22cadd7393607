"""What leaders see of their orders: filtered pages, pick lists, exports, bulk marks, daily figures.

Reads only, except `bulk_mark`, which moves orders one by one through `orders.leader_mark` (the
authority on which step is allowed) so each order changes exactly once however often it is asked.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from math import ceil
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, not_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import orders
from bot.services.money import precision
from bot.services.orders import OrderRow
from bot.services.shop_settings import shop_settings
from models import Community, Member, MemberStatus, PickupPoint, User
from models.shop import Order, OrderStatus, PaymentMethod, Product

PAGE_SIZE = 10
# `ReportFilter.place` for orders delivered to an address rather than collected.
DELIVERY = -1

# The leader's state filter → the order states it shows (None: every state).
STATUS_FILTERS: dict[str, tuple[str, ...] | None] = {
    "open": tuple(orders.OPEN),
    "unpaid": (OrderStatus.PENDING_PAYMENT,),
    "paid": (OrderStatus.PAID,),
    "fulfilled": (OrderStatus.FULFILLED,),
    "picked": (OrderStatus.PICKED_UP,),
    "cancelled": (OrderStatus.CANCELLED, OrderStatus.REFUNDED),
    "refund": (OrderStatus.REFUND_DUE,),
    "all": None,
}
# Orders a member still has to collect: paid or pay-at-pickup, not yet handed over.
TO_COLLECT = (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.FULFILLED, OrderStatus.CONFIRMED)
# States that no longer count as a sale.
NOT_SOLD = (OrderStatus.CANCELLED, OrderStatus.REFUND_DUE, OrderStatus.REFUNDED)


@dataclass(frozen=True, slots=True)
class ReportFilter:
    status: str = "open"  # a key of STATUS_FILTERS
    product_id: int | None = None
    place: int | None = None  # a pickup point id, DELIVERY, or None for every place

    def __post_init__(self) -> None:
        if self.status not in STATUS_FILTERS:
            raise ValueError(f"unknown status filter {self.status!r}")


def _online_unpaid():
    """Orders waiting for a Telegram payment: only Telegram can move them on."""
    return and_(Order.status == OrderStatus.PENDING_PAYMENT, Order.payment_method != PaymentMethod.PICKUP)


def _placed(query, place: int | None):
    if place == DELIVERY:
        return query.where(col(Order.pickup_point_id).is_(None), col(Order.delivery_address).is_not(None))
    if place is not None:
        return query.where(Order.pickup_point_id == place)
    return query


def _filtered(query, community_id: int, flt: ReportFilter):
    query = _placed(query.where(Order.community_id == community_id), flt.place)
    if flt.product_id is not None:
        query = query.where(Order.product_id == flt.product_id)
    statuses = STATUS_FILTERS[flt.status]
    if statuses is not None:
        query = query.where(col(Order.status).in_(statuses))
    return query


def _rows_query():
    return (
        select(Order, Product, User, PickupPoint)
        .join(Product, Product.id == Order.product_id)
        .join(User, User.id == Order.user_id)
        .join(PickupPoint, PickupPoint.id == Order.pickup_point_id, isouter=True)
    )


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[OrderRow]
    total: int
    page: int  # 0-based, clamped into range
    pages: int


async def page(session: AsyncSession, *, community_id: int, flt: ReportFilter, page: int,
               per_page: int = PAGE_SIZE) -> Page:
    """One page of the filtered orders, newest first."""
    total = (await session.exec(_filtered(select(func.count()).select_from(Order), community_id, flt))).one()
    pages = max(1, ceil(total / per_page))
    page = min(max(page, 0), pages - 1)
    query = (_filtered(_rows_query(), community_id, flt)
             .order_by(col(Order.created_at).desc(), col(Order.id).desc()).offset(page * per_page).limit(per_page))
    return Page([OrderRow(*row) for row in await session.exec(query)], total, page, pages)


async def filtered(session: AsyncSession, *, community_id: int, flt: ReportFilter) -> list[OrderRow]:
    """Every order the filter matches, oldest first (the export)."""
    query = _filtered(_rows_query(), community_id, flt).order_by(col(Order.created_at), col(Order.id))
    return [OrderRow(*row) for row in await session.exec(query)]


async def order_row(session: AsyncSession, *, community_id: int, order_id: int) -> OrderRow | None:
    """One order with its product, buyer and pickup point, if it belongs to this community."""
    query = _rows_query().where(Order.id == order_id, Order.community_id == community_id)
    row = (await session.exec(query)).first()
    return OrderRow(*row) if row else None


# --- what a leader may do with one order --------------------------------------------------------

class LeaderAction(StrEnum):
    MARK_PAID = "paid"
    MARK_FULFILLED = "fulfilled"
    MARK_PICKED_UP = "picked_up"
    CANCEL = "cancel"
    REFUND_STARS = "refund_stars"  # a Stars refund that did not go through yet
    MARK_REFUNDED = "refunded"  # money paid otherwise, given back by the leader


def leader_actions(order: Order) -> list[LeaderAction]:
    """The buttons an order's view offers; `orders.leader_mark` and `orders.cancel` still decide."""
    status, method = order.status, order.payment_method
    actions = []
    if status == OrderStatus.PENDING_PAYMENT and method == PaymentMethod.PICKUP:
        actions.append(LeaderAction.MARK_PAID)
    if status in (OrderStatus.PAID, OrderStatus.CONFIRMED) or (status == OrderStatus.PENDING_PAYMENT and method == PaymentMethod.PICKUP):
        actions.append(LeaderAction.MARK_FULFILLED)
    if status in (OrderStatus.FULFILLED, OrderStatus.PAID, OrderStatus.CONFIRMED):
        actions.append(LeaderAction.MARK_PICKED_UP)
    if status in orders.OPEN:
        actions.append(LeaderAction.CANCEL)
    if status == OrderStatus.REFUND_DUE:
        actions.append(LeaderAction.REFUND_STARS if method == PaymentMethod.STARS else LeaderAction.MARK_REFUNDED)
    return actions


# --- bulk marks at one pickup point ---------------------------------------------------------------

BULK_STEPS = (OrderStatus.FULFILLED, OrderStatus.PICKED_UP)


async def bulk_candidates(session: AsyncSession, *, community_id: int, point_id: int, to: OrderStatus,
                          upto_id: int | None = None) -> list[Order]:
    """Orders at this pickup point that can take the step now, oldest first.

    `upto_id` keeps a confirmed bulk action to the orders the leader was shown: an order placed
    between the question and the answer is left for next time.
    """
    if to not in BULK_STEPS:
        raise ValueError(f"no bulk step to {to!r}")
    sources, _stamp = orders.LEADER_STEPS[to]
    query = (select(Order).where(Order.community_id == community_id, Order.pickup_point_id == point_id,
                                 col(Order.status).in_(sources), not_(_online_unpaid()))
             .order_by(Order.id))
    if upto_id is not None:
        query = query.where(Order.id <= upto_id)
    return list(await session.exec(query))


async def bulk_mark(session: AsyncSession, *, community_id: int, point_id: int, to: OrderStatus, actor_id: int,
                    now: datetime, upto_id: int | None = None) -> list[Order]:
    """Mark every candidate; each is its own commit. Returns the orders this call moved."""
    moved = []
    for order in await bulk_candidates(session, community_id=community_id, point_id=point_id, to=to, upto_id=upto_id):
        if await orders.leader_mark(session, order=order, to=to, actor_id=actor_id, now=now):
            moved.append(order)
    return moved


# --- pick lists -----------------------------------------------------------------------------------

@dataclass(slots=True)
class Collector:
    """One member's orders at one place: what they collect and what they still pay there.

    `anonymous`: orders placed before the buyer erased their profile. A buyer who came back after
    an erasure is two collectors, the erased one and the new profile, never one name over both.
    """

    buyer: User
    anonymous: bool
    rows: list[OrderRow] = field(default_factory=list)

    @property
    def to_collect(self) -> int:
        return sum(r.order.total for r in self.rows if r.order.paid_at is None)


async def pick_list(session: AsyncSession, *, community_id: int, place: int) -> list[Collector]:
    """Who collects what at a pickup point (or DELIVERY), by member name."""
    query = _placed(_rows_query().where(Order.community_id == community_id, col(Order.status).in_(TO_COLLECT),
                                        not_(_online_unpaid())), place).order_by(Order.id)
    collectors: dict[tuple[int, bool], Collector] = {}
    for row in await session.exec(query):
        item = OrderRow(*row)
        anonymous = item.buyer.hidden_at(item.order.created_at)
        collectors.setdefault((item.buyer.id, anonymous), Collector(item.buyer, anonymous)).rows.append(item)
    return sorted(collectors.values(), key=lambda c: (c.anonymous, c.buyer.display_name.casefold(), c.buyer.id))


def product_totals(collectors: Sequence[Collector]) -> list[tuple[Product, int]]:
    """Units of each product to hand out, by product number."""
    units: Counter[int] = Counter()
    products: dict[int, Product] = {}
    for collector in collectors:
        for row in collector.rows:
            units[row.product.id] += row.order.quantity
            products[row.product.id] = row.product
    return [(products[pid], units[pid]) for pid in sorted(units, key=lambda pid: products[pid].number)]


# --- export ---------------------------------------------------------------------------------------

def decimal_amount(amount: int, currency: str) -> str:
    """Minor units as a plain decimal in currency units ("12.50"), for spreadsheets."""
    return str(Decimal(amount).scaleb(-precision(currency)))


def local_text(moment: datetime | None, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") if moment else ""


def export_csv(rows: Sequence[OrderRow], *, tz: str, header: Sequence[str], erased_name: str,
               status_label: Callable[[str], str], method_label: Callable[[str], str]) -> bytes:
    """The orders as CSV in UTF-8 with a BOM (Excel otherwise reads Chinese as mojibake).

    Times are community-local; buyers who erased their profile after ordering are `erased_name`
    with no username.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        order, buyer = row.order, row.buyer
        hidden = buyer.hidden_at(order.created_at)
        writer.writerow([
            order.id, local_text(order.created_at, tz),
            erased_name if hidden else buyer.display_name, "" if hidden or not buyer.username else "@" + buyer.username,
            row.product.number, row.product.title, order.quantity,
            decimal_amount(order.unit_price, order.currency), decimal_amount(order.discount, order.currency),
            decimal_amount(order.total, order.currency), order.currency,
            status_label(order.status), method_label(order.payment_method),
            row.pickup.name if row.pickup else "", order.delivery_address or "",
            local_text(order.paid_at, tz), local_text(order.fulfilled_at, tz), local_text(order.picked_up_at, tz),
        ])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# --- the daily summary ----------------------------------------------------------------------------

def local_day_bounds(tz: str, day: date) -> tuple[datetime, datetime]:
    """[start, end) of a community-local calendar day, in UTC (DST days are 23 or 25 hours)."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


@dataclass(frozen=True, slots=True)
class DailyFigures:
    day: date
    placed: int  # orders placed that day, whatever became of them
    units: int  # units in those orders that still count as sold
    revenue: int  # money received that day, less orders cancelled since
    unpaid_count: int  # that day's pay-at-pickup orders not paid yet
    unpaid_amount: int
    cancelled: int  # orders cancelled that day
    by_place: list[tuple[str | None, int]]  # pickup point name (None: delivery) → live orders placed that day


async def daily_figures(session: AsyncSession, *, community: Community, day: date) -> DailyFigures:
    start, end = local_day_bounds(community.timezone, day)
    cid = community.id
    placed_that_day = and_(Order.community_id == cid, Order.created_at >= start, Order.created_at < end)
    live = not_(col(Order.status).in_(NOT_SOLD))
    placed = (await session.exec(select(func.count()).select_from(Order).where(placed_that_day))).one()
    units = (await session.exec(select(func.coalesce(func.sum(Order.quantity), 0)).where(placed_that_day, live))).one()
    revenue = (await session.exec(select(func.coalesce(func.sum(Order.total), 0)).where(
        Order.community_id == cid, Order.paid_at >= start, Order.paid_at < end, live))).one()
    unpaid = (await session.exec(select(func.count(), func.coalesce(func.sum(Order.total), 0)).where(
        placed_that_day, live, Order.payment_method == PaymentMethod.PICKUP, col(Order.paid_at).is_(None)))).one()
    cancelled = (await session.exec(select(func.count()).select_from(Order).where(
        Order.community_id == cid, Order.cancelled_at >= start, Order.cancelled_at < end))).one()
    places = await session.exec(
        select(PickupPoint.name, func.count())
        .select_from(Order).join(PickupPoint, PickupPoint.id == Order.pickup_point_id, isouter=True)
        .where(placed_that_day, live).group_by(PickupPoint.name).order_by(PickupPoint.name)
    )
    by_place = sorted(((name, int(n)) for name, n in places), key=lambda item: (item[0] is None, item[0] or ""))
    return DailyFigures(day, int(placed), int(units), int(revenue), int(unpaid[0]), int(unpaid[1]), int(cancelled), by_place)


async def summaries_due(session: AsyncSession, *, now: datetime) -> list[tuple[Community, date]]:
    """Active communities whose summary time has passed today (their local today), with that date.

    The summary time lives in the settings JSON, so the comparison is made here rather than in SQL;
    whether one was already sent is for `job_marks.claim` to say.
    """
    due = []
    for community in await session.exec(select(Community).where(col(Community.active)).order_by(Community.id)):
        at = shop_settings(community).summary_time
        if at is None:
            continue
        local_now = now.astimezone(ZoneInfo(community.timezone))
        if local_now.time() >= time.fromisoformat(at):
            due.append((community, local_now.date()))
    return due


async def summary_recipients(session: AsyncSession, *, community_id: int) -> list[User]:
    """The community's leaders who can receive a private message."""
    result = await session.exec(
        select(User).join(Member, Member.user_id == User.id)
        .where(Member.community_id == community_id, col(Member.is_leader), Member.status == MemberStatus.MEMBER,
               col(User.can_dm), not_(col(User.erased)))
        .order_by(User.id)
    )
    return list(result)
