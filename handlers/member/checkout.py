"""The private checkout: quantity → pickup point or delivery address → coupon → way of paying →
summary → Confirm.

It starts from the `buy-<product id>[-<quantity>]` deep link (the Buy button, the group's /buy
reply, a shared link) or directly from /buy in the group when the member can be reached; a
group-buy's deep links (handlers/groupbuy_group.py) start it with a `JoinRef`, kept in the FSM data
as primitives: then the group price is quoted (`groupbuy_join.quote`), the steps say which
group-buy or team is joined, and Confirm joins it (`groupbuy_join.join`). One
message is edited from step to step; typed answers (a number, an address, a coupon code) get the
next step as a new message. Back and Cancel are on every step after the first; an answer that is
refused is asked again with the reason.

Every step is checked against the database again (`orders.quote`), and Confirm hands the price
shown on the summary to `orders.place`, which reserves the stock atomically. The checkout key made
when the checkout starts makes Confirm idempotent: a double tap or a redelivered press finds the
order already made and sends nothing more. A group-buy refusal that leaves the member out (the
team filled, failed or expired) ends the checkout with a link to open a new team while the
campaign takes new teams.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from urllib.parse import quote as url_quote
from uuid import uuid4

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.config import Settings
from bot.core.localtime import local_time
from bot.services import coupons, groupbuy_board, groupbuy_join, orders, products
from bot.services.activity import ActivityTracker
from bot.services.errors import DomainError
from bot.services.groupbuy_join import JoinMode, JoinRef
from bot.services.money import format_money
from bot.services.settings import get_pickup_point, pickup_points
from bot.services.shop_settings import shop_settings
from bot.telegram.context import BotContext
from bot.telegram.membership import Admits, MembershipCheck
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views import deeplinks, groupbuy_announce, sold_out
from bot.views.errors_text import error_text
from bot.views.groupbuy_cards import duration
from bot.views.keyboards import Checkout, CheckoutAction
from bot.views.order_notify import method_label, order_message
from bot.views.render import edit_or_send
from handlers.forms import CheckoutForm
from handlers.group.checkin import Clock, received_at
from handlers.member.payments import send_invoice
from models import Community, FunnelStep, PickupPoint
from models.groupbuy import GroupBuy, GroupBuyStatus, TeamStatus
from models.shop import Coupon, CouponKind, OrderStatus, PaymentMethod, Product

router = Router(name=__name__)
router.message.filter(F.chat.type == "private")

View = tuple[str, InlineKeyboardMarkup | None]
QUICK_QUANTITIES = (1, 2, 3, 5)
COUPON_BUTTONS = 5
# Ids from links and buttons are untrusted; larger ones cannot exist and would overflow a query.
ID_MAX = 2**31 - 1
LINK_ARG_RE = re.compile(r"^([0-9]{1,10})(?:-([A-Za-z0-9_]{1,16}))?$")
# Ways of paying, in the order they are offered; a PAY button carries the index.
METHODS = (PaymentMethod.PROVIDER, PaymentMethod.STARS, PaymentMethod.PICKUP)
STEPS = {step.state: step for step in CheckoutForm.__all_states__}
# Refusals after which opening a new team is the way on.
NEW_TEAM_CODES = ("team_full", "team_closed", "team_expired")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def row_id(value: int) -> int:
    """An id from a link or a button, or 0 (found nowhere) when it could not be a row's id."""
    return value if 0 < value <= ID_MAX else 0


