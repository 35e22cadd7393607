"""What a member reads about inviting: /invite's screen (their link, the deep link for friends who
write to the bot first, what a qualified invite earns, their counts as the invite trackers show
them), the group's pointer to it, the answers to a friend's deep link, the invite leaderboard and
the rewards the qualification job tells them of.

Every function takes the reader's locale: handlers pass the actor's, jobs the recipient's.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.core.i18n import translate
from bot.services.invite_notices import RewardLine, RewardNotice
from bot.services.invite_settings import InviteSettings, LevelReward, Requirement
from bot.services.invite_stats import InviteCounts, InviterStanding
from bot.services.invites import IntentStatus
from bot.views.checkin_coupons import coupon_terms, value_text
from bot.views.checkin_text import member_name
from models import Community, Coupon, User

# The deep link that opens one community's invite screen: `invite-<community id>`.
SCREEN_LINK = "invite"
NOTICE_LINES = 20  # reward lines in one notice; the rest are summed up


class InvitePick(CallbackData, prefix="ivp"):
    """/invite in private, for this one of the member's communities."""

    community_id: int


# --- /invite ----------------------------------------------------------------------------------------

def reward_text(reward: LevelReward, currency: str, locale: str) -> str:
    """"+10 points", "a coupon, ¥5.00 off, …" or both."""
    if reward.coupon is None:
        return translate("+{points} points", locale, points=reward.points)
    terms = coupon_terms(reward.coupon, currency, locale)
    if not reward.points:
        return translate("a coupon, {terms}", locale, terms=terms)
    return translate("+{points} points and a coupon, {terms}", locale, points=reward.points, terms=terms)


def earnings_lines(settings: InviteSettings, currency: str, locale: str) -> list[str]:
    """What a qualified invite earns, at each level the leader rewards (never more than two)."""
    level1, level2 = settings.reward_for(1), settings.reward_for(2)
    if level1 is None and level2 is None:
        return [translate("Invites are counted here, but the leaders give no reward for them at the moment.", locale)]
    lines = []
    days = settings.qualify_days
    if level1 is not None:
        reward = reward_text(level1, currency, locale)
        if settings.require == Requirement.MESSAGE:
            lines.append(translate("🎁 For each friend who joins through your link, stays {days} day(s) and writes in "
                                   "the group, you get {reward}.", locale, days=days, reward=reward))
        elif settings.require == Requirement.PAID_ORDER:
            lines.append(translate("🎁 For each friend who joins through your link, stays {days} day(s) and pays for "
                                   "an order, you get {reward}.", locale, days=days, reward=reward))
        else:
            lines.append(translate("🎁 For each friend who joins through your link and stays {days} day(s), you get "
                                   "{reward}.", locale, days=days, reward=reward))
    if level2 is not None:
        lines.append(translate("➕ When a friend you invited brings someone who counts too, you get {reward}.",
                               locale, reward=reward_text(level2, currency, locale)))
    return lines


def counts_line(counts: InviteCounts, locale: str) -> str:
    return translate("📊 Your invites: ✅ {regular} regular · ⏳ {pending} pending · 🚪 {left} left · ⚠️ {fake} held "
                     "or rejected · 🎁 {bonus} bonus", locale, regular=counts.regular, pending=counts.pending,
                     left=counts.left, fake=counts.fake, bonus=counts.bonus)


def _head(community: Community, locale: str) -> str:
    return translate("<b>🤝 Invite friends to {title}</b>", locale, title=escape(community.title))


def _share_markup(url: str, community: Community, locale: str) -> InlineKeyboardMarkup:
    note = translate("Join us in {title}!", locale, title=community.title)
    share = f"https://t.me/share/url?url={quote(url, safe='')}&text={quote(note, safe='')}"
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=translate("📤 Share my link", locale), url=share)]])


def link_screen(community: Community, *, url: str, deep_link: str, approve_joins: bool, counts: InviteCounts,
                settings: InviteSettings, locale: str) -> tuple[str, InlineKeyboardMarkup]:
    """The member's own link into `community`, the deep link, what invites earn, their counts."""
    lines = [_head(community, locale), "",
             translate("Your own link (everyone who joins through it counts as your invite):", locale),
             escape(url)]
    if approve_joins:
        lines.append(translate("People who open it ask to join, and I let them in.", locale))
    lines += ["", translate("For friends who write to me first:", locale), escape(deep_link), ""]
    lines += earnings_lines(settings, community.currency, locale)
    lines += ["", counts_line(counts, locale)]
    return "\n".join(lines), _share_markup(url, community, locale)


def right_missing_screen(community: Community, *, deep_link: str, counts: InviteCounts, settings: InviteSettings,
                         locale: str) -> tuple[str, InlineKeyboardMarkup]:
    """/invite when the bot may not make invite links there: said plainly, and the deep link, which
    needs no right, offered instead."""
    lines = [_head(community, locale), "",
             translate("⚠️ I cannot make invite links in this group: its admins have not given me the right “{right}”. "
                       "I have told them.", locale, right=translate("Invite users via link", locale)), "",
             translate("Until then, share this link: friends who open it reach me, I show them the way into the "
                       "group, and they count as your invites.", locale),
             escape(deep_link), ""]
    lines += earnings_lines(settings, community.currency, locale)
    lines += ["", counts_line(counts, locale)]
    return "\n".join(lines), _share_markup(deep_link, community, locale)


