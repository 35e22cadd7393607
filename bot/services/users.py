"""Users: profile upserts, language, reachability, marketing consent, data export and erasure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import invite_privacy
from bot.services.errors import DomainError
from bot.services.upsert import insert_for
from models import ActivityDay, AuditLog, Community, Member, MembershipEvent, User


@dataclass(frozen=True, slots=True)
class Profile:
    """What Telegram tells us about a user on every update."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


def _fresh(profile: Profile) -> dict:
    return {
        "first_name": profile.first_name[:128],
        "last_name": profile.last_name[:128] if profile.last_name else None,
        "username": profile.username,
        "language_code": profile.language_code,
    }


def new_user_row(profile: Profile, *, now: datetime, can_dm: bool) -> dict:
    """The users row of someone the bot has not stored (or has erased): the profile as Telegram
    sends it, no consent or choice assumed."""
    return {"id": profile.id, **_fresh(profile), "locale": None, "can_dm": can_dm, "marketing_opt_out": False,
            "erased": False, "created_at": now, "updated_at": now}


async def upsert_user(session: AsyncSession, profile: Profile, *, now: datetime) -> User:
    """Create the user or refresh the profile fields that changed. Does not commit.

    Two updates from one user can be handled at once, and the activity flusher inserts users in
    batches, so the row is created with INSERT ... ON CONFLICT DO NOTHING rather than a check
    followed by an insert. An erased user who comes back starts as a new person: their profile is
    stored again only because they are talking to the bot now.
    """
    fresh = _fresh(profile)
    user = await session.get(User, profile.id)
    if user is None:
        # The new row comes back through RETURNING: one statement instead of an INSERT and a
        # second SELECT (on SQLite every statement is several thread hand-offs). No row back means
        # another update created the user first; then it is read as usual.
        stmt = insert_for(session, User).on_conflict_do_nothing(index_elements=["id"]).returning(User)
        user = (await session.scalars(stmt, [new_user_row(profile, now=now, can_dm=False)])).one_or_none()
        if user is None:
            user = await session.get(User, profile.id)
    changed = {k: v for k, v in fresh.items() if getattr(user, k) != v}
    if changed or user.erased:
        for key, value in changed.items():
            setattr(user, key, value)
        user.erased = False
        user.updated_at = now
    return user


async def set_locale(session: AsyncSession, *, user_id: int, locale: str, now: datetime) -> None:
    from bot.core.locales import LOCALES

    if locale not in LOCALES:
        raise DomainError("unknown_locale", locale=locale)
    await session.execute(update(User).where(User.id == user_id).values(locale=locale, updated_at=now))
    await session.commit()


async def set_can_dm(session: AsyncSession, *, user_id: int, can_dm: bool, now: datetime) -> None:
    """Record whether a private message can reach the user (Start pressed, not blocked)."""
    await session.execute(
        update(User).where(User.id == user_id, User.can_dm != can_dm).values(can_dm=can_dm, updated_at=now)
    )
    await session.commit()


async def set_marketing_opt_out(session: AsyncSession, *, user_id: int, opt_out: bool, now: datetime) -> None:
    await session.execute(
        update(User).where(User.id == user_id).values(marketing_opt_out=opt_out, updated_at=now)
    )
    await session.commit()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def export_data(session: AsyncSession, *, user_id: int) -> dict:
    """Everything the bot holds about one user, as a JSON-ready document (/mydata)."""
    user = await session.get(User, user_id)
    if user is None:
        raise DomainError("unknown_user")
    rows = await session.exec(
        select(Member, Community).join(Community, Community.id == Member.community_id).where(Member.user_id == user_id)
    )
    memberships = [
        {
            "community": community.title,
            "chat_id": community.chat_id,
            "status": member.status,
            "leader": member.is_leader,
            "joined_at": _iso(member.joined_at),
            "left_at": _iso(member.left_at),
            "last_active_at": _iso(member.last_active_at),
            "messages_counted": member.message_count,
            "invited_by": member.invited_by,
        }
        for member, community in rows
    ]
    return {
        "user": {
            "id": user.id,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "username": user.username,
            "telegram_language": user.language_code,
            "chosen_language": user.locale,
            "can_receive_private_messages": user.can_dm,
            "marketing_opt_out": user.marketing_opt_out,
            "first_seen": _iso(user.created_at),
            "earlier_profile_erased_at": _iso(user.erased_at),
        },
        "memberships": memberships,
        "invites": await invite_privacy.data_of(session, user_id=user_id),
    }


async def forget(session: AsyncSession, *, user_id: int, now: datetime) -> None:
    """Erase a user's personal data (/forgetme) and commit.

    The user row stays as an anonymous key so that orders remain in the leader's books; names,
    username, language, activity and when they first came go. Memberships are removed; others'
    `invited_by` links to this user are cleared, and so is the invitation side (`invite_privacy.erase`:
    their links and code go, the invites they made stop naming them). The audit log records that an
    erasure happened, not who it was. `erased_at` outlives their return (`User.hidden_at`): a user who
    writes again is stored again, but what was recorded until now stays without a name.
    """
    user = await session.get(User, user_id)
    if user is None:
        raise DomainError("unknown_user")
    user.first_name = ""
    user.last_name = None
    user.username = None
    user.language_code = None
    user.locale = None
    user.marketing_opt_out = True
    user.erased = True
    user.erased_at = now
    user.created_at = now
    user.updated_at = now
    await session.execute(update(Member).where(Member.invited_by == user_id).values(invited_by=None))
    await invite_privacy.erase(session, user_id=user_id, now=now)
    await session.execute(delete(ActivityDay).where(col(ActivityDay.user_id) == user_id))
    await session.execute(delete(MembershipEvent).where(col(MembershipEvent.user_id) == user_id))
    members = await session.exec(select(Member).where(Member.user_id == user_id))
    for member in members:
        await session.delete(member)
    session.add(AuditLog(community_id=None, actor_id=None, action="user.erased", details={}, created_at=now))
    await session.commit()


async def by_ids(session: AsyncSession, ids: set[int]) -> dict[int, User]:
    """Users by Telegram id, for lists that name many people at once."""
    if not ids:
        return {}
    return {u.id: u for u in await session.exec(select(User).where(col(User.id).in_(ids)))}
