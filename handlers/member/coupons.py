"""/coupons in private: the coupons a member can still use, in every community they are in. In a
group it only points to the private chat, where a member's coupons are nobody else's business.

The wording of what a coupon takes off is shared with the leaders' coupon screens.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.localtime import local_time
from bot.services import coupons
from bot.services.money import format_money
from bot.telegram.group_reply import reply_in_group
from bot.telegram.middlewares.actor import Actor
from bot.telegram.sender import Sender
from bot.views import deeplinks
from models import Community
from models.shop import CouponKind

router = Router(name=__name__)

MESSAGE_LIMIT = 4096


def money(amount: int, currency: str) -> str:
    return format_money(amount, currency, I18n.get_current().current_locale)


def value_text(kind: str, value: int, cap: int | None, currency: str) -> str:
    """What a coupon takes off: "$5.00 off", "10% off", "10% off, up to $5.00"."""
    if kind == CouponKind.FIXED:
        return _("{amount} off").format(amount=money(value, currency))
    if cap is not None:
        return _("{percent}% off, up to {cap}").format(percent=value, cap=money(cap, currency))
    return _("{percent}% off").format(percent=value)


def min_spend_text(min_spend: int, currency: str) -> str:
    return _("minimum spend {amount}").format(amount=money(min_spend, currency)) if min_spend else _("no minimum spend")


def expiry_text(expires_at: datetime | None, tz: str) -> str:
    if expires_at is None:
        return _("no expiry")
    return _("until {when}").format(when=local_time(expires_at, tz))


async def coupons_text(session: AsyncSession, user_id: int, now: datetime) -> str:
    listed = await coupons.member_coupons(session, user_id=user_id, now=now)
    if not listed:
        return _("You have no coupons to use right now.")
    lines = [_("<b>Your coupons</b>")]
    shown: Community | None = None
    for count, (community, coupon) in enumerate(listed):
        block = []
        if community is not shown:
            block.append("\n" + _("<b>{title}</b> (times in {tz})").format(title=escape(community.title), tz=community.timezone))
            shown = community
        block.append(" · ".join([f"<code>{escape(coupon.code)}</code>",
                                 value_text(coupon.kind, coupon.value, coupon.cap, community.currency),
                                 min_spend_text(coupon.min_spend, community.currency),
                                 expiry_text(coupon.expires_at, community.timezone)]))
        more = _("…and {count} more.").format(count=len(listed) - count)
        if len("\n".join(lines + block)) + len(more) + 200 > MESSAGE_LIMIT:
            lines.append(more)
            break
        lines.extend(block)
    lines.append("\n" + _("Type the code when you check out."))
    return "\n".join(lines)


@router.message(Command("coupons"), F.chat.type == "private")
async def cmd_coupons(message: Message, session: AsyncSession, actor: Actor) -> None:
    await message.answer(await coupons_text(session, actor.user.id, message.date))


@router.message(Command("coupons"))
async def cmd_coupons_in_group(message: Message, bot_username: str, sender: Sender) -> None:
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=_("🎟 My coupons"), url=deeplinks.build(bot_username, "coupons"))]])
    reply_in_group(sender, message, _("Your coupons are in our private chat."), markup)


@deeplinks.route("coupons")
async def link_coupons(*, message: Message, session: AsyncSession, actor: Actor, **_data) -> None:
    await message.answer(await coupons_text(session, actor.user.id, message.date))
