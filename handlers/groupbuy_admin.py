"""/admin → Group-buys: the leader's side of team and threshold campaigns.

The list; the setup forms (team: product → price → size → time limit → window → limits → buying
alone; threshold: product → price → minimum units → cut-off → tiers → member limit) ending in a
preview of the terms as members will read them, then Publish; a campaign's screen with its state,
progress, teams and participants; one-term edits (the service refuses a live edit that worsens a
term); ending a campaign early; deleting a draft.

Forms run on the FSM with Back and Cancel on every step; an invalid answer is asked again with
the reason. Every press and answer re-checks that the actor leads the community, every id from a
button is looked up within that community, and form buttons carry the step they were shown for.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import groupbuy_cards, order_notify
from bot.errors_text import error_text
from bot.jobs_posts import local_time
from bot.keyboards import (
    AdminNav,
    GroupBuyAdmin,
    GroupBuyEditTerm,
    GroupBuyFormNav,
    GroupBuyFormOp,
    GroupBuyOp,
    GroupBuyTerm,
    Section,
)
from bot.middlewares.actor import Actor
from bot.render import edit_or_send
from bot.services import groupbuy_close, groupbuys, posts, products, users
from bot.services.errors import DomainError
from bot.services.groupbuys import Terms
from bot.services.money import format_money, parse_money
from bot.states import GroupBuyEditForm, GroupBuyForm
from handlers.admin import back_button, form_guard, guard
from handlers.orders_admin import buyer_name
from models import Community
from models.groupbuy import GroupBuy, GroupBuyKind, GroupBuyStatus, GroupBuyTeam, TeamStatus
from models.shop import Order, Product, ProductStatus

router = Router(name=__name__)

MESSAGE_LIMIT = 4096
LIST_LIMIT = 20
TEAMS_PAGE = 10
PRODUCT_BUTTONS = 30
NAME_SHOWN = 40
QUICK_DAYS = (1, 3, 7)
QUICK_COUNTS = (1, 2, 3)

TEAM_STEPS: list[State] = [GroupBuyForm.product, GroupBuyForm.price, GroupBuyForm.team_size, GroupBuyForm.team_minutes,
                           GroupBuyForm.ends_at, GroupBuyForm.open_limit, GroupBuyForm.join_limit, GroupBuyForm.solo,
                           GroupBuyForm.preview]
THRESHOLD_STEPS: list[State] = [GroupBuyForm.product, GroupBuyForm.price, GroupBuyForm.min_units, GroupBuyForm.ends_at,
                                GroupBuyForm.tiers, GroupBuyForm.member_limit, GroupBuyForm.preview]
# The term each setup step asks for.
STEP_TERM: dict[str, GroupBuyTerm] = {
    GroupBuyForm.price.state: GroupBuyTerm.PRICE,
    GroupBuyForm.team_size.state: GroupBuyTerm.TEAM_SIZE,
    GroupBuyForm.team_minutes.state: GroupBuyTerm.TEAM_TIME,
    GroupBuyForm.ends_at.state: GroupBuyTerm.ENDS_AT,
    GroupBuyForm.open_limit.state: GroupBuyTerm.OPEN_LIMIT,
    GroupBuyForm.join_limit.state: GroupBuyTerm.JOIN_LIMIT,
    GroupBuyForm.solo.state: GroupBuyTerm.SOLO,
    GroupBuyForm.min_units.state: GroupBuyTerm.MIN_UNITS,
    GroupBuyForm.tiers.state: GroupBuyTerm.TIERS,
    GroupBuyForm.member_limit.state: GroupBuyTerm.MEMBER_LIMIT,
}
# Which terms a campaign of each kind has (and may edit).
KIND_TERMS = {
    GroupBuyKind.TEAM: (GroupBuyTerm.PRICE, GroupBuyTerm.TEAM_SIZE, GroupBuyTerm.TEAM_TIME, GroupBuyTerm.ENDS_AT,
                        GroupBuyTerm.OPEN_LIMIT, GroupBuyTerm.JOIN_LIMIT, GroupBuyTerm.SOLO),
    GroupBuyKind.THRESHOLD: (GroupBuyTerm.PRICE, GroupBuyTerm.MIN_UNITS, GroupBuyTerm.ENDS_AT, GroupBuyTerm.TIERS,
                             GroupBuyTerm.MEMBER_LIMIT),
}
ALL_STATES = (*{s.state for s in TEAM_STEPS + THRESHOLD_STEPS}, GroupBuyEditForm.value.state)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _at(message: Message) -> datetime:
    """When the leader wrote (the update's own date), in UTC."""
    return message.date if message.date.tzinfo else message.date.replace(tzinfo=timezone.utc)


def _nav(community_id: int, op: GroupBuyOp, group_buy_id: int = 0, **extra: int) -> str:
    return GroupBuyAdmin(community_id=community_id, op=op, group_buy_id=group_buy_id, **extra).pack()


def _button(text: str, community_id: int, op: GroupBuyOp, group_buy_id: int = 0, **extra: int) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=_nav(community_id, op, group_buy_id, **extra))


