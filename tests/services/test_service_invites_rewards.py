"""bot.services.invite_rewards and the review queue on a real database: invites qualify after N days
and the leader's requirement, level 1 and level 2 are rewarded once and a third level never (whatever
the stored settings say), leaving before or after the reward, the job run twice or concurrently,
its statements per batch, coupons as rewards, approvals and rejections audited and rewarded once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from invite_builders import arrive, depart, ledger, link_of, make_group, referral_of, seat, with_options
from shop_builders import LEADER, buy, make_product, make_shop
from sqlalchemy import event, update
from sqlmodel import select

from bot.services import invite_rewards, invites, orders
from bot.services.errors import DomainError
from bot.services.invite_settings import InviteSettings, LevelReward, invite_settings, update_invite_settings
from models import Coupon, Member, OrderStatus, PointsEntry, Referral, ReferralState

A, B, C, D, E = 401, 402, 403, 404, 405
DAY = timedelta(days=1)


async def chain(session, g, *uids, now):
    """uids[0] was there before; each next one joins through the previous one's link."""
    await seat(session, g, uids[0], now=now)
    for inviter, uid in zip(uids, uids[1:]):
        await arrive(session, g, uid, now=now, link=await link_of(session, g, inviter, now=now))


async def qualify(session, g, at, **kw):
    return await invite_rewards.qualify_due(session, community=g, as_of=at, **kw)


# ----- settings -----------------------------------------------------------------------------------------

async def test_settings_have_two_reward_levels_at_most(session, audit_rows, t0):
    g = await make_group(session, now=t0)
    assert invite_settings(g).reward_for(1) == LevelReward(points=10) and invite_settings(g).reward_for(2) is None
    with pytest.raises(DomainError) as refused:
        await update_invite_settings(session, community=g, actor_id=LEADER, now=t0, level3={"points": 5})
    assert (refused.value.code, refused.value.params) == ("invite_setting_invalid", {"detail": "unknown option level3"})
    with pytest.raises(DomainError) as refused:
        await update_invite_settings(session, community=g, actor_id=LEADER, now=t0, qualify_days=0)
    assert refused.value.code == "invite_setting_invalid" and refused.value.params["detail"].startswith("qualify_days")
    updated = await update_invite_settings(session, community=g, actor_id=LEADER, now=t0, level2=LevelReward(points=3),
                                           qualify_days=5)
    assert updated.reward_for(2) == LevelReward(points=3) and updated.qualify_days == 5
    assert [(row.action, row.details) for row in await audit_rows() if row.action.startswith("invites.")] == [
        ("invites.level2", {"from": None, "to": {"points": 3, "coupon": None}}),
        ("invites.qualify_days", {"from": 3, "to": 5})]
    # Whatever is stored, nothing past level 2 is a reward.
    stored = InviteSettings.model_validate({"level1": {"points": 1}, "level2": {"points": 2}, "level3": {"points": 3},
                                            "levels": 9})
    assert [stored.reward_for(level) for level in (1, 2, 3, 4)] == [LevelReward(points=1), LevelReward(points=2),
                                                                     None, None]


# ----- qualification ------------------------------------------------------------------------------------

async def test_two_levels_are_rewarded_once_and_a_third_never(session, fresh, t0):
    # Stored settings that ask for more than the law allows: a third and a fourth level.
    g = await make_group(session, now=t0, level1={"points": 10}, level2={"points": 5}, level3={"points": 100},
                         level4={"points": 1000}, max_levels=4)
    await chain(session, g, A, B, C, D, E, now=t0)  # E is fourth-level for A
    ids = {uid: (await referral_of(fresh, g.id, uid)).id for uid in (B, C, D, E)}
    assert (await qualify(session, g, t0 + 2 * DAY)).qualified == 0  # not three days yet
    report = await qualify(session, g, t0 + 3 * DAY)
    assert (report.qualified, report.rewarded, report.points) == (4, 4, 4 * 10 + 3 * 5)
    assert (await ledger(fresh, g.id, A)).entries == [(f"referral:{ids[B]}", 10, None), (f"referral:{ids[C]}:2", 5, None)]
    assert (await ledger(fresh, g.id, B)).entries == [(f"referral:{ids[C]}", 10, None), (f"referral:{ids[D]}:2", 5, None)]
    assert (await ledger(fresh, g.id, C)).entries == [(f"referral:{ids[D]}", 10, None), (f"referral:{ids[E]}:2", 5, None)]
    assert (await ledger(fresh, g.id, D)).entries == [(f"referral:{ids[E]}", 10, None)]
    # D's and E's invites reach A at levels 3 and 4: nothing, in the ledger or anywhere.
    async with fresh() as s:
        entries = list(await s.exec(select(PointsEntry)))
    assert all(e.reference.split(":")[2:] in ([], ["2"]) for e in entries)  # "referral:<id>" or "...:2"
    assert {(e.user_id, e.reference) for e in entries if e.reference in (f"referral:{ids[D]}", f"referral:{ids[D]}:2",
                                                                         f"referral:{ids[E]}", f"referral:{ids[E]}:2")} \
        == {(C, f"referral:{ids[D]}"), (B, f"referral:{ids[D]}:2"), (D, f"referral:{ids[E]}"), (C, f"referral:{ids[E]}:2")}
    for uid in (A, B, C, D):
        mine = await ledger(fresh, g.id, uid)
        assert mine.balance == mine.total
    states = [(await referral_of(fresh, g.id, uid)) for uid in (B, C, D, E)]
    assert [(r.state, r.bonus_to) for r in states] == [("rewarded", None), ("rewarded", A), ("rewarded", B),
                                                        ("rewarded", C)]
    # Run again, later: nothing more.
    again = await qualify(session, g, t0 + 30 * DAY)
    assert (again.qualified, again.points) == (0, 0)
    assert (await ledger(fresh, g.id, A)).balance == 15