@dataclass(slots=True)
class Cart:
    """One member's checkout: FSM data (primitives) plus the rows it refers to, loaded fresh."""

    state: FSMContext
    session: AsyncSession
    settings: Settings
    user_id: int
    data: dict
    product: Product
    community: Community
    # The step this update found the checkout at, read once: another update of the same member (a
    # Confirm, a Cancel) may close the checkout meanwhile, and a second read would see no step.
    step: State

    @property
    def tag(self) -> str:
        return self.data["key"][:8]

    def button(self, text: str, action: CheckoutAction, value: int = 0) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=Checkout(tag=self.tag, action=action, value=value).pack())

    def nav_row(self, *, back: bool = True) -> list[InlineKeyboardButton]:
        row = [self.button(_("« Back"), CheckoutAction.BACK)] if back else []
        return row + [self.button(_("✖ Cancel"), CheckoutAction.CANCEL)]

    async def save(self, **changes: object) -> None:
        self.data.update(changes)
        await self.state.set_data(self.data)

    def money(self, amount: int) -> str:
        return format_money(amount, self.community.currency, I18n.get_current().current_locale)

    def methods(self) -> list[PaymentMethod]:
        """The ways of paying this community offers now: cards need the operator's provider token."""
        shop = shop_settings(self.community)
        offered = {
            PaymentMethod.PROVIDER: self.settings.PAYMENT_PROVIDER_TOKEN is not None,
            PaymentMethod.STARS: shop.stars_enabled and shop.stars_per_unit > 0,
            PaymentMethod.PICKUP: shop.pay_at_pickup,
        }
        return [m for m in METHODS if offered[m]]

    @property
    def join(self) -> JoinRef | None:
        """The group-buy this checkout joins, or None for a plain order."""
        if not self.data.get("gb"):
            return None
        return JoinRef(self.data["gb"], JoinMode(self.data["gm"]), self.data.get("gt"), self.data.get("gi"))

    async def quote(self) -> orders.Quote:
        if (ref := self.join) is not None:
            return await groupbuy_join.quote(self.session, community=self.community, ref=ref, user_id=self.user_id,
                                             quantity=self.data["qty"], coupon_code=self.data.get("coupon"), now=_now())
        return await orders.quote(self.session, community=self.community, product_id=self.product.id, user_id=self.user_id,
                                  quantity=self.data["qty"], coupon_code=self.data.get("coupon"), now=_now())


async def load_cart(state: FSMContext, session: AsyncSession, settings: Settings, user_id: int,
                    tag: str | None = None) -> Cart | None:
    """The open checkout (the one `tag` names, when given), or None."""
    step = STEPS.get(await state.get_state())
    if step is None:
        return None
    data = await state.get_data()
    if "key" not in data or (tag is not None and data["key"][:8] != tag):
        return None
    found = await products.with_community(session, product_id=data["pid"], community_id=data["cid"])
    if found is None:
        await state.clear()
        return None
    return Cart(state, session, settings, user_id, data, *found, step)


# ----- starting ---------------------------------------------------------------------------------

async def start(*, state: FSMContext, session: AsyncSession, settings: Settings, user_id: int, product_id: int,
                quantity_raw: str | None = None, join: JoinRef | None = None, bot_username: str = "",
                admits: Admits | None = None, tracker: ActivityTracker | None = None) -> View:
    """Open a new checkout for `product_id` and return its first step (the quantity, or the pickup
    point when a valid quantity came with the link). A product that cannot be bought at all ends
    it at once with the reason. With `join`, the checkout joins that group-buy (of this product);
    `bot_username` then builds the links it offers (a new team, sharing the member's team).
    A deep link passes `admits`: whoever follows it must be in the product's group. A checkout that
    opens counts as the funnel's "checkout started" with the `tracker`."""
    await state.clear()
    product = await session.get(Product, row_id(product_id))
    community = await session.get(Community, product.community_id) if product else None
    if product is None or community is None:
        # Only a link names a product that is not there: one made before the product was deleted.
        return _("This link is out of date: the product it was for is gone. Press Buy on a product's card in your "
                 "group to order."), None
    if not community.active:
        return error_text(DomainError("community_inactive")), None
    if admits is not None and not await admits(community):
        return _("This shop is for the members of {title}, and you are not in that group now. Join it to order; if you "
                 "joined just now, try the link again in a few minutes.").format(title=escape(community.title)), None
    data = {"key": uuid4().hex, "pid": product.id, "cid": community.id, "qty": 1}
    if join is not None:
        data.update(gb=join.group_buy_id, gm=join.mode.value, gt=join.team_id, gi=join.invited_by, bot=bot_username)
    cart = Cart(state, session, settings, user_id, data, product, community, CheckoutForm.quantity)
    if not cart.methods():
        return _("This shop does not take orders yet: no way of paying is set up. Please tell the leader."), None
    try:
        await cart.quote()  # one unit: refuses paused, archived, sold out, or the member's limit reached
    except DomainError as err:
        return await _ended(cart, err, error_text(err, currency=community.currency))
    if tracker is not None:
        tracker.count_step(community_id=community.id, tz_name=community.timezone, product_id=product.id,
                           step=FunnelStep.CHECKOUT_STARTED, at=_now())
    await state.set_state(CheckoutForm.quantity)
    await state.set_data(data)
    if quantity_raw is None:
        return await show(cart, CheckoutForm.quantity)
    return await _take_quantity(cart, quantity_raw)


