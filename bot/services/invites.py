"""Who brought whom: joins attributed from what Telegram says, inviters named before a join (deep
links, group-buy links), the checks on join requests, departures, and the leaders' review queue.

Rules:
- One referral per person and community, and the first attribution wins: a second join update, a
  redelivered one, or a later join through another link changes nothing.
- A join through a member's link (or a request through one, approved) credits that link's owner.
  When the link names nobody (the primary link, an administrator's link, no link at all) an inviter
  named beforehand (`record_intent`) is credited; else the join is recorded by its source alone.
  A person an administrator added is recorded as such, without an inviter.
- No cycles: an inviter who is in the invitee's own downline is not credited.
- Held for review (state `flagged`) and never rewarded unless a leader approves: self-invites,
  rejoins (the person was a member of the community before), bots, joins in a burst through one
  link, and new invites of an inviter most of whose invitees left. A join with nobody to reward
  keeps its flags but stays pending. Invitees who leave within 72 h are flagged too.
- Depth: the inviter's depth + 1 (1: invited by someone nobody invited), kept for analytics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, bindparam, case, delete, exists, func, literal, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import audit, invite_links, invite_rewards, members
from bot.services.communities import ID_MAX
from bot.services.errors import DomainError
from bot.services.invite_rewards import Grant
from bot.services.invite_settings import invite_settings
from bot.services.upsert import insert_for
from bot.services.users import Profile, upsert_user
from models import (
    Community,
    InviteIntent,
    InviteLink,
    MemberStatus,
    Referral,
    ReferralFlag,
    ReferralState,
    User,
    Via,
)

LEFT_EARLY = timedelta(hours=72)
# An inviter named by a deep link is forgotten after this long without a join.
INTENT_TTL = timedelta(days=7)
# How far up a chain the cycle check walks: far beyond any real chain, and a bound on a corrupt one.
CHAIN_WALK_MAX = 10_000
_r = Referral.__table__.c
_HELD = (ReferralState.PENDING.value, ReferralState.FLAGGED.value)


@dataclass(frozen=True, slots=True)
class Attribution:
    referral: Referral
    created: bool  # False: this person's first attribution was recorded before; nothing changed


def via_of(*, user_id: int, actor_id: int | None, link_url: str | None, link_is_primary: bool = False,
           link_creator_id: int | None = None, bot_id: int, via_join_request: bool = False) -> Via:
    """The source of a join as a `chat_member` update tells it: the link used (its URL, whether it
    is the primary link, who made it), who acted (`from`), and `via_join_request`."""
    if via_join_request:
        return Via.JOIN_REQUEST
    if link_url:
        if link_is_primary:
            return Via.PRIMARY_LINK
        return Via.MEMBER_LINK if link_creator_id == bot_id else Via.ADMIN_LINK
    if actor_id is not None and actor_id != user_id:
        return Via.ADDED_BY_ADMIN
    return Via.UNKNOWN


async def _referral(session: AsyncSession, community_id: int, user_id: int) -> Referral | None:
    found = await session.exec(select(Referral).where(Referral.community_id == community_id,
                                                      Referral.invitee_id == user_id))
    return found.first()


async def attribute_join(session: AsyncSession, *, community: Community, profile: Profile, is_bot: bool, via: Via,
                         joined_at: datetime, link_url: str | None = None,
                         inviter_hint: int | None = None) -> Attribution | None:
    """Record how `profile` came into `community` and commit; None when invites are switched off.

    `via` is the update's own account (`via_of`); a link URL found among the members' links makes
    it a member link (or a join request through one) crediting its owner, an unknown one an
    administrator's link. `inviter_hint` names an inviter the caller knows (a group-buy "join my
    team" link: `via=Via.GROUP_BUY_LINK`), used like a recorded intent when no link names anyone.
    `joined_at` is the update's date (the approval's time for a join request).

    Call it BEFORE `members.on_member_status` for the same join: a rejoin is told from the member
    row as it was before the join (left, or there since earlier). The member row is created when
    missing (bots excepted) and gets `invited_by` / `invite_depth` unless it has an inviter already.
    """
    settings = invite_settings(community)
    if not settings.enabled:
        return None
    existing = await _referral(session, community.id, profile.id)
    if existing is not None:
        return Attribution(existing, False)
    await upsert_user(session, profile, now=joined_at)
    prior = await members.get(session, community_id=community.id, user_id=profile.id)
    rejoin = prior is not None and (prior.status != MemberStatus.MEMBER or prior.left_at is not None
                                    or prior.joined_at < joined_at)
    link = await invite_links.link_by_url(session, community_id=community.id, url=link_url) if link_url else None
    inviter: int | None = None
    if link is not None:
        inviter = link.owner_id
        via = Via.JOIN_REQUEST if via == Via.JOIN_REQUEST else Via.MEMBER_LINK
    elif via == Via.MEMBER_LINK:  # a link the bot made, but not a member's
        via = Via.ADMIN_LINK
    intent = None
    if inviter is None and via != Via.ADDED_BY_ADMIN:
        intent = await _intent(session, community.id, profile.id)
        if intent is not None and joined_at - intent.created_at <= INTENT_TTL:
            inviter, via = intent.inviter_id, Via(intent.via)
        elif inviter_hint is not None and await session.get(User, inviter_hint) is not None:
            inviter = inviter_hint
            via = via if via in (Via.DEEP_LINK, Via.GROUP_BUY_LINK) else Via.DEEP_LINK

    flags: list[str] = []
    if is_bot:
        flags.append(ReferralFlag.BOT)
    if rejoin:
        flags.append(ReferralFlag.REJOIN)
    if inviter == profile.id:
        flags.append(ReferralFlag.SELF_INVITE)
    elif inviter is not None and await _in_downline(session, community.id, ancestor=profile.id, of=inviter):
        inviter = None
    depth = 0
    if inviter is not None:
        inviter_depth, invited, left = await _inviter_stats(session, community.id, inviter)
        depth = inviter_depth + 1
        if invited >= settings.leave_rate_min_invites and left * 100 > settings.leave_rate_percent * invited:
            flags.append(ReferralFlag.HIGH_LEAVE_RATE)
    burst: list[tuple[int, list]] = []
    if link is not None:
        window = joined_at - timedelta(minutes=settings.burst_minutes)
        recent = list(await session.execute(select(_r.id, _r.flags).where(
            _r.link_id == link.id, _r.joined_at > window, _r.joined_at <= joined_at)))
        if len(recent) + 1 > settings.burst_joins:
            flags.append(ReferralFlag.BURST)
            burst = [(row.id, row.flags) for row in recent if ReferralFlag.BURST not in row.flags]

    state = ReferralState.FLAGGED if flags and inviter is not None else ReferralState.PENDING
    inserted = await session.execute(insert_for(session, Referral.__table__).values(
        community_id=community.id, invitee_id=profile.id, inviter_id=inviter, via=via.value,
        link_id=link.id if link else None, depth=depth, state=state.value, flags=flags, bonus_to=None,
        joined_at=joined_at).on_conflict_do_nothing(index_elements=["community_id", "invitee_id"])
        .returning(_r.id))
    referral_id = inserted.scalar()
    if referral_id is None:  # a concurrent update attributed this join first
        await session.commit()
        return Attribution(await _referral(session, community.id, profile.id), False)
    if burst:
        await _flag_burst(session, burst)
    if not is_bot:
        member = prior or await members.ensure(session, community_id=community.id, user_id=profile.id, now=joined_at)
        if member.invited_by is None and inviter is not None and inviter != profile.id:
            member.invited_by = inviter
            member.invite_depth = depth
    if intent is not None:
        await session.execute(delete(InviteIntent).where(InviteIntent.id == intent.id))
    await session.commit()
    return Attribution(await session.get(Referral, referral_id), True)


async def _intent(session: AsyncSession, community_id: int, user_id: int) -> InviteIntent | None:
    found = await session.exec(select(InviteIntent).where(InviteIntent.community_id == community_id,
                                                          InviteIntent.user_id == user_id))
    return found.first()


async def _in_downline(session: AsyncSession, community_id: int, *, ancestor: int, of: int) -> bool:
    """Whether `ancestor` is up the chain from `of` (so `of` is in `ancestor`'s downline)."""
    has_invitees = await session.execute(select(literal(1)).where(exists().where(
        _r.community_id == community_id, _r.inviter_id == ancestor)))
    if has_invitees.first() is None:
        return False
    up = (select(_r.inviter_id.label("uid"), literal(1).label("n"))
          .where(_r.community_id == community_id, _r.invitee_id == of, _r.inviter_id.is_not(None))
          .cte("up", recursive=True))
    up = up.union_all(select(_r.inviter_id, up.c.n + 1).where(
        _r.community_id == community_id, _r.invitee_id == up.c.uid, _r.inviter_id.is_not(None),
        up.c.n < CHAIN_WALK_MAX))
    found = await session.execute(select(literal(1)).where(exists().where(up.c.uid == ancestor)))
    return found.first() is not None


async def _inviter_stats(session: AsyncSession, community_id: int, inviter: int) -> tuple[int, int, int]:
    """The inviter's own depth, how many they invited, and how many of those left."""
    own = select(_r.depth).where(_r.community_id == community_id, _r.invitee_id == inviter).scalar_subquery()
    row = (await session.execute(select(
        func.coalesce(own, 0), func.count(_r.id), func.coalesce(func.sum(case((_r.left_at.is_not(None), 1), else_=0)), 0))
        .where(_r.community_id == community_id, _r.inviter_id == inviter))).one()
    return int(row[0]), int(row[1]), int(row[2])


async def _flag_burst(session: AsyncSession, rows: list[tuple[int, list]]) -> None:
    """Earlier joins of a burst: flagged too, and held when still waiting (a rewarded one stays)."""
    await session.execute(
        update(Referral.__table__)
        .where(_r.id == bindparam("b_id"))
        .values(flags=bindparam("b_flags"),
                state=case((and_(_r.state == ReferralState.PENDING.value, _r.inviter_id.is_not(None)),
                            ReferralState.FLAGGED.value), else_=_r.state)),
        [{"b_id": rid, "b_flags": [*flags, ReferralFlag.BURST.value]} for rid, flags in rows])


# --- inviters named before the join ---------------------------------------------------------------

class IntentStatus(StrEnum):
    RECORDED = "recorded"  # this inviter will be credited when the person joins
    KEPT = "kept"  # another inviter named within INTENT_TTL stands (the first wins)
    MEMBER = "member"  # the person is in the community (or came before): nothing to record
    SELF = "self"  # their own code
    UNKNOWN = "unknown"  # the inviter is nobody the bot knows


@dataclass(frozen=True, slots=True)
class Intent:
    status: IntentStatus
    inviter_id: int | None  # who will be credited (RECORDED, KEPT)
    # The inviter's live member link to hand over, when they have one: a join through it is exact.
    link_url: str | None = None


async def record_intent(session: AsyncSession, *, community: Community, user_id: int, inviter_id: int,
                        now: datetime, via: Via = Via.DEEP_LINK) -> Intent:
    """Remember that `inviter_id` brought `user_id` (a `/start inv-<code>` deep link, whose code
    `invite_links.inviter_for_code` resolves; or `via=Via.GROUP_BUY_LINK` for a group-buy link) and
    commit. The join is credited to them when its own link names nobody. The person's user row
    must exist (the handler's actor upsert makes it)."""
    if inviter_id == user_id:
        return Intent(IntentStatus.SELF, None)
    present = await members.get(session, community_id=community.id, user_id=user_id)
    if (present is not None and present.status == MemberStatus.MEMBER) or \
            await _referral(session, community.id, user_id) is not None:
        return Intent(IntentStatus.MEMBER, None)
    if await session.get(User, inviter_id) is None:
        return Intent(IntentStatus.UNKNOWN, None)
    existing = await _intent(session, community.id, user_id)
    if existing is not None and now - existing.created_at <= INTENT_TTL:
        status, inviter_id = IntentStatus.KEPT, existing.inviter_id
    else:
        stmt = insert_for(session, InviteIntent.__table__).values(
            community_id=community.id, user_id=user_id, inviter_id=inviter_id, via=via.value, created_at=now)
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["community_id", "user_id"],
            set_={"inviter_id": stmt.excluded.inviter_id, "via": stmt.excluded.via,
                  "created_at": stmt.excluded.created_at}))
        status = IntentStatus.RECORDED
    await session.commit()
    link = await invite_links.live_link(session, community_id=community.id, user_id=inviter_id,
                                        creates_join_request=invite_settings(community).approve_joins)
    return Intent(status, inviter_id, link.url if link else None)


