"""The member's way into group-buys: /groupbuy (in the group, and in private for every group the
member is in) and the deep links behind the card's buttons, which open the private checkout:

- `gbo-<campaign id>` opens a new team;
- `gbt-<team id>` joins a team, `gbt-<team id>-<inviter id>` too, through a member's "join my
  team" link (the order records who invited);
- `gbj-<campaign id>[-<quantity>]` joins a community threshold.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.config import Settings
from bot.core.localtime import local_time
from bot.services import groupbuy_board
from bot.services.activity import ActivityTracker
from bot.services.errors import DomainError
from bot.services.groupbuy_board import Listed
from bot.services.groupbuy_join import JoinMode, JoinRef
from bot.services.money import format_money
from bot.telegram.group_reply import reply_in_group
from bot.telegram.membership import Admits, MembershipCheck
from bot.telegram.middlewares.actor import Actor
from bot.telegram.sender import Sender
from bot.views import deeplinks
from bot.views.errors_text import error_text
from bot.views.groupbuy_cards import taking_teams
from handlers.member import checkout
from handlers.member.invites import TeamInviteGate
from models import Community
from models.groupbuy import GroupBuyKind

router = Router(name=__name__)

# ASCII digits only, as everywhere people's numbers are read (bot/core/numbers.py).
ID_RE = r"([0-9]{1,10})"
OPEN_ARG = re.compile(rf"^{ID_RE}$")
TEAM_ARG = re.compile(rf"^{ID_RE}(?:-([0-9]{{1,15}}))?$")
THRESHOLD_ARG = re.compile(rf"^{ID_RE}(?:-([0-9]{{1,4}}))?$")
# Campaigns one /groupbuy answer lists (each brings up to two buttons).
LIST_MAX = 12


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _money(amount: int, community: Community) -> str:
    return format_money(amount, community.currency, I18n.get_current().current_locale)


def _line(item: Listed, community: Community, now: datetime) -> str:
    campaign, title = item.campaign, f"#{item.product.number} · {escape(item.product.title)}"
    if campaign.kind == GroupBuyKind.THRESHOLD:
        return _("🛒 {product}: {units} of {min} units at {price}; closes {when}").format(
            product=title, units=campaign.units, min=campaign.min_units, price=_money(campaign.price, community),
            when=local_time(campaign.ends_at, community, "%m-%d %H:%M"))
    if taking_teams(campaign, now):
        return _("🤝 {product}: teams of {size} at {price}; open teams: {teams}; new teams until {when}").format(
            product=title, size=campaign.team_size, price=_money(campaign.price, community), teams=item.open_teams,
            when=local_time(campaign.ends_at, community, "%m-%d %H:%M"))
    return _("🤝 {product}: teams of {size} at {price}; open teams: {teams}; no new teams").format(
        product=title, size=campaign.team_size, price=_money(campaign.price, community), teams=item.open_teams)


def _buttons(item: Listed, now: datetime, bot_username: str) -> list[InlineKeyboardButton]:
    campaign, number = item.campaign, item.product.number
    if campaign.kind == GroupBuyKind.THRESHOLD:
        return [InlineKeyboardButton(text=_("Join #{number}").format(number=number),
                                     url=deeplinks.build(bot_username, "gbj", campaign.id))]
    row = []
    if item.best_team is not None:
        row.append(InlineKeyboardButton(text=_("#{number}: join team #{team}").format(number=number, team=item.best_team.number),
                                        url=deeplinks.build(bot_username, "gbt", item.best_team.id)))
    if taking_teams(campaign, now):
        row.append(InlineKeyboardButton(text=_("#{number}: open a team").format(number=number),
                                        url=deeplinks.build(bot_username, "gbo", campaign.id)))
    return row


async def _listing(session: AsyncSession, communities: list[Community], bot_username: str, *,
                   headers: bool) -> tuple[str, InlineKeyboardMarkup | None]:
    now = _now()
    lines, rows, shown = [_("<b>Group-buys open now</b>")], [], 0
    for community in communities:
        listed = await groupbuy_board.open_listing(session, community_id=community.id, now=now)
        if not listed:
            continue
        if headers:
            lines.append("\n" + _("<b>{title}</b> (times in {tz})").format(title=escape(community.title), tz=community.timezone))
        for item in listed:
            if shown == LIST_MAX:
                lines.append(_("…and more: see the cards in the group."))
                break
            lines.append(_line(item, community, now))
            if buttons := _buttons(item, now, bot_username):
                rows.append(buttons)
            shown += 1
    if not shown:
        return None, None
    lines += ["", _("Press a button to join in a private chat with me.")]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


@router.message(Command("groupbuy"), F.chat.type.in_({"group", "supergroup"}))
async def cmd_groupbuy_group(message: Message, session: AsyncSession, actor: Actor, bot_username: str,
                             sender: Sender) -> None:
    if actor.community is None:
        reply_in_group(sender, message, _("I do not sell in this group."))
        return
    text, markup = await _listing(session, [actor.community], bot_username, headers=False)
    reply_in_group(sender, message, text or _("No group-buy is open right now."), markup)


@router.message(Command("groupbuy"), F.chat.type == "private")
async def cmd_groupbuy_private(message: Message, session: AsyncSession, actor: Actor, bot_username: str) -> None:
    communities = await groupbuy_board.member_communities(session, user_id=actor.user.id)
    text, markup = await _listing(session, communities, bot_username, headers=True)
    await message.answer(text or _("No group-buy is open right now in your groups."), reply_markup=markup)


# ----- deep links -------------------------------------------------------------------------------

async def _start(message: Message, ref: JoinRef, state: FSMContext, session: AsyncSession, settings: Settings,
                 actor: Actor, bot_username: str, quantity: str | None = None, *, admits: Admits,
                 tracker: ActivityTracker | None = None) -> None:
    text, markup = await checkout.start_join(state=state, session=session, settings=settings, user_id=actor.user.id,
                                             ref=ref, bot_username=bot_username, quantity_raw=quantity, admits=admits,
                                             tracker=tracker)
    await message.answer(text, reply_markup=markup)


def _invalid() -> str:
    return _("This link is not valid or has expired.")


@deeplinks.route("gbo")
async def link_open_team(*, message: Message, arg: str, state: FSMContext, session: AsyncSession, settings: Settings,
                         actor: Actor, bot_username: str, bot: Bot, membership: MembershipCheck, **_data) -> None:
    match = OPEN_ARG.match(arg)
    if match is None:
        await message.answer(_invalid())
        return
    await _start(message, JoinRef(int(match.group(1)), JoinMode.OPEN), state, session, settings, actor, bot_username,
                 admits=membership.gate(bot, session, actor.user.id), tracker=_data.get("tracker"))


@deeplinks.route("gbt")
async def link_join_team(*, message: Message, arg: str, state: FSMContext, session: AsyncSession, settings: Settings,
                         actor: Actor, bot_username: str, bot: Bot, membership: MembershipCheck, **_data) -> None:
    match = TEAM_ARG.match(arg)
    if match is None:
        await message.answer(_invalid())
        return
    team_id = checkout.row_id(int(match.group(1)))
    inviter = int(match.group(2)) if match.group(2) else None
    try:
        ref = await groupbuy_board.team_ref(session, team_id=team_id, inviter_id=inviter)
    except DomainError as err:
        await message.answer(error_text(err))
        return
    admits = membership.gate(bot, session, actor.user.id)
    # Someone the inviter brought who is not in the group yet: their join counts as the inviter's.
    gate = TeamInviteGate(admits, session=session, bot=bot, user_id=actor.user.id, inviter_id=ref.invited_by) \
        if ref.invited_by is not None else None
    await _start(message, ref, state, session, settings, actor, bot_username, admits=gate or admits,
                 tracker=_data.get("tracker"))
    if gate is not None:
        await gate.follow_up(message, actor.locale)


@deeplinks.route("gbj")
async def link_join_threshold(*, message: Message, arg: str, state: FSMContext, session: AsyncSession,
                              settings: Settings, actor: Actor, bot_username: str, bot: Bot,
                              membership: MembershipCheck, **_data) -> None:
    match = THRESHOLD_ARG.match(arg)
    if match is None:
        await message.answer(_invalid())
        return
    await _start(message, JoinRef(int(match.group(1)), JoinMode.THRESHOLD), state, session, settings, actor, bot_username,
                 quantity=match.group(2), admits=membership.gate(bot, session, actor.user.id),
                 tracker=_data.get("tracker"))
