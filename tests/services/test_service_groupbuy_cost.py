"""What a seat and a deadline sweep cost in statements (issue 10): a seat sends at most 7, however
the member's limits are checked, and a sweep closes a batch of teams in the same few statements
whatever the batch holds, never more teams than its limit, each once."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from groupbuy_builders import join, team_campaign
from shop_builders import make_product, make_shop, make_users, order_rows, product_row
from sqlalchemy import event
from sqlmodel import select

from bot.services import groupbuy_close
from bot.services.errors import DomainError
from models import AuditLog, OrderStatus
from models.groupbuy import GroupBuyTeam, TeamStatus


@contextmanager
def counted(engine):
    """Statements sent and COMMITs, as bench/cost.py counts them."""
    sent = []

    def count(*_args, **_kwargs) -> None:
        sent.append(1)

    for name in ("before_cursor_execute", "commit"):
        event.listen(engine.sync_engine, name, count)
    try:
        yield sent
    finally:
        for name in ("before_cursor_execute", "commit"):
            event.remove(engine.sync_engine, name, count)


async def test_a_seat_costs_seven_statements_and_the_insert_checks_the_members_limits(session, engine, fresh, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, stock=50)
    await make_users(session, [11, 12, 13, 14], now=t0)
    campaign = await team_campaign(session, shop, product, now=t0, size=5, join_limit=1)
    first = await join(session, shop, campaign, user_id=11, now=t0)
    second = await join(session, shop, campaign, user_id=12, now=t0)
    session.expunge_all()  # as a new update's session: nothing loaded yet

    with counted(engine) as sent:
        seat = await join(session, shop, campaign, user_id=13, now=t0, team_id=first.team.id, unit_price=800)
    assert seat.created and seat.team.seats == 2
    assert len(sent) <= 7

    for team_id, code in ((first.team.id, "team_already_in"), (second.team.id, "team_join_limit")):
        try:
            await join(session, shop, campaign, user_id=13, now=t0, team_id=team_id, unit_price=800)
        except DomainError as err:
            assert err.code == code
        else:
            raise AssertionError(f"member 13 took a second seat ({code})")
    teams = {t.id: t.seats for t in await session.exec(select(GroupBuyTeam).execution_options(populate_existing=True))}
    assert teams == {first.team.id: 2, second.team.id: 1}
    assert [o.user_id for o in await order_rows(fresh, team_id=first.team.id)] == [11, 13]
    assert (await product_row(fresh, product.id)).stock == 47


async def test_a_sweep_closes_a_batch_in_a_few_statements_within_its_limit(session, engine, fresh, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, stock=100)
    users = list(range(21, 21 + 12))
    await make_users(session, users, now=t0)
    campaign = await team_campaign(session, shop, product, now=t0, size=5, minutes=30, join_limit=3)
    teams = []
    for opener in users[:6]:
        teams.append((await join(session, shop, campaign, user_id=opener, now=t0)).team.id)
    for k, member in enumerate(users[6:]):
        await join(session, shop, campaign, user_id=member, now=t0, team_id=teams[k % 6])
    assert (await product_row(fresh, product.id)).stock == 88
    at = t0 + timedelta(minutes=31)

    closed, costs = [], []
    for batch in (2, 4):
        with counted(engine) as sent:
            done = await groupbuy_close.sweep(session, now=at, limit=batch)
        assert len(done.teams_failed) == batch
        closed += done.teams_failed
        costs.append(len(sent))
    # The same statements for 2 teams (4 orders) as for 4 (8 orders): the close is the claim, the
    # orders, the stock, the product's and the campaign's cards, the orders' and the teams' audit
    # rows, the COMMIT; the rest of the sweep looks for thresholds and campaigns to close.
    assert costs[0] == costs[1] <= 16
    assert sorted(closed) == sorted(teams)
    assert (await groupbuy_close.sweep(session, now=at)).empty

    async with fresh() as s:
        states = list(await s.exec(select(GroupBuyTeam.status, GroupBuyTeam.announce_due)))
        audited = [a.details["team"] for a in await s.exec(
            select(AuditLog).where(AuditLog.action == "groupbuy.team_failed"))]
        cancels = list(await s.exec(select(AuditLog).where(AuditLog.action == "order.cancel")))
    assert states == [(TeamStatus.FAILED, True)] * 6
    assert sorted(audited) == sorted(teams)
    assert len(cancels) == 12
    assert {o.status for o in await order_rows(fresh)} == {OrderStatus.CANCELLED}
    assert ((await product_row(fresh, product.id)).stock, (await product_row(fresh, product.id)).sold) == (100, 0)
