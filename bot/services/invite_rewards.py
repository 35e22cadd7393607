"""Qualifying invites and rewarding them: the qualification job and the rewards a leader's approval
gives, both set-based so that 100,000 pending invites take a few statements per batch.

A referral is claimed by one conditional UPDATE (`state` still pending, or flagged for an approval)
that also records who gets the second-level reward; only rows that UPDATE returned are rewarded, so
a job run twice, on two workers at once, or beside an approval rewards each invite once. The ledger
entries' (reason, reference) are unique as well ("referral:<id>" and "referral:<id>:2").

Levels: 1 is the inviter, 2 the inviter's inviter. Nothing here looks further up the chain, and
`InviteSettings.reward_for` answers None past level 2: a third level is never rewarded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, exists, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import audit, coupons, points
from bot.services.checkin_settings import CouponTerms, expiry_after
from bot.services.invite_settings import InviteSettings, Requirement, invite_settings
from bot.services.upsert import insert_for
from models import (
    Community,
    Coupon,
    Member,
    MemberStatus,
    Order,
    OrderStatus,
    PointsAccount,
    PointsEntry,
    PointsReason,
    Referral,
    ReferralState,
)

BATCH = 1000
COUPON_SOURCE = "invite"
_r = Referral.__table__.c
_parent = Referral.__table__.alias("parent")
# A paid order: paid and not waiting for its group or given back, or picked up (paid at pickup).
_PAID = (OrderStatus.PAID, OrderStatus.CONFIRMED, OrderStatus.FULFILLED, OrderStatus.PICKED_UP)
# States of the inviter's own referral that cut the chain: a fraudulent inviter earns their inviter nothing.
_CUT = (ReferralState.FLAGGED, ReferralState.REJECTED)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A referral just qualified (or approved), with whom to reward."""

    referral_id: int
    inviter_id: int | None  # level 1
    bonus_to: int | None  # level 2, when the settings give level 2 anything


@dataclass(frozen=True, slots=True)
class Grant:
    """One reward given: `points` (maybe 0) and/or a coupon, to `user_id` at chain `level`."""

    referral_id: int
    user_id: int
    level: int
    points: int
    coupon_id: int | None


@dataclass(slots=True)
class QualifyReport:
    qualified: int = 0  # referrals that left `pending` (rewarded ones included)
    rewarded: int = 0  # of those, the ones whose inviter(s) got a reward
    points: int = 0
    coupons: int = 0
    batches: int = 0
    grants: list[Grant] = field(default_factory=list)


def reference(referral_id: int, level: int) -> str:
    """The ledger reference of a referral's reward at `level`."""
    return f"referral:{referral_id}" if level == 1 else f"referral:{referral_id}:{level}"


def _level2() -> ColumnElement:
    """The inviter's inviter of the referral being updated (correlated), unless the inviter's own
    invite was held or rejected, or the chain loops back."""
    p = _parent.c
    return (select(p.inviter_id)
            .where(p.community_id == _r.community_id, p.invitee_id == _r.inviter_id, p.inviter_id.is_not(None),
                   p.inviter_id != _r.invitee_id, p.inviter_id != _r.inviter_id, p.state.not_in(_CUT))
            .scalar_subquery())


async def claim(session: AsyncSession, *, settings: InviteSettings, where: Sequence[ColumnElement], now: datetime,
                extra: dict | None = None) -> list[Claimed]:
    """Move the referrals matching `where` (which must pin their current state) to rewarded or
    qualified in one UPDATE, recording the level-2 beneficiary; the rows this call moved. No commit.

    Rewarded: it has an inviter and a reward is due to someone (level 1, or level 2 when there is a
    level-2 person). Qualified: nobody to reward."""
    level1, level2 = settings.reward_for(1), settings.reward_for(2)
    bonus = _level2() if level2 is not None else None
    has_inviter = _r.inviter_id.is_not(None)
    if level1 is not None:
        rewarded = has_inviter
    elif bonus is not None:
        rewarded = and_(has_inviter, bonus.is_not(None))
    else:
        rewarded = None
    state = (case((rewarded, ReferralState.REWARDED.value), else_=ReferralState.QUALIFIED.value)
             if rewarded is not None else ReferralState.QUALIFIED.value)
    values = {"state": state, "qualified_at": now, "bonus_to": bonus,
              "rewarded_at": case((rewarded, now), else_=None) if rewarded is not None else None, **(extra or {})}
    found = await session.execute(update(Referral.__table__).where(*where).values(**values)
                                  .returning(_r.id, _r.inviter_id, _r.bonus_to))
    # RETURNING comes in no particular order; grants (and their ledger entries) follow the referrals'.
    return sorted((Claimed(row.id, row.inviter_id, row.bonus_to) for row in found), key=lambda c: c.referral_id)


