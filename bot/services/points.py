"""Points: an append-only ledger per member and community, a cached balance kept in step with it,
purchase points, leaders' adjustments, expiry, and rewards redeemed for coupons.

- Every entry names its event by (reason, reference) under a unique constraint, so recording an
  event twice (a redelivered update, a double tap, a job run again) writes it once: entries are
  inserted with ON CONFLICT DO NOTHING and only a new entry moves the balance.
- The balance is the sum of the ledger; `points_accounts.balance` caches it and changes in the same
  transaction as the entries.
- Points are only taken under the account row's lock (`lock_account`, or a conditional UPDATE
  `balance >= cost`), so the balance never goes below zero on SQLite or PostgreSQL, and two
  concurrent redeems the balance covers once make one coupon.
- Lock order: an order's row (when an order is involved), then the account, then coupons.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, exists, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.numbers import whole_number
from bot.services import audit, coupons
from bot.services.checkin_settings import CouponTerms, checkin_settings, local_day
from bot.services.communities import ID_MAX
from bot.services.errors import DomainError
from bot.services.money import precision
from bot.services.upsert import insert_in
from models import (
    Community,
    Coupon,
    CouponKind,
    Member,
    MemberStatus,
    Order,
    OrderStatus,
    PointsAccount,
    PointsEntry,
    PointsReason,
)
from models.points import PointsReward

ADJUST_MAX = 1_000_000
NOTE_MAX = 200
REWARD_TITLE_MAX = 64
REWARD_COST_MAX = 10_000_000
REWARDS_MAX = 30
# What counts as points earned (the monthly leaderboard): spending and expiry do not lower it, a
# purchase's reversal does.
EARNING = (PointsReason.CHECKIN, PointsReason.MILESTONE, PointsReason.PURCHASE, PointsReason.PURCHASE_REVERSAL,
           PointsReason.INVITE)
# An order earns its purchase points once paid and no longer waiting for its group, or picked up.
_PAID_STATES = (OrderStatus.PAID, OrderStatus.CONFIRMED, OrderStatus.FULFILLED)

_accounts, _entries = PointsAccount.__table__, PointsEntry.__table__


@dataclass(frozen=True, slots=True)
class AccountState:
    """A member's cached account as its lock found it."""

    balance: int
    streak: int
    best_streak: int
    last_day: date | None
    freezes: int


# --- the ledger's building blocks (used by bot/services/checkins.py too) -------------------------

@cache
def _lock_stmt(dialect: str):
    # A no-op DO UPDATE: it still takes the row's lock (PostgreSQL) or the write lock (SQLite).
    return (insert_in(dialect, _accounts)
            .on_conflict_do_update(index_elements=["community_id", "user_id"], set_={"balance": _accounts.c.balance})
            .returning(_accounts.c.balance, _accounts.c.streak, _accounts.c.best_streak, _accounts.c.last_day,
                       _accounts.c.freezes))


async def lock_account(session: AsyncSession, *, community_id: int, user_id: int, now: datetime) -> AccountState:
    """The member's account, created empty if missing and locked until the transaction ends: every
    change to a member's points or streak that depends on their state takes this first."""
    row = (await session.execute(_lock_stmt(_dialect(session)), {
        "community_id": community_id, "user_id": user_id, "balance": 0, "streak": 0, "best_streak": 0,
        "last_day": None, "freezes": 0, "updated_at": now})).one()
    return AccountState(row.balance, row.streak, row.best_streak, row.last_day, row.freezes)


@cache
def _lock_member_stmt(dialect: str):
    # The lock's INSERT takes its row from a SELECT that finds the present membership: one round
    # trip both checks that the member is in the group and locks their account (a check-in's first
    # two statements were this).
    present = select(Member.id).where(Member.community_id == bindparam("community_id"),
                                      Member.user_id == bindparam("user_id"), Member.status == MemberStatus.MEMBER)
    values = select(bindparam("community_id"), bindparam("user_id"), bindparam("balance"), bindparam("streak"),
                    bindparam("best_streak"), bindparam("last_day", type_=_accounts.c.last_day.type),
                    bindparam("freezes"), bindparam("updated_at", type_=_accounts.c.updated_at.type)).where(present.exists())
    return (insert_in(dialect, _accounts)
            .from_select(["community_id", "user_id", "balance", "streak", "best_streak", "last_day", "freezes",
                          "updated_at"], values)
            .on_conflict_do_update(index_elements=["community_id", "user_id"], set_={"balance": _accounts.c.balance})
            .returning(_accounts.c.balance, _accounts.c.streak, _accounts.c.best_streak, _accounts.c.last_day,
                       _accounts.c.freezes))


