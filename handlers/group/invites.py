"""Invites in the group: whom a join is credited to, join requests, departures, `/invite` typed in
the group and `/top invites`.

- A `chat_member` join is attributed from what the update says (the link used, who acted) and any
  inviter named beforehand, before the membership row changes (`attribute`, called by onboarding):
  a rejoin is told from the row as it was. The first attribution wins, so a redelivered update
  changes nothing. A departure ends the invitee's pending invite and revokes the leaver's links.
- With "approve joins" on, member links create join requests: the bot approves the ones through a
  member's link that pass its checks (a bot, a banned person, a revoked link are declined) and
  credits the link's owner; requests through other links are left to the administrators.
- `/invite` in the group is answered in private; someone the bot cannot write to yet gets one short
  pointer in the group, at most one a minute per group (shared with /points' pointer).
- `/top invites` posts the inviters' board at most once a minute per group (the slot /top uses);
  an asker within that minute gets it in private if reachable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import ChatJoinRequest, ChatMemberUpdated, Message
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import checkin_cards, communities, invite_links, invite_stats, invites, members
from bot.services.checkin_cards import Slot
from bot.services.invite_settings import invite_settings
from bot.telegram.group_reply import reply_in_group
from bot.telegram.membership import MembershipCheck
from bot.telegram.middlewares.activity import GROUP_TYPES, profile_of
from bot.telegram.middlewares.actor import Actor
from bot.telegram.sender import Sender
from bot.views import deeplinks, invite_member
from handlers.member.invites import revoke_at_telegram, screen
from models import Community, MemberStatus, Via

log = logging.getLogger(__name__)
router = Router(name=__name__)
router.message.filter(F.chat.type.in_(GROUP_TYPES))

Clock = Callable[[], datetime]
BOARD_EVERY = timedelta(minutes=1)
HINT_EVERY = timedelta(minutes=1)
BOARD_SIZE = 10
# Telegram's answers to an approval or a decline of a request someone else handled first.
HANDLED_ALREADY = ("USER_ALREADY_PARTICIPANT", "HIDE_REQUESTER_MISSING")


async def attribute(update: ChatMemberUpdated, *, session: AsyncSession, bot: Bot, community: Community,
                    old: str, new: str) -> Via | None:
    """The invites' side of a `chat_member` change (`old`/`new`: `membership.presence`). Call it
    before `members.on_member_status`. Returns a join's source (None for anything else): the
    attribution's when this join made it, else what the update says."""
    person = update.new_chat_member.user
    was, present = old in members.PRESENT_STATUSES, new in members.PRESENT_STATUSES
    if present and not was:
        link = update.invite_link
        url = link.invite_link if link is not None else None
        via = invites.via_of(user_id=person.id, actor_id=update.from_user.id, link_url=url,
                             link_is_primary=bool(link and link.is_primary),
                             link_creator_id=link.creator.id if link is not None else None, bot_id=bot.id,
                             via_join_request=bool(update.via_join_request))
        made = await invites.attribute_join(session, community=community, profile=profile_of(person),
                                            is_bot=person.is_bot, via=via, joined_at=update.date, link_url=url)
        return Via(made.referral.via) if made is not None and made.created else via
    if was and not present:
        await invites.member_left(session, community_id=community.id, user_id=person.id, at=update.date)
        urls = await invite_links.revoke_links_of(session, community_id=community.id, user_id=person.id,
                                                  now=update.date)
        await revoke_at_telegram(bot, community.chat_id, urls)
    return None


def _received_at(clock: Clock | None) -> datetime:
    """When the bot handles a request: the approval's time (a request's `date` is when it was sent)."""
    return clock() if clock is not None else datetime.now(timezone.utc)


@router.chat_join_request(F.chat.type.in_(GROUP_TYPES))
async def on_join_request(request: ChatJoinRequest, session: AsyncSession, bot: Bot,
                          clock: Clock | None = None) -> None:
    community = await communities.get_by_chat(session, request.chat.id)
    if community is None or not invite_settings(community).enabled:
        return
    person = request.from_user
    url = request.invite_link.invite_link if request.invite_link is not None else None
    decision = await invites.should_approve(session, community=community, user_id=person.id, is_bot=person.is_bot,
                                            link_url=url)
    if decision.approve is None:
        return
    try:
        if not decision.approve:
            await bot.decline_chat_join_request(request.chat.id, person.id)
            log.info("join request of %s to community %s declined: %s", person.id, community.id, decision.reason)
            return
        await bot.approve_chat_join_request(request.chat.id, person.id)
    except TelegramBadRequest as exc:
        if not any(answer in exc.message for answer in HANDLED_ALREADY):
            raise
        log.info("join request of %s to community %s was handled already: %s", person.id, community.id, exc.message)
        return
    await invites.attribute_join(session, community=community, profile=profile_of(person), is_bot=person.is_bot,
                                 via=Via.JOIN_REQUEST, joined_at=_received_at(clock), link_url=url)


@router.message(Command("invite"))
async def cmd_invite_in_group(message: Message, session: AsyncSession, actor: Actor, bot: Bot, sender: Sender,
                              membership: MembershipCheck, bot_username: str) -> None:
    community = actor.community
    if community is None:
        return
    member = actor.member
    if member is None or member.status != MemberStatus.MEMBER:
        # In the group before the bot, or back without it noticing: Telegram says, and the row follows.
        await membership.admits(bot, session, community=community, user_id=actor.user.id)
    if actor.user.can_dm:
        text, markup = await screen(session, bot, sender, bot_username, community, actor.user.id, actor.locale,
                                    message.date)
        sender.send_message(actor.user.id, text, reply_markup=markup, durable=True)
    elif await checkin_cards.claim_slot(session, community_id=community.id, slot=Slot.HINT, now=message.date,
                                        every=HINT_EVERY):
        link = deeplinks.build(bot_username, invite_member.SCREEN_LINK, community.id)
        reply_in_group(sender, message, *invite_member.group_hint(link, actor.locale))


def _asks_for_invites(args: str | None) -> bool:
    return (args or "").strip().lower() in ("invites", "invite")


@router.message(Command("top", magic=F.args.func(_asks_for_invites)))
async def cmd_top_invites(message: Message, session: AsyncSession, actor: Actor, sender: Sender) -> None:
    community = actor.community
    if community is None:
        return
    if await checkin_cards.claim_slot(session, community_id=community.id, slot=Slot.TOP, now=message.date,
                                      every=BOARD_EVERY):
        reply_in_group(sender, message, await _board(session, community, community.default_locale))
    elif actor.user.can_dm:
        sender.send_message(actor.user.id, await _board(session, community, actor.locale), durable=True)


async def _board(session: AsyncSession, community: Community, locale: str) -> str:
    standings = await invite_stats.top_inviters(session, community_id=community.id, limit=BOARD_SIZE)
    return invite_member.top_text(community, standings, invite_settings(community), locale)
