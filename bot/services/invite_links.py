"""Members' own ways to invite: a Telegram invite link per member, community and kind (made once,
reused, revoked when the member leaves) and a short code for the deep link `/start inv-<code>`.

The handler makes the link: `link_for` says whether a live one exists or which name to give a new
one; the handler calls createChatInviteLink with that name (and `creates_join_request`), then
`save_link`. Two presses at once may both make a link: `save_link` keeps the first and the handler
revokes the other (`saved.url != url`).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.errors import DomainError
from bot.services.invite_settings import invite_settings
from bot.services.upsert import insert_for
from models import Community, InviteCode, InviteLink, Member, MemberStatus, User

NAME_MAX = 32  # Telegram keeps at most 32 characters of a link's name
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes may be read aloud
CODE_LENGTH = 8
DEEP_LINK_PREFIX = "inv-"
INVITE_RIGHT = "can_invite_users"
_PAYLOAD = re.compile(rf"{DEEP_LINK_PREFIX}([{CODE_ALPHABET}]{{{CODE_LENGTH}}})")
_LIVE = col(InviteLink.revoked_at).is_(None)


@dataclass(frozen=True, slots=True)
class LinkAnswer:
    """What `/invite` hands a member for one community."""

    link: InviteLink | None  # the member's live link; None: make one named `name`, then `save_link`
    name: str
    creates_join_request: bool
    code: str  # for the deep link: `deep_link_payload(code)`

    @property
    def needs_creating(self) -> bool:
        return self.link is None


@dataclass(frozen=True, slots=True)
class CodeOwner:
    community_id: int
    user_id: int


def deep_link_payload(code: str) -> str:
    """The `/start` payload that names this member as the inviter ("inv-7KQ2MX9A")."""
    return DEEP_LINK_PREFIX + code


def code_from_payload(payload: str) -> str | None:
    """The code in a `/start` payload made by `deep_link_payload`; None for any other payload."""
    found = _PAYLOAD.fullmatch(payload.strip().upper().replace("INV-", DEEP_LINK_PREFIX, 1))
    return found.group(1) if found else None


def link_name(display_name: str, code: str) -> str:
    """The member's name with their code, within Telegram's 32 characters, whitespace collapsed as
    Telegram collapses it (so the stored name is the name Telegram shows). The code tells two
    members of the same name apart in the group's list of links."""
    name = " ".join(display_name.split())
    room = NAME_MAX - len(code) - 1
    name = name[:room].rstrip()
    return f"{name} {code}" if name else code


async def _present(session: AsyncSession, community_id: int, user_id: int) -> bool:
    found = await session.execute(select(Member.id).where(
        Member.community_id == community_id, Member.user_id == user_id, Member.status == MemberStatus.MEMBER))
    return found.first() is not None


async def code_for(session: AsyncSession, *, community_id: int, user_id: int, now: datetime) -> str:
    """The member's deep-link code in this community, made on first use. Does not commit."""
    found = await session.execute(select(InviteCode.code).where(
        InviteCode.community_id == community_id, InviteCode.user_id == user_id))
    code = found.scalar()
    while code is None:
        drawn = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        # ON CONFLICT on either key: a concurrent first use made this member's code (read it
        # back), or the drawn code is taken (draw again).
        await session.execute(insert_for(session, InviteCode.__table__).values(
            community_id=community_id, user_id=user_id, code=drawn, created_at=now).on_conflict_do_nothing())
        found = await session.execute(select(InviteCode.code).where(
            InviteCode.community_id == community_id, InviteCode.user_id == user_id))
        code = found.scalar()
    return code


async def own_code(session: AsyncSession, *, community_id: int, user_id: int, now: datetime) -> str:
    """`code_for`, committed: the deep link a member can share when `link_for` refused
    `invite_right_missing` (it needs no right of the bot's)."""
    code = await code_for(session, community_id=community_id, user_id=user_id, now=now)
    await session.commit()
    return code


