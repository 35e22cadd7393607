"""Win-back campaigns: setting one up, whom a run chooses, their coupons and sends, and what came of it.

A run is planned at once: the drifting members (bot/services/churn.py) who can be messaged, have
not opted out and had no win-back within the cap are each given an arm by a hash of campaign, run
and member, and a row (`CampaignSend`). The holdout's rows are final there; the treatment's are
sent in chunks: `claim` issues their coupons and marks them `sending` in one transaction, the
sends go through the sender, and `record` writes how each ended. A process that dies leaves some
rows `sending`; `recover` puts back those Telegram never saw and marks the others `in_doubt`, so a
resumed run never messages anyone twice.

Both arms are measured alike (`outcome`): a member returns when they place an order (or, if the
campaign says so, are active again) within the window from when they were chosen.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import and_, bindparam, case, func, insert, literal, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.localtime import local_time
from bot.services import audit, churn, coupons
from bot.services.campaign_config import WinbackConfig, winback_config
from bot.services.churn import AtRisk, RiskScan
from bot.services.errors import DomainError
from bot.services.lift import Lift, lift
from bot.services.upsert import insert_for, insert_rows, rows_params
from models import ActivityDay, Community, Coupon, CouponRedemption, Order, OrderStatus, Product, User
from models.campaign import Arm, Campaign, CampaignKind, CampaignRun, CampaignSend, RunStatus, SendStatus

# Below this many members in either arm, a difference says too little to show.
MIN_ARM = 20
# Ids per statement when checking many members at once (SQLite allows 32,766 parameters).
CHUNK = 5_000
COUPON_SOURCE = "winback"
SAMPLES = 3
NOT_RETURNED = (OrderStatus.CANCELLED,)


# ----- setting up ---------------------------------------------------------------------------------

async def create_winback(session: AsyncSession, *, community: Community, owner_id: int, name: str,
                         now: datetime) -> Campaign:
    """A new win-back campaign with the defaults, switched off until the leader turns it on."""
    campaign = Campaign(community_id=community.id, kind=CampaignKind.WINBACK, name=name[:64], enabled=False,
                        config=WinbackConfig().model_dump(mode="json"), owner_id=owner_id, created_at=now,
                        updated_at=now)
    session.add(campaign)
    await session.flush()
    audit.record(session, community_id=community.id, actor_id=owner_id, action="campaign.create",
                 details={"id": campaign.id, "name": campaign.name}, now=now)
    await session.commit()
    return campaign


async def campaigns_of(session: AsyncSession, *, community_id: int) -> list[Campaign]:
    rows = await session.execute(select(Campaign).where(Campaign.community_id == community_id).order_by(Campaign.id))
    return list(rows.scalars())


async def campaign(session: AsyncSession, *, campaign_id: int, community_id: int) -> Campaign:
    """The campaign, only within its community (ids in buttons come from the client)."""
    found = await session.get(Campaign, campaign_id, populate_existing=True)
    if found is None or found.community_id != community_id:
        raise DomainError("campaign_not_found")
    return found


async def update_config(session: AsyncSession, *, campaign: Campaign, changes: dict, actor_id: int,
                        now: datetime) -> WinbackConfig:
    """Apply the leader's changes, validated as a whole; each changed option is audited."""
    current = winback_config(campaign.config)
    try:
        updated = WinbackConfig.model_validate(current.model_dump() | changes)
    except ValidationError as exc:
        # `reason`: the check that failed (campaign_config's own, or pydantic's such as
        # "less_than_equal" with `le`); `field`: the option; `detail`: in English, for logs.
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise DomainError("campaign_setting", reason=error["type"], field=field,
                          detail=error["msg"].removeprefix("Value error, "), **error.get("ctx", {})) from None
    before, after = current.model_dump(mode="json"), updated.model_dump(mode="json")
    diff = [key for key in after if before[key] != after[key]]
    if diff:
        campaign.config = after
        campaign.updated_at = now
        for key in diff:
            audit.record(session, community_id=campaign.community_id, actor_id=actor_id,
                         action=f"campaign.{key}", details={"id": campaign.id, "from": before[key], "to": after[key]},
                         now=now)
        await session.commit()
    return updated


