"""Telling people that a group-buy closed: every participant in their language, Stars refunded
first, the group's card handed to the card updater, and the leaders' summary of a whole campaign.

A close (bot/services/groupbuy_close.py) flags its announcements in the closing transaction; each
function here first claims that flag (`claim_team` / `claim_campaign`), so whoever gets there
first — the checkout that took a team's last seat, the deadline job, a second worker, the job
catching up after a restart — is the only one who announces. The claim is committed before
anything is sent, and the messages are durable (bot/telegram/outbox.py): a crash after the claim
sends them from the outbox, except in the few milliseconds before their rows are written.

Call from a handler, right after the service that closed something committed:

    await groupbuy_announce.announce_team(ctx, joined.team.id, now=now)

(`app` is in every handler's data.) Messages go out through the app's Sender; nothing here waits
for their delivery.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import get_i18n
from bot.core.locales import resolve_locale
from bot.services import groupbuy_close, groupbuy_report, order_reports
from bot.services.group_seats import mark_card_stale
from bot.services.groupbuy_report import CONFIRMED, Settled, Summary
from bot.services.money import format_money
from bot.telegram import refunds
from bot.telegram.context import BotContext
from bot.views import deeplinks
from bot.views.order_notify import order_head, where_text
from models import Community, PickupPoint, User
from models.groupbuy import GroupBuy, GroupBuyKind, GroupBuyStatus, TeamStatus
from models.shop import Order, OrderStatus, PaymentMethod, Product

# The deep link that opens a new team in a campaign (the checkout's `gbo-<campaign id>`).
OPEN_TEAM_LINK = "gbo"


async def announce_team(ctx: BotContext, team_id: int, *, now: datetime, told: int | None = None) -> bool:
    """Announce a closed team (filled, or failed at its deadline or by the leader) to its members,
    once: False when someone else already did, or the team has nothing to announce. `told` is a
    member who already heard it: the one whose checkout took the last seat reads it there, and
    one success message is enough."""
    async with ctx.sessions() as session:
        if not await groupbuy_close.claim_team(session, team_id=team_id):
            return False
        closed = await groupbuy_report.settled(session, team_id=team_id)
        await _settle_and_tell(ctx, session, closed, now, told=told)
    return True


async def announce_campaign(ctx: BotContext, group_buy_id: int, *, now: datetime) -> bool:
    """Announce a closed campaign once: a threshold's participants, then the leaders' summary (a
    team campaign's members heard from their own team). False when already announced."""
    async with ctx.sessions() as session:
        if not await groupbuy_close.claim_campaign(session, group_buy_id=group_buy_id):
            return False
        campaign = await session.get(GroupBuy, group_buy_id)
        if campaign.kind == GroupBuyKind.THRESHOLD:
            await _settle_and_tell(ctx, session, await groupbuy_report.settled(session, group_buy_id=group_buy_id), now)
        await _tell_leaders(ctx, session, campaign)
    return True


async def announce_pending(ctx: BotContext, *, now: datetime, batch: int = 200) -> tuple[int, int]:
    """Every close still unannounced: teams first, so that a campaign's summary counts their
    refunds. Returns (teams, campaigns) announced by this call. Also for a leader's "end now"."""
    teams = campaigns = 0
    while True:
        async with ctx.sessions() as session:
            team_ids, campaign_ids = await groupbuy_close.announcements_due(session, limit=batch)
        for team_id in team_ids:
            teams += await announce_team(ctx, team_id, now=now)
        for campaign_id in campaign_ids:
            campaigns += await announce_campaign(ctx, campaign_id, now=now)
        if len(team_ids) < batch and len(campaign_ids) < batch:
            return teams, campaigns


async def _settle_and_tell(ctx: BotContext, session: AsyncSession, closed: Settled, now: datetime, *,
                           told: int | None = None) -> None:
    for order in closed.orders:
        if order.status == OrderStatus.REFUND_DUE and order.payment_method == PaymentMethod.STARS:
            await refunds.refund(ctx.bot, session, order, None, now)
    await mark_card_stale(session, group_buy_id=closed.campaign.id)
    await session.commit()
    reopen = may_open_new_team(closed, now) and bool(ctx.bot_username)
    for user_id, orders in closed.by_user().items():
        if user_id == told:
            continue
        user = await session.get(User, user_id)
        if user is None or not user.can_dm or user.erased:
            continue
        locale = resolve_locale(user, closed.community, closed.community.default_locale)
        points = {o.pickup_point_id: await session.get(PickupPoint, o.pickup_point_id)
                  for o in orders if o.pickup_point_id is not None}
        with get_i18n().use_locale(locale):
            text = member_text(closed, orders, points, locale, reopen=reopen)
            markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
                text=_("👥 Open a new team"), url=deeplinks.build(ctx.bot_username, OPEN_TEAM_LINK, closed.campaign.id))]]
            ) if reopen else None
        ctx.sender.send_message(user.id, text, reply_markup=markup, durable=True)