# --- join requests --------------------------------------------------------------------------------

class JoinReason(StrEnum):
    OK = "ok"
    BOT = "bot"
    BANNED = "banned"  # removed by an administrator before
    LINK_REVOKED = "link_revoked"  # the link's owner left
    NOT_OURS = "not_ours"  # not a member's link: the administrators decide


@dataclass(frozen=True, slots=True)
class JoinDecision:
    approve: bool | None  # None: leave the request to the administrators
    reason: JoinReason
    link: InviteLink | None


async def should_approve(session: AsyncSession, *, community: Community, user_id: int, is_bot: bool,
                         link_url: str | None) -> JoinDecision:
    """The bot's checks on a `chat_join_request`. Only requests through a member's link are the
    bot's to decide; after approveChatJoinRequest the handler calls `attribute_join` with
    `via=Via.JOIN_REQUEST`, the link's URL and the approval's time. A rejoin or a self-invite is
    approved (it is a person) and held by the attribution."""
    link = await invite_links.link_by_url(session, community_id=community.id, url=link_url) if link_url else None
    if link is None:
        return JoinDecision(None, JoinReason.NOT_OURS, None)
    if is_bot:
        return JoinDecision(False, JoinReason.BOT, link)
    if link.revoked_at is not None:
        return JoinDecision(False, JoinReason.LINK_REVOKED, link)
    member = await members.get(session, community_id=community.id, user_id=user_id)
    if member is not None and member.status == MemberStatus.KICKED:
        return JoinDecision(False, JoinReason.BANNED, link)
    return JoinDecision(True, JoinReason.OK, link)