async def set_enabled(session: AsyncSession, *, campaign: Campaign, enabled: bool, actor_id: int,
                      now: datetime) -> None:
    if campaign.enabled != enabled:
        campaign.enabled, campaign.updated_at = enabled, now
        audit.record(session, community_id=campaign.community_id, actor_id=actor_id,
                     action="campaign.enable" if enabled else "campaign.disable", details={"id": campaign.id}, now=now)
        await session.commit()


async def rename(session: AsyncSession, *, campaign: Campaign, name: str, actor_id: int, now: datetime) -> None:
    name = " ".join(name.split())
    if not name or len(name) > 64:
        raise DomainError("campaign_name", max=64)
    audit.record(session, community_id=campaign.community_id, actor_id=actor_id, action="campaign.name",
                 details={"id": campaign.id, "from": campaign.name, "to": name}, now=now)
    campaign.name, campaign.updated_at = name, now
    await session.commit()


# ----- choosing -----------------------------------------------------------------------------------

def arm_for(campaign_id: int, run_key: int | str, user_id: int, holdout_percent: int) -> Arm:
    """The member's arm in this run: a hash, so the same inputs always give the same arm and
    nothing about the member (risk, order of listing) decides it."""
    digest = hashlib.sha256(f"{campaign_id}:{run_key}:{user_id}".encode()).digest()
    return Arm.HOLDOUT if int.from_bytes(digest[:8], "big") < holdout_percent * 2**64 // 100 else Arm.TREATMENT


class Skip:
    CAPPED = "capped"  # a win-back within the cap
    UNREACHABLE = "unreachable"  # never started the bot, or blocked it
    OPTED_OUT = "opted_out"  # /stop


@dataclass(frozen=True, slots=True)
class Chosen:
    member: AtRisk
    arm: Arm


@dataclass(frozen=True, slots=True)
class Plan:
    scan: RiskScan
    chosen: list[Chosen]
    skipped: dict[str, int]

    @property
    def treatment(self) -> int:
        return sum(c.arm is Arm.TREATMENT for c in self.chosen)

    @property
    def holdout(self) -> int:
        return len(self.chosen) - self.treatment


async def plan(session: AsyncSession, *, campaign: Campaign, community: Community, config: WinbackConfig,
               run_key: int | str, now: datetime) -> Plan:
    """Whom a run started `now` chooses, and why the other drifting members are left out."""
    scan = await churn.scan(session, community_id=community.id, tz=community.timezone, audience=config.audience,
                            policy=config.policy(), now=now)
    skipped: Counter[str] = Counter()
    chosen: list[Chosen] = []
    since = now - timedelta(days=config.cap_days)
    for start in range(0, len(scan.drifting), CHUNK):
        part = scan.drifting[start:start + CHUNK]
        ids = [m.user_id for m in part]
        reach = dict((await session.execute(
            select(User.id, case((User.erased, Skip.UNREACHABLE), (~User.can_dm, Skip.UNREACHABLE),
                                 (User.marketing_opt_out, Skip.OPTED_OUT), else_=literal("")))
            .where(User.id.in_(ids)))).all())
        capped = set((await session.execute(
            select(CampaignSend.user_id).where(CampaignSend.community_id == community.id,
                                               CampaignSend.user_id.in_(ids), CampaignSend.assigned_at > since)
            .distinct())).scalars())
        for member in part:
            reason = Skip.CAPPED if member.user_id in capped else reach.get(member.user_id, Skip.UNREACHABLE)
            if reason:
                skipped[reason] += 1
            else:
                chosen.append(Chosen(member, arm_for(campaign.id, run_key, member.user_id, config.holdout_percent)))
    return Plan(scan, chosen, dict(skipped))


@dataclass(frozen=True, slots=True)
class Sample:
    member: AtRisk
    name: str
    product: str | None
    arm: Arm