async def start_join(*, state: FSMContext, session: AsyncSession, settings: Settings, user_id: int, ref: JoinRef,
                     bot_username: str, quantity_raw: str | None = None, admits: Admits | None = None,
                     tracker: ActivityTracker | None = None) -> View:
    """Open a checkout that joins a group-buy (a team, a new team, or a threshold)."""
    campaign = await session.get(GroupBuy, row_id(ref.group_buy_id))
    if campaign is None or campaign.status == GroupBuyStatus.DRAFT:
        await state.clear()
        return error_text(DomainError("groupbuy_unknown")), None
    return await start(state=state, session=session, settings=settings, user_id=user_id, product_id=campaign.product_id,
                       quantity_raw=quantity_raw, join=ref, bot_username=bot_username, admits=admits, tracker=tracker)


@deeplinks.route("buy")
async def link_buy(*, message: Message, arg: str, state: FSMContext, session: AsyncSession, settings: Settings,
                   actor: Actor, bot: Bot, membership: MembershipCheck, **_data) -> None:
    match = LINK_ARG_RE.match(arg)
    if match is None:
        await message.answer(_("This link is not valid or has expired."))
        return
    text, markup = await start(state=state, session=session, settings=settings, user_id=actor.user.id,
                               product_id=int(match.group(1)), quantity_raw=match.group(2),
                               admits=membership.gate(bot, session, actor.user.id), tracker=_data.get("tracker"))
    await message.answer(text, reply_markup=markup)


# ----- steps ------------------------------------------------------------------------------------

def _step_for(err: DomainError) -> State | None:
    """Where a refusal sends the member back to; None ends the checkout."""
    code = err.code
    if code.startswith("quantity_") or code == "groupbuy_member_limit":
        return None if code in ("quantity_over_limit", "groupbuy_member_limit") and err.params.get("left") == 0 \
            else CheckoutForm.quantity
    if code.startswith("coupon_"):
        return CheckoutForm.coupon
    if code in ("pickup_unknown", "pickup_required", "delivery_disabled"):
        return CheckoutForm.pickup
    if code.startswith("address_"):
        return CheckoutForm.address
    if code == "payment_unavailable":
        return CheckoutForm.payment
    if code == "price_changed":
        return CheckoutForm.summary
    return None


async def _redirect(cart: Cart, err: DomainError) -> tuple[State | None, str]:
    """The step a refusal leads back to (None: the checkout is over) and the reason to show there."""
    if err.code.startswith("coupon_"):
        await cart.save(coupon=None)
    step = _step_for(err)
    if step is None:
        await cart.state.clear()
    return step, error_text(err, currency=cart.community.currency)


async def _ended(cart: Cart, err: DomainError, reason: str) -> View:
    """The checkout ended with `reason`; with the way on where there is one."""
    if err.code == "product_sold_out":
        return await sold_out.way_on(cart.session, community=cart.community, product=cart.product, reason=reason,
                                     locale=I18n.get_current().current_locale, now=_now())
    return reason, await _new_team(cart, err)


async def _new_team(cart: Cart, err: DomainError) -> InlineKeyboardMarkup | None:
    """After a refusal that leaves the member out of a team: a link to open a new team, while the
    campaign takes new teams and the member may open one."""
    ref = cart.join
    if ref is None or err.code not in NEW_TEAM_CODES:
        return None
    try:
        await groupbuy_join.quote(cart.session, community=cart.community, ref=JoinRef(ref.group_buy_id, JoinMode.OPEN),
                                  user_id=cart.user_id, quantity=1, coupon_code=None, now=_now())
    except DomainError:
        return None
    link = deeplinks.build(cart.data["bot"], "gbo", ref.group_buy_id)
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=_("👥 Open a new team"), url=link)]])


