"""Check-in jobs: the daily card, its coalesced redraws, the digest for members out of reach, the
reminders before a streak breaks, and points expiry. Each runs "as of" the moment it is given.

What they put into a group, at most (Telegram allows a bot 20 messages a minute there, edits too):
- the card: one message per community and local day (its row is claimed first), and its pin;
- card edits: one per card every CARD_EDIT_EVERY (6 a minute), only when the drawing changed;
- digests: one per community every DIGEST_EVERY (3 a minute), each holding as many results as
  fit in a message; the rest wait for the next one.
/top adds at most one message a minute (handlers/group/checkin.py). That leaves most of the
group's budget to everything else, and the sender's shared budget holds the rest to the limit.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from aiogram.methods import PinChatMessage, SendMessage, UnpinChatMessage
from aiogram.types import LinkPreviewOptions
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.locales import resolve_locale
from bot.jobs.registry import job
from bot.services import checkin_cards, checkins, job_marks, order_reports, points
from bot.services.checkin_settings import checkin_settings
from bot.telegram.context import BotContext
from bot.views.card_edits import edit_card
from bot.views.cards import fingerprint
from bot.views.checkin_card import card_markup, card_text, digest, pin_right_text
from bot.views.checkin_text import reminder_markup, reminder_text
from models import Community
from models.checkin_card import CheckinCard

log = logging.getLogger(__name__)

CARD_EDIT_EVERY = timedelta(seconds=10)
DIGEST_COLLECT = timedelta(seconds=20)  # the first result waits this long for others to join it
DIGEST_EVERY = timedelta(seconds=20)
DIGEST_LINES = 60


# --- the daily card -------------------------------------------------------------------------------

async def _draw(ctx: BotContext, community: Community, card: CheckinCard, now: datetime):
    async with ctx.sessions() as session:
        facts = await checkin_cards.card_facts(session, community=community, day=card.day, now=now)
    locale = community.default_locale
    return card_text(facts, locale), card_markup(community, locale)


async def _post(ctx: BotContext, community: Community, day, now: datetime) -> str:
    async with ctx.sessions() as session:
        card = await checkin_cards.claim_card(session, community=community, day=day, now=now)
    if card is None:
        return "skipped"
    text, markup = await _draw(ctx, community, card, now)
    delivery = await ctx.sender.submit(SendMessage(chat_id=community.chat_id, text=text, reply_markup=markup,
                                                   parse_mode="HTML",
                                                   link_preview_options=LinkPreviewOptions(is_disabled=True)))
    async with ctx.sessions() as session:
        if not delivery.ok:
            log.info("check-in card of community %s not sent: %s %s", community.id, delivery.error,
                     delivery.description)
            if delivery.error == "gave_up":
                await checkin_cards.drop_card(session, card_id=card.id)
            return "failed"
        await checkin_cards.card_posted(session, card_id=card.id, message_id=delivery.message.message_id,
                                        rendered=fingerprint(text, markup), now=now)
    if checkin_settings(community).pin_card:
        await _pin(ctx, community, card, delivery.message.message_id, now)
    return "posted"


async def _pin(ctx: BotContext, community: Community, card: CheckinCard, message_id: int, now: datetime) -> None:
    """Pin the new card quietly and unpin the earlier ones; without the right, tell the leaders."""
    allowed = community.bot_status == "administrator" and community.bot_rights.get("can_pin_messages")
    if allowed:
        pinned = await ctx.sender.submit(PinChatMessage(chat_id=community.chat_id, message_id=message_id,
                                                        disable_notification=True))
        allowed = pinned.ok
        if not pinned.ok:
            log.info("check-in card of community %s not pinned: %s", community.id, pinned.description)
    if not allowed:
        await _tell_pin_right(ctx, community, now)
        return
    async with ctx.sessions() as session:
        await checkin_cards.set_pinned(session, card_id=card.id, pinned=True)
        earlier = await checkin_cards.pinned_before(session, community_id=community.id, day=card.day)
    for old in earlier:
        if old.message_id is not None:
            await ctx.sender.submit(UnpinChatMessage(chat_id=community.chat_id, message_id=old.message_id))
        async with ctx.sessions() as session:
            await checkin_cards.set_pinned(session, card_id=old.id, pinned=False)


async def _tell_pin_right(ctx: BotContext, community: Community, now: datetime) -> None:
    """Once a week at most: a leader who wants the card pinned hears why it is not."""
    year, week, _day = now.isocalendar()
    async with ctx.sessions() as session:
        if not await job_marks.claim(session, job="checkin_pin_right", key=f"{community.id}:{year}-{week}", now=now):
            await session.rollback()
            return
        await session.commit()
        leaders = await order_reports.summary_recipients(session, community_id=community.id)
    for leader in leaders:
        locale = resolve_locale(leader, community, community.default_locale)
        ctx.sender.send_message(leader.id, pin_right_text(community, locale))


@job("post_checkin_cards", "Post each community's daily check-in card at its local card time (pinned if asked)",
     trigger="interval", minutes=1, at_start=True)
async def post_checkin_cards(ctx: BotContext, now: datetime) -> str:
    async with ctx.sessions() as session:
        due = await checkin_cards.cards_due(session, now=now)
    results = await asyncio.gather(*(_post(ctx, community, day, now) for community, day in due))
    return ", ".join(f"{results.count(kind)} {kind}" for kind in ("posted", "failed", "skipped"))


async def _refresh(ctx: BotContext, card: CheckinCard, now: datetime) -> str:
    async with ctx.sessions() as session:
        community = await session.get(Community, card.community_id)
    if community is None or not community.active:
        return "skipped"
    text, markup = await _draw(ctx, community, card, now)

    async def record(session: AsyncSession, drawn: str | None) -> None:
        await checkin_cards.set_rendered(session, card_id=card.id, rendered=drawn)

    return await edit_card(ctx, chat_id=card.chat_id, message_id=card.message_id, text=text, markup=markup,
                           shown=card.rendered, record=record, label=f"check-in card {card.id}")


@job("refresh_checkin_cards", "Redraw check-in cards that check-ins changed, at most once per card every 10 s",
     trigger="interval", seconds=3)
async def refresh_checkin_cards(ctx: BotContext, now: datetime) -> str:
    async with ctx.sessions() as session:
        stale = await checkin_cards.claim_stale(session, now=now, spacing=CARD_EDIT_EVERY)
    results = await asyncio.gather(*(_refresh(ctx, card, now) for card in stale))
    return ", ".join(f"{results.count(kind)} {kind}" for kind in ("edited", "unchanged", "failed", "skipped"))


# --- results for members out of reach -------------------------------------------------------------

async def _digest(ctx: BotContext, community_id: int, now: datetime) -> int:
    async with ctx.sessions() as session:
        community = await session.get(Community, community_id)
        claimed = await checkin_cards.claim_digest(session, community_id=community_id, now=now, spacing=DIGEST_EVERY,
                                                   limit=DIGEST_LINES)
    if not claimed or community is None:
        return 0
    text, markup, shown = digest(claimed, community.default_locale, ctx.bot_username)
    left = [line.notice.id for line in claimed if line not in shown]
    delivery = await ctx.sender.send_message(community.chat_id, text, reply_markup=markup)
    async with ctx.sessions() as session:
        if not delivery.ok and delivery.error == "gave_up":
            left += [line.notice.id for line in shown]
        if left:
            await checkin_cards.release_digest(session, notice_ids=left)
    return len(shown) if delivery.ok else 0


@job("checkin_digest", "Tell members the bot cannot write to their /checkin results: one group message for many, "
     "at most one per group every 20 s", trigger="interval", seconds=5)
async def checkin_digest(ctx: BotContext, now: datetime) -> str:
    async with ctx.sessions() as session:
        due = await checkin_cards.digests_due(session, now=now, collect=DIGEST_COLLECT, spacing=DIGEST_EVERY)
    told = await asyncio.gather(*(_digest(ctx, community_id, now) for community_id in due))
    return f"{sum(1 for n in told if n)} digests, {sum(told)} results"


# --- reminders and expiry -------------------------------------------------------------------------

@job("checkin_reminders", "Remind members whose streak breaks tonight, once a day, in private and outside quiet hours",
     trigger="interval", minutes=5)
async def checkin_reminders(ctx: BotContext, now: datetime) -> str:
    sends = []
    async with ctx.sessions() as session:
        for community in await checkin_cards.active_communities(session):
            for reminder in await checkins.reminder_candidates(session, community=community, now=now):
                key = f"{reminder.community_id}:{reminder.user_id}:{reminder.day.isoformat()}"
                if not await job_marks.claim(session, job="checkin_reminder", key=key, now=now):
                    continue
                locale = resolve_locale(reminder, community, community.default_locale)
                sends.append((reminder.user_id, reminder_text(reminder.streak, community, locale),
                              reminder_markup(community, locale)))
        # Claimed before anything is sent: a second run, or a crash after sending, never repeats one.
        await session.commit()
    deliveries = await asyncio.gather(*(ctx.sender.send_message(user_id, text, reply_markup=markup)
                                        for user_id, text, markup in sends))
    return f"{sum(1 for d in deliveries if d.ok)} sent, {sum(1 for d in deliveries if not d.ok)} failed"


@job("expire_points", "Expire points older than each community's expiry setting, oldest first, once a local day",
     trigger="interval", hours=1)
async def expire_points(ctx: BotContext, now: datetime) -> str:
    expired = members = 0
    async with ctx.sessions() as session:
        for community in await checkin_cards.active_communities(session, checkins_on=False):
            if not checkin_settings(community).points_expiry_months:
                continue
            gone = await points.expire(session, community=community, as_of=now)
            members += len(gone)
            expired += sum(e.points for e in gone)
    return f"{expired} points of {members} members"
