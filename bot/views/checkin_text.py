"""What a member reads about their own check-ins: the full result in private, the short toast on
the card, make-up screens, the reminder and their standing (/top in private).

Every function takes the reader's locale: handlers pass the actor's, jobs the recipient's.
"""

from __future__ import annotations

from datetime import date
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from babel.dates import format_skeleton

from bot.core.i18n import translate
from bot.services.checkin_member import MakeUpChoice
from bot.services.checkin_settings import CouponTerms
from bot.services.checkins import CheckInResult, CheckInStatus, MakeUpResult, MilestoneGrant, NextMilestone, Rank
from bot.views.cards import visible_length
from bot.views.checkin_coupons import coupon_terms
from bot.views.checkin_keyboards import CheckinPick, MakeUp, MakeUpAction, PointsAction, PointsNav, day_code
from models import Community, User

TOAST_LIMIT = 200  # Telegram's limit for a callback answer's text
NAME_LIMIT = 32


def day_text(day: date, locale: str) -> str:
    """"Sun, Nov 1" / "11月1日周日"."""
    return format_skeleton("MMMEd", day, locale=locale)


def member_name(user: User, locale: str) -> str:
    """A member's first name for others to read, escaped; erased profiles stay nameless."""
    if user.erased:
        return translate("A member", locale)
    name = user.first_name or user.display_name
    return escape(name if len(name) <= NAME_LIMIT else name[:NAME_LIMIT - 1] + "…")


def next_text(milestone: NextMilestone | None, currency: str, locale: str) -> str | None:
    if milestone is None:
        return None
    if milestone.coupon is not None:
        reward = translate("a coupon, {terms}", locale, terms=coupon_terms(milestone.coupon, currency, locale))
    else:
        reward = translate("+{points} points", locale, points=milestone.points)
    if milestone.in_days == 1:
        return translate("🎯 Check in tomorrow for the {streak}-day bonus: {reward}.", locale,
                         streak=milestone.streak, reward=reward)
    return translate("🎯 {days} more days to the {streak}-day bonus: {reward}.", locale, days=milestone.in_days,
                     streak=milestone.streak, reward=reward)


def grant_lines(grants: tuple[MilestoneGrant, ...], community: Community, locale: str) -> list[str]:
    lines = []
    for grant in grants:
        if grant.coupon is not None:
            terms = CouponTerms(kind=grant.coupon.kind, value=grant.coupon.value, cap=grant.coupon.cap,
                                min_spend=grant.coupon.min_spend, valid_days=None)
            lines.append(translate("🎁 {streak}-day bonus: a coupon, <code>{code}</code> ({terms}). Type the code when "
                                   "you check out; /coupons lists it.", locale, streak=grant.streak,
                                   code=escape(grant.coupon.code), terms=coupon_terms(terms, community.currency, locale)))
        else:
            lines.append(translate("🎁 {streak}-day bonus: +{points} points!", locale, streak=grant.streak,
                                   points=grant.points))
    return lines


def streak_line(streak: int, best: int, locale: str) -> str:
    if not streak:
        return translate("🔥 No streak right now (best {best}). /checkin starts one.", locale, best=best)
    return translate("🔥 Streak: day {streak} (best {best})", locale, streak=streak, best=best)


def _balance_line(balance: int, locale: str) -> str:
    return translate("💰 Balance: {balance} points", locale, balance=balance)