async def refuse(cart: Cart, err: DomainError) -> View:
    step, reason = await _redirect(cart, err)
    return await _ended(cart, err, reason) if step is None else await show(cart, step, reason)


async def show(cart: Cart, step: State, notice: str | None = None) -> View:
    """Enter `step` (or the step it leads to) and render it; a refusal on the way redirects."""
    for _attempt in range(4):
        try:
            text, markup = await _enter(cart, step)
        except DomainError as err:
            step, notice = await _redirect(cart, err)
            if step is None:
                return await _ended(cart, err, notice)
            continue
        return (f"{notice}\n\n{text}" if notice else text), markup
    await cart.state.clear()
    return _("Something changed while you were ordering. Please start again."), None


async def _enter(cart: Cart, step: State) -> View:
    await cart.state.set_state(step)
    if step == CheckoutForm.quantity:
        return await _quantity_view(cart)
    if step == CheckoutForm.pickup:
        return await _pickup_view(cart)
    if step == CheckoutForm.address:
        return _address_view(cart)
    if step == CheckoutForm.coupon:
        return await _coupon_view(cart)
    if step == CheckoutForm.payment:
        return await _payment_view(cart)
    return await _summary_view(cart)


def _product_head(cart: Cart) -> str:
    product = cart.product
    return _("<b>#{number} · {title}</b>").format(number=product.number, title=escape(product.title))


async def _join_line(cart: Cart) -> str | None:
    """Which group-buy this checkout joins, at what price, and how far it is (None: a plain order)."""
    ref = cart.join
    if ref is None:
        return None
    tgt = await groupbuy_join.target(cart.session, ref=ref, community_id=cart.community.id, now=_now())
    campaign, community = tgt.campaign, cart.community
    price, normal = cart.money(tgt.unit_price), cart.money(cart.product.price)
    if ref.mode is JoinMode.OPEN:
        return _("🤝 Group-buy: you open a new team of {size} at the team price {price} (normal price {normal}). "
                 "Once open, it has {limit} to fill.").format(
            size=campaign.team_size, price=price, normal=normal,
            limit=duration(campaign.team_minutes or 0, I18n.get_current().current_locale))
    if ref.mode is JoinMode.TEAM:
        team = await groupbuy_board.team_line(cart.session, team_id=tgt.team.id)
        return _("🤝 Group-buy: you join team #{number} of {name} ({seats} of {size} joined; it must fill by {when}) "
                 "at the team price {price} (normal price {normal}).").format(
            number=team.number, name=escape(team.opener_name), seats=team.seats, size=team.size,
            when=local_time(team.deadline_at, community, "%m-%d %H:%M"), price=price, normal=normal)
    return _("🛒 Community group-buy: {units} of {min} units so far; it closes {when} ({tz}). Group price {price} "
             "(normal price {normal}); if more units reach a lower price, everyone pays that.").format(
        units=campaign.units, min=campaign.min_units, when=local_time(campaign.ends_at, community), tz=community.timezone,
        price=price, normal=normal)


