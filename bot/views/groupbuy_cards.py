"""A group-buy's card in the group: the terms, the progress and the time left, with deep-link
buttons that continue in the private checkout.

Like product cards, it speaks the community's language and escapes everything the leader or a
member typed. Its time left is rounded (to ten minutes while more than an hour is left), so the
minute-by-minute re-render the card updater does edits the card only when what it says changes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import translate
from bot.core.localtime import local_time
from bot.services import groupbuy_board, groupbuys
from bot.services.groupbuy_board import Board, CardTeam
from bot.services.groupbuy_close import tiers_of
from bot.services.money import format_money
from bot.views import deeplinks
from bot.views.cards import TEXT_LIMIT, buyable, fingerprint, visible_length
from models import Community
from models.groupbuy import GroupBuy, GroupBuyKind, GroupBuyStatus
from models.shop import Product

log = logging.getLogger(__name__)

TITLE_MAX = 120
BAR_CELLS = 10
JOIN_PER_ROW = 2


def _now() -> datetime:
    return datetime.now(timezone.utc)


def time_left(until: datetime, now: datetime, locale: str) -> str:
    """"2 d 5 h", "5 h 10 min" (ten-minute steps), "7 min", "less than a minute"."""
    minutes = int((until - now).total_seconds() // 60)
    if minutes < 1:
        return translate("less than a minute", locale)
    if minutes >= 24 * 60:
        return translate("{days} d {hours} h", locale, days=minutes // 1440, hours=minutes % 1440 // 60)
    if minutes >= 60:
        return translate("{hours} h {minutes} min", locale, hours=minutes // 60, minutes=minutes % 60 // 10 * 10)
    return translate("{minutes} min", locale, minutes=minutes)


def duration(minutes: int, locale: str) -> str:
    """A team's time limit: "24 h", "1 d 12 h", "90 min" is "1 h 30 min"."""
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    parts = []
    if days:
        parts.append(translate("{days} d", locale, days=days))
    if hours:
        parts.append(translate("{hours} h", locale, hours=hours))
    if mins:
        parts.append(translate("{minutes} min", locale, minutes=mins))
    return " ".join(parts)