@dataclass(frozen=True, slots=True)
class DryRun:
    plan: Plan
    samples: list[Sample]
    quiet_now: bool


async def dry_run(session: AsyncSession, *, campaign: Campaign, community: Community, now: datetime) -> DryRun:
    """What a run now would do, writing nothing: counts, the risk bands, three sample members."""
    config = winback_config(campaign.config)
    chosen = await plan(session, campaign=campaign, community=community, config=config, run_key="next", now=now)
    picks = chosen.chosen[:SAMPLES]
    names = await _names(session, [c.member.user_id for c in picks])
    products = await favourite_products(session, community_id=community.id, user_ids=[c.member.user_id for c in picks])
    samples = [Sample(c.member, names.get(c.member.user_id, str(c.member.user_id)), products.get(c.member.user_id),
                      c.arm) for c in picks]
    return DryRun(chosen, samples, config.quiet_at(now, community.timezone))


async def _names(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, str]:
    rows = await session.execute(select(User).where(User.id.in_(user_ids)))
    return {u.id: u.display_name for u in rows.scalars()}


async def favourite_products(session: AsyncSession, *, community_id: int, user_ids: Sequence[int]) -> dict[int, str]:
    """Each member's most-bought product here (by units, the latest on a tie)."""
    if not user_ids:
        return {}
    rows = await session.execute(
        select(Order.user_id, Product.title, func.sum(Order.quantity), func.max(Order.created_at))
        .join(Product, Product.id == Order.product_id)
        .where(Order.community_id == community_id, Order.user_id.in_(user_ids),
               Order.status.not_in(NOT_RETURNED))
        .group_by(Order.user_id, Product.id, Product.title))
    best: dict[int, tuple] = {}
    for user_id, name, units, last in rows:
        if user_id not in best or (units, last) > best[user_id][1:]:
            best[user_id] = (name, units, last)
    return {uid: v[0] for uid, v in best.items()}


# ----- runs ---------------------------------------------------------------------------------------

async def start_run(session: AsyncSession, *, campaign: Campaign, community: Community, now: datetime,
                    runner: str, scheduled_on: date | None = None,
                    started_by: int | None = None) -> CampaignRun | None:
    """Plan a run that `runner` sends, and write its rows; None when the campaign already ran on
    `scheduled_on`, or a run of it is still sending."""
    config = winback_config(campaign.config)
    inserted = await session.execute(
        insert_for(session, CampaignRun.__table__).values(
            campaign_id=campaign.id, community_id=community.id, scheduled_on=scheduled_on, status=RunStatus.SENDING,
            started_by=started_by, runner=runner, config=config.model_dump(mode="json"), scanned=0, drifting=0, skipped={},
            started_at=now)
        # Either key: the day's scheduled run exists, or a run of this campaign is still sending.
        .on_conflict_do_nothing()
        .returning(CampaignRun.__table__.c.id))
    run_id = inserted.scalar_one_or_none()
    if run_id is None:
        await session.commit()  # nothing written; a rollback would expire the caller's objects
        return None
    chosen = await plan(session, campaign=campaign, community=community, config=config, run_key=run_id, now=now)
    rows = [{"run_id": run_id, "campaign_id": campaign.id, "community_id": community.id, "user_id": c.member.user_id,
             "arm": c.arm, "risk": round(c.member.risk, 4),
             "status": SendStatus.PENDING if c.arm is Arm.TREATMENT else SendStatus.HELD, "assigned_at": now,
             "window_ends_at": now + timedelta(days=config.window_days)}
            for c in chosen.chosen]
    for start in range(0, len(rows), CHUNK):
        await session.execute(insert(CampaignSend.__table__), rows[start:start + CHUNK])
    await session.execute(update(CampaignRun).where(CampaignRun.id == run_id).values(
        scanned=chosen.scan.scanned, drifting=len(chosen.scan.drifting), skipped=chosen.skipped))
    audit.record(session, community_id=community.id, actor_id=started_by, action="campaign.run",
                 details={"id": campaign.id, "run": run_id, "treatment": chosen.treatment, "holdout": chosen.holdout},
                 now=now)
    await session.commit()
    return await session.get(CampaignRun, run_id, populate_existing=True)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send: everything the text needs, in the member's language."""

    send_id: int
    user_id: int
    name: str
    locale: str | None  # the member's own choice or Telegram's; None: the community's
    coupon_code: str
    expires_at: datetime | None
    product: str | None


