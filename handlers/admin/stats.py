"""/admin → 📊 Stats: each screen a chart with its key numbers in the caption, buttons to switch
screens (the photo is replaced in place) and a CSV button. Every press re-checks the role.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InaccessibleMessage,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
)
from aiogram.utils.i18n import gettext as _
from babel.dates import get_day_names
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.localtime import local_time
from bot.services import communities, stats, stats_digest
from bot.services.money import BABEL_LOCALE
from bot.telegram.middlewares.actor import Actor
from bot.views.keyboards import AdminNav, DigestOp, DigestOption, Section, StatsOp, StatsScreen, StatsView
from bot.views.render import edit_or_send
from bot.views.stats_charts import RENDERERS, render_async
from bot.views.stats_text import caption, csv_bytes, screen_names
from handlers.admin.menu import back_button, guard
from models import Community

router = Router(name=__name__)

# The service's screen names, by the short names callback data carries.
SERVICE_NAMES = {
    StatsScreen.OVERVIEW: "overview", StatsScreen.GROWTH: "growth", StatsScreen.RETENTION: "retention",
    StatsScreen.ACTIVITY: "activity", StatsScreen.SALES: "sales", StatsScreen.FUNNEL: "funnel",
    StatsScreen.ENGAGEMENT: "engagement",
}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def keyboard(community_id: int, current: StatsScreen) -> InlineKeyboardMarkup:
    names = screen_names()
    buttons = [InlineKeyboardButton(text=("• " if screen is current else "") + names[screen],
                                    callback_data=StatsView(community_id=community_id, screen=screen).pack())
               for screen in StatsScreen]
    rows = [buttons[i:i + 3] for i in range(0, len(buttons), 3)]
    rows.append([InlineKeyboardButton(text=_("⬇️ CSV"), callback_data=StatsView(
        community_id=community_id, screen=current, op=StatsOp.CSV).pack()), back_button(community_id)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def screen_data(session: AsyncSession, community: Community, screen: StatsScreen):
    return await stats.SCREENS[SERVICE_NAMES[screen]](session, community=community, now=_now())


async def chart_view(session: AsyncSession, community: Community, screen: StatsScreen,
                     locale: str) -> tuple[bytes, str]:
    """The screen's PNG (rendered off the event loop) and its caption."""
    data = await screen_data(session, community, screen)
    png = await render_async(RENDERERS[SERVICE_NAMES[screen]], data, locale)
    text = caption(screen, data, title=community.title or str(community.chat_id), timezone=community.timezone,
                   locale=locale)
    return png, text


def _photo(png: bytes, community: Community, screen: StatsScreen) -> BufferedInputFile:
    return BufferedInputFile(png, filename=f"stats-{SERVICE_NAMES[screen]}-{community.id}.png")


