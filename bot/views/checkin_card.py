"""What the check-ins put into a group: the daily card, the digest of results for members the bot
cannot write to, and the leaderboard. The whole group reads them, so they speak the community's
language; every name is escaped.
"""

from __future__ import annotations

from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.core.i18n import translate
from bot.services.checkin_cards import CardFacts, Line
from bot.services.checkins import CheckInStatus, Standing
from bot.views import deeplinks
from bot.views.cards import TEXT_LIMIT, visible_length
from bot.views.checkin_keyboards import CheckinPress
from bot.views.checkin_text import day_text, member_name
from models import Community

DIGEST_HEAD_ROOM = 300  # the digest's title and closing line


def card_text(facts: CardFacts, locale: str) -> str:
    lines = [translate("<b>📅 Daily check-in · {day}</b>", locale, day=day_text(facts.day, locale))]
    if facts.checked_in:
        lines.append(translate("✅ Checked in today: {count}", locale, count=facts.checked_in))
    else:
        lines.append(translate("Nobody has checked in yet today: be the first!", locale))
    if facts.top:
        lines += ["", translate("🔥 Longest streaks", locale)]
        lines += _standings(facts.top, locale)
    lines += ["", translate("Press ✅ Check in: your result shows only to you.", locale)]
    return "\n".join(lines)


def card_markup(community: Community, locale: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=translate("✅ Check in", locale), callback_data=CheckinPress(community_id=community.id).pack())]])


def _standings(standings: list[Standing], locale: str) -> list[str]:
    return [f"{s.rank}. {member_name(s.user, locale)} · {s.value}" for s in standings]


def digest_line(line: Line, locale: str) -> str:
    notice, name = line.notice, member_name(line.user, locale)
    if notice.status == CheckInStatus.DISABLED:
        return translate("{name}: check-ins are off here", locale, name=name)
    if notice.status == CheckInStatus.ALREADY:
        return translate("{name} ☑️ already today · 🔥{streak}", locale, name=name, streak=notice.streak)
    text = f"{name} ✅ +{notice.points} · 🔥{notice.streak}"
    if notice.bonus:
        text += f" · 🎁 +{notice.bonus}"
    if notice.coupon:
        text += " · 🎁 " + translate("coupon in /coupons", locale)
    return text


def digest(lines: list[Line], locale: str, bot_username: str) -> tuple[str, InlineKeyboardMarkup, list[Line]]:
    """One message for as many results as fit; the results it holds (the rest wait for the next)."""
    head = translate("<b>✅ Check-ins</b>", locale)
    tail = translate("Start a private chat with me and your next results come there, with your points.", locale)
    body: list[str] = []
    shown: list[Line] = []
    size = DIGEST_HEAD_ROOM
    for line in lines:
        text = digest_line(line, locale)
        size += visible_length(text) + 1
        if size > TEXT_LIMIT:
            break
        body.append(text)
        shown.append(line)
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=translate("🔔 My results in private", locale), url=deeplinks.build(bot_username, "checkin"))]])
    return "\n".join([head, *body, "", tail]), markup, shown


def leaderboard(community: Community, streaks: list[Standing], month: list[Standing], locale: str) -> str:
    lines = [translate("<b>🏆 {title} · leaderboard</b>", locale, title=escape(community.title)), "",
             translate("🔥 <b>Current streaks</b> (days)", locale)]
    lines += _standings(streaks, locale) or [translate("No streaks yet: send /checkin to start one.", locale)]
    lines += ["", translate("⭐ <b>Points this month</b>", locale)]
    lines += _standings(month, locale) or [translate("Nobody has earned points this month yet.", locale)]
    return "\n".join(lines)


def pin_right_text(community: Community, locale: str) -> str:
    """For leaders, when the card is to be pinned and the bot may not pin: the onboarding's words."""
    return "\n".join([
        translate("The check-in card in {title} could not be pinned.", locale, title=escape(community.title)),
        translate("I am an administrator here but I am missing these rights:", locale)
        if community.bot_status == "administrator" else
        translate("To work fully I need to be an administrator of this group with these rights:", locale),
        "• " + translate("Pin messages", locale),
        translate("A group admin can grant them in the group's settings → Administrators → this bot. I will check "
                  "again when they change.", locale),
    ])
