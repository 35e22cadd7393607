"""A person's invitations under /mydata and /forgetme (hooked into bot/services/users.py).

Erasure keeps the counts and drops the person: their referral rows stay (the user row is the
anonymous key, as for orders, and `User.hidden_at` hides them from every list), the invites they
made no longer name them (so no chain runs through them and nobody rewards them again), and their
links, codes and pending inviter notes go.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Community, InviteCode, InviteIntent, InviteLink, Referral


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def data_of(session: AsyncSession, *, user_id: int) -> list[dict]:
    """Per community: how the person came (source, state, when; their inviter's id), their invite
    links and code, and how many people they invited by state. People they invited are not named:
    that is those people's data."""
    came = {r.community_id: r for r in await session.exec(select(Referral).where(Referral.invitee_id == user_id))}
    links: dict[int, list[InviteLink]] = {}
    for link in await session.exec(select(InviteLink).where(InviteLink.owner_id == user_id).order_by(InviteLink.id)):
        links.setdefault(link.community_id, []).append(link)
    codes = dict((await session.execute(select(InviteCode.community_id, InviteCode.code)
                                        .where(InviteCode.user_id == user_id))).all())
    invited: dict[int, dict[str, int]] = {}
    for community_id, state in (await session.execute(select(Referral.community_id, Referral.state)
                                                      .where(Referral.inviter_id == user_id))):
        by_state = invited.setdefault(community_id, {})
        by_state[state] = by_state.get(state, 0) + 1
    ids = set(came) | set(links) | set(codes) | set(invited)
    if not ids:
        return []
    names = {c.id: (c.title, c.chat_id) for c in await session.exec(select(Community).where(col(Community.id).in_(ids)))}
    out = []
    for community_id in sorted(ids):
        referral = came.get(community_id)
        out.append({
            "community": names[community_id][0],
            "chat_id": names[community_id][1],
            "joined_via": None if referral is None else {
                "source": referral.via, "state": referral.state, "invited_by": referral.inviter_id,
                "flags": list(referral.flags), "joined_at": _iso(referral.joined_at),
                "qualified_at": _iso(referral.qualified_at), "left_at": _iso(referral.left_at)},
            "invite_links": [{"url": link.url, "name": link.name, "created_at": _iso(link.created_at),
                              "revoked_at": _iso(link.revoked_at)} for link in links.get(community_id, [])],
            "invite_code": codes.get(community_id),
            "people_invited_by_state": invited.get(community_id, {}),
        })
    return out


async def live_links_of(session: AsyncSession, *, user_id: int) -> list[tuple[int, str]]:
    """(chat id, URL) of the person's live invite links, for the handler to revoke at Telegram
    before /forgetme marks them revoked here (their names carry the person's name)."""
    found = await session.execute(
        select(Community.chat_id, InviteLink.url).join(Community, Community.id == InviteLink.community_id)
        .where(InviteLink.owner_id == user_id, col(InviteLink.revoked_at).is_(None)).order_by(InviteLink.id))
    return [(chat_id, url) for chat_id, url in found]


async def erase(session: AsyncSession, *, user_id: int, now: datetime) -> None:
    """The invitation side of /forgetme, inside its transaction (no commit)."""
    r = Referral.__table__.c
    await session.execute(update(Referral.__table__).where(r.inviter_id == user_id).values(inviter_id=None))
    await session.execute(update(Referral.__table__).where(r.bonus_to == user_id).values(bonus_to=None))
    await session.execute(update(InviteLink).where(InviteLink.owner_id == user_id, col(InviteLink.revoked_at).is_(None))
                          .values(revoked_at=now))
    # The names stored with the links were the person's.
    await session.execute(update(InviteLink).where(InviteLink.owner_id == user_id).values(name=""))
    await session.execute(delete(InviteCode).where(InviteCode.user_id == user_id))
    await session.execute(delete(InviteIntent).where(or_(InviteIntent.user_id == user_id,
                                                         InviteIntent.inviter_id == user_id)))