# --- leaving --------------------------------------------------------------------------------------

async def member_left(session: AsyncSession, *, community_id: int, user_id: int, at: datetime) -> Referral | None:
    """The invitee left (or was removed) at `at`; commits. A pending or held invite becomes `left`
    and is never rewarded; a qualified or rewarded one keeps its state and reward and counts as left
    from now on. Within 72 h of joining it is flagged `left_within_72h`. The first departure is the
    one recorded (a redelivered update, a later leave after a rejoin change nothing). None when the
    person has no referral here."""
    referral = await _referral(session, community_id, user_id)
    if referral is None or referral.left_at is not None:
        return referral
    flags = list(referral.flags)
    if at - referral.joined_at < LEFT_EARLY and ReferralFlag.LEFT_WITHIN_72H not in flags:
        flags.append(ReferralFlag.LEFT_WITHIN_72H.value)
    # The state is decided on the row as it is when updated: the qualification job may reward it meanwhile.
    await session.execute(
        update(Referral.__table__).where(_r.id == referral.id, _r.left_at.is_(None))
        .values(left_at=at, flags=flags,
                state=case((_r.state.in_(_HELD), ReferralState.LEFT.value), else_=_r.state)))
    await session.commit()
    await session.refresh(referral)
    return referral


# --- the leaders' review queue --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ReviewItem:
    referral: Referral
    invitee: User
    inviter: User | None
    invitee_hidden: bool  # erased since: show no name
    inviter_hidden: bool