async def claim(session: AsyncSession, *, run: CampaignRun, community: Community, limit: int,
                now: datetime) -> list[Outgoing]:
    """The run's next `limit` treatment sends: members who opted out or became unreachable since the
    plan are settled; the others get their coupon and are marked `sending`, in one transaction."""
    config = winback_config(run.config)
    stmt = (select(CampaignSend.id, CampaignSend.user_id, CampaignSend.coupon_id)
            .where(CampaignSend.run_id == run.id, CampaignSend.status == SendStatus.PENDING)
            .order_by(CampaignSend.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = (await session.execute(stmt)).all()
    if not rows:
        return []
    users = {u.id: u for u in (await session.execute(select(User).where(User.id.in_([r.user_id for r in rows]))))
             .scalars()}
    settled: dict[str, list[int]] = {SendStatus.OPTED_OUT: [], SendStatus.BLOCKED: []}
    ready = []
    for row in rows:
        user = users.get(row.user_id)
        if user is None or user.erased or not user.can_dm:
            settled[SendStatus.BLOCKED].append(row.id)
        elif user.marketing_opt_out:
            settled[SendStatus.OPTED_OUT].append(row.id)
        else:
            ready.append(row)
    for status, ids in settled.items():
        if ids:
            await session.execute(update(CampaignSend).where(CampaignSend.id.in_(ids))
                                  .values(status=status, error="before sending"))
    codes = await _issue_coupons(session, community=community, config=config,
                                 owners={r.id: r.user_id for r in ready if r.coupon_id is None}, now=now)
    coupon_ids = {r.id: r.coupon_id for r in ready if r.coupon_id is not None} | {k: v[0] for k, v in codes.items()}
    if ready:
        await session.execute(
            update(CampaignSend.__table__).where(CampaignSend.__table__.c.id == bindparam("b_id"))
            .values(status=SendStatus.SENDING, coupon_id=bindparam("b_coupon")),
            [{"b_id": r.id, "b_coupon": coupon_ids[r.id]} for r in ready])
    coupon_rows = {c.id: c for c in (await session.execute(
        select(Coupon).where(Coupon.id.in_(list(coupon_ids.values()))))).scalars()} if ready else {}
    products = await favourite_products(session, community_id=community.id, user_ids=[r.user_id for r in ready])
    await session.commit()
    out = []
    for r in ready:
        user, coupon = users[r.user_id], coupon_rows[coupon_ids[r.id]]
        out.append(Outgoing(r.id, r.user_id, user.display_name, user.locale or user.language_code, coupon.code,
                            coupon.expires_at, products.get(r.user_id)))
    return out


_COUPON_COLUMNS = ("community_id", "code", "owner_id", "kind", "value", "cap", "min_spend", "expires_at", "single_use",
                   "uses", "source", "created_by", "created_at")


@cache
def _coupons_insert(dialect: str):
    # Built once per dialect: a multi-row VALUES of a few hundred coupons was compiled afresh for
    # every chunk of a broadcast.
    t = Coupon.__table__
    return insert_rows(dialect, t, _COUPON_COLUMNS).on_conflict_do_nothing(index_elements=["community_id", "code"]) \
        .returning(t.c.id, t.c.code)


async def _issue_coupons(session: AsyncSession, *, community: Community, config: WinbackConfig,
                         owners: dict[int, int], now: datetime) -> dict[int, tuple[int, str]]:
    """A unique coupon bound to each owner (send id → owner): send id → (coupon id, code)."""
    dialect = session.get_bind().dialect.name
    offer = config.offer
    expires_at = offer.spec(owner_id=0, timezone_name=community.timezone, now=now, source=COUPON_SOURCE).expires_at
    issued: dict[int, tuple[int, str]] = {}
    todo = dict(owners)
    while todo:
        codes = {send_id: coupons.new_code("WB") for send_id in todo}
        rows = [{"community_id": community.id, "code": codes[s], "owner_id": owner, "kind": offer.kind,
                 "value": offer.value, "cap": offer.cap, "min_spend": offer.min_spend, "expires_at": expires_at,
                 "single_use": True, "uses": 0, "source": COUPON_SOURCE, "created_by": None, "created_at": now}
                for s, owner in todo.items()]
        if dialect == "postgresql":
            returned = await session.execute(_coupons_insert(dialect), rows_params(dialect, _COUPON_COLUMNS, rows))
            made = {code: coupon_id for coupon_id, code in returned.all()}
        else:  # an executemany, which cannot return rows
            await session.execute(insert_for(session, Coupon.__table__).on_conflict_do_nothing(
                index_elements=["community_id", "code"]), rows)
            made = dict((await session.execute(select(Coupon.code, Coupon.id).where(
                Coupon.community_id == community.id, Coupon.code.in_(list(codes.values())),
                Coupon.created_at == now, Coupon.source == COUPON_SOURCE))).all())
        for send_id in list(todo):
            coupon_id = made.get(codes[send_id])
            if coupon_id is not None:  # else the code was taken: another one next round
                issued[send_id] = (coupon_id, codes[send_id])
                del todo[send_id]
    return issued


@dataclass(frozen=True, slots=True)
class Result:
    send_id: int
    status: SendStatus
    at: datetime
    message_id: int | None = None
    error: str | None = None


async def record(session: AsyncSession, results: Iterable[Result]) -> None:
    """How sends ended, in one statement."""
    params = [{"b_id": r.send_id, "b_status": r.status, "b_message": r.message_id,
               "b_at": r.at if r.status is SendStatus.SENT else None, "b_error": (r.error or None) and r.error[:200]}
              for r in results]
    if params:
        t = CampaignSend.__table__
        await session.execute(update(t).where(t.c.id == bindparam("b_id")).values(
            status=bindparam("b_status"), message_id=bindparam("b_message"), sent_at=bindparam("b_at"),
            error=bindparam("b_error")), params)
    await session.commit()


async def recover(session: AsyncSession, *, run_id: int, attempted: set[int] | None,
                  answered: Sequence[Result] = ()) -> tuple[int, int]:
    """After a crash: the answers the dead worker had journaled are recorded; rows still `sending`
    that Telegram never saw (not in `attempted`) go back to pending; the others, and all of them
    when nobody knows (`attempted` None), are in doubt and never sent again. Returns (put back,
    in doubt)."""
    if answered:
        await record(session, answered)
    stuck = list((await session.execute(select(CampaignSend.id).where(
        CampaignSend.run_id == run_id, CampaignSend.status == SendStatus.SENDING))).scalars())
    back = [i for i in stuck if attempted is not None and i not in attempted]
    doubt = [i for i in stuck if attempted is None or i in attempted]
    if back:
        await session.execute(update(CampaignSend).where(CampaignSend.id.in_(back)).values(status=SendStatus.PENDING))
    if doubt:
        await session.execute(update(CampaignSend).where(CampaignSend.id.in_(doubt))
                              .values(status=SendStatus.IN_DOUBT, error="the bot stopped while Telegram had it"))
    await session.commit()
    return len(back), len(doubt)


@dataclass(frozen=True, slots=True)
class Progress:
    by_status: dict[str, int]
    holdout: int
    skipped: dict[str, int]

    @property
    def treatment(self) -> int:
        return sum(self.by_status.values())

    @property
    def remaining(self) -> int:
        return self.by_status.get(SendStatus.PENDING, 0) + self.by_status.get(SendStatus.SENDING, 0)

    @property
    def sent(self) -> int:
        return self.by_status.get(SendStatus.SENT, 0)

    @property
    def failed(self) -> int:
        return sum(self.by_status.get(s, 0) for s in (SendStatus.FAILED, SendStatus.IN_DOUBT))

    @property
    def not_sent(self) -> dict[str, int]:
        """Skips at planning and at sending, by reason."""
        found = Counter(self.skipped)
        found[Skip.OPTED_OUT] += self.by_status.get(SendStatus.OPTED_OUT, 0)
        found[Skip.UNREACHABLE] += self.by_status.get(SendStatus.BLOCKED, 0)
        return {k: v for k, v in found.items() if v}


async def progress(session: AsyncSession, *, run: CampaignRun) -> Progress:
    rows = dict((await session.execute(select(CampaignSend.status, func.count()).where(CampaignSend.run_id == run.id)
                                       .group_by(CampaignSend.status))).all())
    holdout = rows.pop(SendStatus.HELD, 0)
    return Progress(rows, holdout, dict(run.skipped))


async def finish(session: AsyncSession, *, run: CampaignRun, now: datetime) -> None:
    await session.execute(update(CampaignRun).where(CampaignRun.id == run.id, CampaignRun.status == RunStatus.SENDING)
                          .values(status=RunStatus.DONE, finished_at=now))
    await session.commit()


async def set_progress_message(session: AsyncSession, *, run_id: int, chat_id: int, message_id: int) -> None:
    await session.execute(update(CampaignRun).where(CampaignRun.id == run_id)
                          .values(progress_chat_id=chat_id, progress_message_id=message_id))
    await session.commit()


async def take_over(session: AsyncSession, *, run_id: int, runner: str, previous: str | None) -> bool:
    """Make `runner` the run's sender if `previous` still is (compare and set: of several workers
    that saw the same dead one, one wins)."""
    taken = await session.execute(
        update(CampaignRun).where(CampaignRun.id == run_id, CampaignRun.status == RunStatus.SENDING,
                                  CampaignRun.runner.is_(None) if previous is None else CampaignRun.runner == previous)
        .values(runner=runner))
    await session.commit()
    return taken.rowcount == 1


async def release(session: AsyncSession, *, run_id: int, runner: str) -> None:
    """The runner lets go (quiet hours began, or it stops): any worker may go on with it later."""
    await session.execute(update(CampaignRun).where(CampaignRun.id == run_id, CampaignRun.runner == runner)
                          .values(runner=None))
    await session.commit()


async def unfinished(session: AsyncSession) -> list[CampaignRun]:
    rows = await session.execute(select(CampaignRun).where(CampaignRun.status == RunStatus.SENDING)
                                 .order_by(CampaignRun.id))
    return list(rows.scalars())


@dataclass(frozen=True, slots=True)
class Due:
    campaign: Campaign
    community: Community
    day: date


async def due(session: AsyncSession, *, now: datetime) -> list[Due]:
    """Enabled campaigns whose community-local run time has come today, outside quiet hours, that
    have not run today."""
    rows = await session.execute(
        select(Campaign, Community).join(Community, Community.id == Campaign.community_id)
        .where(Campaign.enabled, Community.active))
    found = []
    for campaign_row, community in rows.all():
        config = winback_config(campaign_row.config)
        local = now.astimezone(ZoneInfo(community.timezone))
        if local.time() < time.fromisoformat(config.send_time) or config.is_quiet(local.time()):
            continue
        found.append(Due(campaign_row, community, local.date()))
    if not found:
        return []
    ran = set((await session.execute(select(CampaignRun.campaign_id, CampaignRun.scheduled_on).where(
        CampaignRun.campaign_id.in_([d.campaign.id for d in found]),
        CampaignRun.scheduled_on.in_({d.day for d in found})))).all())
    return [d for d in found if (d.campaign.id, d.day) not in ran]


# ----- outcome ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ArmOutcome:
    members: int = 0
    returned: int = 0
    revenue: int = 0  # minor units, orders of returners within their window

    @property
    def rate(self) -> float | None:
        return self.returned / self.members if self.members else None


@dataclass(frozen=True, slots=True)
class Outcome:
    treatment: ArmOutcome
    holdout: ArmOutcome
    sent: int
    redeemed: int  # coupons of this campaign used on an order
    window_ends: datetime | None  # when the last chosen member's window closes
    lift: Lift | None  # None: not enough data yet
    reason: str | None = None  # why not: "window", "small"
    runs: list[int] = field(default_factory=list)


async def outcome(session: AsyncSession, *, campaign: Campaign, now: datetime, run_id: int | None = None) -> Outcome:
    """Who came back in each arm, for one run or the whole campaign, in one query; and the lift once
    every window has closed and both arms are big enough."""
    s = CampaignSend.__table__.c
    runs = select(CampaignRun.id, CampaignRun.config).where(CampaignRun.campaign_id == campaign.id)
    if run_id is not None:
        runs = runs.where(CampaignRun.id == run_id)
    run_rows = (await session.execute(runs)).all()
    if not run_rows:
        return Outcome(ArmOutcome(), ArmOutcome(), 0, 0, None, None, "window")
    # Each run keeps the rule it was planned with; its rows, their window.
    by_rule: dict[bool, list[int]] = {}
    for rid, config in run_rows:
        by_rule.setdefault(winback_config(config).count_activity, []).append(rid)
    totals = {Arm.TREATMENT: Counter(), Arm.HOLDOUT: Counter()}
    sent = redeemed = 0
    window_ends = None
    sends = CampaignSend.__table__
    for count_activity, run_ids in by_rule.items():
        in_window = and_(Order.community_id == s.community_id, Order.user_id == s.user_id,
                         Order.created_at >= s.assigned_at, Order.created_at <= s.window_ends_at,
                         Order.status.not_in(NOT_RETURNED))
        came_back = select(func.count()).where(in_window).correlate(sends).scalar_subquery() > 0
        revenue = select(func.coalesce(func.sum(Order.total), 0)).where(in_window).correlate(sends).scalar_subquery()
        if count_activity:
            active = select(func.count()).where(
                ActivityDay.community_id == s.community_id, ActivityDay.user_id == s.user_id,
                ActivityDay.last_at > s.assigned_at, ActivityDay.first_at <= s.window_ends_at,
            ).correlate(sends).scalar_subquery()
            came_back = or_(came_back, active > 0)
        used = select(func.count()).where(CouponRedemption.coupon_id == s.coupon_id).correlate(sends).scalar_subquery()
        rows = await session.execute(
            select(s.arm, func.count(), func.sum(case((came_back, 1), else_=0)),
                   func.sum(case((came_back, revenue), else_=0)),
                   func.sum(case((s.status == SendStatus.SENT, 1), else_=0)),
                   func.sum(case((s.coupon_id.is_not(None) & (used > 0), 1), else_=0)),
                   func.max(s.window_ends_at))
            .where(s.run_id.in_(run_ids)).group_by(s.arm))
        for arm, members, returned, money, sent_n, redeemed_n, last in rows:
            totals[Arm(arm)].update(members=members, returned=returned or 0, revenue=money or 0)
            sent += sent_n or 0
            redeemed += redeemed_n or 0
            if last is not None:
                window_ends = last if window_ends is None else max(window_ends, last)
    t, h = (ArmOutcome(c["members"], c["returned"], c["revenue"]) for c in (totals[Arm.TREATMENT],
                                                                         totals[Arm.HOLDOUT]))
    reason = None
    if window_ends is None or now < window_ends:
        reason = "window"
    elif t.members < MIN_ARM or h.members < MIN_ARM:
        reason = "small"
    measured = lift(t.returned, t.members, h.returned, h.members) if reason is None else None
    return Outcome(t, h, sent, redeemed, window_ends, measured, reason, [rid for rid, _ in run_rows])


def expires_text(expires_at: datetime | None, community: Community) -> str:
    return local_time(expires_at, community, "%Y-%m-%d") if expires_at is not None else ""