async def lock_member_account(session: AsyncSession, *, community_id: int, user_id: int,
                              now: datetime) -> AccountState | None:
    """`lock_account` for a present member of the community; None, and nothing locked or created,
    when they are not one (never were, left or were removed)."""
    row = (await session.execute(_lock_member_stmt(_dialect(session)), {
        "community_id": community_id, "user_id": user_id, "balance": 0, "streak": 0, "best_streak": 0,
        "last_day": None, "freezes": 0, "updated_at": now})).first()
    return AccountState(row.balance, row.streak, row.best_streak, row.last_day, row.freezes) if row else None


@cache
def _entry_stmt(dialect: str):
    return (insert_in(dialect, _entries)
            .on_conflict_do_nothing(index_elements=["community_id", "user_id", "reason", "reference"])
            .returning(_entries.c.id))


async def write_entry(session: AsyncSession, *, community_id: int, user_id: int, delta: int, reason: PointsReason,
                      reference: str, now: datetime, note: str | None = None, created_by: int | None = None,
                      coupon_id: int | None = None) -> int | None:
    """Append an entry unless its (reason, reference) is already there; the new entry's id, or
    None. Leaves the cached balance alone (see `move_balance`) and does not commit."""
    return (await session.execute(_entry_stmt(_dialect(session)), {
        "community_id": community_id, "user_id": user_id, "delta": delta, "reason": reason.value,
        "reference": reference[:64], "note": note, "coupon_id": coupon_id, "created_by": created_by,
        "created_at": now})).scalar()


@cache
def _move_stmt(dialect: str):
    return (insert_in(dialect, _accounts)
            .on_conflict_do_update(index_elements=["community_id", "user_id"],
                                   set_={"balance": _accounts.c.balance + bindparam("m_delta"),
                                         "updated_at": bindparam("m_now")})
            .returning(_accounts.c.balance))


async def move_balance(session: AsyncSession, *, community_id: int, user_id: int, delta: int, now: datetime) -> int:
    """Add `delta` to the cached balance (creating the account), inside the caller's transaction;
    the new balance. Callers taking points hold the lock and checked the balance first."""
    return (await session.execute(_move_stmt(_dialect(session)), {
        "community_id": community_id, "user_id": user_id, "balance": delta, "streak": 0, "best_streak": 0,
        "last_day": None, "freezes": 0, "updated_at": now, "m_delta": delta, "m_now": now})).scalar_one()


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


# --- crediting and debiting -----------------------------------------------------------------------

async def credit(session: AsyncSession, *, community_id: int, user_id: int, amount: int, reason: PointsReason,
                 reference: str, now: datetime, note: str | None = None, created_by: int | None = None,
                 commit: bool = True) -> bool:
    """Give `amount` (≥ 0) points for the event (reason, reference), once; True when this call
    recorded it, False when it already was. For other features' rewards (an invite, say) too."""
    if amount < 0:
        raise ValueError("a credit is never negative; use debit")
    created = await write_entry(session, community_id=community_id, user_id=user_id, delta=amount, reason=reason,
                                reference=reference, now=now, note=note, created_by=created_by) is not None
    if created:
        await move_balance(session, community_id=community_id, user_id=user_id, delta=amount, now=now)
    if commit:
        await session.commit()
    return created