async def test_level_two_is_off_by_default(session, fresh, t0):
    g = await make_group(session, now=t0)
    await chain(session, g, A, B, C, now=t0)
    await qualify(session, g, t0 + 3 * DAY)
    assert (await ledger(fresh, g.id, A)).entries == [(f"referral:{(await referral_of(fresh, g.id, B)).id}", 10, None)]
    assert (await referral_of(fresh, g.id, C)).bonus_to is None


async def test_joins_without_an_inviter_qualify_without_a_reward(session, fresh, t0):
    g = await make_group(session, now=t0)
    await arrive(session, g, B, now=t0)
    report = await qualify(session, g, t0 + 3 * DAY)
    assert (report.qualified, report.rewarded) == (1, 0)
    b = await referral_of(fresh, g.id, B)
    assert (b.state, b.qualified_at, b.rewarded_at) == ("qualified", t0 + 3 * DAY, None)


async def test_leaving_before_qualifying_earns_nothing_and_after_keeps_the_reward(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    la = await link_of(session, g, A, now=t0)
    await arrive(session, g, B, now=t0, link=la)
    await arrive(session, g, C, now=t0, link=la)
    await depart(session, g, B, now=t0 + 2 * DAY)
    await qualify(session, g, t0 + 3 * DAY)
    b, c = await referral_of(fresh, g.id, B), await referral_of(fresh, g.id, C)
    assert (b.state, b.flags) == ("left", ["left_within_72h"])
    assert c.state == "rewarded"
    assert (await ledger(fresh, g.id, A)).entries == [(f"referral:{c.id}", 10, None)]
    await depart(session, g, C, now=t0 + 10 * DAY)
    c = await referral_of(fresh, g.id, C)
    assert (c.state, c.left_at, c.flags) == ("rewarded", t0 + 10 * DAY, [])
    assert (await ledger(fresh, g.id, A)).balance == 10
    # Someone whose departure was missed does not qualify either.
    await arrive(session, g, D, now=t0 + 10 * DAY, link=la)
    async with fresh() as s:
        await s.execute(update(Member).where(Member.user_id == D).values(status="left"))
        await s.commit()
    assert (await qualify(session, g, t0 + 20 * DAY)).qualified == 0


async def test_flagged_invites_are_held_not_rewarded(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, B, now=t0)
    la = await link_of(session, g, A, now=t0)
    await depart(session, g, B, now=t0)
    await arrive(session, g, B, now=t0 + DAY, link=la)  # a rejoin
    assert (await qualify(session, g, t0 + 30 * DAY)).qualified == 0
    assert (await referral_of(fresh, g.id, B)).state == "flagged"
    assert (await ledger(fresh, g.id, A)).entries == []


async def test_the_requirement_to_write_in_the_group(session, fresh, t0):
    g = await make_group(session, now=t0, require="message")
    await chain(session, g, A, B, now=t0)
    assert (await qualify(session, g, t0 + 5 * DAY)).qualified == 0
    # Activity before the join does not count (a rejoiner's old messages); after it does.
    async with fresh() as s:
        await s.execute(update(Member).where(Member.user_id == B).values(last_active_at=t0, message_count=3))
        await s.commit()
    assert (await qualify(session, g, t0 + 5 * DAY)).qualified == 0
    async with fresh() as s:
        await s.execute(update(Member).where(Member.user_id == B).values(last_active_at=t0 + DAY))
        await s.commit()
    assert (await qualify(session, g, t0 + 5 * DAY)).rewarded == 1
    assert (await ledger(fresh, g.id, A)).balance == 10


async def test_the_requirement_of_a_paid_order(session, fresh, t0):
    shop = await make_shop(session, now=t0, chat_id=-720)
    g = await with_options(session, shop.community, require="paid_order")
    await chain(session, g, A, B, C, now=t0)
    product = await make_product(session, shop, now=t0, price=500)
    unpaid = (await buy(session, shop, user_id=B, product=product, now=t0 + DAY)).order
    assert (await qualify(session, g, t0 + 5 * DAY)).qualified == 0
    await orders.leader_mark(session, order=unpaid, to=OrderStatus.PAID, actor_id=LEADER, now=t0 + 2 * DAY)
    picked = (await buy(session, shop, user_id=C, product=product, now=t0 + DAY)).order
    await orders.leader_mark(session, order=picked, to=OrderStatus.FULFILLED, actor_id=LEADER, now=t0 + DAY)
    await orders.leader_mark(session, order=picked, to=OrderStatus.PICKED_UP, actor_id=LEADER, now=t0 + DAY)
    report = await qualify(session, g, t0 + 5 * DAY)
    assert (report.qualified, report.rewarded) == (2, 2)
    assert (await ledger(fresh, g.id, A)).balance == 10 and (await ledger(fresh, g.id, B)).balance == 10


async def test_a_coupon_reward(session, fresh, audit_rows, t0):
    g = await make_group(session, now=t0, level1={"points": 0, "coupon": {"kind": "fixed", "value": 500, "valid_days": 7}},
                         level2={"points": 2, "coupon": {"kind": "percent", "value": 10, "cap": 300}})
    await chain(session, g, A, B, C, now=t0)
    report = await qualify(session, g, t0 + 3 * DAY)
    assert (report.coupons, report.points) == (3, 2)
    async with fresh() as s:
        issued = list(await s.exec(select(Coupon).order_by(Coupon.id)))
    assert sorted((c.owner_id, c.kind, c.value, c.source) for c in issued) == [
        (A, "fixed", 500, "invite"), (A, "percent", 10, "invite"), (B, "fixed", 500, "invite")]
    fixed_a = next(c for c in issued if c.owner_id == A and c.kind == "fixed")
    assert fixed_a.expires_at.date() == (t0 + 3 * DAY + 7 * DAY).date()
    c_ref = (await referral_of(fresh, g.id, C)).id
    assert sorted((await ledger(fresh, g.id, A)).entries) == sorted([
        (f"referral:{(await referral_of(fresh, g.id, B)).id}", 0, fixed_a.id),
        (f"referral:{c_ref}:2", 2, next(c.id for c in issued if c.kind == "percent"))])
    assert len(await audit_rows("coupon.issue")) == 3


async def test_the_job_run_twice_at_once_rewards_each_invite_once(session, fresh, engine, t0):
    g = await make_group(session, now=t0, level2={"points": 1}, burst_joins=1000)
    await seat(session, g, A, now=t0)
    la = await link_of(session, g, A, now=t0)
    uids = list(range(1000, 1030))
    for uid in uids:
        await arrive(session, g, uid, now=t0, link=la)
    await chain(session, g, 1000, 2000, now=t0)  # a second level under A

    async def run():
        async with fresh() as s:
            return await invite_rewards.qualify_due(s, as_of=t0 + 3 * DAY, batch=7)

    reports = await asyncio.gather(run(), run(), run())
    assert sum(r.qualified for r in reports) == 31
    mine = await ledger(fresh, g.id, A)
    assert len(mine.entries) == 31 and mine.balance == mine.total == 30 * 10 + 1
    assert len({ref for ref, _, _ in mine.entries}) == 31
    assert (await qualify(session, g, t0 + 4 * DAY)).qualified == 0


async def test_statements_per_batch_do_not_grow_with_the_invites(session, fresh, engine, t0):
    async def statements_for(count: int, chat_id: int) -> int:
        g = await make_group(session, now=t0, chat_id=chat_id, level2={"points": 1}, burst_joins=1000)
        await seat(session, g, 1, now=t0)
        la = await link_of(session, g, 1, now=t0)
        for uid in range(chat_id * -100, chat_id * -100 + count):
            await arrive(session, g, uid, now=t0, link=la)
        seen: list[str] = []

        def count_statement(*args):
            seen.append(args[2])

        event.listen(engine.sync_engine, "before_cursor_execute", count_statement)
        try:
            report = await qualify(session, g, t0 + 3 * DAY, batch=500)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", count_statement)
        assert report.qualified == count
        return len(seen)

    few, many = await statements_for(5, -31), await statements_for(120, -32)
    assert few == many == 3  # the claiming UPDATE, the ledger entries, the balances


# ----- the review queue ---------------------------------------------------------------------------------

async def test_an_approval_rewards_once_and_is_audited(session, fresh, audit_rows, t0):
    g = await make_group(session, now=t0, level2={"points": 4})
    await chain(session, g, A, B, now=t0)
    lb = await link_of(session, g, B, now=t0)
    await seat(session, g, C, now=t0)
    await depart(session, g, C, now=t0)
    await arrive(session, g, C, now=t0 + DAY, link=lb)  # held: a rejoin
    queue = await invites.review_queue(session, community_id=g.id)
    assert [(item.referral.invitee_id, item.inviter.id, item.invitee_hidden) for item in queue] == [(C, B, False)]
    assert await invites.review_count(session, community_id=g.id) == 1
    c_ref = queue[0].referral.id
    done = await invites.approve(session, community=g, referral_id=c_ref, actor_id=LEADER, now=t0 + 2 * DAY)
    assert [(gr.user_id, gr.level, gr.points) for gr in done.grants] == [(B, 1, 10), (A, 2, 4)]
    assert (done.referral.state, done.referral.reviewed_by, done.referral.bonus_to) == ("rewarded", LEADER, A)
    with pytest.raises(DomainError) as twice:
        await invites.approve(session, community=g, referral_id=c_ref, actor_id=LEADER, now=t0 + 2 * DAY)
    assert (twice.value.code, twice.value.params) == ("invite_review_done", {"state": "rewarded"})
    assert (await ledger(fresh, g.id, B)).entries == [(f"referral:{c_ref}", 10, None)]
    assert (await ledger(fresh, g.id, A)).entries == [(f"referral:{c_ref}:2", 4, None)]
    rows = await audit_rows("invites.approve")
    assert [(r.actor_id, r.details["referral_id"], r.details["flags"]) for r in rows] == [(LEADER, c_ref, ["rejoin"])]
    # The job does not reward it again.
    await qualify(session, g, t0 + 30 * DAY)
    assert (await ledger(fresh, g.id, B)).entries[:1] == [(f"referral:{c_ref}", 10, None)]
    assert [e for e in (await ledger(fresh, g.id, B)).entries if e[0].startswith(f"referral:{c_ref}")] == [
        (f"referral:{c_ref}", 10, None)]
    assert await invites.review_queue(session, community_id=g.id) == []


async def test_concurrent_approvals_reward_once(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, B, now=t0)
    la = await link_of(session, g, A, now=t0)
    await depart(session, g, B, now=t0)
    await arrive(session, g, B, now=t0 + DAY, link=la)
    ref = (await referral_of(fresh, g.id, B)).id

    async def press():
        async with fresh() as s:
            try:
                return (await invites.approve(s, community=g, referral_id=ref, actor_id=LEADER, now=t0)).grants
            except DomainError as err:
                return err.code

    results = await asyncio.gather(*(press() for _ in range(3)))
    assert sorted(map(str, results)).count("invite_review_done") == 2
    assert (await ledger(fresh, g.id, A)).balance == 10


async def test_a_rejection_is_final_and_audited(session, fresh, audit_rows, t0):
    g = await make_group(session, now=t0)
    other = await make_group(session, now=t0, chat_id=-701)
    await seat(session, g, A, now=t0)
    la = await link_of(session, g, A, now=t0)
    await arrive(session, g, 777, now=t0, link=la, is_bot=True)
    await arrive(session, g, B, now=t0, link=la)
    bot_ref, b_ref = (await referral_of(fresh, g.id, 777)).id, (await referral_of(fresh, g.id, B)).id
    for bad in (0, -5, 2**40, bot_ref + 1000):
        with pytest.raises(DomainError) as unknown:
            await invites.reject(session, community=g, referral_id=bad, actor_id=LEADER, now=t0)
        assert unknown.value.code == "invite_review_unknown"
    with pytest.raises(DomainError) as elsewhere:
        await invites.approve(session, community=other, referral_id=bot_ref, actor_id=LEADER, now=t0)
    assert elsewhere.value.code == "invite_review_unknown"
    rejected = await invites.reject(session, community=g, referral_id=bot_ref, actor_id=LEADER, now=t0 + DAY)
    assert (rejected.referral.state, rejected.referral.reviewed_at) == ("rejected", t0 + DAY)
    # A pending invite a leader finds suspicious can be rejected too.
    await invites.reject(session, community=g, referral_id=b_ref, actor_id=LEADER, now=t0 + DAY)
    with pytest.raises(DomainError) as again:
        await invites.approve(session, community=g, referral_id=bot_ref, actor_id=LEADER, now=t0 + DAY)
    assert again.value.params == {"state": "rejected"}
    await qualify(session, g, t0 + 30 * DAY)
    assert (await ledger(fresh, g.id, A)).entries == []
    assert [r.details["referral_id"] for r in await audit_rows("invites.reject")] == [bot_ref, b_ref]
    async with fresh() as s:
        states = set((await s.exec(select(Referral.state).where(Referral.community_id == g.id))).all())
    assert states == {ReferralState.REJECTED}
