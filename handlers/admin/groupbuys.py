"""/admin → Group-buys: the leader's side of team and threshold campaigns.

The list; a campaign's screen with its state, progress, teams and participants; ending a campaign
early; deleting or publishing a draft. The setup and edit forms are in handlers/groupbuy_setup.py.

Every press re-checks that the actor leads the community, and every id from a button is looked
up within that community.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from html import escape

from aiogram import Bot, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.localtime import local_time
from bot.services import groupbuy_close, groupbuys, users
from bot.services.errors import DomainError
from bot.services.groupbuys import Terms
from bot.services.money import format_money
from bot.telegram.middlewares.actor import Actor
from bot.views import groupbuy_cards, order_notify
from bot.views.errors_text import error_text
from bot.views.keyboards import (
    AdminNav,
    GroupBuyAdmin,
    GroupBuyEditTerm,
    GroupBuyOp,
    GroupBuyTerm,
    Section,
)
from bot.views.render import edit_or_send
from handlers.admin.menu import back_button, guard
from handlers.admin.orders import buyer_name
from models import Community
from models.groupbuy import GroupBuy, GroupBuyKind, GroupBuyStatus, GroupBuyTeam, TeamStatus
from models.shop import Order, Product

router = Router(name=__name__)

MESSAGE_LIMIT = 4096
LIST_LIMIT = 20
TEAMS_PAGE = 10
NAME_SHOWN = 40

# Which terms a campaign of each kind has (and may edit).
KIND_TERMS = {
    GroupBuyKind.TEAM: (GroupBuyTerm.PRICE, GroupBuyTerm.TEAM_SIZE, GroupBuyTerm.TEAM_TIME, GroupBuyTerm.ENDS_AT,
                        GroupBuyTerm.OPEN_LIMIT, GroupBuyTerm.JOIN_LIMIT, GroupBuyTerm.SOLO),
    GroupBuyKind.THRESHOLD: (GroupBuyTerm.PRICE, GroupBuyTerm.MIN_UNITS, GroupBuyTerm.ENDS_AT, GroupBuyTerm.TIERS,
                             GroupBuyTerm.MEMBER_LIMIT),
}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _nav(community_id: int, op: GroupBuyOp, group_buy_id: int = 0, **extra: int) -> str:
    return GroupBuyAdmin(community_id=community_id, op=op, group_buy_id=group_buy_id, **extra).pack()


def op_button(text: str, community_id: int, op: GroupBuyOp, group_buy_id: int = 0, **extra: int) -> InlineKeyboardButton:
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
    rows = [[op_button(f"#{p.number} {p.title[:NAME_SHOWN]} · {kind_title(GroupBuyKind(c.kind))}", cid, GroupBuyOp.OPEN, c.id)]
            for c, p in listed]
    rows += [[op_button(_("➕ New team group-buy"), cid, GroupBuyOp.NEW_TEAM)],
             [op_button(_("➕ New threshold group-buy"), cid, GroupBuyOp.NEW_THRESHOLD)],
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
        rows.append([op_button(_("📣 Publish"), cid, GroupBuyOp.PUBLISH, gid)])
    if campaign.status != GroupBuyStatus.DRAFT:
        if campaign.kind == GroupBuyKind.TEAM:
            rows.append([op_button(_("👥 Teams ({count})").format(
                count=stats.teams_open + stats.teams_succeeded + stats.teams_failed), cid, GroupBuyOp.TEAMS, gid)])
        else:
            rows.append([op_button(_("👥 Participants ({count})").format(count=stats.participants), cid, GroupBuyOp.PEOPLE, gid)])
    if campaign.status in groupbuys.EDITABLE:
        rows.append([op_button(_("✏️ Edit terms"), cid, GroupBuyOp.EDIT, gid)])
    if _endable(campaign):
        rows.append([op_button(_("⏹ End now"), cid, GroupBuyOp.END, gid)])
    if campaign.status == GroupBuyStatus.DRAFT:
        rows.append([op_button(_("🗑 Delete draft"), cid, GroupBuyOp.DELETE, gid)])
    rows.append([op_button(_("« Group-buys"), cid, GroupBuyOp.LIST)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def edit_menu(community: Community, campaign: GroupBuy) -> tuple[str, InlineKeyboardMarkup]:
    kind = GroupBuyKind(campaign.kind)
    text = _("Which term do you want to change?")
    if campaign.status == GroupBuyStatus.LIVE:
        text += "\n" + _("The group-buy is live: terms can only get better for members already in (a lower price, more time, smaller teams, a later end, better tiers).")
    buttons = [InlineKeyboardButton(text=term_label(term, kind), callback_data=GroupBuyEditTerm(
        community_id=community.id, group_buy_id=campaign.id, term=term).pack()) for term in KIND_TERMS[kind]]
    rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    rows.append([op_button(_("« Back"), community.id, GroupBuyOp.OPEN, campaign.id)])
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
                                 buyer_name(opener, team.opened_at, NAME_SHOWN) if opener else str(team.opener_id),
                                 f"{team.seats}/{team.size}", when, team_status(team)]))
    cid, gid = community.id, campaign.id
    rows = [[op_button(_("Team {number}").format(number=t.number), cid, GroupBuyOp.TEAM, gid, team_id=t.id, page=page)]
            for t in listed]
    turn = []
    if page > 0:
        turn.append(op_button("‹", cid, GroupBuyOp.TEAMS, gid, page=page - 1))
    if page < pages - 1:
        turn.append(op_button("›", cid, GroupBuyOp.TEAMS, gid, page=page + 1))
    if turn:
        rows.append(turn)
    rows.append([op_button(_("« Back"), cid, GroupBuyOp.OPEN, gid)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def participant_line(order: Order, people: dict, *, with_inviter: bool) -> str:
    buyer = people.get(order.user_id)
    parts = [buyer_name(buyer, order.created_at, NAME_SHOWN) if buyer else str(order.user_id), f"× {order.quantity}",
             order_notify.status_label(order.status)]
    if with_inviter and order.invited_by:
        inviter = people.get(order.invited_by)
        parts.append(_("invited by {name}").format(name=buyer_name(inviter, order.created_at, NAME_SHOWN) if inviter else order.invited_by))
    return " · ".join(parts)


async def team_view(session: AsyncSession, community: Community, campaign: GroupBuy, team: GroupBuyTeam, page: int,
                    locale: str) -> tuple[str, InlineKeyboardMarkup]:
    members = await groupbuy_close.participants(session, team_id=team.id)
    people = await users.by_ids(session, {o.user_id for o in members} | {o.invited_by for o in members if o.invited_by}
                                | {team.opener_id})
    opener = people.get(team.opener_id)
    lines = [_("<b>Team {number}</b> · {status}").format(number=team.number, status=team_status(team)),
             _("Opened by {name} · seats {seats}/{size} · price {price}").format(
                 name=buyer_name(opener, team.opened_at, NAME_SHOWN) if opener else team.opener_id, seats=team.seats, size=team.size,
                 price=money(team.price, community, locale)),
             (_("Deadline: {when} ({tz})").format(when=local_time(team.deadline_at, community), tz=community.timezone)
              if team.status == TeamStatus.OPEN else
              _("Closed: {when} ({tz})").format(when=local_time(team.closed_at or team.deadline_at, community), tz=community.timezone)),
             ""]
    rest = [participant_line(o, people, with_inviter=True) for o in members]
    if not rest:
        lines.append(_("Nobody holds a seat."))
    rows = [[op_button(_("« Teams"), community.id, GroupBuyOp.TEAMS, campaign.id, page=page)]]
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
    rows = [[op_button(_("« Back"), community.id, GroupBuyOp.OPEN, campaign.id)]]
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


async def show_campaign(query: CallbackQuery, session: AsyncSession, community: Community, campaign: GroupBuy, actor: Actor,
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
    await show_campaign(query, session, *found, actor)


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
    if campaign.status not in groupbuys.EDITABLE:
        await query.answer(error_text(DomainError("groupbuy_closed")), show_alert=True)
        await show_campaign(query, session, community, campaign, actor)
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
        await show_campaign(query, session, community, campaign, actor)
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
    rows = [[op_button(_("Yes, end it now"), community.id, GroupBuyOp.END_CONFIRM, campaign.id)],
            [op_button(_("« Back"), community.id, GroupBuyOp.OPEN, campaign.id)]]
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
        await show_campaign(query, session, community, campaign, actor)
        return
    after = await groupbuys.stats(session, group_buy_id=campaign.id)
    if campaign.kind == GroupBuyKind.TEAM:
        notice = _("⏹ Ended: {count} open teams cancelled; participants are being told.").format(
            count=after.teams_failed - before.teams_failed)
    else:
        notice = _("⏹ Ended: the group-buy failed and {count} participants' orders were cancelled; participants are being told.").format(
            count=before.participants)
    await query.answer()
    await show_campaign(query, session, community, campaign, actor, notice)


@router.callback_query(GroupBuyAdmin.filter(F.op == GroupBuyOp.DELETE))
async def on_delete(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor) -> None:
    if (found := await _campaign(query, callback_data, session, actor)) is None:
        return
    community, campaign = found
    if campaign.status != GroupBuyStatus.DRAFT:
        await query.answer(error_text(DomainError("groupbuy_not_draft")), show_alert=True)
        await show_campaign(query, session, community, campaign, actor)
        return
    rows = [[op_button(_("Yes, delete it"), community.id, GroupBuyOp.DELETE_CONFIRM, campaign.id)],
            [op_button(_("« Back"), community.id, GroupBuyOp.OPEN, campaign.id)]]
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
        await show_campaign(query, session, community, campaign, actor)
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
    await show_campaign(query, session, community, campaign, actor, await post_card_notice(bot, session, campaign))


async def post_card_notice(bot: Bot, session: AsyncSession, campaign: GroupBuy) -> str:
    """Post the new campaign's card in the group; the notice that says how it went."""
    if await groupbuy_cards.post_card(bot, session, campaign.id):
        return _("✅ Published. Its card is in the group.")
    return _("✅ Published, but I could not post its card in the group. Check that I am still an administrator there.")