def result_text(result: CheckInResult, community: Community, locale: str) -> str:
    """The whole result, for a private message."""
    title, day = escape(community.title), day_text(result.day, locale)
    if result.status is CheckInStatus.NOT_MEMBER:
        return translate("Only members of {title} can check in there. Join the group first.", locale, title=title)
    if result.status is CheckInStatus.DISABLED:
        return translate("Check-ins are off in {title}.", locale, title=title)
    if result.status is CheckInStatus.ALREADY:
        lines = [translate("☑️ You already checked in today in <b>{title}</b> ({day}): +{points} points.", locale,
                           title=title, day=day, points=result.points)]
    else:
        lines = [translate("✅ <b>Checked in</b> · {title} · {day}", locale, title=title, day=day),
                 translate("+{points} points today", locale, points=result.points)]
        if result.freeze_used:
            lines.append(translate("🧊 A streak freeze covered the day you missed.", locale))
    lines.append(streak_line(result.streak, result.best_streak, locale))
    lines += grant_lines(result.milestones, community, locale)
    if result.freezes_earned:
        lines.append(translate("🧊 You earned a streak freeze: it covers one missed day ({held} held).", locale,
                               held=result.freezes))
    lines.append(_balance_line(result.balance, locale))
    if upcoming := next_text(result.next_milestone, community.currency, locale):
        lines.append(upcoming)
    return "\n".join(lines)


def result_markup(community: Community, choice: MakeUpChoice | None, locale: str) -> InlineKeyboardMarkup:
    """Under a private result: the way to the points and, when there is a day to make up, to that."""
    row = [InlineKeyboardButton(text=translate("💰 My points", locale), callback_data=PointsNav(
        action=PointsAction.SHOW, community_id=community.id).pack())]
    if choice is not None and choice.offered and choice.days and choice.left > 0:
        row.insert(0, InlineKeyboardButton(text=translate("🗓 Make up a missed day", locale), callback_data=MakeUp(
            action=MakeUpAction.LIST, community_id=community.id).pack()))
    return InlineKeyboardMarkup(inline_keyboard=[row])


def toast_text(result: CheckInResult, community: Community, locale: str) -> str:
    """The result as a button press's answer: at most 200 characters (the first part is short
    whatever the numbers), the parts that do not fit dropped."""
    if result.status is CheckInStatus.NOT_MEMBER:
        return translate("Only members of this group can check in.", locale)
    if result.status is CheckInStatus.DISABLED:
        return translate("Check-ins are off in this group.", locale)
    if result.status is CheckInStatus.ALREADY:
        head = translate("☑️ Already checked in today. 🔥 day {streak} · 💰 {balance} points", locale,
                         streak=result.streak, balance=result.balance)
    else:
        head = translate("✅ Checked in: +{points} points · 🔥 day {streak} · 💰 {balance} points", locale,
                         points=result.points, streak=result.streak, balance=result.balance)
    parts = [head]
    for grant in result.milestones:
        if grant.coupon is not None:
            parts.append(translate("🎁 {streak}-day bonus: coupon {code} (see /coupons)", locale, streak=grant.streak,
                                   code=grant.coupon.code))
        else:
            parts.append(translate("🎁 {streak}-day bonus: +{points}", locale, streak=grant.streak, points=grant.points))
    if result.freeze_used:
        parts.append(translate("🧊 A freeze saved your streak.", locale))
    if result.status is CheckInStatus.DONE and (upcoming := next_text(result.next_milestone, community.currency, locale)):
        parts.append(upcoming)
    text = parts[0]
    for part in parts[1:]:
        longer = f"{text}\n{part}"
        if visible_length(longer) <= TOAST_LIMIT:
            text = longer
    return text


def toast_alert(result: CheckInResult) -> bool:
    """A milestone is worth a dialog the member closes; everything else is a passing toast."""
    return bool(result.milestones) or result.status is CheckInStatus.NOT_MEMBER


def pick_text(locale: str) -> str:
    return translate("Which group do you check in at?", locale)


def pick_markup(communities: list[Community]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=community.title or str(community.chat_id), callback_data=CheckinPick(community_id=community.id).pack())]
        for community in communities])


def no_community_text(locale: str) -> str:
    return translate("You are not in any group I run yet. Join your community's group, then check in there or here.",
                     locale)


# --- make-ups -------------------------------------------------------------------------------------