@dataclass(frozen=True, slots=True)
class Reviewed:
    referral: Referral
    grants: list[Grant]  # what an approval gave (empty for a rejection)


async def review_count(session: AsyncSession, *, community_id: int) -> int:
    found = await session.execute(select(func.count()).select_from(Referral).where(
        Referral.community_id == community_id, Referral.state == ReferralState.FLAGGED))
    return int(found.scalar_one())


async def review_queue(session: AsyncSession, *, community_id: int, limit: int = 10,
                       offset: int = 0) -> list[ReviewItem]:
    """Invites held for review, oldest first, with both people (names hidden for erased ones)."""
    rows = list(await session.exec(
        select(Referral).where(Referral.community_id == community_id, Referral.state == ReferralState.FLAGGED)
        .order_by(Referral.joined_at, Referral.id).offset(offset).limit(limit)))
    ids = {r.invitee_id for r in rows} | {r.inviter_id for r in rows if r.inviter_id is not None}
    people = {u.id: u for u in await session.exec(select(User).where(col(User.id).in_(ids)))} if ids else {}
    items = []
    for r in rows:
        invitee, inviter = people[r.invitee_id], people.get(r.inviter_id) if r.inviter_id is not None else None
        items.append(ReviewItem(r, invitee, inviter, invitee.hidden_at(r.joined_at),
                                inviter is not None and inviter.hidden_at(r.joined_at)))
    return items