async def _quantity_view(cart: Cart) -> View:
    product = cart.product
    most = orders.QUANTITY_MAX
    lines = [_product_head(cart), _("{price} each").format(price=cart.money(product.price))]
    if (joining := await _join_line(cart)) is not None:
        # The price only: the quantity asked for may be the one just refused.
        tgt = await groupbuy_join.target(cart.session, ref=cart.join, community_id=cart.community.id, now=_now())
        lines = [_product_head(cart), joining, _("{price} each").format(price=cart.money(tgt.unit_price))]
        campaign = await cart.session.get(GroupBuy, cart.join.group_buy_id)
        if campaign.member_limit is not None:
            held = await groupbuy_join.units_held(cart.session, group_buy_id=campaign.id, user_id=cart.user_id)
            most = min(most, campaign.member_limit - held)
            lines.append(_("You can join with up to {count}.").format(count=max(campaign.member_limit - held, 0)))
    if product.stock is not None:
        most = min(most, product.stock)
        lines.append(_("{count} left").format(count=product.stock))
    if product.per_member_limit is not None:
        left = product.per_member_limit - await orders.bought_by(cart.session, product_id=product.id, user_id=cart.user_id)
        most = min(most, left)
        lines.append(_("You can buy up to {count}.").format(count=max(left, 0)))
    lines += ["", _("How many would you like? Choose below or send a number.")]
    quick = [cart.button(str(n), CheckoutAction.QUANTITY, n) for n in QUICK_QUANTITIES if n <= most]
    rows = [quick] if quick else []
    rows.append(cart.nav_row(back=False))
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def _pickup_view(cart: Cart) -> View:
    points = await pickup_points(cart.session, community_id=cart.community.id)
    delivery = shop_settings(cart.community).delivery_enabled
    if not points and not delivery:
        await cart.state.clear()
        return _("This shop has no pickup point yet, so orders cannot be placed. Please tell the leader."), None
    rows = [[cart.button("📍 " + p.name, CheckoutAction.PICKUP, p.id)] for p in points]
    if delivery:
        rows.append([cart.button(_("🚚 Deliver to my address"), CheckoutAction.DELIVERY)])
    rows.append(cart.nav_row())
    text = _("{product} × {qty}\n\nWhere will you pick it up?").format(product=_product_head(cart), qty=cart.data["qty"])
    if delivery and not points:
        text = _("{product} × {qty}\n\nThis order is delivered. Press the button to give your address.").format(
            product=_product_head(cart), qty=cart.data["qty"])
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


def _address_view(cart: Cart) -> View:
    text = _("Send the delivery address as text: street, building, and how to reach you (up to {max} characters).").format(
        max=orders.ADDRESS_MAX)
    return text, InlineKeyboardMarkup(inline_keyboard=[cart.nav_row()])


def _coupon_label(cart: Cart, coupon: Coupon) -> str:
    off = f"{coupon.value}%" if coupon.kind == CouponKind.PERCENT else cart.money(coupon.value)
    return _("🎟 {code} · −{off}").format(code=coupon.code, off=off)


async def _coupon_view(cart: Cart) -> View:
    usable = await coupons.for_member(cart.session, community_ids=[cart.community.id], user_id=cart.user_id, now=_now())
    rows = [[cart.button(_coupon_label(cart, c), CheckoutAction.COUPON, c.id)] for c in usable[:COUPON_BUTTONS]]
    rows.append([cart.button(_("Continue without a coupon"), CheckoutAction.NO_COUPON)])
    rows.append(cart.nav_row())
    text = _("Do you have a coupon? Send its code, choose one of yours below, or continue without one.")
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def _payment_view(cart: Cart) -> View:
    quote = await cart.quote()
    methods = cart.methods()
    if quote.total == 0 or len(methods) <= 1:
        # Nothing to choose: a free order needs no payment, one way of paying needs no question.
        await cart.save(method=methods[0].value if methods else None)
        return await _enter(cart, CheckoutForm.summary)
    shop = shop_settings(cart.community)
    labels = {
        PaymentMethod.PROVIDER: _("💳 Card"),
        PaymentMethod.STARS: _("⭐ Telegram Stars ({stars})").format(
            stars=orders.stars_for(quote.total, cart.community.currency, shop.stars_per_unit)),
        PaymentMethod.PICKUP: _("🤝 Pay at pickup"),
    }
    rows = [[cart.button(labels[m], CheckoutAction.PAY, METHODS.index(m))] for m in methods]
    rows.append(cart.nav_row())
    text = _("Total: {total}\n\nHow would you like to pay?").format(total=cart.money(quote.total))
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def _summary_view(cart: Cart) -> View:
    quote = await cart.quote()
    methods = cart.methods()
    method = cart.data.get("method")
    if quote.total > 0 and method not in methods:
        if len(methods) != 1:
            raise DomainError("payment_unavailable")
        method = methods[0].value
    # The price shown here is the price Confirm agrees to (orders.place refuses any other).
    await cart.save(price=quote.unit_price, method=method, free=quote.total == 0)
    lines = [_("<b>Your order</b>"), _product_head(cart)]
    if (joining := await _join_line(cart)) is not None:
        lines.append(joining)
    lines += [_("{qty} × {price} = {subtotal}").format(qty=quote.quantity, price=cart.money(quote.unit_price),
                                                      subtotal=cart.money(quote.subtotal))]
    if quote.coupon is not None:
        lines.append(_("Coupon {code}: −{discount}").format(code=quote.coupon.code, discount=cart.money(quote.discount)))
    total = cart.money(quote.total)
    if quote.total > 0 and method == PaymentMethod.STARS:
        stars = orders.stars_for(quote.total, cart.community.currency, shop_settings(cart.community).stars_per_unit)
        total = f"{total} = {stars} ⭐"
    lines.append(_("<b>Total: {total}</b>").format(total=total))
    if cart.data.get("address"):
        lines.append(_("Delivery to: {address}").format(address=escape(cart.data["address"])))
    else:
        point = await get_pickup_point(cart.session, community_id=cart.community.id, point_id=cart.data.get("pickup") or 0)
        lines.append(_("Pickup: {place}").format(place=escape(point.name)))
    lines.append(_("Payment: {method}").format(method=method_label(method) if quote.total > 0 else _("nothing to pay")))
    rows = [[cart.button(_("✅ Confirm"), CheckoutAction.CONFIRM)], cart.nav_row()]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