def bar(done: int, target: int) -> str:
    filled = BAR_CELLS if target <= 0 else min(BAR_CELLS, done * BAR_CELLS // target)
    return "▓" * filled + "░" * (BAR_CELLS - filled)


def price_steps(campaign: GroupBuy) -> list[tuple[int, int]]:
    """A threshold's prices by total units: the minimum's price, then the tiers (merged)."""
    steps: dict[int, int] = {campaign.min_units or 1: campaign.price}
    for units, price in tiers_of(campaign):
        steps[units] = min(price, steps.get(units, price))
    return sorted(steps.items())


def _title(product: Product) -> str:
    title = product.title if len(product.title) <= TITLE_MAX else product.title[:TITLE_MAX - 1] + "…"
    return f"#{product.number} · {escape(title)}"


def _link(bot_username: str, key: str, arg: str | int) -> str:
    return deeplinks.build(bot_username, key, arg)


def taking_teams(campaign: GroupBuy, now: datetime) -> bool:
    return campaign.status == GroupBuyStatus.LIVE and campaign.starts_at <= now < campaign.ends_at


def _team_line(team: CardTeam, community: Community, locale: str) -> str:
    return translate("• Team #{number} · {name} · open seats: {open} of {size} · until {when}", locale,
                     number=team.number, name=escape(team.opener_name), open=team.size - team.seats, size=team.size,
                     when=local_time(team.deadline_at, community, "%m-%d %H:%M"))


def _team_text(campaign: GroupBuy, product: Product, teams: Sequence[CardTeam], community: Community, locale: str,
               now: datetime, open_count: int, filled: Sequence[CardTeam], filled_count: int, participants: int) -> list[str]:
    money = lambda amount: format_money(amount, community.currency, locale)  # noqa: E731
    lines = [translate("🤝 <b>Team group-buy: {product}</b>", locale, product=_title(product)),
             translate("Normal price {normal} · team price <b>{price}</b>", locale, normal=money(product.price),
                       price=money(campaign.price)),
             translate("Teams of {size}; a team has {limit} to fill once it is opened.", locale,
                       size=campaign.team_size, limit=duration(campaign.team_minutes or 0, locale))]
    finished = campaign.closed_at is not None or campaign.close_reason == "ended_by_leader"
    if finished:
        if campaign.close_reason == "ended_by_leader":
            lines.append("<b>" + translate("❌ Ended early by the leader.", locale) + "</b>")
        elif filled_count:
            lines.append("<b>" + translate("✅ Done: {teams} team(s) filled, {members} member(s) joined.", locale,
                                           teams=filled_count, members=participants) + "</b>")
        else:
            lines.append("<b>" + translate("❌ Ended: no team filled.", locale) + "</b>")
        return lines
    if campaign.starts_at > now:
        lines.append(translate("Starts {when} ({tz}).", locale, when=local_time(campaign.starts_at, community), tz=community.timezone))
    elif taking_teams(campaign, now):
        lines.append(translate("New teams until {when} ({tz}), {left} left.", locale, when=local_time(campaign.ends_at, community),
                               tz=community.timezone, left=time_left(campaign.ends_at, now, locale)))
    else:
        lines.append(translate("No new teams; open teams can still fill until their deadline.", locale))
    if teams:
        lines += ["", "<b>" + translate("Open teams", locale) + "</b>"]
        lines += [_team_line(team, community, locale) for team in teams]
        if open_count > len(teams):
            lines.append(translate("…and {count} more open teams.", locale, count=open_count - len(teams)))
    for team in filled:
        lines.append(translate("✅ Team #{number} · {name} · done, {size} of {size}", locale, number=team.number,
                               name=escape(team.opener_name), size=team.size))
    if filled_count > len(filled):
        lines.append(translate("✅ …and {count} more teams done.", locale, count=filled_count - len(filled)))
    if taking_teams(campaign, now):
        lines += ["", translate("Join a team below, or open your own and share it with friends.", locale)]
    return lines


def _threshold_text(campaign: GroupBuy, product: Product, community: Community, locale: str, now: datetime,
                    participants: int) -> list[str]:
    money = lambda amount: format_money(amount, community.currency, locale)  # noqa: E731
    units, minimum = campaign.units, campaign.min_units or 1
    steps = price_steps(campaign)
    reached = [s for s in steps if units >= s[0]]
    lines = [translate("🛒 <b>Community group-buy: {product}</b>", locale, product=_title(product)),
             translate("Normal price {normal}", locale, normal=money(product.price))]
    for step in steps:
        mark = " ✅" if reached and step == reached[-1] else ""
        lines.append(translate("• from {units} units: <b>{price}</b>", locale, units=step[0], price=money(step[1])) + mark)
    if campaign.status == GroupBuyStatus.SUCCEEDED:
        lines.append("<b>" + translate("✅ Done: {units} units by {members} member(s); final price {price}.", locale,
                                       units=units, members=participants, price=money(campaign.final_price or campaign.price))
                     + "</b>")
        return lines
    if campaign.status == GroupBuyStatus.FAILED:
        if campaign.close_reason == "ended_by_leader":
            lines.append("<b>" + translate("❌ Ended early by the leader.", locale) + "</b>")
        else:
            lines.append("<b>" + translate("❌ Ended: {units} of {min} units, the minimum was not reached.", locale,
                                           units=units, min=minimum) + "</b>")
        return lines
    lines.append(translate("Units so far: <b>{units}</b> of {min} {bar}", locale, units=units, min=minimum,
                           bar=bar(units, minimum)))
    if reached:
        lines.append(translate("Price reached: <b>{price}</b>", locale, price=money(reached[-1][1])))
    ahead = [s for s in steps if units < s[0]]
    if ahead:
        lines.append(translate("{count} more units for {price}.", locale, count=ahead[0][0] - units, price=money(ahead[0][1])))
    if campaign.starts_at > now:
        lines.append(translate("Starts {when} ({tz}).", locale, when=local_time(campaign.starts_at, community), tz=community.timezone))
    lines.append(translate("Closes {when} ({tz}), {left} left.", locale, when=local_time(campaign.ends_at, community),
                           tz=community.timezone, left=time_left(campaign.ends_at, now, locale)))
    if campaign.member_limit:
        lines.append(translate("Up to {count} units per member.", locale, count=campaign.member_limit))
    lines += ["", translate("Everyone pays the price reached at the cut-off; if the minimum is not reached, nobody pays.", locale)]
    return lines


def card_markup(campaign: GroupBuy, product: Product, teams: Sequence[CardTeam], community: Community, locale: str,
                now: datetime, bot_username: str) -> InlineKeyboardMarkup | None:
    """URL buttons only: each opens the private chat with a deep link that starts the checkout."""
    rows: list[list[InlineKeyboardButton]] = []
    money = lambda amount: format_money(amount, community.currency, locale)  # noqa: E731
    if campaign.kind == GroupBuyKind.THRESHOLD:
        if campaign.status == GroupBuyStatus.LIVE and campaign.starts_at <= now < campaign.ends_at:
            rows.append([InlineKeyboardButton(text=translate("🛒 Join at {price}", locale, price=money(campaign.price)),
                                              url=_link(bot_username, "gbj", campaign.id))])
        return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None
    open_campaign = campaign.closed_at is None and campaign.close_reason != "ended_by_leader"
    if open_campaign:
        joins = [InlineKeyboardButton(text=translate("Join team #{number}", locale, number=team.number),
                                      url=_link(bot_username, "gbt", team.id)) for team in teams]
        rows += [joins[i:i + JOIN_PER_ROW] for i in range(0, len(joins), JOIN_PER_ROW)]
    if taking_teams(campaign, now):
        rows.append([InlineKeyboardButton(text=translate("🤝 Open a team", locale), url=_link(bot_username, "gbo", campaign.id))])
        if campaign.solo_allowed and buyable(product):
            rows.append([InlineKeyboardButton(text=translate("Buy alone at {price}", locale, price=money(product.price)),
                                              url=_link(bot_username, "buy", product.id))])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def render_card(campaign: GroupBuy, product: Product, teams: Sequence[CardTeam], community: Community, locale: str,
                now: datetime, *, bot_username: str, open_count: int | None = None, filled: Sequence[CardTeam] = (),
                filled_count: int = 0, participants: int = 0) -> tuple[str, InlineKeyboardMarkup | None]:
    """(text, keyboard). `teams` are the open teams to list (the closest to full first)."""
    if campaign.kind == GroupBuyKind.THRESHOLD:
        lines = _threshold_text(campaign, product, community, locale, now, participants)
    else:
        shown = list(teams)
        count = len(shown) if open_count is None else open_count
        lines = _team_text(campaign, product, shown, community, locale, now, count, filled, filled_count, participants)
        # Titles and names are bounded, so this only bites with absurd limits; teams go first.
        while visible_length("\n".join(lines)) > TEXT_LIMIT and shown:
            shown.pop()
            lines = _team_text(campaign, product, shown, community, locale, now, count, filled, filled_count, participants)
        teams = shown
    return "\n".join(lines), card_markup(campaign, product, teams, community, locale, now, bot_username)


def render_board(board: Board, now: datetime, bot_username: str) -> tuple[str, InlineKeyboardMarkup | None]:
    return render_card(board.campaign, board.product, board.teams, board.community, board.community.default_locale, now,
                       bot_username=bot_username, open_count=board.open_count, filled=board.filled,
                       filled_count=board.filled_count, participants=board.participants)


async def post_card(bot: Bot, session: AsyncSession, group_buy_id: int) -> bool:
    """Post a published campaign's card into its group and remember it (for edits). False when
    there is nothing to post or Telegram refused it."""
    now = _now()
    board = await groupbuy_board.board(session, group_buy_id=group_buy_id, now=now)
    if board is None or board.campaign.status == GroupBuyStatus.DRAFT or not board.community.active:
        return False
    username = (await bot.me()).username or ""
    text, markup = render_board(board, now, username)
    try:
        message = await bot.send_message(board.community.chat_id, text, reply_markup=markup)
    except TelegramAPIError as exc:
        log.info("card of group-buy %s not posted: %s", group_buy_id, exc)
        return False
    shown = fingerprint(text, markup)
    await groupbuys.set_card(session, group_buy_id=group_buy_id, chat_id=message.chat.id, message_id=message.message_id,
                             rendered=shown)
    # A join while the card was on its way found no card to mark stale: hand it to the updater.
    again = await groupbuy_board.board(session, group_buy_id=group_buy_id, now=now)
    if fingerprint(*render_board(again, now, username)) != shown:
        await groupbuy_board.mark_stale(session, group_buy_id=group_buy_id)
    return True