async def _reviewable(session: AsyncSession, community_id: int, referral_id: int) -> Referral:
    if not 0 < referral_id <= ID_MAX:  # from callback data a client can forge
        raise DomainError("invite_review_unknown")
    referral = await session.get(Referral, referral_id)
    if referral is None or referral.community_id != community_id:
        raise DomainError("invite_review_unknown")
    return referral


async def approve(session: AsyncSession, *, community: Community, referral_id: int, actor_id: int,
                  now: datetime) -> Reviewed:
    """A leader approves a held invite: it is rewarded now (level 1, and level 2 when set), once,
    audited (`invites.approve`), committed. Refusals: `invite_review_unknown`,
    `invite_review_done` (state): it is not held any more (approved, rejected, or the invitee left)."""
    referral = await _reviewable(session, community.id, referral_id)
    settings = invite_settings(community)
    claimed = await invite_rewards.claim(
        session, settings=settings, now=now, extra={"reviewed_by": actor_id, "reviewed_at": now},
        where=[_r.id == referral_id, _r.state == ReferralState.FLAGGED.value])
    if not claimed:
        await session.commit()
        await session.refresh(referral)
        raise DomainError("invite_review_done", state=referral.state)
    grants = await invite_rewards.grant(session, community=community, settings=settings, claimed=claimed, now=now)
    audit.record(session, community_id=community.id, actor_id=actor_id, action="invites.approve",
                 details={"referral_id": referral_id, "invitee_id": referral.invitee_id,
                          "inviter_id": referral.inviter_id, "flags": list(referral.flags),
                          "rewards": [[g.user_id, g.level, g.points, g.coupon_id] for g in grants]}, now=now)
    await session.commit()
    await session.refresh(referral)
    return Reviewed(referral, grants)


async def reject(session: AsyncSession, *, community: Community, referral_id: int, actor_id: int,
                 now: datetime) -> Reviewed:
    """A leader rejects a held (or still pending) invite: never rewarded, counted as fake; audited
    (`invites.reject`), committed. Refusals: `invite_review_unknown`, `invite_review_done` (state)."""
    referral = await _reviewable(session, community.id, referral_id)
    moved = await session.execute(
        update(Referral.__table__).where(_r.id == referral_id, _r.state.in_(_HELD))
        .values(state=ReferralState.REJECTED.value, reviewed_by=actor_id, reviewed_at=now).returning(_r.id))
    if moved.first() is None:
        await session.commit()
        await session.refresh(referral)
        raise DomainError("invite_review_done", state=referral.state)
    audit.record(session, community_id=community.id, actor_id=actor_id, action="invites.reject",
                 details={"referral_id": referral_id, "invitee_id": referral.invitee_id,
                          "inviter_id": referral.inviter_id, "flags": list(referral.flags)}, now=now)
    await session.commit()
    await session.refresh(referral)
    return Reviewed(referral, [])