async def grant(session: AsyncSession, *, community: Community, settings: InviteSettings, claimed: Sequence[Claimed],
                now: datetime) -> list[Grant]:
    """Give the rewards of referrals `claim` just moved: ledger entries, coupons, balances, in a few
    statements whatever their number. No commit."""
    plans: list[tuple[int, int, int, int, CouponTerms | None]] = []  # referral, user, level, points, coupon
    for row in claimed:
        for level, user_id in ((1, row.inviter_id), (2, row.bonus_to)):
            reward = settings.reward_for(level)
            if user_id is not None and reward is not None:
                plans.append((row.referral_id, user_id, level, reward.points, reward.coupon))
    if not plans:
        return []
    coupon_ids = await _issue_coupons(session, community, [(i, p[1], p[4]) for i, p in enumerate(plans) if p[4]], now)
    grants = [Grant(rid, uid, level, amount, coupon_ids.get(i)) for i, (rid, uid, level, amount, _) in enumerate(plans)]
    entries = PointsEntry.__table__
    await session.execute(
        insert_for(session, entries).on_conflict_do_nothing(
            index_elements=["community_id", "user_id", "reason", "reference"]),
        [{"community_id": community.id, "user_id": g.user_id, "delta": g.points, "reason": PointsReason.INVITE.value,
          "reference": reference(g.referral_id, g.level), "note": None, "coupon_id": g.coupon_id, "created_by": None,
          "created_at": now} for g in grants])
    totals: dict[int, int] = defaultdict(int)
    for g in grants:
        totals[g.user_id] += g.points
    # Accounts in key order, as every batch writer orders them: no two batches deadlock.
    moves = [{"community_id": community.id, "user_id": uid, "balance": amount, "streak": 0, "best_streak": 0,
              "last_day": None, "freezes": 0, "updated_at": now} for uid, amount in sorted(totals.items()) if amount]
    if moves:
        accounts = PointsAccount.__table__
        stmt = insert_for(session, accounts)
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["community_id", "user_id"],
            set_={"balance": accounts.c.balance + stmt.excluded.balance, "updated_at": stmt.excluded.updated_at}),
            moves)
    return grants


async def _issue_coupons(session: AsyncSession, community: Community,
                         wanted: list[tuple[int, int, CouponTerms]], now: datetime) -> dict[int, int]:
    """Owner-bound coupons in one INSERT, read back in one SELECT; a drawn code already taken
    (about one in 10^12) is issued again one by one. Keyed as `wanted` keys them."""
    if not wanted:
        return {}
    rows = {}
    for key, owner_id, terms in wanted:
        rows[key] = {"community_id": community.id, "code": coupons.new_code(), "owner_id": owner_id,
                     "kind": terms.kind.value, "value": terms.value, "cap": terms.cap, "min_spend": terms.min_spend,
                     "expires_at": expiry_after(terms.valid_days, community.timezone, now), "single_use": True,
                     "uses": 0, "source": COUPON_SOURCE, "created_by": None, "created_at": now}
    await session.execute(insert_for(session, Coupon.__table__).on_conflict_do_nothing(
        index_elements=["community_id", "code"]), list(rows.values()))
    codes = {row["code"]: key for key, row in rows.items()}
    found = await session.execute(select(Coupon.id, Coupon.code, Coupon.owner_id).where(
        Coupon.community_id == community.id, col(Coupon.code).in_(codes)))
    ids = {codes[code]: coupon_id for coupon_id, code, owner_id in found if owner_id == rows[codes[code]]["owner_id"]}
    await audit.record_many(session, [
        {"community_id": community.id, "actor_id": None, "action": "coupon.issue",
         "details": {"id": coupon_id, "code": rows[key]["code"], "kind": rows[key]["kind"],
                     "value": rows[key]["value"], "source": COUPON_SOURCE}}
        for key, coupon_id in ids.items()], now=now)
    for key, owner_id, terms in wanted:
        if key not in ids:  # the drawn code was another coupon's: issued (and audited) on its own
            ids[key] = (await points.issue_coupon(session, community=community, terms=terms, owner_id=owner_id,
                                                  now=now, source=COUPON_SOURCE)).id
    return ids


