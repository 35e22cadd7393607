"""Checking in from the group: `/checkin`, the ✅ button on the daily card, `/top` and `/points`.

A busy group gets 20 bot messages a minute, and a morning rush brings hundreds of check-ins, so
nothing here answers one person with one group message:

- a press on the card is answered with a toast only the presser sees, and the card is marked for
  a redraw that the refresh job coalesces (bot/jobs/checkins.py);
- `/checkin` is answered in private (through the sender) when the member can be reached there;
  otherwise the result waits for the group's next digest, one message for many members, at most
  one per member and day;
- `/top` posts the leaderboard at most once a minute per group; an asker within that minute gets
  it in private if reachable, else nothing;
- `/points` goes to the private chat, or points there with one hint a minute per group.

The day comes from the message's own date; a button press carries none, so its time is when the
bot receives it (`clock`, which tests and the demo set in the dispatcher's data, or the real time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.db import SessionFactory
from bot.services import checkin_cards, checkin_member, checkins
from bot.services.activity import ActivityTracker
from bot.services.checkin_cards import Slot
from bot.services.checkin_settings import local_day
from bot.services.checkins import CheckInResult, CheckInStatus
from bot.telegram.group_reply import reply_in_group
from bot.telegram.membership import MembershipCheck
from bot.telegram.middlewares.actor import Actor
from bot.telegram.sender import Delivery, Sender
from bot.views import deeplinks
from bot.views.checkin_card import leaderboard
from bot.views.checkin_keyboards import CheckinPress
from bot.views.checkin_points import points_screen
from bot.views.checkin_text import result_markup, result_text, toast_alert, toast_text
from models import Community, MemberStatus

router = Router(name=__name__)
router.message.filter(F.chat.type.in_({"group", "supergroup"}))

Clock = Callable[[], datetime]
TOP_EVERY = timedelta(minutes=1)
HINT_EVERY = timedelta(minutes=1)
TOP_SIZE = 10

# Fallbacks to the digest for private answers Telegram refused, kept until they finish.
_fallbacks: set[asyncio.Task] = set()


def received_at(clock: Clock | None) -> datetime:
    """When the bot received a button press (it carries no date of its own)."""
    return clock() if clock is not None else datetime.now(timezone.utc)


async def record(session: AsyncSession, bot: Bot, membership: MembershipCheck, tracker: ActivityTracker, actor: Actor,
                 community: Community, at: datetime, now: datetime) -> CheckInResult:
    """Check the actor in. Someone the bot has no present membership for (in the group before the
    bot, or back without it noticing) is looked up in Telegram first, and recorded if present. A
    check-in made counts for the member's activity that day."""
    known = actor.member is not None and actor.member.community_id == community.id \
        and actor.member.status == MemberStatus.MEMBER
    if not known:
        await membership.admits(bot, session, community=community, user_id=actor.user.id)
    # The day's card is marked for its coalesced redraw in the check-in's own transaction. A press
    # that checks nothing in marks it too: the redraw then finds the card unchanged and sends nothing.
    await checkin_cards.mark_refresh(session, community_id=community.id, day=local_day(community, at), commit=False)
    result = await checkins.check_in(session, community=community, user_id=actor.user.id, at=at, now=now)
    if result.status is CheckInStatus.DONE:
        tracker.record_deed(chat_id=community.chat_id, chat_title=community.title, profile=actor.user.profile, at=at,
                            checkins=1)
    return result


@router.message(Command("checkin"))
async def cmd_checkin(message: Message, session: AsyncSession, actor: Actor, bot: Bot, membership: MembershipCheck,
                      tracker: ActivityTracker, sender: Sender, sessions: SessionFactory,
                      clock: Clock | None = None) -> None:
    community = actor.community
    if community is None:
        return
    now = received_at(clock)
    result = await record(session, bot, membership, tracker, actor, community, message.date, now)
    user_id = actor.user.id
    if await checkin_member.reachable(session, user_id=user_id):
        choice = await checkin_member.makeup_choice(session, community=community, user_id=user_id, at=message.date)
        sent = sender.send_message(user_id, result_text(result, community, actor.locale),
                                   reply_markup=result_markup(community, choice, actor.locale), durable=True)
        sent.add_done_callback(lambda done: _digest_if_refused(done, sessions, community.id, user_id, result, now))
    elif result.status is not CheckInStatus.NOT_MEMBER:
        await checkin_cards.add_notice(session, community_id=community.id, user_id=user_id, result=result, now=now)


def _digest_if_refused(done: asyncio.Future[Delivery], sessions: SessionFactory, community_id: int, user_id: int,
                       result: CheckInResult, now: datetime) -> None:
    """A member who blocked the bot since it last heard from them still learns their result."""
    if done.cancelled() or done.result().error != "forbidden" or result.status is CheckInStatus.NOT_MEMBER:
        return

    async def keep() -> None:
        async with sessions() as session:
            await checkin_cards.add_notice(session, community_id=community_id, user_id=user_id, result=result, now=now)

    task = asyncio.ensure_future(keep())
    _fallbacks.add(task)
    task.add_done_callback(_fallbacks.discard)


@router.callback_query(CheckinPress.filter())
async def on_card_press(query: CallbackQuery, callback_data: CheckinPress, session: AsyncSession, actor: Actor,
                        bot: Bot, membership: MembershipCheck, tracker: ActivityTracker,
                        clock: Clock | None = None) -> None:
    community = actor.community
    if community is None or community.id != callback_data.community_id:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    now = received_at(clock)
    result = await record(session, bot, membership, tracker, actor, community, now, now)
    # The toast first: it is what the member waits for; the card's redraw is for everyone, later.
    await query.answer(toast_text(result, community, actor.locale), show_alert=toast_alert(result))


@router.message(Command("top"))
async def cmd_top(message: Message, session: AsyncSession, actor: Actor, sender: Sender) -> None:
    community = actor.community
    if community is None:
        return
    now = message.date
    if await checkin_cards.claim_slot(session, community_id=community.id, slot=Slot.TOP, now=now, every=TOP_EVERY):
        reply_in_group(sender, message, await _leaderboard(session, community, now, community.default_locale))
    elif await checkin_member.reachable(session, user_id=actor.user.id):
        sender.send_message(actor.user.id, await _leaderboard(session, community, now, actor.locale), durable=True)


async def _leaderboard(session: AsyncSession, community: Community, now: datetime, locale: str) -> str:
    streaks = await checkins.top_streaks(session, community=community, now=now, limit=TOP_SIZE)
    month = await checkins.top_points_month(session, community=community, now=now, limit=TOP_SIZE)
    return leaderboard(community, streaks, month, locale)


@router.message(Command("points"))
async def cmd_points_in_group(message: Message, session: AsyncSession, actor: Actor, sender: Sender,
                              bot_username: str) -> None:
    community = actor.community
    if community is None:
        return
    if await checkin_member.reachable(session, user_id=actor.user.id):
        text, markup = await points_screen(session, community, actor.user.id, actor.locale, message.date)
        sender.send_message(actor.user.id, text, reply_markup=markup, durable=True)
    elif await checkin_cards.claim_slot(session, community_id=community.id, slot=Slot.HINT, now=message.date,
                                        every=HINT_EVERY):
        markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
            text=_("💰 My points"), url=deeplinks.build(bot_username, "points", community.id))]])
        reply_in_group(sender, message, _("Points and rewards are in our private chat."), markup)