async def debit(session: AsyncSession, *, community_id: int, user_id: int, amount: int, reason: PointsReason,
                reference: str, now: datetime, note: str | None = None, created_by: int | None = None,
                coupon_id: int | None = None, commit: bool = True) -> bool:
    """Take `amount` (≥ 0) points for the event (reason, reference), once; False when it was
    already taken. Refused with `points_insufficient` (balance, needed) when the balance does not
    cover it, leaving nothing written."""
    if amount < 0:
        raise ValueError("a debit takes a positive amount")
    state = await lock_account(session, community_id=community_id, user_id=user_id, now=now)
    if await _has_entry(session, community_id, user_id, reason, reference):
        if commit:
            await session.commit()
        return False
    if state.balance < amount:
        if commit:
            await session.commit()  # nothing but the lock was taken
        raise DomainError("points_insufficient", balance=state.balance, needed=amount)
    await write_entry(session, community_id=community_id, user_id=user_id, delta=-amount, reason=reason,
                      reference=reference, now=now, note=note, created_by=created_by, coupon_id=coupon_id)
    await move_balance(session, community_id=community_id, user_id=user_id, delta=-amount, now=now)
    if commit:
        await session.commit()
    return True


async def _has_entry(session: AsyncSession, community_id: int, user_id: int, reason: PointsReason,
                     reference: str) -> bool:
    found = await session.execute(select(_entries.c.id).where(
        _entries.c.community_id == community_id, _entries.c.user_id == user_id, _entries.c.reason == reason.value,
        _entries.c.reference == reference[:64]))
    return found.first() is not None


# --- reading --------------------------------------------------------------------------------------

async def balance(session: AsyncSession, *, community_id: int, user_id: int) -> int:
    """The member's points in this community (0 when they have none)."""
    found = await session.execute(select(_accounts.c.balance).where(
        _accounts.c.community_id == community_id, _accounts.c.user_id == user_id))
    return found.scalar() or 0


async def account(session: AsyncSession, *, community_id: int, user_id: int) -> PointsAccount | None:
    found = await session.exec(select(PointsAccount).where(
        PointsAccount.community_id == community_id, PointsAccount.user_id == user_id))
    return found.first()


async def ledger_total(session: AsyncSession, *, community_id: int, user_id: int) -> int:
    """The balance as the ledger has it: the sum of every entry (the cached balance equals it)."""
    found = await session.execute(select(func.coalesce(func.sum(_entries.c.delta), 0)).where(
        _entries.c.community_id == community_id, _entries.c.user_id == user_id))
    return int(found.scalar_one())


async def recent(session: AsyncSession, *, community_id: int, user_id: int, limit: int = 10) -> list[PointsEntry]:
    """The member's latest entries, newest first."""
    found = await session.exec(
        select(PointsEntry).where(PointsEntry.community_id == community_id, PointsEntry.user_id == user_id)
        .order_by(col(PointsEntry.created_at).desc(), col(PointsEntry.id).desc()).limit(limit))
    return list(found)


# --- a leader's manual adjustment -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Adjusted:
    created: bool  # False: this adjustment's key was already recorded (a redelivered confirmation)
    delta: int
    balance: int


def check_delta(delta: int) -> int:
    """A manual change of points as `adjust` accepts it: `points_adjust_zero`, `points_adjust_too_large` (max)."""
    if delta == 0:
        raise DomainError("points_adjust_zero")
    if abs(delta) > ADJUST_MAX:
        raise DomainError("points_adjust_too_large", max=ADJUST_MAX)
    return delta


def parse_delta(raw: str) -> int:
    """What a leader types for an adjustment: "+50", "-20" or "50" (adds); refused as `check_delta`
    refuses it, or `points_adjust_format` (value) when it is not a whole number with one sign."""
    text = raw.strip().replace("＋", "+").replace("－", "-").replace("−", "-")
    sign = -1 if text.startswith("-") else 1
    number = whole_number(text[1:].strip() if text[:1] in "+-" and text else text)
    if number is None:
        raise DomainError("points_adjust_format", value=raw.strip()[:16])
    return check_delta(sign * number)


def check_note(note: str) -> str:
    """An adjustment's reason, whitespace tidied: `points_note_required`, `points_note_too_long` (max)."""
    text = " ".join(note.split())
    if not text:
        raise DomainError("points_note_required")
    if len(text) > NOTE_MAX:
        raise DomainError("points_note_too_long", max=NOTE_MAX)
    return text


