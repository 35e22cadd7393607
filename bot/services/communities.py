"""Communities: the bot joining and leaving groups, its rights, leaders, and who sees which."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import audit, members
from bot.services.upsert import insert_for
from bot.services.users import Profile, upsert_user
from models import AuditLog, Community, Member, MemberStatus
from models.community import BOT_STATUS_UNKNOWN

LEADER_REFRESH_INTERVAL = timedelta(hours=1)
ID_MAX = 2**31 - 1  # INTEGER primary keys
ACTIVE_BOT_STATUSES = ("member", "administrator", "restricted")


class Change(StrEnum):
    ADDED = "added"  # first time in this group
    RETURNED = "returned"  # re-added after being removed; its data is intact
    RIGHTS_CHANGED = "rights_changed"
    REMOVED = "removed"
    UNCHANGED = "unchanged"


@dataclass(slots=True)
class BotStatusResult:
    community: Community
    change: Change
    missing_rights: list[str] = field(default_factory=list)
    # True when the leader list should be fetched from Telegram now.
    refresh_leaders: bool = False


async def get_by_chat(session: AsyncSession, chat_id: int) -> Community | None:
    result = await session.exec(select(Community).where(Community.chat_id == chat_id))
    return result.first()


async def get(session: AsyncSession, community_id: int) -> Community | None:
    return await session.get(Community, community_id)


async def on_bot_status(
    session: AsyncSession,
    *,
    chat_id: int,
    title: str,
    status: str,
    rights: dict[str, bool],
    default_locale: str,
    default_timezone: str,
    now: datetime,
) -> BotStatusResult:
    """Apply a `my_chat_member` change for the bot in a group and commit.

    Removal only deactivates: products, orders and members stay for when the bot comes back.
    """
    community = await get_by_chat(session, chat_id)
    present = status in ACTIVE_BOT_STATUSES
    rights = {k: bool(v) for k, v in rights.items()} if status == "administrator" else {}
    if community is None:
        if not present:
            # Removed from a group it never knew (e.g. added and removed while the bot was down).
            community = Community(chat_id=chat_id, title=title, active=False, bot_status=status,
                                  default_locale=default_locale, timezone=default_timezone,
                                  created_at=now, updated_at=now)
            session.add(community)
            await session.commit()
            return BotStatusResult(community, Change.REMOVED)
        # INSERT ... ON CONFLICT: the activity flusher may be starting a placeholder for this chat
        # right now (the "bot added" service message arrives together with this update).
        await session.execute(insert_for(session, Community.__table__).values(
            chat_id=chat_id, title=title, timezone=default_timezone, currency="USD", default_locale=default_locale,
            active=True, bot_status=status, bot_rights=rights, settings={}, created_at=now, updated_at=now,
        ).on_conflict_do_nothing(index_elements=["chat_id"]))
        community = (await session.exec(
            select(Community).where(Community.chat_id == chat_id).execution_options(populate_existing=True))).one()
        change = Change.ADDED
    elif community.bot_status == BOT_STATUS_UNKNOWN:
        # A placeholder started from chatter: this is the first word of the bot's own status.
        change = Change.ADDED if present else Change.REMOVED
    elif not present:
        change = Change.REMOVED if community.active else Change.UNCHANGED
    elif not community.active:
        change = Change.RETURNED
    elif community.bot_status != status or community.bot_rights != rights:
        change = Change.RIGHTS_CHANGED
    else:
        change = Change.UNCHANGED

    community.title = title or community.title
    community.bot_status = status
    community.bot_rights = rights
    community.active = present
    community.updated_at = now
    if change is not Change.UNCHANGED:
        audit.record(session, community_id=community.id, actor_id=None, action=f"bot.{change.value}",
                     details={"status": status, "rights": sorted(k for k, v in rights.items() if v)}, now=now)
    await session.commit()
    return BotStatusResult(
        community,
        change,
        missing_rights=community.missing_rights if present else [],
        refresh_leaders=present and change is not Change.UNCHANGED,
    )


async def migrate_chat(session: AsyncSession, *, old_chat_id: int, new_chat_id: int, now: datetime) -> None:
    """A group upgraded to a supergroup gets a new chat id; the community follows it, and commits.

    Chatter from the new supergroup can arrive before the migration notice, and the activity
    tracker then starts a placeholder community for the new id. Its members fold into the real
    community and the placeholder goes.
    """
    community = await get_by_chat(session, old_chat_id)
    if community is None:
        return
    placeholder = await get_by_chat(session, new_chat_id)
    if placeholder is not None:
        already = select(Member.user_id).where(Member.community_id == community.id)
        await session.execute(
            delete(Member).where(Member.community_id == placeholder.id, col(Member.user_id).in_(already))
        )
        await session.execute(update(Member).where(Member.community_id == placeholder.id).values(community_id=community.id))
        await session.execute(update(AuditLog).where(AuditLog.community_id == placeholder.id).values(community_id=community.id))
        await session.delete(placeholder)
        await session.flush()
    community.chat_id = new_chat_id
    community.updated_at = now
    audit.record(session, community_id=community.id, actor_id=None, action="bot.migrated",
                 details={"from": old_chat_id, "to": new_chat_id}, now=now)
    await session.commit()


def leaders_stale(community: Community, now: datetime) -> bool:
    return community.leaders_refreshed_at is None or now - community.leaders_refreshed_at >= LEADER_REFRESH_INTERVAL


async def set_leaders(session: AsyncSession, *, community_id: int, admins: list[Profile], now: datetime) -> None:
    """Replace the leader set with Telegram's current creator + administrators, and commit."""
    admin_ids = {p.id for p in admins}
    for profile in admins:
        await upsert_user(session, profile, now=now)
        # Insert-or-get: the activity flusher and join handlers create member rows concurrently.
        member = await members.ensure(session, community_id=community_id, user_id=profile.id, now=now)
        member.is_leader = True
        if member.status != MemberStatus.MEMBER:
            member.status, member.left_at = MemberStatus.MEMBER, None
    await session.execute(
        update(Member)
        .where(Member.community_id == community_id, col(Member.is_leader), col(Member.user_id).not_in(admin_ids))
        .values(is_leader=False)
    )
    await session.execute(update(Community).where(Community.id == community_id).values(leaders_refreshed_at=now))
    await session.commit()