@router.callback_query(AdminNav.filter(F.section == Section.STATS))
async def on_stats(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await query.answer()
    screen = StatsScreen.OVERVIEW
    png, text = await chart_view(session, community, screen, actor.locale)
    await query.bot.send_photo(query.from_user.id, _photo(png, community, screen), caption=text,
                               reply_markup=keyboard(community.id, screen))


@router.callback_query(StatsView.filter(F.op == StatsOp.VIEW))
async def on_screen(query: CallbackQuery, callback_data: StatsView, session: AsyncSession, actor: Actor) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await query.answer()
    screen = callback_data.screen
    png, text = await chart_view(session, community, screen, actor.locale)
    markup = keyboard(community.id, screen)
    message = query.message
    if message is not None and not isinstance(message, InaccessibleMessage) and message.photo:
        try:
            await message.edit_media(InputMediaPhoto(media=_photo(png, community, screen), caption=text),
                                     reply_markup=markup)
            return
        except TelegramBadRequest as exc:
            # Two taps on one button: the second finds the chart already there.
            if "message is not modified" in exc.message:
                return
            if "message to edit not found" not in exc.message and "message can't be edited" not in exc.message:
                raise
    await query.bot.send_photo(query.from_user.id, _photo(png, community, screen), caption=text, reply_markup=markup)


@router.callback_query(StatsView.filter(F.op == StatsOp.CSV))
async def on_csv(query: CallbackQuery, callback_data: StatsView, session: AsyncSession, actor: Actor) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await query.answer()
    screen = callback_data.screen
    data = await screen_data(session, community, screen)
    day = local_time(_now(), community, "%Y-%m-%d")
    name = SERVICE_NAMES[screen]
    document = BufferedInputFile(csv_bytes(stats.to_csv_rows(data)), filename=f"stats-{name}-{community.id}-{day}.csv")
    await query.bot.send_document(query.from_user.id, document, caption=_("📊 {screen} · {title}").format(
        screen=screen_names()[screen], title=escape(community.title or str(community.chat_id))))


# --- Settings → Weekly stats digest ---------------------------------------------------------------

# Whole hours from early morning to late evening: a leader picks one with a press, no form to fill in.
DIGEST_HOURS = tuple(range(6, 24))


def digest_view(community: Community, leader_id: int, locale: str, *, leads: bool) -> tuple[str, InlineKeyboardMarkup]:
    """The pressing person's own digest options for this community; someone who manages it without
    leading it (an owner) gets no digest, so there is nothing of theirs to choose."""
    cid = community.id
    lines = [
        _("<b>Weekly stats digest · {title}</b>").format(title=escape(community.title)),
        _("Each leader gets the week's key numbers and the overview chart in a private message."),
    ]
    if not leads:
        lines.append(_("You are not one of this community's leaders, so no digest is sent to you."))
        return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=[[back_button(cid, Section.SETTINGS)]])
    options = stats_digest.digest_settings(community, leader_id=leader_id)
    days = get_day_names("wide", locale=BABEL_LOCALE.get(locale, "en"))
    short = get_day_names("abbreviated", locale=BABEL_LOCALE.get(locale, "en"))
    lines.append(_("These choices are yours alone: each leader picks their own day and hour, or turns theirs off."))
    if options.enabled:
        lines.append(_("Your digest: every {day} at {time} ({tz}).").format(
            day=days[options.weekday - 1], time=options.time, tz=community.timezone))
    else:
        lines.append(_("Your digest: off."))

    def option(label: str, op: DigestOp, value: int = 0) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=label, callback_data=DigestOption(community_id=cid, op=op, value=value).pack())

    toggle = option(_("Turn it off"), DigestOp.OFF) if options.enabled else option(_("Turn it on"), DigestOp.ON)
    weekdays = [option(("• " if options.enabled and options.weekday == d else "") + short[d - 1], DigestOp.WEEKDAY, d)
                for d in range(1, 8)]
    hours = [option(("• " if options.enabled and options.time == f"{h:02d}:00" else "") + f"{h:02d}:00", DigestOp.TIME,
                    h) for h in DIGEST_HOURS]
    rows = [[toggle], weekdays[:4], weekdays[4:], *(hours[i:i + 6] for i in range(0, len(hours), 6)),
            [back_button(cid, Section.SETTINGS)]]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def _digest_screen(session: AsyncSession, community: Community, actor: Actor) -> tuple[str, InlineKeyboardMarkup]:
    leads = await communities.is_leader(session, community_id=community.id, user_id=actor.user.id)
    return digest_view(community, actor.user.id, actor.locale, leads=leads)


@router.callback_query(AdminNav.filter(F.section == Section.DIGEST))
async def on_digest(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await query.answer()
    await edit_or_send(query.message, *await _digest_screen(session, community, actor))


@router.callback_query(DigestOption.filter())
async def on_digest_option(query: CallbackQuery, callback_data: DigestOption, session: AsyncSession,
                           actor: Actor) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    if not await communities.is_leader(session, community_id=community.id, user_id=actor.user.id):
        await query.answer(_("You are not one of this community's leaders, so no digest is sent to you."),
                           show_alert=True)
        return
    op, value = callback_data.op, callback_data.value
    if op is DigestOp.WEEKDAY and not 1 <= value <= 7 or op is DigestOp.TIME and value not in DIGEST_HOURS:
        await query.answer(_("That choice is not on offer."), show_alert=True)
        return
    changes: dict[str, object] = {"enabled": op is not DigestOp.OFF}
    if op is DigestOp.WEEKDAY:
        changes["weekday"] = value
    elif op is DigestOp.TIME:
        changes["time"] = f"{value:02d}:00"
    await stats_digest.update_digest_settings(session, community=community, leader_id=actor.user.id, now=_now(),
                                              **changes)
    await query.answer()
    await edit_or_send(query.message, *digest_view(community, actor.user.id, actor.locale, leads=True))
