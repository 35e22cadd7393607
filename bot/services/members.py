"""Members joining, leaving and changing role, as `chat_member` updates (or `getChatMember`) report
them, and which communities count as a user's own when their lists are shown."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, insert, literal, union
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.upsert import insert_for
from bot.services.users import Profile, upsert_user
from models import Community, Member, MembershipChange, MembershipEvent, MemberStatus, Via
from models.shop import Coupon, Order
from models.types import UTCDateTime

LEADER_STATUSES = ("creator", "administrator")
PRESENT_STATUSES = ("creator", "administrator", "member", "restricted")


async def get(session: AsyncSession, *, community_id: int, user_id: int) -> Member | None:
    result = await session.exec(select(Member).where(Member.community_id == community_id, Member.user_id == user_id))
    return result.first()


async def in_chat(session: AsyncSession, *, chat_id: int, user_id: int) -> tuple[Community | None, Member | None]:
    """The community of a group chat and the user's membership there, in one query (every group
    update of a person asks for both)."""
    row = (await session.exec(select(Community, Member).outerjoin(
        Member, (Member.community_id == Community.id) & (Member.user_id == user_id)).where(
        Community.chat_id == chat_id))).first()
    return (row[0], row[1]) if row is not None else (None, None)


async def ensure(session: AsyncSession, *, community_id: int, user_id: int, now: datetime) -> Member:
    """The membership row, created (as a present member since `now`) if missing. Does not commit.

    A join arrives twice at once (the chat_member update and the service message), and the
    activity flusher inserts members in batches meanwhile, so the row is created with INSERT ...
    ON CONFLICT DO NOTHING rather than a check followed by an insert.
    """
    stmt = insert_for(session, Member.__table__).values(
        community_id=community_id, user_id=user_id, status=MemberStatus.MEMBER.value, is_leader=False,
        joined_at=now, message_count=0, invite_depth=0,
    ).on_conflict_do_nothing(index_elements=["community_id", "user_id"])
    await session.execute(stmt)
    result = await session.exec(
        select(Member).where(Member.community_id == community_id, Member.user_id == user_id).execution_options(populate_existing=True)
    )
    return result.one()


async def on_member_status(
    session: AsyncSession,
    *,
    community: Community,
    profile: Profile,
    old_status: str,
    new_status: str,
    now: datetime,
    via: Via | None = None,
) -> Member:
    """Apply a `chat_member` change (join, leave, kick, promotion) and commit.

    `now` is the update's own date, so a late delivery still records when it happened.

    `via` says Telegram reported this change (a `chat_member` update or a service message) and, for
    a join, how the person came: a join (absent -> present, rejoins too) or a leave (present ->
    absent; its via "left" or "kicked") is then recorded as a membership event, in the same
    transaction, unless the person's latest event is this very change at this very time (a
    redelivered update; a leave and a rejoin within the same second are two changes). Without
    `via` (a status learned by asking Telegram, or a promotion) no event is recorded.
    """
    await upsert_user(session, profile, now=now)
    member = await ensure(session, community_id=community.id, user_id=profile.id, now=now)
    present = new_status in PRESENT_STATUSES
    was_present = old_status in PRESENT_STATUSES
    if present:
        if not was_present or member.status != MemberStatus.MEMBER:
            member.joined_at = now if member.status != MemberStatus.MEMBER else member.joined_at
            member.left_at = None
        member.status = MemberStatus.MEMBER
    else:
        member.status = MemberStatus.KICKED if new_status == "kicked" else MemberStatus.LEFT
        member.left_at = now
    member.is_leader = new_status in LEADER_STATUSES
    if via is not None and present != was_present:
        change = MembershipChange.JOIN if present else MembershipChange.LEAVE
        source = via if present else (MemberStatus.KICKED if new_status == "kicked" else MemberStatus.LEFT)
        await session.execute(_record_event(community.id, profile.id, change, str(source), now))
    await session.commit()
    return member


def _record_event(community_id: int, user_id: int, change: MembershipChange, via: str, at: datetime):
    e = MembershipEvent.__table__.c
    latest = (select(e.id).where(e.community_id == community_id, e.user_id == user_id)
              .order_by(e.at.desc(), e.id.desc()).limit(1).scalar_subquery())
    again = exists().where(e.id == latest, e.change == change.value, e.at == literal(at, UTCDateTime))
    row = select(literal(community_id), literal(user_id), literal(change.value), literal(via), literal(at, UTCDateTime))
    return insert(MembershipEvent.__table__).from_select(["community_id", "user_id", "change", "via", "at"],
                                                         row.where(~again))


async def communities_of(session: AsyncSession, *, user_id: int, active_only: bool = False) -> list[Community]:
    """The communities whose lists (coupons, group-buys) are this user's, by title.

    A present member row says so. So do orders or own coupons there, unless a row says the user
    left or was removed: someone who was in the group before the bot joined, and has bought
    through a link but never written in the group, may have no row yet.
    """
    rows = select(Member.community_id).where(Member.user_id == user_id)
    present = rows.where(Member.status == MemberStatus.MEMBER)
    gone = rows.where(Member.status != MemberStatus.MEMBER)
    traces = union(select(Order.community_id).where(Order.user_id == user_id),
                   select(Coupon.community_id).where(Coupon.owner_id == user_id))
    query = select(Community).where(col(Community.id).in_(present)
                                    | (col(Community.id).in_(traces) & col(Community.id).not_in(gone)))
    if active_only:
        query = query.where(col(Community.active))
    return list(await session.exec(query.order_by(Community.title, Community.id)))