# Where Back leads from each step.
BACK = {
    CheckoutForm.pickup.state: CheckoutForm.quantity,
    CheckoutForm.address.state: CheckoutForm.pickup,
    CheckoutForm.coupon.state: CheckoutForm.pickup,
    CheckoutForm.payment.state: CheckoutForm.coupon,
    CheckoutForm.summary.state: CheckoutForm.payment,
}


def _back_from(cart: Cart, current: str) -> State | None:
    """The summary goes back past the payment step when that step was skipped (free, or one way)."""
    if current == CheckoutForm.summary.state and (cart.data.get("free") or len(cart.methods()) <= 1):
        return CheckoutForm.coupon
    return BACK.get(current)


# ----- answers ----------------------------------------------------------------------------------

async def _take_quantity(cart: Cart, raw: str) -> View:
    try:
        await cart.save(qty=orders.parse_quantity(raw))
        await cart.quote()  # stock and the member's limit
    except DomainError as err:
        return await refuse(cart, await _tightest(cart, err))
    return await show(cart, CheckoutForm.pickup)


async def _tightest(cart: Cart, err: DomainError) -> DomainError:
    """For a quantity past the most one order takes: the bound that is tighter here (the stock,
    the member's limit), when there is one. "At most 999" helps nobody when 3 are left."""
    if err.code != "quantity_too_large":
        return err
    await cart.save(qty=orders.QUANTITY_MAX)
    try:
        await cart.quote()
    except DomainError as tighter:
        return tighter
    return err


async def _take_coupon(cart: Cart, code: str) -> View:
    try:
        coupon = await coupons.find(cart.session, community_id=cart.community.id, code=code)
        await cart.save(coupon=coupon.code)
        await cart.quote()  # whose, expired, used, minimum spend
    except DomainError as err:
        return await refuse(cart, err)
    return await show(cart, CheckoutForm.payment)


async def _press(cart: Cart, current: str, action: CheckoutAction, value: int) -> View | None:
    """The view after a step button; None when the button does not belong to the current step."""
    expected = {
        CheckoutAction.QUANTITY: CheckoutForm.quantity, CheckoutAction.PICKUP: CheckoutForm.pickup,
        CheckoutAction.DELIVERY: CheckoutForm.pickup, CheckoutAction.COUPON: CheckoutForm.coupon,
        CheckoutAction.NO_COUPON: CheckoutForm.coupon, CheckoutAction.PAY: CheckoutForm.payment,
    }
    if action is CheckoutAction.BACK:
        target = _back_from(cart, current)
        return await show(cart, target) if target is not None else None
    if expected[action].state != current:
        return None
    if action is CheckoutAction.QUANTITY:
        return await _take_quantity(cart, str(value))
    if action is CheckoutAction.PICKUP:
        try:
            point = await get_pickup_point(cart.session, community_id=cart.community.id, point_id=row_id(value))
        except DomainError as err:
            return await show(cart, CheckoutForm.pickup, error_text(err))
        await cart.save(pickup=point.id, address=None)
        return await show(cart, CheckoutForm.coupon)
    if action is CheckoutAction.DELIVERY:
        if not shop_settings(cart.community).delivery_enabled:
            return await show(cart, CheckoutForm.pickup, error_text(DomainError("delivery_disabled")))
        return await show(cart, CheckoutForm.address)
    if action is CheckoutAction.COUPON:
        coupon = await cart.session.get(Coupon, row_id(value))
        if coupon is None or coupon.community_id != cart.community.id:
            return await show(cart, CheckoutForm.coupon, _("This button is no longer valid."))
        return await _take_coupon(cart, coupon.code)
    if action is CheckoutAction.NO_COUPON:
        await cart.save(coupon=None)
        return await show(cart, CheckoutForm.payment)
    if not 0 <= value < len(METHODS) or METHODS[value] not in cart.methods():
        return await show(cart, CheckoutForm.payment, error_text(DomainError("payment_unavailable")))
    await cart.save(method=METHODS[value].value)
    return await show(cart, CheckoutForm.summary)