async def _member(session: AsyncSession, community_id: int, user_id: int) -> Member | None:
    result = await session.exec(select(Member).where(Member.community_id == community_id, Member.user_id == user_id))
    return result.first()


async def is_leader(session: AsyncSession, *, community_id: int, user_id: int) -> bool:
    member = await _member(session, community_id, user_id)
    return bool(member and member.is_leader and member.status == MemberStatus.MEMBER)


async def manageable(session: AsyncSession, *, user_id: int, is_owner: bool) -> list[Community]:
    """Communities this user may administer: every one for an owner, their own for a leader."""
    query = select(Community).order_by(col(Community.active).desc(), Community.title, Community.id)
    if not is_owner:
        query = query.join(Member, Member.community_id == Community.id).where(
            Member.user_id == user_id, col(Member.is_leader), Member.status == MemberStatus.MEMBER
        )
    return list(await session.exec(query))


async def can_manage(session: AsyncSession, *, community_id: int, user_id: int, is_owner: bool) -> Community | None:
    """The community if this user may administer it right now, else None. Re-checked on every action.

    The id usually comes from callback data, which a client can forge: one outside the key's
    range is simply unknown (PostgreSQL would refuse it as a query argument)."""
    if not 0 < community_id <= ID_MAX:
        return None
    community = await session.get(Community, community_id)
    if community is None:
        return None
    if is_owner or await is_leader(session, community_id=community_id, user_id=user_id):
        return community
    return None


async def stale_leader_communities(session: AsyncSession, *, now: datetime, limit: int = 100) -> list[Community]:
    # `<=`: the same boundary as `leaders_stale` (exactly one hour old is stale).
    cutoff = now - LEADER_REFRESH_INTERVAL
    result = await session.exec(
        select(Community)
        .where(col(Community.active), (col(Community.leaders_refreshed_at).is_(None)) | (col(Community.leaders_refreshed_at) <= cutoff))
        .order_by(Community.id)
        .limit(limit)
    )
    return list(result)


async def deactivate(session: AsyncSession, *, chat_id: int, now: datetime) -> None:
    """The group refused us (403 on send): stop treating it as active until the bot is re-added."""
    await session.execute(
        update(Community).where(Community.chat_id == chat_id, col(Community.active)).values(active=False, updated_at=now)
    )
    await session.commit()
