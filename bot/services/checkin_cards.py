"""The check-in feature's messages in a group, and how often the group hears from it.

A group allows a bot 20 messages a minute (edits included), so everything the check-ins put there
is bounded by database state, whatever the number of members acting:

- the daily card: one per community and local day, claimed (a unique row) before it is sent; a
  check-in marks it for a redraw, and the refresh job claims a marked card at most once per
  `spacing`, so any number of check-ins make at most one edit per interval;
- results owed to members the bot cannot write to in private wait as notices, one per member and
  day, and leave together as one digest per group at most once per interval;
- the leaderboard and the pointer to the private chat are claimed per group and interval with a
  conditional UPDATE (`claim_slot`), so concurrent askers get one message between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import checkins
from bot.services.checkin_settings import checkin_settings
from bot.services.checkins import CheckInResult, Standing
from bot.services.upsert import insert_for
from models import CheckIn, CheckInKind, Community, User
from models.checkin_card import CheckinCard, CheckinChat, CheckinNotice

CARD_TOP = 5  # top streaks a card lists


# --- the daily card -------------------------------------------------------------------------------

async def active_communities(session: AsyncSession, *, checkins_on: bool = True) -> list[Community]:
    """Active communities; with `checkins_on`, those with check-ins on (the switch is in the
    settings' JSON: read here)."""
    found = await session.exec(select(Community).where(col(Community.active)).order_by(Community.id))
    return [community for community in found if not checkins_on or checkin_settings(community).enabled]


async def cards_due(session: AsyncSession, *, now: datetime) -> list[tuple[Community, date]]:
    """Active communities whose card time has passed in their local day and whose card for that
    day was not claimed yet."""
    due: list[tuple[Community, date]] = []
    for community in await active_communities(session):
        settings = checkin_settings(community)
        if settings.card_time is None:
            continue
        local = now.astimezone(ZoneInfo(community.timezone))
        if local.time() >= time.fromisoformat(settings.card_time):
            due.append((community, local.date()))
    if not due:
        return []
    claimed = set((await session.execute(select(CheckinCard.community_id, CheckinCard.day).where(
        col(CheckinCard.community_id).in_([c.id for c, _ in due]),
        col(CheckinCard.day) >= min(day for _, day in due)))).all())
    return [(community, day) for community, day in due if (community.id, day) not in claimed]


async def claim_card(session: AsyncSession, *, community: Community, day: date, now: datetime) -> CheckinCard | None:
    """The day's card row, created now, or None when another run claimed it first. Commits."""
    inserted = await session.execute(
        insert_for(session, CheckinCard.__table__).values(
            community_id=community.id, day=day, chat_id=community.chat_id, refresh_due=False, pinned=False,
            created_at=now).on_conflict_do_nothing(index_elements=["community_id", "day"]))
    await session.commit()
    if inserted.rowcount != 1:
        return None
    return (await session.exec(select(CheckinCard).where(CheckinCard.community_id == community.id,
                                                         CheckinCard.day == day))).one()


async def card_posted(session: AsyncSession, *, card_id: int, message_id: int, rendered: str, now: datetime) -> None:
    await session.execute(update(CheckinCard).where(CheckinCard.id == card_id).values(
        message_id=message_id, rendered=rendered, edited_at=now))
    await session.commit()


async def drop_card(session: AsyncSession, *, card_id: int) -> None:
    """The card could not be sent for a passing reason: the next run claims the day again."""
    await session.execute(CheckinCard.__table__.delete().where(CheckinCard.__table__.c.id == card_id,
                                                               CheckinCard.__table__.c.message_id.is_(None)))
    await session.commit()


async def pinned_before(session: AsyncSession, *, community_id: int, day: date) -> list[CheckinCard]:
    """Earlier cards of the community still pinned (normally yesterday's)."""
    return list(await session.exec(select(CheckinCard).where(
        CheckinCard.community_id == community_id, col(CheckinCard.pinned), CheckinCard.day < day)))


async def set_pinned(session: AsyncSession, *, card_id: int, pinned: bool) -> None:
    await session.execute(update(CheckinCard).where(CheckinCard.id == card_id).values(pinned=pinned))
    await session.commit()


async def card_of(session: AsyncSession, *, card_id: int) -> CheckinCard | None:
    return await session.get(CheckinCard, card_id, populate_existing=True)


async def mark_refresh(session: AsyncSession, *, community_id: int, day: date, commit: bool = True) -> None:
    """A check-in on `day` changed what that day's card shows. Cheap when it is marked already:
    the UPDATE then matches nothing. With `commit=False` it rides on the caller's transaction (a
    check-in's own, saving a round trip per press in a rush)."""
    await session.execute(update(CheckinCard).where(
        CheckinCard.community_id == community_id, CheckinCard.day == day, col(CheckinCard.message_id).is_not(None),
        col(CheckinCard.refresh_due).is_(False)).values(refresh_due=True))
    if commit:
        await session.commit()


async def claim_stale(session: AsyncSession, *, now: datetime, spacing: timedelta,
                      limit: int = 100) -> list[CheckinCard]:
    """Marked cards last sent or edited at least `spacing` ago; each claimed (mark cleared, edit
    time set) so the next claim waits another interval. Commits."""
    cutoff = now - spacing
    stale = list(await session.exec(select(CheckinCard.id).where(
        col(CheckinCard.refresh_due), col(CheckinCard.message_id).is_not(None),
        or_(col(CheckinCard.edited_at).is_(None), col(CheckinCard.edited_at) <= cutoff))
        .order_by(CheckinCard.id).limit(limit)))
    claimed = []
    for card_id in stale:
        result = await session.execute(update(CheckinCard).where(CheckinCard.id == card_id, col(CheckinCard.refresh_due))
                                       .values(refresh_due=False, edited_at=now))
        if result.rowcount == 1:
            claimed.append(card_id)
    await session.commit()
    if not claimed:
        return []
    return list(await session.exec(select(CheckinCard).where(col(CheckinCard.id).in_(claimed))
                                   .order_by(CheckinCard.id).execution_options(populate_existing=True)))


async def set_rendered(session: AsyncSession, *, card_id: int, rendered: str | None) -> None:
    """What the card shows after an edit; None: the edit did not get through, mark it again."""
    values = {"rendered": rendered} if rendered is not None else {"refresh_due": True}
    await session.execute(update(CheckinCard).where(CheckinCard.id == card_id).values(**values))
    await session.commit()


@dataclass(frozen=True, slots=True)
class CardFacts:
    community: Community
    day: date
    checked_in: int
    top: list[Standing]


async def card_facts(session: AsyncSession, *, community: Community, day: date, now: datetime) -> CardFacts:
    """What the card of `day` shows: check-ins that day, and the longest streaks as they stand `now`."""
    count = await session.execute(select(func.count()).select_from(CheckIn).where(
        CheckIn.community_id == community.id, CheckIn.day == day, CheckIn.kind == CheckInKind.CHECKIN))
    top = await checkins.top_streaks(session, community=community, now=now, limit=CARD_TOP)
    return CardFacts(community, day, int(count.scalar_one()), top)


# --- results owed to members out of reach, as digests ---------------------------------------------

async def add_notice(session: AsyncSession, *, community_id: int, user_id: int, result: CheckInResult,
                     now: datetime) -> bool:
    """Keep a result for the group's next digest; False when this member already has one for the
    day (repeating /checkin adds nothing to the group). Commits."""
    bonus = sum(grant.points for grant in result.milestones)
    coupon = any(grant.coupon is not None for grant in result.milestones)
    inserted = await session.execute(
        insert_for(session, CheckinNotice.__table__).values(
            community_id=community_id, user_id=user_id, day=result.day, status=result.status.value,
            points=result.points, bonus=bonus, coupon=coupon, streak=result.streak, created_at=now)
        .on_conflict_do_nothing(index_elements=["community_id", "user_id", "day"]))
    await session.commit()
    return inserted.rowcount == 1


async def digests_due(session: AsyncSession, *, now: datetime, collect: timedelta, spacing: timedelta) -> list[int]:
    """Communities with results waiting at least `collect` and no digest within `spacing`."""
    waiting = (select(CheckinNotice.community_id).where(col(CheckinNotice.sent_at).is_(None))
               .group_by(CheckinNotice.community_id)
               .having(func.min(CheckinNotice.created_at) <= now - collect).subquery())
    rows = await session.execute(
        select(waiting.c.community_id).select_from(waiting)
        .join(CheckinChat, CheckinChat.community_id == waiting.c.community_id, isouter=True)
        .where(or_(col(CheckinChat.digest_at).is_(None), col(CheckinChat.digest_at) <= now - spacing))
        .order_by(waiting.c.community_id))
    return list(rows.scalars())


@dataclass(frozen=True, slots=True)
class Line:
    notice: CheckinNotice
    user: User


async def claim_digest(session: AsyncSession, *, community_id: int, now: datetime, spacing: timedelta,
                       limit: int) -> list[Line]:
    """The oldest `limit` waiting results of one community, claimed for a digest sent now (empty
    when another digest went out within `spacing`). Commits."""
    if not await claim_slot(session, community_id=community_id, slot=Slot.DIGEST, now=now, every=spacing):
        return []
    ids = list(await session.exec(select(CheckinNotice.id).where(
        CheckinNotice.community_id == community_id, col(CheckinNotice.sent_at).is_(None))
        .order_by(CheckinNotice.created_at, CheckinNotice.id).limit(limit)))
    if not ids:
        await session.commit()
        return []
    await session.execute(update(CheckinNotice).where(col(CheckinNotice.id).in_(ids), col(CheckinNotice.sent_at).is_(None))
                          .values(sent_at=now))
    await session.commit()
    rows = await session.exec(select(CheckinNotice, User).join(User, User.id == CheckinNotice.user_id)
                              .where(col(CheckinNotice.id).in_(ids), CheckinNotice.sent_at == now)
                              .order_by(CheckinNotice.created_at, CheckinNotice.id))
    return [Line(notice, user) for notice, user in rows]


async def release_digest(session: AsyncSession, *, notice_ids: list[int]) -> None:
    """The digest did not get through for a passing reason: its results wait for the next one."""
    await session.execute(update(CheckinNotice).where(col(CheckinNotice.id).in_(notice_ids)).values(sent_at=None))
    await session.commit()


# --- once per interval per group ------------------------------------------------------------------

class Slot(StrEnum):
    TOP = "top_at"
    DIGEST = "digest_at"
    HINT = "hint_at"


async def claim_slot(session: AsyncSession, *, community_id: int, slot: Slot, now: datetime,
                     every: timedelta) -> bool:
    """True for one caller per group and `every`: the group may get that message now. Commits."""
    await session.execute(insert_for(session, CheckinChat.__table__).values(community_id=community_id)
                          .on_conflict_do_nothing(index_elements=["community_id"]))
    column = getattr(CheckinChat, slot.value)
    result = await session.execute(update(CheckinChat).where(
        CheckinChat.community_id == community_id, or_(col(column).is_(None), col(column) <= now - every))
        .values({slot.value: now}))
    await session.commit()
    return result.rowcount == 1