@router.callback_query(Checkout.filter(F.action == CheckoutAction.CANCEL))
async def on_cancel(query: CallbackQuery, callback_data: Checkout, session: AsyncSession, settings: Settings,
                    actor: Actor, state: FSMContext) -> None:
    if await load_cart(state, session, settings, actor.user.id, callback_data.tag) is not None:
        await state.clear()
    await query.answer()
    await edit_or_send(query.message, _("Checkout cancelled. Nothing was ordered."))


@router.callback_query(Checkout.filter(F.action == CheckoutAction.CONFIRM))
async def on_confirm(query: CallbackQuery, callback_data: Checkout, session: AsyncSession, settings: Settings,
                     actor: Actor, state: FSMContext, bot: Bot, ctx: BotContext, tracker: ActivityTracker,
                     clock: Clock | None = None) -> None:
    # The order is dated when the member confirms: the dispatcher's `clock` in tests and the demo.
    now = received_at(clock)
    cart = await load_cart(state, session, settings, actor.user.id, callback_data.tag)
    if cart is None or cart.step != CheckoutForm.summary:
        await query.answer(_("This checkout is closed. Press Buy on the product to start again."), show_alert=True)
        return
    data = cart.data
    method = PaymentMethod(data["method"]) if data.get("method") else PaymentMethod.PICKUP
    try:
        if not data.get("free") and method not in cart.methods():
            raise DomainError("payment_unavailable")  # e.g. the provider token was removed meanwhile
        where = {"pickup_point_id": data.get("pickup") if not data.get("address") else None,
                 "delivery_address": data.get("address"), "coupon_code": data.get("coupon")}
        if (ref := cart.join) is not None:
            placed = await groupbuy_join.join(
                session, community=cart.community, ref=ref, user_id=actor.user.id, quantity=data["qty"],
                unit_price=data["price"], payment_method=method, checkout_key=data["key"], now=now, **where)
        else:
            placed = await orders.place(
                session, community=cart.community, user_id=actor.user.id, product_id=cart.product.id,
                quantity=data["qty"], unit_price=data["price"], payment_method=method, checkout_key=data["key"],
                now=now, **where)
    except DomainError as err:
        await query.answer()
        await edit_or_send(query.message, *await refuse(cart, err))
        return
    if not placed.created:
        await query.answer(_("This order is already placed."))
        return
    order = placed.order
    tracker.record_deed(chat_id=cart.community.chat_id, chat_title=cart.community.title, profile=actor.user.profile,
                        at=order.created_at, orders=1)
    await state.clear()
    await query.answer(_("Order placed."))
    pickup = await session.get(PickupPoint, order.pickup_point_id) if order.pickup_point_id else None
    text = order_message(order, cart.product, pickup, actor.locale)
    markup = None
    if isinstance(placed, groupbuy_join.Joined):
        group_text, markup = await _joined_view(cart, placed, actor.user.id)
        text += "\n\n" + group_text
    online = order.status == OrderStatus.PENDING_PAYMENT and order.payment_method != PaymentMethod.PICKUP
    text += "\n\n"
    if online:
        minutes = shop_settings(cart.community).unpaid_minutes
        text += _("Please pay with the invoice below within {minutes} minutes; after that the order is cancelled.").format(minutes=minutes) + "\n"
    text += _("Send /orders to see your orders.")
    await edit_or_send(query.message, text, markup)
    if online:
        await send_invoice(bot, settings, order, cart.product)
    if isinstance(placed, groupbuy_join.Joined) and placed.completed:
        # This order took the last seat: the team's other members hear now, not at the next sweep;
        # this member has just read it above.
        await groupbuy_announce.announce_team(ctx, placed.team.id, now=now, told=actor.user.id)