def fit(lines: list[str], rest: list[str], more: Callable[[int], str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """`lines` and as many of `rest` as fit in one message; the others counted in a last line."""
    shown = list(lines)
    size = len("\n".join(shown))
    reserve = len(more(len(rest))) + 1
    for index, line in enumerate(rest):
        left = len(rest) - index - 1
        if size + 1 + len(line) + (reserve if left else 0) > limit:
            shown.append(more(len(rest) - index))
            return shown
        shown.append(line)
        size += 1 + len(line)
    return shown


def more_text(count: int) -> str:
    return _("… and {count} more").format(count=count)


# ----- how terms read ------------------------------------------------------------------------------

def duration_text(minutes: int) -> str:
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(_("{count} d").format(count=days))
    if hours:
        parts.append(_("{count} h").format(count=hours))
    if mins or not parts:
        parts.append(_("{count} min").format(count=mins))
    return " ".join(parts)


def money(amount: int, community: Community, locale: str) -> str:
    return format_money(amount, community.currency, locale)


def tiers_text(tiers: tuple[tuple[int, int], ...] | list, community: Community, locale: str) -> str:
    return "; ".join(_("≥ {units} → {price}").format(units=units, price=money(price, community, locale))
                     for units, price in tiers)


def kind_title(kind: GroupBuyKind) -> str:
    return _("Team group-buy") if kind == GroupBuyKind.TEAM else _("Threshold group-buy")


def terms_lines(terms: Terms, product: Product, community: Community, locale: str) -> list[str]:
    """The terms as members will read them: prices in the community's currency, times in its zone."""
    tz = community.timezone
    lines = [f"<b>{kind_title(terms.kind)} · #{product.number} {escape(product.title)}</b>"]
    normal = money(product.price, community, locale)
    if terms.kind == GroupBuyKind.TEAM:
        lines += [
            _("Team price: {price} (normal price {normal})").format(price=money(terms.price, community, locale), normal=normal),
            _("A team is {size} people and must fill within {time} of opening.").format(
                size=terms.team_size, time=duration_text(terms.team_minutes or 0)),
            _("New teams can be opened until {when} ({tz}).").format(when=local_time(terms.ends_at, community), tz=tz),
            _("Each member may open {open} and join {join} teams opened by others.").format(
                open=terms.open_limit, join=terms.join_limit),
            _("Buying alone at the normal price: {answer}").format(
                answer=_("still possible") if terms.solo_allowed else _("not while the group-buy runs")),
        ]
    else:
        lines += [
            _("Price on joining: {price} (normal price {normal})").format(price=money(terms.price, community, locale), normal=normal),
            _("Goal: {units} units in all by {when} ({tz}).").format(units=terms.min_units, when=local_time(terms.ends_at, community), tz=tz),
            _("Price tiers: {tiers}").format(tiers=tiers_text(terms.tiers, community, locale)) if terms.tiers
            else _("Price tiers: none"),
            _("Everyone pays the price of the tier reached at the cut-off; if the goal is not reached, every order is cancelled and refunded."),
            _("Per member: at most {count} units").format(count=terms.member_limit) if terms.member_limit
            else _("Per member: no limit"),
        ]
    return lines


def term_now(term: GroupBuyTerm, terms: Terms, community: Community, locale: str) -> str:
    """A term's present value, for the edit prompt."""
    return {
        GroupBuyTerm.PRICE: lambda: money(terms.price, community, locale),
        GroupBuyTerm.TEAM_SIZE: lambda: str(terms.team_size),
        GroupBuyTerm.TEAM_TIME: lambda: duration_text(terms.team_minutes or 0),
        GroupBuyTerm.ENDS_AT: lambda: f"{local_time(terms.ends_at, community)} ({community.timezone})",
        GroupBuyTerm.OPEN_LIMIT: lambda: str(terms.open_limit),
        GroupBuyTerm.JOIN_LIMIT: lambda: str(terms.join_limit),
        GroupBuyTerm.SOLO: lambda: _("yes") if terms.solo_allowed else _("no"),
        GroupBuyTerm.MIN_UNITS: lambda: str(terms.min_units),
        GroupBuyTerm.TIERS: lambda: tiers_text(terms.tiers, community, locale) or _("none"),
        GroupBuyTerm.MEMBER_LIMIT: lambda: str(terms.member_limit) if terms.member_limit else _("none"),
    }[term]()


def term_label(term: GroupBuyTerm, kind: GroupBuyKind) -> str:
    if term == GroupBuyTerm.ENDS_AT:
        return _("✏️ Window end") if kind == GroupBuyKind.TEAM else _("✏️ Cut-off")
    return {
        GroupBuyTerm.PRICE: lambda: _("✏️ Price"),
        GroupBuyTerm.TEAM_SIZE: lambda: _("✏️ Team size"),
        GroupBuyTerm.TEAM_TIME: lambda: _("✏️ Time limit"),
        GroupBuyTerm.OPEN_LIMIT: lambda: _("✏️ Teams to open"),
        GroupBuyTerm.JOIN_LIMIT: lambda: _("✏️ Teams to join"),
        GroupBuyTerm.SOLO: lambda: _("✏️ Buying alone"),
        GroupBuyTerm.MIN_UNITS: lambda: _("✏️ Minimum units"),
        GroupBuyTerm.TIERS: lambda: _("✏️ Tiers"),
        GroupBuyTerm.MEMBER_LIMIT: lambda: _("✏️ Member limit"),
    }[term]()


def question(term: GroupBuyTerm, data: dict) -> str:
    """What a step (or a one-term edit) asks; `data` is the form's."""
    kind = GroupBuyKind(data["kind"])
    if term == GroupBuyTerm.PRICE:
        if kind == GroupBuyKind.TEAM:
            return _("The team price in {currency}: lower than the normal price of #{number}, {normal}.").format(
                currency=data["currency"], number=data["product_number"], normal=data["product_normal"])
        return _("The price members pay on joining, in {currency} (the normal price of #{number} is {normal}).").format(
            currency=data["currency"], number=data["product_number"], normal=data["product_normal"])
    if term == GroupBuyTerm.ENDS_AT:
        ask = (_("Until when may members open new teams?") if kind == GroupBuyKind.TEAM
               else _("The cut-off: when is the total counted?"))
        return ask + " " + _("Send a time in {tz}: HH:MM or YYYY-MM-DD HH:MM, or choose below. It is {now} there now.").format(
            tz=data["tz"], now=data["local_now"])
    if term == GroupBuyTerm.TIERS:
        text = _("Optional lower prices by total units: send a tier as the units and the price, for example “30 8.80” "
                 "(several, one per line). Everyone pays the tier reached at the cut-off.")
        if data.get("tiers"):
            text += "\n" + _("Tiers so far: {tiers}").format(tiers=escape(data["tiers_shown"]))
        return text
    return {
        GroupBuyTerm.TEAM_SIZE: lambda: _("How many people make a team? Send a number from 2 to {max}.").format(max=groupbuys.TEAM_SIZE_MAX),
        GroupBuyTerm.TEAM_TIME: lambda: _("How long does a team have to fill once it opens? For example 24 (hours), 24h, 1d 12h or 90m; at most {days} days.").format(
            days=groupbuys.TEAM_MINUTES_MAX // 1440),
        GroupBuyTerm.OPEN_LIMIT: lambda: _("How many teams may one member open? Choose, or send a number from 0 to {max}.").format(max=groupbuys.MEMBER_TEAMS_MAX),
        GroupBuyTerm.JOIN_LIMIT: lambda: _("How many teams opened by others may one member join? Choose, or send a number from 0 to {max}.").format(max=groupbuys.MEMBER_TEAMS_MAX),
        GroupBuyTerm.SOLO: lambda: _("May members still buy alone at the normal price while the group-buy runs?"),
        GroupBuyTerm.MIN_UNITS: lambda: _("The minimum total units the community must order for the group-buy to succeed. Send a number."),
        GroupBuyTerm.MEMBER_LIMIT: lambda: _("The most units one member may order: send a number, or press No limit."),
    }[term]()


def choice_rows(term: GroupBuyTerm, step: str, data: dict) -> list[list[InlineKeyboardButton]]:
    """The answer buttons a step offers besides typing."""
    def pick(text: str, value: int) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=GroupBuyFormNav(op=GroupBuyFormOp.PICK, step=step, value=value).pack())

    def op(text: str, kind: GroupBuyFormOp) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=GroupBuyFormNav(op=kind, step=step).pack())

    if term == GroupBuyTerm.ENDS_AT:
        return [[pick(_("in {count} d").format(count=days), days) for days in QUICK_DAYS]]
    if term in (GroupBuyTerm.OPEN_LIMIT, GroupBuyTerm.JOIN_LIMIT):
        return [[pick(str(n), n) for n in QUICK_COUNTS]]
    if term == GroupBuyTerm.SOLO:
        return [[pick(_("Yes"), 1), pick(_("No"), 0)]]
    if term == GroupBuyTerm.TIERS:
        rows = [[op(_("✅ Done") if data.get("tiers") else _("No tiers"), GroupBuyFormOp.NONE)]]
        if data.get("tiers"):
            rows.append([op(_("Clear the tiers"), GroupBuyFormOp.CLEAR)])
        return rows
    if term == GroupBuyTerm.MEMBER_LIMIT:
        return [[op(_("No limit"), GroupBuyFormOp.NONE)]]
    return []


# ----- the list and a campaign's screens -----------------------------------------------------------

def status_text(campaign: GroupBuy) -> str:
    if campaign.status == GroupBuyStatus.DRAFT:
        return _("draft, not published")
    if campaign.status == GroupBuyStatus.LIVE:
        return _("live")
    if campaign.status == GroupBuyStatus.ENDED and campaign.closed_at is None:
        return (_("ended by a leader; open teams are closing") if campaign.close_reason == "ended_by_leader"
                else _("no new teams; open teams are still filling"))
    if campaign.status == GroupBuyStatus.SUCCEEDED:
        return _("succeeded")
    if campaign.status == GroupBuyStatus.FAILED:
        return _("failed: ended by a leader") if campaign.close_reason == "ended_by_leader" else _("failed: goal not reached")
    return _("closed")


def list_line(campaign: GroupBuy, product: Product, stats: groupbuys.Stats) -> str:
    if campaign.kind == GroupBuyKind.TEAM:
        progress = _("{open} open teams, {done} filled").format(open=stats.teams_open, done=stats.teams_succeeded)
    else:
        progress = _("{units} of {goal} units").format(units=campaign.units, goal=campaign.min_units)
    return " · ".join([f"#{product.number} {escape(product.title)}", kind_title(GroupBuyKind(campaign.kind)),
                       status_text(campaign), progress])


async def list_view(session: AsyncSession, community: Community) -> tuple[str, InlineKeyboardMarkup]:
    listed = await groupbuys.listing(session, community_id=community.id, limit=LIST_LIMIT)
    header = [_("<b>Group-buys · {title}</b>").format(title=escape(community.title))]
    if not listed:
        header.append(_("No group-buys yet. A team group-buy lets members open teams that get a lower price when they fill in time; a threshold group-buy unlocks it when the whole community orders enough."))
    lines = []
    for campaign, product in listed:
        lines.append(list_line(campaign, product, await groupbuys.stats(session, group_buy_id=campaign.id)))
    cid = community.id
    rows = [[_button(f"#{p.number} {p.title[:NAME_SHOWN]} · {kind_title(GroupBuyKind(c.kind))}", cid, GroupBuyOp.OPEN, c.id)]
            for c, p in listed]
    rows += [[_button(_("➕ New team group-buy"), cid, GroupBuyOp.NEW_TEAM)],
             [_button(_("➕ New threshold group-buy"), cid, GroupBuyOp.NEW_THRESHOLD)],
             [back_button(cid)]]
    return "\n".join(fit(header, lines, more_text)), InlineKeyboardMarkup(inline_keyboard=rows)


def units_line(campaign: GroupBuy, community: Community, locale: str) -> str:
    """A threshold's progress: units against the goal and the tier price reached so far (or at the end)."""
    if campaign.status == GroupBuyStatus.FAILED:
        return _("Units: {units} of {goal}").format(units=campaign.units, goal=campaign.min_units)
    if campaign.final_price is None and campaign.units < (campaign.min_units or 0):
        return _("Units: {units} of {goal} · goal not reached yet").format(units=campaign.units, goal=campaign.min_units)
    reached = campaign.final_price if campaign.final_price is not None else groupbuy_close.price_at(campaign, campaign.units)
    return _("Units: {units} of {goal} · price reached: {price}").format(
        units=campaign.units, goal=campaign.min_units, price=money(reached, community, locale))


def _endable(campaign: GroupBuy) -> bool:
    return campaign.status == GroupBuyStatus.LIVE or (
        campaign.status == GroupBuyStatus.ENDED and campaign.closed_at is None and campaign.close_reason != "ended_by_leader")


def time_left(campaign: GroupBuy, community: Community, now: datetime) -> str:
    if campaign.closed_at is not None:
        return _("Closed: {when} ({tz})").format(when=local_time(campaign.closed_at, community), tz=community.timezone)
    if campaign.status == GroupBuyStatus.LIVE and campaign.ends_at > now:
        left = int((campaign.ends_at - now).total_seconds() // 60)
        label = _("New teams for {time} more") if campaign.kind == GroupBuyKind.TEAM else _("Cut-off in {time}")
        return label.format(time=duration_text(max(left, 1)))
    return ""


async def campaign_view(session: AsyncSession, community: Community, campaign: GroupBuy, locale: str, *,
                        now: datetime) -> tuple[str, InlineKeyboardMarkup]:
    product = await session.get(Product, campaign.product_id)
    terms = groupbuys.terms_of(campaign)
    stats = await groupbuys.stats(session, group_buy_id=campaign.id)
    lines = terms_lines(terms, product, community, locale)
    lines += ["", _("State: {status}").format(status=status_text(campaign))]
    if left := time_left(campaign, community, now):
        lines.append(left)
    if campaign.status != GroupBuyStatus.DRAFT:
        if campaign.kind == GroupBuyKind.TEAM:
            lines.append(_("Teams: {open} open · {done} filled · {failed} failed").format(
                open=stats.teams_open, done=stats.teams_succeeded, failed=stats.teams_failed))
        else:
            lines.append(units_line(campaign, community, locale))
        lines.append(_("Participants: {people} · units: {units}").format(people=stats.participants, units=stats.units))
        lines.append(_("Money: {confirmed} confirmed · {waiting} waiting for the group").format(
            confirmed=money(stats.confirmed_total, community, locale), waiting=money(stats.waiting_total, community, locale)))
        if stats.refund_due:
            lines.append(_("Refunds due: {count} orders (see Orders → Refund due)").format(count=stats.refund_due))
    cid, gid = community.id, campaign.id
    rows: list[list[InlineKeyboardButton]] = []
    if campaign.status == GroupBuyStatus.DRAFT:
        rows.append([_button(_("📣 Publish"), cid, GroupBuyOp.PUBLISH, gid)])
    if campaign.status != GroupBuyStatus.DRAFT:
        if campaign.kind == GroupBuyKind.TEAM:
            rows.append([_button(_("👥 Teams ({count})").format(
                count=stats.teams_open + stats.teams_succeeded + stats.teams_failed), cid, GroupBuyOp.TEAMS, gid)])
        else:
            rows.append([_button(_("👥 Participants ({count})").format(count=stats.participants), cid, GroupBuyOp.PEOPLE, gid)])
    if campaign.status in (GroupBuyStatus.DRAFT, GroupBuyStatus.LIVE):
        rows.append([_button(_("✏️ Edit terms"), cid, GroupBuyOp.EDIT, gid)])
    if _endable(campaign):
        rows.append([_button(_("⏹ End now"), cid, GroupBuyOp.END, gid)])
    if campaign.status == GroupBuyStatus.DRAFT:
        rows.append([_button(_("🗑 Delete draft"), cid, GroupBuyOp.DELETE, gid)])
    rows.append([_button(_("« Group-buys"), cid, GroupBuyOp.LIST)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def edit_menu(community: Community, campaign: GroupBuy) -> tuple[str, InlineKeyboardMarkup]:
    kind = GroupBuyKind(campaign.kind)
    text = _("Which term do you want to change?")
    if campaign.status == GroupBuyStatus.LIVE:
        text += "\n" + _("The group-buy is live: terms can only get better for members already in (a lower price, more time, smaller teams, a later end, better tiers).")
    buttons = [InlineKeyboardButton(text=term_label(term, kind), callback_data=GroupBuyEditTerm(
        community_id=community.id, group_buy_id=campaign.id, term=term).pack()) for term in KIND_TERMS[kind]]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button(_("« Back"), community.id, GroupBuyOp.OPEN, campaign.id)])
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


def team_status(team: GroupBuyTeam) -> str:
    return {TeamStatus.OPEN: _("open"), TeamStatus.SUCCEEDED: _("filled"), TeamStatus.FAILED: _("failed")}.get(
        TeamStatus(team.status), team.status)


async def teams_view(session: AsyncSession, community: Community, campaign: GroupBuy, page: int) -> tuple[str, InlineKeyboardMarkup]:
    page = max(page, 0)
    listed, total = await groupbuys.teams(session, group_buy_id=campaign.id, offset=page * TEAMS_PAGE, limit=TEAMS_PAGE)
    pages = max(1, -(-total // TEAMS_PAGE))
    if page >= pages:
        page = pages - 1
        listed, total = await groupbuys.teams(session, group_buy_id=campaign.id, offset=page * TEAMS_PAGE, limit=TEAMS_PAGE)
    product = await session.get(Product, campaign.product_id)
    openers = await users.by_ids(session, {t.opener_id for t in listed})
    lines = [_("<b>Teams · #{number} {title}</b> (times in {tz})").format(
        number=product.number, title=escape(product.title), tz=community.timezone)]
    if pages > 1:
        lines.append(_("Page {page} of {pages}").format(page=page + 1, pages=pages))
    if not listed:
        lines.append(_("No team has been opened yet."))
    for team in listed:
        opener = openers.get(team.opener_id)
        when = (_("until {when}").format(when=local_time(team.deadline_at, community)) if team.status == TeamStatus.OPEN
                else _("closed {when}").format(when=local_time(team.closed_at or team.deadline_at, community)))
        lines.append(" · ".join([_("Team {number}").format(number=team.number),
                                 buyer_name(opener, NAME_SHOWN) if opener else str(team.opener_id),
                                 f"{team.seats}/{team.size}", when, team_status(team)]))
    cid, gid = community.id, campaign.id
    rows = [[_button(_("Team {number}").format(number=t.number), cid, GroupBuyOp.TEAM, gid, team_id=t.id, page=page)]
            for t in listed]
    turn = []
    if page > 0:
        turn.append(_button("‹", cid, GroupBuyOp.TEAMS, gid, page=page - 1))
    if page < pages - 1:
        turn.append(_button("›", cid, GroupBuyOp.TEAMS, gid, page=page + 1))
    if turn:
        rows.append(turn)
    rows.append([_button(_("« Back"), cid, GroupBuyOp.OPEN, gid)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def participant_line(order: Order, people: dict, *, with_inviter: bool) -> str:
    buyer = people.get(order.user_id)
    parts = [buyer_name(buyer, NAME_SHOWN) if buyer else str(order.user_id), f"× {order.quantity}",
             order_notify.status_label(order.status)]
    if with_inviter and order.invited_by:
        inviter = people.get(order.invited_by)
        parts.append(_("invited by {name}").format(name=buyer_name(inviter, NAME_SHOWN) if inviter else order.invited_by))
    return " · ".join(parts)


async def team_view(session: AsyncSession, community: Community, campaign: GroupBuy, team: GroupBuyTeam, page: int,
                    locale: str) -> tuple[str, InlineKeyboardMarkup]:
    members = await groupbuy_close.participants(session, team_id=team.id)
    people = await users.by_ids(session, {o.user_id for o in members} | {o.invited_by for o in members if o.invited_by}
                                | {team.opener_id})
    opener = people.get(team.opener_id)
    lines = [_("<b>Team {number}</b> · {status}").format(number=team.number, status=team_status(team)),
             _("Opened by {name} · seats {seats}/{size} · price {price}").format(
                 name=buyer_name(opener, NAME_SHOWN) if opener else team.opener_id, seats=team.seats, size=team.size,
                 price=money(team.price, community, locale)),
             (_("Deadline: {when} ({tz})").format(when=local_time(team.deadline_at, community), tz=community.timezone)
              if team.status == TeamStatus.OPEN else
              _("Closed: {when} ({tz})").format(when=local_time(team.closed_at or team.deadline_at, community), tz=community.timezone)),
             ""]
    rest = [participant_line(o, people, with_inviter=True) for o in members]
    if not rest:
        lines.append(_("Nobody holds a seat."))
    rows = [[_button(_("« Teams"), community.id, GroupBuyOp.TEAMS, campaign.id, page=page)]]
    return "\n".join(fit(lines, rest, more_text)), InlineKeyboardMarkup(inline_keyboard=rows)


async def people_view(session: AsyncSession, community: Community, campaign: GroupBuy, locale: str) -> tuple[str, InlineKeyboardMarkup]:
    members = await groupbuy_close.participants(session, group_buy_id=campaign.id)
    people = await users.by_ids(session, {o.user_id for o in members} | {o.invited_by for o in members if o.invited_by})
    product = await session.get(Product, campaign.product_id)
    lines = [_("<b>Participants · #{number} {title}</b>").format(number=product.number, title=escape(product.title)),
             units_line(campaign, community, locale), ""]
    rest = [participant_line(o, people, with_inviter=True) for o in members]
    if not rest:
        lines.append(_("Nobody has joined yet."))
    rows = [[_button(_("« Back"), community.id, GroupBuyOp.OPEN, campaign.id)]]
    return "\n".join(fit(lines, rest, more_text)), InlineKeyboardMarkup(inline_keyboard=rows)


# ----- list and campaign buttons -------------------------------------------------------------------

@router.callback_query(AdminNav.filter(F.section == Section.GROUPBUYS))
async def on_groupbuys(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor,
                       state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, *await list_view(session, community))


async def _campaign(query: CallbackQuery, cb: GroupBuyAdmin, session: AsyncSession,
                    actor: Actor) -> tuple[Community, GroupBuy] | None:
    """The community (role re-checked) and the campaign the button names, within that community."""
    community = await guard(query, session, actor, cb.community_id)
    if community is None:
        return None
    try:
        campaign = await groupbuys.get(session, community_id=community.id, group_buy_id=cb.group_buy_id)
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        await edit_or_send(query.message, *await list_view(session, community))
        return None
    return community, campaign


async def _show(query: CallbackQuery, session: AsyncSession, community: Community, campaign: GroupBuy, actor: Actor,
                notice: str | None = None) -> None:
    text, markup = await campaign_view(session, community, campaign, actor.locale, now=_now())
    await edit_or_send(query.message, (notice + "\n\n" + text) if notice else text, markup)


@router.callback_query(GroupBuyAdmin.filter(F.op == GroupBuyOp.LIST))
async def on_list(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor,
                  state: FSMContext) -> None:
    await on_groupbuys(query, AdminNav(community_id=callback_data.community_id, section=Section.GROUPBUYS), session,
                       actor, state)


@router.callback_query(GroupBuyAdmin.filter(F.op == GroupBuyOp.OPEN))
async def on_open(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor,
                  state: FSMContext) -> None:
    if (found := await _campaign(query, callback_data, session, actor)) is None:
        return
    await state.clear()
    await query.answer()
    await _show(query, session, *found, actor)


@router.callback_query(GroupBuyAdmin.filter(F.op == GroupBuyOp.TEAMS))
async def on_teams(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor) -> None:
    if (found := await _campaign(query, callback_data, session, actor)) is None:
        return
    await query.answer()
    await edit_or_send(query.message, *await teams_view(session, *found, callback_data.page))


@router.callback_query(GroupBuyAdmin.filter(F.op == GroupBuyOp.TEAM))
async def on_team(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor) -> None:
    if (found := await _campaign(query, callback_data, session, actor)) is None:
        return
    community, campaign = found
    try:
        team = await groupbuys.get_team(session, community_id=community.id, group_buy_id=campaign.id,
                                        team_id=callback_data.team_id)
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        return
    await query.answer()
    await edit_or_send(query.message, *await team_view(session, community, campaign, team, callback_data.page,
                                                                actor.locale))


@router.callback_query(GroupBuyAdmin.filter(F.op == GroupBuyOp.PEOPLE))
async def on_people(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor) -> None:
    if (found := await _campaign(query, callback_data, session, actor)) is None:
        return
    await query.answer()
    await edit_or_send(query.message, *await people_view(session, *found, actor.locale))


@router.callback_query(GroupBuyAdmin.filter(F.op == GroupBuyOp.EDIT))
async def on_edit_menu(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor,
                       state: FSMContext) -> None:
    if (found := await _campaign(query, callback_data, session, actor)) is None:
        return
    community, campaign = found
    await state.clear()
    if campaign.status not in (GroupBuyStatus.DRAFT, GroupBuyStatus.LIVE):
        await query.answer(error_text(DomainError("groupbuy_closed")), show_alert=True)
        await _show(query, session, community, campaign, actor)
        return
    await query.answer()
    await edit_or_send(query.message, *edit_menu(community, campaign))


@router.callback_query(GroupBuyAdmin.filter(F.op == GroupBuyOp.END))
async def on_end(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor) -> None:
    if (found := await _campaign(query, callback_data, session, actor)) is None:
        return
    community, campaign = found
    if not _endable(campaign):
        await query.answer(error_text(DomainError("groupbuy_closed")), show_alert=True)
        await _show(query, session, community, campaign, actor)
        return
    product = await session.get(Product, campaign.product_id)
    stats = await groupbuys.stats(session, group_buy_id=campaign.id)
    title = f"#{product.number} {escape(product.title)}"
    if campaign.kind == GroupBuyKind.TEAM:
        text = _("End the team group-buy {title} now? No new teams can be opened; the {count} open teams fail at once, their orders are cancelled and paid ones refunded. Teams that already filled stay as they are. This cannot be undone.").format(
            title=title, count=stats.teams_open)
    else:
        text = _("End the threshold group-buy {title} now? It fails: the orders of all {count} participants are cancelled and paid ones refunded. This cannot be undone.").format(
            title=title, count=stats.participants)
    rows = [[_button(_("Yes, end it now"), community.id, GroupBuyOp.END_CONFIRM, campaign.id)],
            [_button(_("« Back"), community.id, GroupBuyOp.OPEN, campaign.id)]]
    await query.answer()
    await edit_or_send(query.message, text, InlineKeyboardMarkup(inline_keyboard=rows))


@router.callback_query(GroupBuyAdmin.filter(F.op == GroupBuyOp.END_CONFIRM))
async def on_end_confirm(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor) -> None:
    if (found := await _campaign(query, callback_data, session, actor)) is None:
        return
    community, campaign = found
    before = await groupbuys.stats(session, group_buy_id=campaign.id)
    try:
        campaign = await groupbuy_close.end_campaign(session, group_buy_id=campaign.id, community_id=community.id,
                                                     actor_id=actor.user.id, now=_now())
    except DomainError as err:  # a second tap, or the deadline's close came first
        await query.answer(error_text(err), show_alert=True)
        await session.refresh(campaign)
        await _show(query, session, community, campaign, actor)
        return
    after = await groupbuys.stats(session, group_buy_id=campaign.id)
    if campaign.kind == GroupBuyKind.TEAM:
        notice = _("⏹ Ended: {count} open teams cancelled; participants are being told.").format(
            count=after.teams_failed - before.teams_failed)
    else:
        notice = _("⏹ Ended: the group-buy failed and {count} participants' orders were cancelled; participants are being told.").format(
            count=before.participants)
    await query.answer()
    await _show(query, session, community, campaign, actor, notice)


@router.callback_query(GroupBuyAdmin.filter(F.op == GroupBuyOp.DELETE))
async def on_delete(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor) -> None:
    if (found := await _campaign(query, callback_data, session, actor)) is None:
        return
    community, campaign = found
    if campaign.status != GroupBuyStatus.DRAFT:
        await query.answer(error_text(DomainError("groupbuy_not_draft")), show_alert=True)
        await _show(query, session, community, campaign, actor)
        return
    rows = [[_button(_("Yes, delete it"), community.id, GroupBuyOp.DELETE_CONFIRM, campaign.id)],
            [_button(_("« Back"), community.id, GroupBuyOp.OPEN, campaign.id)]]
    await query.answer()
    await edit_or_send(query.message, _("Delete this draft? Members never saw it."), InlineKeyboardMarkup(inline_keyboard=rows))


@router.callback_query(GroupBuyAdmin.filter(F.op == GroupBuyOp.DELETE_CONFIRM))
async def on_delete_confirm(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor) -> None:
    if (found := await _campaign(query, callback_data, session, actor)) is None:
        return
    community, campaign = found
    try:
        await groupbuys.delete_draft(session, community_id=community.id, group_buy_id=campaign.id, actor_id=actor.user.id,
                                     now=_now())
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        await _show(query, session, community, campaign, actor)
        return
    await query.answer(_("Deleted."))
    text, markup = await list_view(session, community)
    await edit_or_send(query.message, _("🗑 The draft is deleted.") + "\n\n" + text, markup)


@router.callback_query(GroupBuyAdmin.filter(F.op == GroupBuyOp.PUBLISH))
async def on_publish_draft(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor,
                           bot: Bot) -> None:
    if (found := await _campaign(query, callback_data, session, actor)) is None:
        return
    community, campaign = found
    try:
        campaign = await groupbuys.publish(session, community_id=community.id, group_buy_id=campaign.id,
                                           actor_id=actor.user.id, now=_now())
    except DomainError as err:
        await query.answer(error_text(err, currency=community.currency), show_alert=True)
        return
    await query.answer()
    await _show(query, session, community, campaign, actor, await _post(bot, session, campaign))


async def _post(bot: Bot, session: AsyncSession, campaign: GroupBuy) -> str:
    """Post the new campaign's card in the group; the notice that says how it went."""
    if await groupbuy_cards.post_card(bot, session, campaign.id):
        return _("✅ Published. Its card is in the group.")
    return _("✅ Published, but I could not post its card in the group. Check that I am still an administrator there.")


# ----- the setup form ------------------------------------------------------------------------------

def _steps(data: dict) -> list[str]:
    return [s.state for s in (TEAM_STEPS if data["kind"] == GroupBuyKind.TEAM else THRESHOLD_STEPS)]


def step_code(state: str, data: dict) -> str:
    """A short name of the step a button belongs to: "n.price" (setup) or "e.price" (one-term edit)."""
    if state == GroupBuyEditForm.value.state:
        return f"e.{data['term']}"
    return "n." + state.split(":", 1)[1]


def _form_nav(text: str, op: GroupBuyFormOp, step: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=GroupBuyFormNav(op=op, step=step).pack())


async def _on_sale(session: AsyncSession, community_id: int) -> list[Product]:
    return [p for p in await products.listing(session, community_id=community_id) if p.status == ProductStatus.ACTIVE]


async def _products_step(session: AsyncSession, data: dict) -> tuple[str, list[list[InlineKeyboardButton]]]:
    listed = await _on_sale(session, data["community_id"])
    step = "n.product"
    title = _("<b>New team group-buy</b>") if data["kind"] == GroupBuyKind.TEAM else _("<b>New threshold group-buy</b>")
    if not listed:
        text = title + "\n" + _("There is no product on sale yet. Add one in 📦 Products first, then come back.")
        return text, [[InlineKeyboardButton(text=_("📦 Products"), callback_data=AdminNav(
            community_id=data["community_id"], section=Section.PRODUCTS).pack())]]
    text = title + " · " + _("Step {n} of {total}").format(n=1, total=len(_steps(data)) - 1) + "\n" + _("Which product? Choose one on sale.")
    rows = [[InlineKeyboardButton(text=f"#{p.number} {p.title[:NAME_SHOWN]}", callback_data=GroupBuyFormNav(
        op=GroupBuyFormOp.PICK, step=step, value=p.id).pack())] for p in listed[:PRODUCT_BUTTONS]]
    return text, rows


async def prompt(session: AsyncSession, state: str, data: dict, community: Community, locale: str,
                 reason: str | None = None) -> tuple[str, InlineKeyboardMarkup]:
    step = step_code(state, data)
    if state == GroupBuyForm.product.state:
        text, rows = await _products_step(session, data)
    elif state == GroupBuyForm.preview.state:
        product = await session.get(Product, data["product_id"])
        text = "\n".join([_("<b>Preview</b> — the terms as members will see them:"), "",
                          *terms_lines(terms_from(data), product, community, locale), "",
                          _("Publish it? Its card is posted in the group at once.")])
        rows = [[_form_nav(_("📣 Publish"), GroupBuyFormOp.PUBLISH, step)]]
    elif state == GroupBuyEditForm.value.state:
        term = GroupBuyTerm(data["term"])
        text = question(term, data) + "\n" + _("Now: {value}").format(value=data["current"])
        rows = choice_rows(term, step, data)
    else:
        steps = _steps(data)
        term = STEP_TERM[state]
        text = _("Step {n} of {total}").format(n=steps.index(state) + 1, total=len(steps) - 1) + " · " + question(term, data)
        rows = choice_rows(term, step, data)
    rows = [*rows, [_form_nav(_("« Back"), GroupBuyFormOp.BACK, step), _form_nav(_("✖ Cancel"), GroupBuyFormOp.CANCEL, step)]]
    return (reason + "\n\n" + text if reason else text), InlineKeyboardMarkup(inline_keyboard=rows)


async def _ask(target: Message | CallbackQuery, session: AsyncSession, state: FSMContext, step: str,
               community: Community, locale: str, reason: str | None = None) -> None:
    """Move the form to `step` and ask it: in place under a pressed button, else as a reply."""
    await state.set_state(step)
    data = await state.get_data()
    data["local_now"] = local_time(_now(), community)
    await state.update_data(local_now=data["local_now"])
    text, markup = await prompt(session, step, data, community, locale, reason)
    if isinstance(target, CallbackQuery):
        await edit_or_send(target.message, text, markup)
    else:
        await target.answer(text, reply_markup=markup)


def terms_from(data: dict) -> Terms:
    return Terms(
        kind=GroupBuyKind(data["kind"]), product_id=data["product_id"], price=data["price"],
        ends_at=datetime.fromisoformat(data["ends_at"]), team_size=data.get("team_size"),
        team_minutes=data.get("team_minutes"), open_limit=data.get("open_limit", 1), join_limit=data.get("join_limit", 1),
        solo_allowed=data.get("solo", True), min_units=data.get("min_units"),
        tiers=tuple(tuple(t) for t in data.get("tiers", [])), member_limit=data.get("member_limit"))


def _form_data(community: Community, kind: GroupBuyKind) -> dict:
    return {"community_id": community.id, "kind": kind.value, "currency": community.currency, "tz": community.timezone,
            "form": secrets.token_hex(6)}


@router.callback_query(GroupBuyAdmin.filter(F.op.in_({GroupBuyOp.NEW_TEAM, GroupBuyOp.NEW_THRESHOLD})))
async def on_new(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor,
                 state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    kind = GroupBuyKind.TEAM if callback_data.op == GroupBuyOp.NEW_TEAM else GroupBuyKind.THRESHOLD
    await query.answer()
    data = _form_data(community, kind)
    if not await _on_sale(session, community.id):  # nothing to set up a group-buy for: no form to leave
        await state.clear()
        text, rows = await _products_step(session, data)
        rows.append([_button(_("« Group-buys"), community.id, GroupBuyOp.LIST)])
        await edit_or_send(query.message, text, InlineKeyboardMarkup(inline_keyboard=rows))
        return
    await state.set_data(data)
    await _ask(query, session, state, GroupBuyForm.product.state, community, actor.locale)


@router.callback_query(GroupBuyEditTerm.filter())
async def on_edit_term(query: CallbackQuery, callback_data: GroupBuyEditTerm, session: AsyncSession, actor: Actor,
                       state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    try:
        campaign = await groupbuys.get(session, community_id=community.id, group_buy_id=callback_data.group_buy_id)
        if campaign.status not in (GroupBuyStatus.DRAFT, GroupBuyStatus.LIVE):
            raise DomainError("groupbuy_closed")
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        return
    kind, term = GroupBuyKind(campaign.kind), callback_data.term
    if term not in KIND_TERMS[kind]:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    product = await session.get(Product, campaign.product_id)
    terms = groupbuys.terms_of(campaign)
    data = {**_form_data(community, kind), "group_buy_id": campaign.id, "term": term.value, "product_id": product.id,
            "product_number": product.number, "product_normal": money(product.price, community, actor.locale),
            "current": term_now(term, terms, community, actor.locale)}
    await state.set_data(data)
    await query.answer()
    await _ask(query, session, state, GroupBuyEditForm.value.state, community, actor.locale)


async def _leave(target: Message | CallbackQuery, session: AsyncSession, actor: Actor, community: Community, data: dict,
                 notice: str) -> None:
    """Close the form and show where it started: the campaign for an edit, else the list."""
    campaign = None
    if "group_buy_id" in data:
        try:
            campaign = await groupbuys.get(session, community_id=community.id, group_buy_id=data["group_buy_id"])
        except DomainError:
            campaign = None
    if campaign is not None:
        text, markup = await campaign_view(session, community, campaign, actor.locale, now=_now())
    else:
        text, markup = await list_view(session, community)
    text = notice + "\n\n" + text
    if isinstance(target, CallbackQuery):
        await edit_or_send(target.message, text, markup)
    else:
        await target.answer(text, reply_markup=markup)


@router.callback_query(GroupBuyFormNav.filter())
async def on_form_button(query: CallbackQuery, callback_data: GroupBuyFormNav, session: AsyncSession, actor: Actor,
                         state: FSMContext, bot: Bot) -> None:
    current, data = await state.get_state(), await state.get_data()
    if current not in ALL_STATES or "community_id" not in data:
        # Not redrawn: this may be the second tap of a Publish whose first one is redrawing it now.
        await query.answer(_("This form is no longer open."))
        return
    if callback_data.step != step_code(current, data):
        await query.answer(_("That step is already behind you. Use the buttons under the latest message."), show_alert=True)
        return
    community = await guard(query, session, actor, data["community_id"])
    if community is None:
        await state.clear()
        return
    op = callback_data.op
    if op is GroupBuyFormOp.CANCEL:
        await state.clear()
        await query.answer()
        await _leave(query, session, actor, community, data, _("Cancelled. Nothing was changed."))
        return
    if op is GroupBuyFormOp.BACK:
        await query.answer()
        steps = [] if current == GroupBuyEditForm.value.state else _steps(data)
        if current in steps[1:]:
            await _ask(query, session, state, steps[steps.index(current) - 1], community, actor.locale)
        else:
            await state.clear()
            await _leave(query, session, actor, community, data, _("Nothing was changed."))
        return
    if op is GroupBuyFormOp.PUBLISH and current == GroupBuyForm.preview.state:
        await _publish(query, session, actor, state, community, data, bot)
        return
    if op is GroupBuyFormOp.CLEAR and current in (GroupBuyForm.tiers.state, GroupBuyEditForm.value.state):
        await state.update_data(tiers=[], tiers_shown="")
        await query.answer()
        await _ask(query, session, state, current, community, actor.locale)
        return
    if op in (GroupBuyFormOp.PICK, GroupBuyFormOp.NONE):
        await query.answer()
        await _answer(query, session, actor, state, community, current, data, None, pick=callback_data.value,
                      none=op is GroupBuyFormOp.NONE, now=_now())
        return
    await query.answer()


async def _publish(query: CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext, community: Community,
                   data: dict, bot: Bot) -> None:
    now = _now()
    try:
        campaign = await groupbuys.create(session, community_id=community.id, actor_id=actor.user.id, terms=terms_from(data),
                                          now=now, once_key=f"{community.id}:{actor.user.id}:{data['form']}")
    except DomainError as err:
        if err.code == "groupbuy_already_saved":
            await query.answer(error_text(err), show_alert=True)
            return
        # The terms stopped fitting while the preview was open (the end time passed, the product
        # was archived or repriced): back to the step that needs a new answer.
        await query.answer()
        back_to = {"groupbuy_end_past": GroupBuyForm.ends_at.state,
                   "groupbuy_price_not_lower": GroupBuyForm.price.state}.get(err.code)
        if back_to is None:
            await state.clear()
            await _leave(query, session, actor, community, data, error_text(err, currency=community.currency))
            return
        await _ask(query, session, state, back_to, community, actor.locale, error_text(err, currency=community.currency))
        return
    await state.clear()
    try:
        campaign = await groupbuys.publish(session, community_id=community.id, group_buy_id=campaign.id,
                                           actor_id=actor.user.id, now=now)
    except DomainError as err:  # it stays a draft: the leader sees why and may publish or delete it
        await query.answer()
        await _show(query, session, community, campaign, actor, error_text(err, currency=community.currency))
        return
    await query.answer(_("Published."))
    await _show(query, session, community, campaign, actor, await _post(bot, session, campaign))


# ----- answers -------------------------------------------------------------------------------------

def _count(raw: str | None, pick: int | None, *, minimum: int, maximum: int) -> int:
    return pick if raw is None and pick is not None and minimum <= pick <= maximum else groupbuys.parse_count(
        raw or "", minimum=minimum, maximum=maximum)


def parse_tiers(raw: str, currency: str) -> list[list[int]]:
    """Tiers typed one per line: units and a price ("30 8.80")."""
    tiers = []
    for line in raw.splitlines():
        if line.strip():
            units, price = groupbuys.parse_tier(line)
            tiers.append([units, parse_money(price, currency)])
    if not tiers:
        raise DomainError("tier_format", value=raw.strip()[:24])
    return tiers


def parse_term(term: GroupBuyTerm, raw: str | None, *, pick: int | None, none: bool, data: dict, community: Community,
               now: datetime, base: Terms | None = None) -> dict:
    """An answer for one term → the form data it sets. Buttons come as `pick` (their value) or
    `none`; typed answers as `raw`. `base`: the campaign's terms, when editing one."""
    kind = GroupBuyKind(data["kind"])
    if term == GroupBuyTerm.PRICE:
        if raw is None:
            raise DomainError("money_format", value="")
        return {"price": groupbuys.check_price(kind, parse_money(raw, community.currency), normal_price=data["product_price"])}
    if term == GroupBuyTerm.TEAM_SIZE:
        return {"team_size": _count(raw, None, minimum=2, maximum=groupbuys.TEAM_SIZE_MAX)}
    if term == GroupBuyTerm.TEAM_TIME:
        return {"team_minutes": groupbuys.parse_duration(raw or "")}
    if term == GroupBuyTerm.ENDS_AT:
        if raw is None and pick in QUICK_DAYS:
            return {"ends_at": (now + timedelta(days=pick)).isoformat()}
        try:
            when = posts.parse_local_time(raw or "", tz=community.timezone, now=now)
        except DomainError as err:
            if err.code == "post_time_past":
                raise DomainError("groupbuy_end_past") from None
            if err.code == "post_time_far":
                raise DomainError("groupbuy_end_far", days=60) from None
            raise
        return {"ends_at": when.isoformat()}
    if term in (GroupBuyTerm.OPEN_LIMIT, GroupBuyTerm.JOIN_LIMIT):
        value = _count(raw, pick, minimum=0, maximum=groupbuys.MEMBER_TEAMS_MAX)
        other = data.get("join_limit" if term == GroupBuyTerm.OPEN_LIMIT else "open_limit",
                         None if base is None else (base.join_limit if term == GroupBuyTerm.OPEN_LIMIT else base.open_limit))
        if value == 0 and other == 0:
            raise DomainError("team_limits_zero")
        return {"open_limit" if term == GroupBuyTerm.OPEN_LIMIT else "join_limit": value}
    if term == GroupBuyTerm.SOLO:
        if raw is not None or pick not in (0, 1):
            raise DomainError("groupbuy_choose")
        return {"solo": bool(pick)}
    if term == GroupBuyTerm.MIN_UNITS:
        return {"min_units": _count(raw, None, minimum=1, maximum=groupbuys.UNITS_MAX)}
    if term == GroupBuyTerm.TIERS:
        tiers = [] if none else parse_tiers(raw or "", community.currency)
        if base is None:  # the setup form adds each message's tiers to those typed before
            tiers = sorted([*data.get("tiers", []), *tiers])
        groupbuys.check_tiers(tuple(tuple(t) for t in tiers), base_price=data["price"] if base is None else base.price,
                              min_units=data["min_units"] if base is None else base.min_units)
        return {"tiers": tiers}
    if term == GroupBuyTerm.MEMBER_LIMIT:
        return {"member_limit": None if none else _count(raw, None, minimum=1, maximum=groupbuys.UNITS_MAX)}
    raise DomainError("groupbuy_choose")


TERM_FIELD = {
    "price": "price", "team_size": "team_size", "team_minutes": "team_minutes", "open_limit": "open_limit",
    "join_limit": "join_limit", "solo": "solo_allowed", "min_units": "min_units", "member_limit": "member_limit",
}


async def _answer(target: Message | CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext,
                  community: Community, current: str, data: dict, raw: str | None, *, pick: int | None = None,
                  none: bool = False, now: datetime) -> None:
    """Apply an answer (typed `raw`, or a button's `pick` / `none`) and move on, or ask again with the reason."""
    if current == GroupBuyForm.product.state:
        await _pick_product(target, session, actor, state, community, data, raw, pick)
        return
    if current == GroupBuyForm.preview.state:
        reason = _("Press Publish to put it live, or Back to change it.")
        await _ask(target, session, state, current, community, actor.locale, reason)
        return
    editing = current == GroupBuyEditForm.value.state
    term = GroupBuyTerm(data["term"]) if editing else STEP_TERM[current]
    try:
        if editing:
            await _apply_edit(target, session, actor, state, community, data, term, raw, pick=pick, none=none, now=now)
            return
        changes = parse_term(term, raw, pick=pick, none=none, data=data, community=community, now=now)
    except DomainError as err:
        if err.code in ("groupbuy_unknown", "groupbuy_closed", "product_archived", "product_unknown"):
            await state.clear()
            await _leave(target, session, actor, community, data, error_text(err, currency=community.currency))
            return
        await _ask(target, session, state, current, community, actor.locale, error_text(err, currency=community.currency))
        return
    if "tiers" in changes:
        changes["tiers_shown"] = tiers_text(changes["tiers"], community, actor.locale)
    await state.update_data(**changes)
    if term == GroupBuyTerm.TIERS and not none:  # more tiers may follow; Done moves on
        await _ask(target, session, state, current, community, actor.locale,
                   _("Tier added.") if changes["tiers"] else None)
        return
    steps = _steps(data)
    await _ask(target, session, state, steps[steps.index(current) + 1], community, actor.locale)


async def _pick_product(target: Message | CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext,
                        community: Community, data: dict, raw: str | None, pick: int | None) -> None:
    product = None
    if raw is None and pick:
        try:
            product = await products.get(session, community_id=community.id, product_id=pick)
        except DomainError:
            product = None
    if product is None or product.status != ProductStatus.ACTIVE:
        reason = (_("Choose the product with the buttons.") if raw is not None
                  else error_text(DomainError("product_unknown") if product is None else
                                  DomainError("product_paused" if product.status == ProductStatus.PAUSED else "product_archived",
                                              number=product.number)))
        await _ask(target, session, state, GroupBuyForm.product.state, community, actor.locale, reason)
        return
    await state.update_data(product_id=product.id, product_number=product.number, product_price=product.price,
                            product_normal=money(product.price, community, actor.locale))
    await _ask(target, session, state, GroupBuyForm.price.state, community, actor.locale)


async def _apply_edit(target: Message | CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext,
                      community: Community, data: dict, term: GroupBuyTerm, raw: str | None, *, pick: int | None,
                      none: bool, now: datetime) -> None:
    campaign = await groupbuys.get(session, community_id=community.id, group_buy_id=data["group_buy_id"])
    product = await session.get(Product, campaign.product_id)
    base = groupbuys.terms_of(campaign)
    changes = parse_term(term, raw, pick=pick, none=none, data={**data, "product_price": product.price}, community=community,
                         now=now, base=base)
    fields = {TERM_FIELD[k]: v for k, v in changes.items() if k in TERM_FIELD}
    if "ends_at" in changes:
        fields["ends_at"] = datetime.fromisoformat(changes["ends_at"])
    if "tiers" in changes:
        fields["tiers"] = tuple(tuple(t) for t in changes["tiers"])
    await groupbuys.edit(session, community_id=community.id, group_buy_id=campaign.id, actor_id=actor.user.id,
                         terms=replace(base, **fields), now=now)
    await state.clear()
    notice = _("✅ Saved. The card in the group shows the new terms.") if campaign.status == GroupBuyStatus.LIVE else _("✅ Saved.")
    await _leave(target, session, actor, community, data, notice)


@router.message(StateFilter(*ALL_STATES), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_text(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    community = await form_guard(message, session, actor, state)
    if community is None:
        return
    await _answer(message, session, actor, state, community, await state.get_state(), await state.get_data(),
                  message.text, now=_at(message))


@router.message(StateFilter(*ALL_STATES), F.chat.type == "private", ~F.text)
async def on_form_other(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    community = await form_guard(message, session, actor, state)
    if community is None:
        return
    await _ask(message, session, state, await state.get_state(), community, actor.locale, _("Please answer with text."))