async def link_for(session: AsyncSession, *, community: Community, user_id: int, now: datetime) -> LinkAnswer:
    """The member's invite link into `community`, or the name to create it with, and their code;
    commits (the code is made on first use).

    The kind follows the leader's switch: with "approve joins" on, links create join requests.
    Refusals: `invites_disabled`; `invite_not_member` (only present members invite);
    `invite_right_missing` (right): the bot may not create links — the deep link (`code_for`) still
    works then, and the leaders should be told which right to grant.
    """
    settings = invite_settings(community)
    if not settings.enabled:
        raise DomainError("invites_disabled")
    if not await _present(session, community.id, user_id):
        raise DomainError("invite_not_member")
    if INVITE_RIGHT in community.missing_rights:
        raise DomainError("invite_right_missing", right=INVITE_RIGHT)
    code = await code_for(session, community_id=community.id, user_id=user_id, now=now)
    await session.commit()
    link = await live_link(session, community_id=community.id, user_id=user_id,
                           creates_join_request=settings.approve_joins)
    user = await session.get(User, user_id)
    name = link.name if link is not None else link_name(user.display_name if user else "", code)
    return LinkAnswer(link, name, settings.approve_joins, code)


async def live_link(session: AsyncSession, *, community_id: int, user_id: int,
                    creates_join_request: bool) -> InviteLink | None:
    """The member's live link of this kind, if any."""
    found = await session.exec(select(InviteLink).where(
        InviteLink.community_id == community_id, InviteLink.owner_id == user_id,
        InviteLink.creates_join_request == creates_join_request, _LIVE))
    return found.first()


async def save_link(session: AsyncSession, *, community_id: int, user_id: int, url: str, name: str,
                    creates_join_request: bool, now: datetime) -> InviteLink:
    """Record the link createChatInviteLink just made, and commit. Returns the member's live link of
    that kind: another one when a concurrent `/invite` saved first, and then the handler revokes
    `url`. The same `url` saved again is a no-op."""
    await session.execute(insert_for(session, InviteLink.__table__).values(
        community_id=community_id, owner_id=user_id, url=url, name=name[:NAME_MAX],
        creates_join_request=creates_join_request, created_at=now, revoked_at=None).on_conflict_do_nothing())
    await session.commit()
    link = await live_link(session, community_id=community_id, user_id=user_id,
                           creates_join_request=creates_join_request)
    if link is None:  # `url` was saved before and revoked since: it stays revoked
        link = (await session.exec(select(InviteLink).where(InviteLink.url == url))).one()
    return link


async def revoke_links_of(session: AsyncSession, *, community_id: int, user_id: int, now: datetime) -> list[str]:
    """Mark the member's live links in this community revoked (they left) and commit; the URLs for
    the handler to revoke with revokeChatInviteLink. Joins through them afterwards (an update
    delivered late) are still credited: the rows stay."""
    found = await session.execute(
        update(InviteLink).where(InviteLink.community_id == community_id, InviteLink.owner_id == user_id, _LIVE)
        .values(revoked_at=now).returning(InviteLink.url))
    urls = sorted(found.scalars())
    await session.commit()
    return urls


async def link_by_url(session: AsyncSession, *, community_id: int, url: str) -> InviteLink | None:
    """One of this community's member links by its URL (revoked ones too); None for any other link
    (the primary link, an administrator's, which Telegram shows with its end hidden)."""
    found = await session.exec(select(InviteLink).where(InviteLink.url == url,
                                                        InviteLink.community_id == community_id))
    return found.first()


async def inviter_for_code(session: AsyncSession, *, code: str) -> CodeOwner | None:
    """Whose deep-link code this is: the community and the member, while they are a present member
    there; None for an unknown code or a member who left."""
    found = await session.execute(
        select(InviteCode.community_id, InviteCode.user_id)
        .join(Member, (Member.community_id == InviteCode.community_id) & (Member.user_id == InviteCode.user_id))
        .where(InviteCode.code == code.strip().upper(), Member.status == MemberStatus.MEMBER))
    row = found.first()
    return CodeOwner(row.community_id, row.user_id) if row else None