async def _joined_view(cart: Cart, joined: groupbuy_join.Joined, user_id: int) -> View:
    """Where the group-buy stands after this member joined, and for a team the link that brings
    friends into it (recorded as invited by this member)."""
    community, team = cart.community, joined.team
    if team is None:
        campaign = await cart.session.get(GroupBuy, cart.join.group_buy_id, populate_existing=True)
        return _("Community group-buy: {units} of {min} units so far. It closes {when} ({tz}); everyone pays the price "
                 "reached then, and if the minimum is not reached nobody pays.").format(
            units=campaign.units, min=campaign.min_units, when=local_time(campaign.ends_at, community),
            tz=community.timezone), None
    if team.status == TeamStatus.SUCCEEDED:
        return _("🎉 Team #{number} is full: {size} of {size} joined. The group-buy succeeded!").format(
            number=team.number, size=team.size), None
    link = deeplinks.build(cart.data["bot"], "gbt", f"{team.id}-{user_id}")
    text = _("Team #{number}: {seats} of {size} joined; it must fill by {when} ({tz}), or the orders are cancelled.").format(
        number=team.number, seats=team.seats, size=team.size, when=local_time(team.deadline_at, community), tz=community.timezone)
    text += "\n" + _("Forward this link: whoever joins through it takes a seat in your team.\n{link}").format(link=link)
    share = f"https://t.me/share/url?url={url_quote(link, safe='')}&text={url_quote(cart.product.title, safe='')}"
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=_("↗️ Share: join my team"), url=share)]])
    return text, markup


@router.callback_query(Checkout.filter())
async def on_step(query: CallbackQuery, callback_data: Checkout, session: AsyncSession, settings: Settings,
                  actor: Actor, state: FSMContext) -> None:
    cart = await load_cart(state, session, settings, actor.user.id, callback_data.tag)
    if cart is None:
        await query.answer(_("This checkout is closed. Press Buy on the product to start again."), show_alert=True)
        return
    view = await _press(cart, cart.step.state, callback_data.action, callback_data.value)
    if view is None:
        await query.answer(_("That step is already behind you."))
        return
    await query.answer()
    await edit_or_send(query.message, *view)


@router.message(Command("cancel"), StateFilter(CheckoutForm))
async def cmd_cancel(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.answer(_("Checkout cancelled. Nothing was ordered."))


@router.message(StateFilter(CheckoutForm), ~F.text, SENT_BY_PERSON)
async def on_not_text(message: Message, session: AsyncSession, settings: Settings, actor: Actor, state: FSMContext) -> None:
    cart = await load_cart(state, session, settings, actor.user.id)
    if cart is None:
        return
    text, markup = await show(cart, cart.step, _("Please answer with text or use the buttons."))
    await message.answer(text, reply_markup=markup)


@router.message(StateFilter(CheckoutForm), F.text, ~F.text.startswith("/"))
async def on_text(message: Message, session: AsyncSession, settings: Settings, actor: Actor, state: FSMContext) -> None:
    """A typed answer: the quantity, the address or a coupon code; on other steps, a pointer to the buttons."""
    cart = await load_cart(state, session, settings, actor.user.id)
    if cart is None:
        return
    current = cart.step
    if current == CheckoutForm.quantity:
        view = await _take_quantity(cart, message.text)
    elif current == CheckoutForm.address:
        try:
            address = orders.clean_address(message.text)
        except DomainError as err:
            view = await show(cart, CheckoutForm.address, error_text(err))
        else:
            await cart.save(address=address, pickup=None)
            view = await show(cart, CheckoutForm.coupon)
    elif current == CheckoutForm.coupon:
        view = await _take_coupon(cart, message.text)
    else:
        view = await show(cart, current, _("Please use the buttons to choose."))
    await message.answer(view[0], reply_markup=view[1])