def may_open_new_team(closed: Settled, now: datetime) -> bool:
    """The members of a team that failed are offered a new one while the campaign still takes new teams."""
    campaign = closed.campaign
    return (closed.team is not None and closed.team.status == TeamStatus.FAILED
            and campaign.status == GroupBuyStatus.LIVE and campaign.ends_at > now)


def money(amount: int, closed: Settled, locale: str) -> str:
    return format_money(amount, closed.community.currency, locale)


def headline(closed: Settled, locale: str) -> str:
    """What happened to the team or campaign, one sentence (the current locale)."""
    title, campaign, team = escape(closed.product.title), closed.campaign, closed.team
    if team is not None:
        if team.status == TeamStatus.SUCCEEDED:
            return _("🎉 Team #{number} for {title} is full: the group-buy succeeded!").format(number=team.number, title=title)
        if team.close_reason == "ended_by_leader":
            return _("The leader ended the group-buy for {title}: team #{number} closes without filling.").format(
                number=team.number, title=title)
        return _("⌛ Team #{number} for {title} did not fill before its deadline: the group-buy did not happen.").format(
            number=team.number, title=title)
    if campaign.status == GroupBuyStatus.SUCCEEDED:
        return _("🎉 The group-buy for {title} reached {units} units: everyone pays {price} each.").format(
            title=title, units=campaign.units, price=money(campaign.final_price, closed, locale))
    if campaign.close_reason == "ended_by_leader":
        return _("The leader ended the group-buy for {title} early: it did not happen.").format(title=title)
    return _("⌛ The group-buy for {title} closed with {units} of {minimum} units: it did not happen.").format(
        title=title, units=campaign.units, minimum=campaign.min_units)


def order_line(closed: Settled, order: Order, locale: str) -> str:
    """What the close means for one of the member's orders (the current locale)."""
    amount = money(order.total, closed, locale)
    if order.status in CONFIRMED:
        price = money(order.unit_price, closed, locale)
        if order.paid_at is None:
            line = _("✅ Confirmed at {price} each. You pay {amount} at pickup.").format(price=price, amount=amount)
        else:
            line = _("✅ Confirmed at {price} each.").format(price=price)
        if order.credit and (code := closed.credit_codes.get(order.id)):
            line += "\n" + _("💝 You paid {credit} more than the final price: coupon <code>{code}</code> takes it off "
                             "your next order.").format(credit=money(order.credit, closed, locale), code=escape(code))
        return line
    if order.status == OrderStatus.PENDING_PAYMENT:
        return _("💳 Your place is held: please pay {amount} to confirm it (your invoice is in /orders).").format(amount=amount)
    if order.status == OrderStatus.REFUNDED:
        if order.payment_method == PaymentMethod.STARS:
            return _("❌ Cancelled. Your {stars} ⭐ are refunded to your balance.").format(stars=order.stars_total)
        return _("❌ Cancelled. Your payment was refunded.")
    if order.status == OrderStatus.REFUND_DUE:
        if order.payment_method == PaymentMethod.STARS:
            return _("❌ Cancelled. Your {stars} ⭐ will be refunded automatically shortly.").format(stars=order.stars_total)
        return _("❌ Cancelled. You paid by card: the leader will refund you.")
    if order.cancel_reason == "groupbuy_unpaid":
        return _("❌ Cancelled: it was not paid before the cut-off.")
    return _("❌ Cancelled. You pay nothing.")