# --- the qualification job ------------------------------------------------------------------------

def _meets(settings: InviteSettings) -> ColumnElement:
    """The invitee is still a member and did what the leader requires since joining."""
    m = Member.__table__.c
    present = [m.community_id == _r.community_id, m.user_id == _r.invitee_id, m.status == MemberStatus.MEMBER.value]
    if settings.require == Requirement.MESSAGE:
        present.append(m.last_active_at > _r.joined_at)
    condition = exists().where(*present)
    if settings.require == Requirement.PAID_ORDER:
        o = Order.__table__.c
        paid = or_(and_(o.paid_at.is_not(None), o.paid_at >= _r.joined_at),
                   and_(o.status == OrderStatus.PICKED_UP.value, o.picked_up_at >= _r.joined_at))
        condition = and_(condition, exists().where(o.community_id == _r.community_id, o.user_id == _r.invitee_id,
                                                   o.status.in_([s.value for s in _PAID]), paid))
    return condition


async def qualify_due(session: AsyncSession, *, community: Community | None = None, as_of: datetime,
                      batch: int = BATCH) -> QualifyReport:
    """Qualify and reward the pending invites that are due as of `as_of`, in one community or in
    every community with pending invites; commits after each batch.

    Due: the invitee joined at least `qualify_days` days ago, is still a member, and met the
    requirement (wrote in the group, or a paid order, since joining). Flagged invites are not
    pending: they wait for a leader. Communities with invites switched off are left alone.
    A batch is three statements and a commit: the UPDATE that picks and claims up to `batch`
    invites (rows another run holds are skipped, on PostgreSQL), the ledger entries, the balances;
    plus two for coupons and one for their audit rows when a reward has a coupon.
    """
    if community is not None:
        targets = [community]
    else:
        ids = select(_r.community_id).where(_r.state == ReferralState.PENDING.value).distinct()
        targets = list(await session.exec(select(Community).where(col(Community.id).in_(ids)).order_by(Community.id)))
    report = QualifyReport()
    for target in targets:
        settings = invite_settings(target)
        if settings.enabled:
            await _qualify_community(session, target, settings, as_of, batch, report)
    return report


async def _qualify_community(session: AsyncSession, community: Community, settings: InviteSettings,
                             as_of: datetime, batch: int, report: QualifyReport) -> None:
    cutoff = as_of - timedelta(days=settings.qualify_days)
    due = [_r.community_id == community.id, _r.state == ReferralState.PENDING.value, _r.joined_at <= cutoff,
           _meets(settings)]
    cursor = 0
    while True:
        # The batch is chosen and claimed in one statement: the UPDATE finds its rows by primary key
        # whatever the planner believes about `state` (statistics lag behind a bulk of new invites).
        chosen = select(_r.id).where(*due, _r.id > cursor).order_by(_r.id).limit(batch)
        if session.get_bind().dialect.name == "postgresql":
            chosen = chosen.with_for_update(skip_locked=True)
        claimed = await claim(session, settings=settings, now=as_of,
                              where=[_r.id.in_(chosen), _r.state == ReferralState.PENDING.value])
        grants = await grant(session, community=community, settings=settings, claimed=claimed, now=as_of)
        await session.commit()
        if not claimed:
            return
        cursor = max(row.referral_id for row in claimed)
        report.batches += 1
        report.qualified += len(claimed)
        report.rewarded += len({g.referral_id for g in grants})
        report.points += sum(g.points for g in grants)
        report.coupons += sum(1 for g in grants if g.coupon_id is not None)
        report.grants.extend(grants)
        if len(claimed) < batch:
            return