def makeup_text(choice: MakeUpChoice, locale: str) -> str:
    title = escape(choice.community.title)
    head = translate("<b>🗓 Make up a missed day · {title}</b>", locale, title=title)
    if not choice.offered:
        return "\n".join([head, translate("Make-ups are off in this group.", locale)])
    terms = translate("A make-up costs {cost} points and counts the day for your streak; it earns no points of its "
                      "own. Days up to {days} day(s) back can be made up.", locale, cost=choice.cost,
                      days=choice.window)
    left = translate("Make-ups left this month: {left} of {limit}. Balance: {balance} points.", locale,
                     left=choice.left, limit=choice.limit, balance=choice.balance)
    lines = [head, terms, left, ""]
    if choice.left <= 0:
        lines.append(translate("You have used every make-up this month.", locale))
    elif not choice.days:
        lines.append(translate("You have no missed day to make up: well done!", locale))
    else:
        lines.append(translate("Choose the day:", locale))
    return "\n".join(lines)


def makeup_markup(choice: MakeUpChoice, locale: str) -> InlineKeyboardMarkup | None:
    if not choice.offered or choice.left <= 0 or not choice.days:
        return None
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=day_text(day, locale), callback_data=MakeUp(action=MakeUpAction.PICK, community_id=choice.community.id,
                                                         day=day_code(day)).pack())] for day in choice.days])


def makeup_confirm(choice: MakeUpChoice, day: date, locale: str) -> tuple[str, InlineKeyboardMarkup]:
    text = translate("Make up {day} in {title} for {cost} points? Balance: {balance} points.", locale,
                     day=day_text(day, locale), title=escape(choice.community.title), cost=choice.cost,
                     balance=choice.balance)
    back = MakeUp(action=MakeUpAction.LIST, community_id=choice.community.id).pack()
    confirm = MakeUp(action=MakeUpAction.CONFIRM, community_id=choice.community.id, day=day_code(day)).pack()
    return text, InlineKeyboardMarkup(inline_keyboard=[
        [InlineKeyboardButton(text=translate("✅ Make up for {cost} points", locale, cost=choice.cost),
                              callback_data=confirm)],
        [InlineKeyboardButton(text=translate("« Back", locale), callback_data=back)]])


def made_up_text(made: MakeUpResult, community: Community, locale: str) -> str:
    lines = [translate("✅ {day} made up for {cost} points.", locale, day=day_text(made.day, locale), cost=made.cost),
             streak_line(made.streak, made.best_streak, locale)]
    lines += grant_lines(made.milestones, community, locale)
    if made.freezes_earned:
        lines.append(translate("🧊 You earned a streak freeze: it covers one missed day.", locale))
    lines.append(_balance_line(made.balance, locale))
    lines.append(translate("Make-ups left this month: {left}.", locale, left=made.makeups_left))
    return "\n".join(lines)


# --- the reminder and one's own standing ---------------------------------------------------------

def reminder_text(streak: int, community: Community, locale: str) -> str:
    return translate("🔥 Your {streak}-day streak in {title} ends at midnight. Check in now to keep it!", locale,
                     streak=streak, title=escape(community.title))


def reminder_markup(community: Community, locale: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=translate("✅ Check in", locale), callback_data=CheckinPick(community_id=community.id).pack())]])


def ranks_text(ranks: list[Rank], locale: str) -> str:
    if not ranks:
        return no_community_text(locale)
    lines = [translate("<b>🏆 Your standing</b>", locale)]
    for rank in ranks:
        lines += ["", f"<b>{escape(rank.community.title)}</b>"]
        if rank.streak_rank is not None:
            lines.append(translate("🔥 Streak: day {streak} (best {best}), #{rank} of {members} members", locale,
                                   streak=rank.streak, best=rank.best_streak, rank=rank.streak_rank,
                                   members=rank.members))
        else:
            lines.append(translate("🔥 No streak right now (best {best}). /checkin starts one.", locale,
                                   best=rank.best_streak))
        if rank.points_rank is not None:
            lines.append(translate("⭐ This month: {points} points, #{rank}", locale, points=rank.month_points,
                                   rank=rank.points_rank))
        else:
            lines.append(translate("⭐ No points earned this month yet.", locale))
        lines.append(_balance_line(rank.balance, locale))
    return "\n".join(lines)