def member_text(closed: Settled, orders: list[Order], points: dict[int, PickupPoint | None], locale: str, *,
                reopen: bool) -> str:
    """One message for one member: the headline, then each of their orders (the current locale)."""
    blocks = [headline(closed, locale)]
    for order in orders:
        lines = [f"<b>{order_head(order, closed.product, locale)}</b>", order_line(closed, order, locale)]
        if order.status in CONFIRMED or order.status == OrderStatus.PENDING_PAYMENT:
            if where := where_text(order, points.get(order.pickup_point_id)):
                lines.append(where)
        blocks.append("\n".join(lines))
    if reopen:
        blocks.append(_("Want to try again? Open a new team and share it with the group."))
    return "\n\n".join(blocks)


async def _tell_leaders(ctx: BotContext, session, campaign: GroupBuy) -> None:
    figures = await groupbuy_report.summary(session, group_buy_id=campaign.id)
    community = await session.get(Community, campaign.community_id)
    product = await session.get(Product, campaign.product_id)
    for leader in await order_reports.summary_recipients(session, community_id=campaign.community_id):
        locale = resolve_locale(leader, community, community.default_locale)
        with get_i18n().use_locale(locale):
            text = summary_text(campaign, product.number, product.title, community.currency, figures, locale)
        ctx.sender.send_message(leader.id, text, durable=True)


def summary_text(campaign: GroupBuy, number: int, title: str, currency: str, f: Summary, locale: str) -> str:
    """The leaders' summary of a closed campaign (the current locale)."""
    def cash(amount: int) -> str:
        return format_money(amount, currency, locale)

    head = _("📊 <b>Team group-buy closed: #{number} {title}</b>") if campaign.kind == GroupBuyKind.TEAM \
        else _("📊 <b>Threshold group-buy closed: #{number} {title}</b>")
    lines = [head.format(number=number, title=escape(title))]
    if campaign.kind == GroupBuyKind.TEAM:
        lines.append(_("Teams: {succeeded} filled, {failed} did not fill.").format(
            succeeded=f.teams_succeeded, failed=f.teams_failed))
    elif campaign.status == GroupBuyStatus.SUCCEEDED:
        lines.append(_("Reached {units} of {minimum} units; final price {price} each.").format(
            units=campaign.units, minimum=campaign.min_units, price=cash(campaign.final_price)))
    elif campaign.close_reason == "ended_by_leader":
        lines.append(_("Ended early by a leader: nobody's order stands."))
    else:
        lines.append(_("Not reached: {units} of {minimum} units.").format(units=campaign.units, minimum=campaign.min_units))
    if campaign.kind == GroupBuyKind.TEAM and campaign.close_reason == "ended_by_leader":
        lines.append(_("Ended early by a leader."))
    lines.append(_("Participants: {people} · units: {units}").format(people=f.participants, units=f.units))
    if f.confirmed_orders:
        lines.append(_("Orders confirmed: {orders} · {amount} ({paid} paid online, the rest at pickup)").format(
            orders=f.confirmed_orders, amount=cash(f.confirmed_total), paid=cash(f.paid_total)))
    if f.unpaid_orders:
        lines.append(_("Orders waiting for online payment: {orders} · {amount}").format(
            orders=f.unpaid_orders, amount=cash(f.unpaid_total)))
    if f.cancelled_orders:
        lines.append(_("Orders cancelled before payment: {orders}").format(orders=f.cancelled_orders))
    if f.refunded_orders:
        lines.append(_("Orders refunded: {orders} · {amount}").format(orders=f.refunded_orders, amount=cash(f.refunded_total)))
    if f.refund_due_orders:
        lines.append(_("⚠️ Card payments for you to refund: {orders} · {amount}. Refund them, then mark them refunded "
                       "in /admin → Orders.").format(orders=f.refund_due_orders, amount=cash(f.refund_due_total)))
    if f.stars_due_orders:
        lines.append(_("Stars refunds Telegram has not accepted yet: {orders} (retried automatically)").format(
            orders=f.stars_due_orders))
    if f.credited_total:
        lines.append(_("Paid above the final price, given back as coupons: {amount}").format(amount=cash(f.credited_total)))
    return "\n".join(lines)
