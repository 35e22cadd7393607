"""Users: profile upserts, language, reachability, marketing consent, data export and erasure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import bindparam, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.errors import DomainError
from bot.services.upsert import insert_for
from models import AuditLog, Community, Member, User


@dataclass(frozen=True, slots=True)
class Profile:
    """What Telegram tells us about a user on every update."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


@dataclass(frozen=True, slots=True)
class SeenUser:
    """The user row as the actor middleware read it: plain values, no ORM object for the session to track."""

    id: int
    first_name: str
    last_name: str | None
    username: str | None
    language_code: str | None
    locale: str | None
    can_dm: bool

    display_name = property(User.display_name.fget)


_users = User.__table__
_SEEN = (_users.c.id, _users.c.first_name, _users.c.last_name, _users.c.username, _users.c.language_code,
         _users.c.locale, _users.c.can_dm, _users.c.erased)
_READ_SEEN = core_select(*_SEEN).where(_users.c.id == bindparam("user_id"))


@cache
def _insert_seen(dialect: str):
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    return insert(_users).on_conflict_do_nothing(index_elements=["id"]).returning(*_SEEN)


def _fresh(profile: Profile) -> dict:
    return {
        "first_name": profile.first_name[:128],
        "last_name": profile.last_name[:128] if profile.last_name else None,
        "username": profile.username,
        "language_code": profile.language_code,
    }


async def remember(session: AsyncSession, profile: Profile, *, now: datetime, opens_dm: bool,
                   likely_new: bool) -> SeenUser:
    """`upsert_user` for every handled update, plus `can_dm` set once the user writes in private.
    Does not commit.

    Same rows as `upsert_user` (one UPDATE for what changed), but Core statements built once, run
    in one greenlet: the ORM's identity map, attribute events and flush, and a greenlet per
    statement, cost more CPU than the statements themselves on a /start (bench/foundation.py, (b)).
    Handlers read the user from the actor, not from the session. `likely_new` tries the INSERT
    before the SELECT: a new user then costs one statement, not two; an existing one three.
    """
    return await session.run_sync(_remember, profile, now, opens_dm, likely_new)


def _remember(session, profile: Profile, now: datetime, opens_dm: bool, likely_new: bool) -> SeenUser:
    conn = session.connection()
    fresh = _fresh(profile)
    row = None if likely_new else conn.execute(_READ_SEEN, {"user_id": profile.id}).first()
    if row is None:
        new = {"id": profile.id, **fresh, "locale": None, "can_dm": opens_dm, "marketing_opt_out": False,
               "erased": False, "created_at": now, "updated_at": now}
        row = conn.execute(_insert_seen(conn.dialect.name), new).first()
        if row is None:
            # The user was there already, or another update created them first.
            row = conn.execute(_READ_SEEN, {"user_id": profile.id}).one()
    changes = {k: v for k, v in fresh.items() if getattr(row, k) != v}
    if changes or row.erased:
        changes.update(erased=False, updated_at=now)
    if opens_dm and not row.can_dm:
        changes["can_dm"] = True
    if changes:
        conn.execute(update(_users).where(_users.c.id == profile.id).values(**changes))
    seen = {c.name: getattr(row, c.name) for c in _SEEN if c.name != "erased"}
    seen.update((k, v) for k, v in changes.items() if k in seen)
    return SeenUser(**seen)


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
        row = {"id": profile.id, **fresh, "locale": None, "can_dm": False, "marketing_opt_out": False,
               "erased": False, "created_at": now, "updated_at": now}
        user = (await session.scalars(stmt, [row])).one_or_none()
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
    from bot.locales import LOCALES

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
        },
        "memberships": memberships,
    }


async def forget(session: AsyncSession, *, user_id: int, now: datetime) -> None:
    """Erase a user's personal data (/forgetme) and commit.

    The user row stays as an anonymous key so that orders remain in the leader's books; names,
    username, language and activity go. Memberships are removed; others' `invited_by` links to
    this user are cleared. The audit log records that an erasure happened, not who it was.
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
    user.updated_at = now
    await session.execute(update(Member).where(Member.invited_by == user_id).values(invited_by=None))
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