async def adjust(session: AsyncSession, *, community_id: int, user_id: int, delta: int, note: str, actor_id: int,
                 now: datetime, key: str | None = None) -> Adjusted:
    """A leader adds (delta > 0) or takes (delta < 0) points by hand, with a reason, and commits.

    `key` makes a retried confirmation idempotent (the handler passes the form's message id, say).
    Refusals: `points_adjust_zero`, `points_adjust_too_large` (max), `points_note_required`,
    `points_note_too_long` (max), `points_member_unknown`, `points_adjust_below_zero` (balance):
    the balance never goes below zero.
    """
    check_delta(delta)
    text = check_note(note)
    known = await session.execute(select(Member.id).where(Member.community_id == community_id,
                                                          Member.user_id == user_id))
    if known.first() is None:
        raise DomainError("points_member_unknown")
    reference = f"adjust:{key}" if key else f"adjust:{secrets.token_hex(8)}"
    state = await lock_account(session, community_id=community_id, user_id=user_id, now=now)
    if state.balance + delta < 0:
        await session.commit()
        raise DomainError("points_adjust_below_zero", balance=state.balance)
    created = await write_entry(session, community_id=community_id, user_id=user_id, delta=delta,
                                reason=PointsReason.ADJUST, reference=reference, now=now, note=text,
                                created_by=actor_id) is not None
    after = state.balance
    if created:
        after = await move_balance(session, community_id=community_id, user_id=user_id, delta=delta, now=now)
        audit.record(session, community_id=community_id, actor_id=actor_id, action="points.adjust",
                     details={"user_id": user_id, "delta": delta, "note": text, "balance": after}, now=now)
    await session.commit()
    return Adjusted(created, delta, after)


# --- purchase points ------------------------------------------------------------------------------

def purchase_points(total: int, currency: str, per_unit: int) -> int:
    """Points for paying `total` minor units: `per_unit` per whole currency unit, rounded down."""
    return total * per_unit // 10 ** precision(currency)


def _earned_by(order: Order) -> bool:
    return order.status == OrderStatus.PICKED_UP or (order.paid_at is not None and order.status in _PAID_STATES)


async def credit_purchase(session: AsyncSession, *, order: Order, now: datetime) -> int:
    """Purchase points for an order that is paid (and not waiting for its group) or picked up,
    inside the caller's transaction (no commit): the order paths call it where an order gets
    there. Once per order (reference "order:<id>"), at the rate set when it is first credited.
    The points given now (0: not earned yet, already given, or no purchase points here)."""
    if not _earned_by(order):
        return 0
    community = await session.get(Community, order.community_id)
    amount = purchase_points(order.total, order.currency, checkin_settings(community).purchase_points_per_unit)
    if amount <= 0:
        return 0
    created = await write_entry(session, community_id=order.community_id, user_id=order.user_id, delta=amount,
                                reason=PointsReason.PURCHASE, reference=f"order:{order.id}", now=now)
    if created is None:
        return 0
    await move_balance(session, community_id=order.community_id, user_id=order.user_id, delta=amount, now=now)
    return amount


async def reverse_purchase(session: AsyncSession, *, order: Order, now: datetime) -> int:
    """Take back an order's purchase points when it is cancelled or refunded, inside the caller's
    transaction (no commit), once. Points already spent are not taken below zero: the reversal
    takes what the balance holds and its note records the shortfall. The points taken back."""
    if order.paid_at is None and order.picked_up_at is None:
        return 0  # never earned any: no statement at all for the common unpaid cancellation
    credited = (await session.execute(select(_entries.c.delta).where(
        _entries.c.community_id == order.community_id, _entries.c.user_id == order.user_id,
        _entries.c.reason == PointsReason.PURCHASE.value, _entries.c.reference == f"order:{order.id}"))).scalar()
    if not credited:
        return 0
    state = await lock_account(session, community_id=order.community_id, user_id=order.user_id, now=now)
    taken = min(credited, state.balance)
    note = None if taken == credited else f"{credited} owed, {taken} taken: the rest was spent"
    created = await write_entry(session, community_id=order.community_id, user_id=order.user_id, delta=-taken,
                                reason=PointsReason.PURCHASE_REVERSAL, reference=f"order:{order.id}", now=now,
                                note=note)
    if created is None:
        return 0
    if taken:
        await move_balance(session, community_id=order.community_id, user_id=order.user_id, delta=-taken, now=now)
    return taken