def no_group_text(locale: str) -> str:
    return translate("You are not in any group of mine yet. Join one, then send /invite here to get your link.",
                     locale)


def pick_text(locale: str) -> str:
    return translate("Invite friends to which group?", locale)


def pick_markup(communities: list[Community]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=c.title, callback_data=InvitePick(community_id=c.id).pack())] for c in communities])


def group_hint(screen_link: str, locale: str) -> tuple[str, InlineKeyboardMarkup]:
    """In the group, for a member the bot cannot write to yet: where their link is."""
    return (translate("Your invite link is in our private chat.", locale),
            InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
                text=translate("🤝 My invite link", locale), url=screen_link)]]))


# --- a friend's deep link ---------------------------------------------------------------------------

def invalid_code_text(locale: str) -> str:
    return translate("This invite link does not work any more: the member who shared it may have left the group. "
                     "Ask them for a new one.", locale)


def intent_text(status: IntentStatus, community: Community, inviter: User | None, group_link: str | None,
                locale: str) -> str:
    """The answer to `/start inv-<code>`, by what `record_intent` made of it."""
    title = escape(community.title)
    if status is IntentStatus.MEMBER:
        return translate("You are already in {title}. Send /invite to get your own link and bring friends.", locale,
                         title=title)
    if status is IntentStatus.SELF:
        return translate("This is your own invite link: share it with friends. Send /invite to see your invites.",
                         locale)
    name = member_name(inviter, locale) if inviter is not None else translate("A member", locale)
    head = translate("<b>{name} invited you to {title}</b>", locale, name=name, title=title)
    if group_link is None:
        return "\n\n".join([head, translate("I cannot hand out the group's link right now. Ask {name} to add you; "
                                            "you will count as their invite.", locale, name=name)])
    return "\n\n".join([head, translate("Join the group here:", locale) + "\n" + escape(group_link),
                        translate("Once you are in, send /help to see what the group's shop offers.", locale)])


def team_invite_text(community: Community, inviter: User | None, group_link: str | None, locale: str) -> str:
    """After a "join my team" link turned away someone not in the group: the way in, then back."""
    name = member_name(inviter, locale) if inviter is not None else translate("A member", locale)
    title = escape(community.title)
    if group_link is None:
        return translate("{name} invited you to their team. Ask them to add you to {title}, then open the team link "
                         "again.", locale, name=name, title=title)
    return translate("{name} invited you to their team. Join {title} first:\n{link}\nThen open the team link again.",
                     locale, name=name, title=title, link=escape(group_link))


# --- /top invites -------------------------------------------------------------------------------------

def top_text(community: Community, standings: list[InviterStanding], settings: InviteSettings, locale: str) -> str:
    lines = [translate("<b>🤝 {title} · top inviters</b>", locale, title=escape(community.title)), ""]
    lines += [f"{s.rank}. {member_name(s.user, locale)} · {s.invites}" for s in standings] or [
        translate("No invite has counted yet. Send /invite in our private chat to get your link.", locale)]
    lines += ["", translate("<i>An invite counts once the friend has stayed {days} day(s).</i>", locale,
                            days=settings.qualify_days)]
    return "\n".join(lines)


# --- rewards --------------------------------------------------------------------------------------------

def _coupon_line(coupon: Coupon, community: Community, locale: str) -> str:
    what = value_text(coupon.kind, coupon.value, coupon.cap, community.currency, locale)
    return translate("a coupon, <code>{code}</code> ({terms})", locale, code=escape(coupon.code), terms=what)


def _reward_line(line: RewardLine, community: Community, locale: str) -> str:
    parts = []
    if line.points:
        parts.append(translate("+{points} points", locale, points=line.points))
    if line.coupon is not None:
        parts.append(_coupon_line(line.coupon, community, locale))
    reward = " · ".join(parts)
    if line.friend_hidden:
        if line.level == 1:
            return translate("• A friend you invited stayed: {reward}", locale, reward=reward)
        return translate("• Someone a friend of yours invited stayed: {reward}", locale, reward=reward)
    name = member_name(line.friend, locale)
    if line.level == 1:
        return translate("• {name} stayed: {reward}", locale, name=name, reward=reward)
    return translate("• Someone {name} invited stayed: {reward}", locale, name=name, reward=reward)


def reward_notice(notice: RewardNotice, locale: str) -> str:
    """The private message of the qualification job to an inviter it rewarded."""
    community = notice.community
    lines = [translate("<b>🎉 Your invites in {title} paid off</b>", locale, title=escape(community.title))]
    lines += [_reward_line(line, community, locale) for line in notice.lines[:NOTICE_LINES]]
    if len(notice.lines) > NOTICE_LINES:
        lines.append(translate("… and {count} more.", locale, count=len(notice.lines) - NOTICE_LINES))
    tail = []
    if notice.points:
        tail.append(translate("💰 +{points} points in all: /points shows your balance.", locale, points=notice.points))
    if any(line.coupon is not None for line in notice.lines):
        tail.append(translate("🎟 /coupons lists your coupons.", locale))
    return "\n".join(lines + [""] + tail) if tail else "\n".join(lines)
