"""/points in private: a community's balance, the latest ledger entries in words, the rewards
catalogue with Redeem, the redeem's confirmation and the coupon it gives."""

from __future__ import annotations

from datetime import date, datetime
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import translate
from bot.core.localtime import local_time
from bot.services import checkin_member, checkins, points
from bot.services.checkin_member import MakeUpChoice
from bot.services.checkin_settings import checkin_settings, local_day
from bot.services.points import Redeemed
from bot.views.checkin_coupons import expiry_text, min_spend_text, validity_text, value_text
from bot.views.checkin_keyboards import MakeUp, MakeUpAction, PointsAction, PointsNav
from bot.views.checkin_text import day_text, streak_line
from models import Community, PointsAccount, PointsEntry, PointsReason
from models.points import PointsReward

RECENT = 8  # ledger entries /points shows


def _day(reference: str, locale: str) -> str:
    try:
        return day_text(date.fromisoformat(reference[:10]), locale)
    except ValueError:
        return escape(reference)


def _order(reference: str) -> str:
    return reference.removeprefix("order:")


def reason_text(entry: PointsEntry, locale: str) -> str:
    """Why the points moved, in words."""
    reference = entry.reference
    match entry.reason:
        case PointsReason.CHECKIN:
            return translate("check-in", locale)
        case PointsReason.MILESTONE:
            return translate("{streak}-day streak bonus", locale, streak=reference.rpartition("/")[2])
        case PointsReason.MAKEUP:
            return translate("make-up of {day}", locale, day=_day(reference, locale))
        case PointsReason.PURCHASE:
            return translate("order #{id}", locale, id=_order(reference))
        case PointsReason.PURCHASE_REVERSAL:
            return translate("order #{id} cancelled or refunded", locale, id=_order(reference))
        case PointsReason.INVITE:
            return translate("invite reward", locale)
        case PointsReason.ADJUST:
            return translate("from the leader: {note}", locale, note=escape(entry.note or ""))
        case PointsReason.REDEEM:
            return translate("redeemed: {title}", locale, title=escape(entry.note or ""))
        case PointsReason.EXPIRY:
            return translate("expired", locale)
    return escape(entry.reason)


def reward_line(reward: PointsReward, currency: str, locale: str) -> str:
    return translate("• <b>{title}</b>: {value}, {min_spend}, {validity} · {cost} points", locale,
                     title=escape(reward.title), value=value_text(reward.kind, reward.value, reward.cap, currency, locale),
                     min_spend=min_spend_text(reward.min_spend, currency, locale),
                     validity=validity_text(reward.valid_days, locale), cost=reward.cost)


def points_text(community: Community, account: PointsAccount | None, streak: int, entries: list[PointsEntry],
                rewards: list[PointsReward], locale: str) -> str:
    balance = account.balance if account is not None else 0
    lines = [translate("<b>💰 Points · {title}</b>", locale, title=escape(community.title)),
             translate("Balance: <b>{balance}</b> points", locale, balance=balance),
             streak_line(streak, account.best_streak if account is not None else 0, locale),
             "", translate("<b>Recent</b>", locale)]
    if entries:
        lines += [f"{local_time(entry.created_at, community, '%m-%d')} · <b>{entry.delta:+d}</b> · "
                  f"{reason_text(entry, locale)}" for entry in entries]
    else:
        lines.append(translate("Nothing yet: check in every day to earn points.", locale))
    lines += ["", translate("<b>Rewards</b>", locale)]
    if rewards:
        lines += [reward_line(reward, community.currency, locale) for reward in rewards]
    else:
        lines.append(translate("No rewards to redeem yet.", locale))
    return "\n".join(lines)


def points_markup(community: Community, rewards: list[PointsReward], choice: MakeUpChoice,
                  locale: str) -> InlineKeyboardMarkup | None:
    rows = [[InlineKeyboardButton(text=translate("🎁 Redeem: {title} ({cost})", locale, title=reward.title,
                                                 cost=reward.cost),
                                  callback_data=PointsNav(action=PointsAction.REWARD, community_id=community.id,
                                                          reward_id=reward.id, cost=reward.cost).pack())]
            for reward in rewards]
    if choice.offered and choice.days and choice.left > 0:
        rows.append([InlineKeyboardButton(text=translate("🗓 Make up a missed day", locale), callback_data=MakeUp(
            action=MakeUpAction.LIST, community_id=community.id).pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def redeem_confirm(community: Community, reward: PointsReward, balance: int, locale: str,
                   *, nonce: int) -> tuple[str, InlineKeyboardMarkup]:
    lines = [reward_line(reward, community.currency, locale), "",
             translate("You have {balance} points.", locale, balance=balance)]
    back = InlineKeyboardButton(text=translate("« Back", locale), callback_data=PointsNav(
        action=PointsAction.SHOW, community_id=community.id).pack())
    if balance < reward.cost:
        lines.append(translate("You need {needed} more points for this reward.", locale, needed=reward.cost - balance))
        return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=[[back]])
    lines.append(translate("Redeem it now? The coupon is for you alone.", locale))
    redeem = InlineKeyboardButton(text=translate("✅ Redeem for {cost} points", locale, cost=reward.cost),
                                  callback_data=PointsNav(action=PointsAction.REDEEM, community_id=community.id,
                                                          reward_id=reward.id, cost=reward.cost, nonce=nonce).pack())
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=[[redeem], [back]])


def redeemed_text(community: Community, redeemed: Redeemed, locale: str) -> str:
    coupon = redeemed.coupon
    return "\n".join([
        translate("🎟 <b>Your coupon: <code>{code}</code></b>", locale, code=escape(coupon.code)),
        " · ".join([value_text(coupon.kind, coupon.value, coupon.cap, community.currency, locale),
                    min_spend_text(coupon.min_spend, community.currency, locale),
                    expiry_text(coupon.expires_at, community.timezone, locale)]),
        translate("Type the code when you check out in {title}; /coupons lists it too.", locale,
                  title=escape(community.title)),
        translate("💰 Balance: {balance} points", locale, balance=redeemed.balance),
    ])


async def points_screen(session: AsyncSession, community: Community, user_id: int, locale: str,
                        now: datetime) -> tuple[str, InlineKeyboardMarkup | None]:
    """A member's points in one community as of `now`: the /points screen."""
    account = await points.account(session, community_id=community.id, user_id=user_id)
    streak = checkins.current_streak(checkin_settings(community), account, local_day(community, now)) if account else 0
    entries = await points.recent(session, community_id=community.id, user_id=user_id, limit=RECENT)
    rewards = await points.rewards(session, community_id=community.id)
    choice = await checkin_member.makeup_choice(session, community=community, user_id=user_id, at=now)
    return (points_text(community, account, streak, entries, rewards, locale),
            points_markup(community, rewards, choice, locale))