# --- expiry ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Expired:
    user_id: int
    points: int


def months_before(day: date, months: int) -> date:
    """The same day of the month `months` earlier (the month's last day when it is shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    following = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, min(day.day, (following - date(year, month, 1)).days))


async def expire(session: AsyncSession, *, community: Community, as_of: datetime) -> list[Expired]:
    """Points earned before the start of the community-local day N months before `as_of` expire,
    oldest first (the expiry job's work; N from the settings, 0: never). Spending consumes the
    oldest points first, so what expires is what is left of them: the points earned before that
    day less everything ever taken (earlier expiries included). One entry per member and local day
    (reference: that day), each member committed on their own; a second run the same day finds
    nothing left to take."""
    months = checkin_settings(community).points_expiry_months
    if not months:
        return []
    today = local_day(community, as_of)
    cutoff_day = months_before(today, months)
    cutoff = datetime.combine(cutoff_day, time(0), ZoneInfo(community.timezone)).astimezone(timezone.utc)
    e = _entries.c
    due = await session.execute(
        select(e.user_id).where(e.community_id == community.id).group_by(e.user_id)
        .having(_old_credits(cutoff) - _all_debits() > 0))
    expired = []
    for user_id in sorted(due.scalars()):
        state = await lock_account(session, community_id=community.id, user_id=user_id, now=as_of)
        left = (await session.execute(select(_old_credits(cutoff) - _all_debits()).where(
            e.community_id == community.id, e.user_id == user_id))).scalar_one()
        taken = min(int(left or 0), state.balance)
        if taken > 0 and await write_entry(
                session, community_id=community.id, user_id=user_id, delta=-taken, reason=PointsReason.EXPIRY,
                reference=today.isoformat(), now=as_of, note=f"earned before {cutoff_day.isoformat()}") is not None:
            await move_balance(session, community_id=community.id, user_id=user_id, delta=-taken, now=as_of)
            expired.append(Expired(user_id, taken))
        await session.commit()
    return expired


def _old_credits(cutoff: datetime):
    e = _entries.c
    return func.coalesce(func.sum(case(((e.delta > 0) & (e.created_at < cutoff), e.delta), else_=0)), 0)


def _all_debits():
    e = _entries.c
    return func.coalesce(func.sum(case((e.delta < 0, -e.delta), else_=0)), 0)


# --- the rewards catalogue ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RewardDraft:
    """A reward as a leader describes it: `cost` points for a coupon of these terms."""

    title: str
    cost: int
    kind: CouponKind
    value: int
    cap: int | None = None
    min_spend: int = 0
    valid_days: int | None = 30


def check_reward(draft: RewardDraft) -> RewardDraft:
    """The draft with its title tidied, or the first problem: `points_reward_title_empty`,
    `points_reward_title_too_long` (max), `points_reward_cost_range` (min, max),
    `coupon_percent_range`, `coupon_value_zero`, `points_reward_min_spend`,
    `points_reward_valid_days` (min, max)."""
    title = " ".join(draft.title.split())
    if not title:
        raise DomainError("points_reward_title_empty")
    if len(title) > REWARD_TITLE_MAX:
        raise DomainError("points_reward_title_too_long", max=REWARD_TITLE_MAX)
    if not 1 <= draft.cost <= REWARD_COST_MAX:
        raise DomainError("points_reward_cost_range", min=1, max=REWARD_COST_MAX)
    if draft.kind == CouponKind.PERCENT and not 1 <= draft.value <= 100:
        raise DomainError("coupon_percent_range")
    if draft.value <= 0 or (draft.cap is not None and draft.cap <= 0):
        raise DomainError("coupon_value_zero")
    if draft.min_spend < 0:
        raise DomainError("points_reward_min_spend")
    if draft.valid_days is not None and not 1 <= draft.valid_days <= 3650:
        raise DomainError("points_reward_valid_days", min=1, max=3650)
    return RewardDraft(title, draft.cost, CouponKind(draft.kind), draft.value, draft.cap, draft.min_spend,
                       draft.valid_days)


def _reward_values(draft: RewardDraft) -> dict[str, Any]:
    return {"title": draft.title, "cost": draft.cost, "kind": draft.kind.value, "value": draft.value,
            "cap": draft.cap, "min_spend": draft.min_spend, "valid_days": draft.valid_days}


async def rewards(session: AsyncSession, *, community_id: int) -> list[PointsReward]:
    """The catalogue members see: rewards not deleted, cheapest first."""
    found = await session.exec(select(PointsReward).where(
        PointsReward.community_id == community_id, col(PointsReward.deleted_at).is_(None))
        .order_by(PointsReward.cost, PointsReward.id))
    return list(found)


async def get_reward(session: AsyncSession, *, community_id: int, reward_id: int) -> PointsReward:
    """A reward of this community, or `points_reward_unknown` / `points_reward_deleted`."""
    if not 0 < reward_id <= ID_MAX:  # from callback data a client can forge
        raise DomainError("points_reward_unknown")
    reward = await session.get(PointsReward, reward_id)
    if reward is None or reward.community_id != community_id:
        raise DomainError("points_reward_unknown")
    if reward.deleted_at is not None:
        raise DomainError("points_reward_deleted", title=reward.title)
    return reward


async def add_reward(session: AsyncSession, *, community_id: int, actor_id: int, draft: RewardDraft,
                     now: datetime) -> PointsReward:
    """Add a reward to the catalogue (at most REWARDS_MAX: `points_reward_too_many`), audited, and commit."""
    draft = check_reward(draft)
    if len(await rewards(session, community_id=community_id)) >= REWARDS_MAX:
        raise DomainError("points_reward_too_many", max=REWARDS_MAX)
    reward = PointsReward(community_id=community_id, created_by=actor_id, created_at=now, updated_at=now,
                          **_reward_values(draft))
    session.add(reward)
    await session.flush()
    audit.record(session, community_id=community_id, actor_id=actor_id, action="points.reward_add",
                 details={"id": reward.id, **_reward_values(draft)}, now=now)
    await session.commit()
    return reward


async def update_reward(session: AsyncSession, *, community_id: int, actor_id: int, reward_id: int,
                        draft: RewardDraft, now: datetime) -> PointsReward:
    """Change a reward's terms (coupons already issued keep theirs), audited, and commit."""
    draft = check_reward(draft)
    reward = await get_reward(session, community_id=community_id, reward_id=reward_id)
    before = {name: getattr(reward, name) for name in _reward_values(draft)}
    after = _reward_values(draft)
    if before != after:
        for name, value in after.items():
            setattr(reward, name, value)
        reward.updated_at = now
        audit.record(session, community_id=community_id, actor_id=actor_id, action="points.reward_update",
                     details={"id": reward.id, "from": before, "to": after}, now=now)
        await session.commit()
    return reward


async def delete_reward(session: AsyncSession, *, community_id: int, actor_id: int, reward_id: int,
                        now: datetime) -> PointsReward:
    """Take a reward out of the catalogue (kept, marked deleted), audited, and commit."""
    reward = await get_reward(session, community_id=community_id, reward_id=reward_id)
    reward.deleted_at = now
    reward.updated_at = now
    audit.record(session, community_id=community_id, actor_id=actor_id, action="points.reward_delete",
                 details={"id": reward.id, "title": reward.title}, now=now)
    await session.commit()
    return reward


# --- redeeming ------------------------------------------------------------------------------------

CODE_DRAWS = 3


async def issue_coupon(session: AsyncSession, *, community: Community, terms: CouponTerms, owner_id: int,
                       now: datetime, source: str) -> Coupon:
    """An owner-bound coupon on these terms, inside the caller's transaction (no commit). A drawn
    code that is already taken (about one in 10^12) is drawn again rather than failing the use case."""
    spec = terms.spec(owner_id=owner_id, timezone_name=community.timezone, now=now, source=source)
    for _ in range(CODE_DRAWS - 1):
        try:
            return await coupons.issue(session, community_id=community.id, spec=spec, actor_id=None, now=now,
                                       commit=False)
        except DomainError as err:
            if err.code != "coupon_code_taken":
                raise
    return await coupons.issue(session, community_id=community.id, spec=spec, actor_id=None, now=now, commit=False)


@dataclass(frozen=True, slots=True)
class Redeemed:
    coupon: Coupon
    reward: PointsReward
    cost: int
    balance: int  # after the redeem


@cache
def _take_stmt():
    a, r = _accounts.c, PointsReward.__table__.c
    # Named apart from the columns: an UPDATE takes a parameter named as a column for its SET.
    live = exists().where(r.id == bindparam("t_reward"), r.deleted_at.is_(None), r.cost == bindparam("t_cost"))
    return (update(_accounts)
            .where(a.community_id == bindparam("t_community"), a.user_id == bindparam("t_user"),
                   a.balance >= bindparam("t_cost"), live)
            .values(balance=a.balance - bindparam("t_cost"), updated_at=bindparam("t_now"))
            .returning(a.balance))


async def redeem(session: AsyncSession, *, community: Community, user_id: int, reward_id: int, now: datetime,
                 cost_seen: int | None = None, key: str | None = None) -> Redeemed:
    """Spend points on a reward: take its cost and issue an owner-bound coupon (source "points")
    with its terms, all or nothing, and commit.

    The points are taken by one conditional UPDATE (enough points, the reward still there at the
    same cost), the transaction's first write: of two concurrent redeems (or a double tap) that
    the balance covers once, one gets the coupon and the other `points_insufficient`.
    `cost_seen` is the cost the member was shown; when the leader changed it since, the redeem is
    refused with `points_reward_changed` (cost) so the member confirms the new one.
    `key` names the member's confirmation (its message, say): a balance that covers two coupons
    would otherwise give two to a double tap. The entry's reference is then the key, and a second
    redeem with it, concurrent or later, writes nothing and is refused with `points_redeem_repeated`.
    Refusals: `points_reward_unknown`, `points_reward_deleted` (title), `points_reward_changed`
    (cost), `points_insufficient` (balance, needed), `points_redeem_repeated`; and the coupon
    service's own.
    """
    reference = f"redeem:{key}" if key is not None else None
    if reference is not None and await _has_entry(session, community.id, user_id, PointsReason.REDEEM, reference):
        await session.commit()
        raise DomainError("points_redeem_repeated")
    reward = await get_reward(session, community_id=community.id, reward_id=reward_id)
    if cost_seen is not None and cost_seen != reward.cost:
        raise DomainError("points_reward_changed", cost=reward.cost)
    params = {"t_reward": reward.id, "t_cost": reward.cost, "t_community": community.id, "t_user": user_id,
              "t_now": now}
    left = (await session.execute(_take_stmt(), params)).scalar()
    if left is None:
        await session.commit()  # nothing written; ends the transaction the failed UPDATE opened
        await session.refresh(reward)
        if reward.deleted_at is not None:
            raise DomainError("points_reward_deleted", title=reward.title)
        if reward.cost != params["t_cost"]:
            raise DomainError("points_reward_changed", cost=reward.cost)
        have = await balance(session, community_id=community.id, user_id=user_id)
        raise DomainError("points_insufficient", balance=have, needed=reward.cost)
    terms = CouponTerms(kind=reward.kind, value=reward.value, cap=reward.cap, min_spend=reward.min_spend,
                        valid_days=reward.valid_days)
    try:
        coupon = await issue_coupon(session, community=community, terms=terms, owner_id=user_id, now=now,
                                    source="points")
    except DomainError:
        await session.execute(update(_accounts).where(_accounts.c.community_id == community.id,
                                                      _accounts.c.user_id == user_id)
                              .values(balance=_accounts.c.balance + reward.cost))
        await session.commit()
        raise
    written = await write_entry(session, community_id=community.id, user_id=user_id, delta=-reward.cost,
                                reason=PointsReason.REDEEM, reference=reference or f"coupon:{coupon.id}", now=now,
                                coupon_id=coupon.id, note=reward.title)
    if written is None:  # the same key's redeem committed meanwhile: undo this one's take and coupon
        await session.rollback()
        raise DomainError("points_redeem_repeated")
    await session.commit()
    return Redeemed(coupon, reward, reward.cost, left)
