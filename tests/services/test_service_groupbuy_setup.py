"""Setting up group-buys: the terms checked as a whole, drafts published once, live edits that may
only get better for members already in, drafts deleted, and the leader's team listing."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from groupbuy_builders import join, team_campaign, threshold_campaign
from shop_builders import LEADER, make_product, make_shop, make_users
from sqlmodel import select

from bot.services import groupbuy_close, groupbuys
from bot.services.errors import DomainError
from bot.services.groupbuys import Terms
from models import GroupBuy, GroupBuyKind, GroupBuyStatus, Order, TeamStatus


def team_terms(product_id: int, t0, **changes) -> Terms:
    base = Terms(kind=GroupBuyKind.TEAM, product_id=product_id, price=800, ends_at=t0 + timedelta(days=2), team_size=3,
                 team_minutes=60)
    return replace(base, **changes)


def threshold_terms(product_id: int, t0, **changes) -> Terms:
    base = Terms(kind=GroupBuyKind.THRESHOLD, product_id=product_id, price=1000, ends_at=t0 + timedelta(hours=5),
                 min_units=10, tiers=((10, 950), (30, 880)))
    return replace(base, **changes)


@pytest.mark.parametrize(("kind", "changes", "code"), [
    ("team", {"price": 0}, "groupbuy_price_zero"),
    ("team", {"price": 1000}, "groupbuy_price_not_lower"),
    ("team", {"price": 1200}, "groupbuy_price_not_lower"),
    ("team", {"ends_at": "past"}, "groupbuy_end_past"),
    ("team", {"team_size": 1}, "team_size_range"),
    ("team", {"team_size": 101}, "team_size_range"),
    ("team", {"team_minutes": 8 * 24 * 60}, "duration_too_long"),
    ("team", {"open_limit": 0, "join_limit": 0}, "team_limits_zero"),
    ("team", {"open_limit": 21}, "count_range"),
    ("threshold", {"min_units": 0}, "count_range"),
    ("threshold", {"tiers": ((5, 950),)}, "tier_units_order"),
    ("threshold", {"tiers": ((20, 950), (20, 900))}, "tier_units_order"),
    ("threshold", {"tiers": ((20, 950), (30, 960))}, "tier_price_order"),
    ("threshold", {"tiers": ((20, 1000),)}, "tier_price_order"),
    ("threshold", {"tiers": tuple((10 + i, 990 - i) for i in range(6))}, "tiers_too_many"),
    ("threshold", {"member_limit": 0}, "count_range"),
])
async def test_create_refuses_terms_that_cannot_run(session, count, t0, kind, changes, code):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, price=1000)
    if changes.get("ends_at") == "past":
        changes = {**changes, "ends_at": t0}
    terms = (team_terms if kind == "team" else threshold_terms)(product.id, t0, **changes)
    with pytest.raises(DomainError) as err:
        await groupbuys.create(session, community_id=shop.id, actor_id=LEADER, terms=terms, now=t0)
    assert err.value.code == code
    assert await count(GroupBuy) == 0


async def test_threshold_price_may_equal_normal_and_first_tier_may_start_at_the_minimum(session, fresh, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, price=1000)
    campaign = await groupbuys.create(session, community_id=shop.id, actor_id=LEADER, now=t0,
                                      terms=threshold_terms(product.id, t0, tiers=((30, 880), (10, 950))))
    async with fresh() as s:
        row = await s.get(GroupBuy, campaign.id)
        assert (row.status, row.price, row.min_units, row.tiers) == (GroupBuyStatus.DRAFT, 1000, 10, "[[10, 950], [30, 880]]")


def test_parsers_read_what_leaders_type():
    assert [groupbuys.parse_duration(raw) for raw in ("24", "24h", "1d 12h", "90m", "2天")] == [1440, 1440, 2160, 90, 2880]
    for raw, code in (("soon", "duration_format"), ("0", "duration_zero"), ("8d", "duration_too_long"), ("", "duration_format")):
        with pytest.raises(DomainError) as err:
            groupbuys.parse_duration(raw)
        assert err.value.code == code, raw
    assert groupbuys.parse_tier("10 9.50") == (10, "9.50")
    assert groupbuys.parse_tier("≥30 → 8,80") == (30, "8,80")
    assert groupbuys.parse_tier("10,9.50") == (10, "9.50")
    assert groupbuys.parse_tier("20=7") == (20, "7")
    for raw in ("ten 9.50", "10", "10 9 8"):
        with pytest.raises(DomainError) as err:
            groupbuys.parse_tier(raw)
        assert err.value.code == "tier_format"
    with pytest.raises(DomainError) as err:
        groupbuys.parse_count("2x", minimum=0, maximum=20)
    assert err.value.code == "count_format"
    with pytest.raises(DomainError) as err:
        groupbuys.parse_count("21", minimum=0, maximum=20)
    assert (err.value.code, err.value.params) == ("count_range", {"min": 0, "max": 20})


async def test_create_once_per_form_and_publish_once(session, count, audit_rows, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0)
    terms, cid = team_terms(product.id, t0), shop.id  # the refused second create rolls back (expiring `shop`)
    draft = await groupbuys.create(session, community_id=cid, actor_id=LEADER, terms=terms, now=t0, once_key="f1")
    draft_id = draft.id
    with pytest.raises(DomainError) as err:
        await groupbuys.create(session, community_id=cid, actor_id=LEADER, terms=terms, now=t0, once_key="f1")
    assert err.value.code == "groupbuy_already_saved"
    assert await count(GroupBuy) == 1
    live = await groupbuys.publish(session, community_id=cid, group_buy_id=draft_id, actor_id=LEADER, now=t0)
    assert live.status == GroupBuyStatus.LIVE and live.published_at == t0
    with pytest.raises(DomainError) as err:
        await groupbuys.publish(session, community_id=cid, group_buy_id=draft_id, actor_id=LEADER, now=t0)
    assert err.value.code == "groupbuy_not_draft"
    assert [a.action for a in await audit_rows() if a.action.startswith("groupbuy.")] == ["groupbuy.create", "groupbuy.publish"]


TEAM_WORSE = [
    ({"price": 850}, "price"),
    ({"ends_at": timedelta(days=1)}, "ends_at"),
    ({"team_size": 4}, "team_size"),
    ({"team_minutes": 30}, "team_minutes"),
    ({"solo_allowed": False}, "solo_allowed"),
]
THRESHOLD_WORSE = [
    ({"price": 1100}, "price"),
    ({"ends_at": timedelta(hours=4)}, "ends_at"),
    ({"min_units": 12, "tiers": ((12, 950), (30, 880))}, "min_units"),
    ({"tiers": ((10, 960), (30, 880))}, "tiers"),
    ({"tiers": ((10, 950), (40, 880))}, "tiers"),
    ({"tiers": ((10, 950),)}, "tiers"),
]


def _at(changes: dict, t0) -> dict:
    return {k: (t0 + v if isinstance(v, timedelta) else v) for k, v in changes.items()}


@pytest.mark.parametrize(("kind", "changes", "term"), [("team", c, t) for c, t in TEAM_WORSE]
                         + [("threshold", c, t) for c, t in THRESHOLD_WORSE])
async def test_live_edit_that_worsens_a_term_is_refused_naming_it(session, fresh, audit_rows, t0, kind, changes, term):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, price=1200)
    build = team_campaign if kind == "team" else threshold_campaign
    campaign = await build(session, shop, product, now=t0)
    before = groupbuys.terms_of(campaign)
    with pytest.raises(DomainError) as err:
        await groupbuys.edit(session, community_id=shop.id, group_buy_id=campaign.id, actor_id=LEADER, now=t0,
                             terms=replace(before, **_at(changes, t0)))
    assert (err.value.code, err.value.params) == ("groupbuy_edit_worse", {"term": term})
    async with fresh() as s:
        assert groupbuys.terms_of(await s.get(GroupBuy, campaign.id)) == before
    assert not await audit_rows("groupbuy.edit")


@pytest.mark.parametrize(("kind", "changes"), [
    ("team", {"price": 700, "ends_at": timedelta(days=3), "team_size": 2, "team_minutes": 120, "open_limit": 2, "join_limit": 3}),
    ("team", {"solo_allowed": True, "open_limit": 0}),
    ("threshold", {"price": 990, "ends_at": timedelta(hours=8), "min_units": 8, "tiers": ((10, 900), (20, 850), (30, 800)),
                   "member_limit": 5}),
])
async def test_live_edit_that_improves_terms_is_saved(session, fresh, audit_rows, t0, kind, changes):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, price=1200)
    build = team_campaign if kind == "team" else threshold_campaign
    campaign = await build(session, shop, product, now=t0)
    wanted = replace(groupbuys.terms_of(campaign), **_at(changes, t0))
    await groupbuys.edit(session, community_id=shop.id, group_buy_id=campaign.id, actor_id=LEADER, now=t0, terms=wanted)
    async with fresh() as s:
        row = await s.get(GroupBuy, campaign.id)
        assert groupbuys.terms_of(row) == wanted and row.status == GroupBuyStatus.LIVE
    assert [a.details["id"] for a in await audit_rows("groupbuy.edit")] == [campaign.id]


async def test_draft_takes_any_valid_edit_then_is_deleted_but_live_is_not(session, fresh, count, audit_rows, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, price=1000)
    draft = await groupbuys.create(session, community_id=shop.id, actor_id=LEADER, now=t0, terms=team_terms(product.id, t0))
    worse = team_terms(product.id, t0, price=900, team_size=5, team_minutes=10, solo_allowed=False,
                       ends_at=t0 + timedelta(hours=3))
    await groupbuys.edit(session, community_id=shop.id, group_buy_id=draft.id, actor_id=LEADER, now=t0, terms=worse)
    async with fresh() as s:
        assert groupbuys.terms_of(await s.get(GroupBuy, draft.id)) == replace(worse, starts_at=t0)
    with pytest.raises(DomainError) as err:  # still checked as terms
        await groupbuys.edit(session, community_id=shop.id, group_buy_id=draft.id, actor_id=LEADER, now=t0,
                             terms=replace(worse, price=1000))
    assert err.value.code == "groupbuy_price_not_lower"
    await groupbuys.delete_draft(session, community_id=shop.id, group_buy_id=draft.id, actor_id=LEADER, now=t0)
    assert await count(GroupBuy) == 0
    live = await team_campaign(session, shop, product, now=t0)
    with pytest.raises(DomainError) as err:
        await groupbuys.delete_draft(session, community_id=shop.id, group_buy_id=live.id, actor_id=LEADER, now=t0)
    assert err.value.code == "groupbuy_not_draft"
    assert [a.details["id"] for a in await audit_rows("groupbuy.delete")] == [draft.id]


async def test_closed_campaign_cannot_be_edited_or_ended_again(session, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, price=1200, stock=20)
    campaign = await threshold_campaign(session, shop, product, now=t0)
    await groupbuy_close.end_campaign(session, group_buy_id=campaign.id, community_id=shop.id, actor_id=LEADER, now=t0)
    closed = await session.get(GroupBuy, campaign.id, populate_existing=True)
    assert (closed.status, closed.close_reason) == (GroupBuyStatus.FAILED, "ended_by_leader")
    with pytest.raises(DomainError) as err:
        await groupbuys.edit(session, community_id=shop.id, group_buy_id=campaign.id, actor_id=LEADER, now=t0,
                             terms=replace(groupbuys.terms_of(closed), price=900))
    assert err.value.code == "groupbuy_closed"
    with pytest.raises(DomainError) as err:
        await groupbuy_close.end_campaign(session, group_buy_id=campaign.id, community_id=shop.id, actor_id=LEADER, now=t0)
    assert err.value.code == "groupbuy_closed"


async def test_another_communitys_campaign_and_team_are_unknown(session, t0):
    shop = await make_shop(session, now=t0)
    other = await make_shop(session, now=t0, chat_id=-200)
    product = await make_product(session, shop, now=t0, price=1000)
    await make_users(session, [11, 12], now=t0)
    campaign = await team_campaign(session, shop, product, now=t0, size=3)
    opened = await join(session, shop, campaign, user_id=11, now=t0)
    for call in (
        groupbuys.get(session, community_id=other.id, group_buy_id=campaign.id),
        groupbuys.get_team(session, community_id=other.id, group_buy_id=campaign.id, team_id=opened.team.id),
        groupbuys.get_team(session, community_id=shop.id, group_buy_id=campaign.id + 1, team_id=opened.team.id),
        groupbuys.edit(session, community_id=other.id, group_buy_id=campaign.id, actor_id=LEADER, now=t0,
                       terms=groupbuys.terms_of(campaign)),
        groupbuy_close.end_campaign(session, group_buy_id=campaign.id, community_id=other.id, actor_id=LEADER, now=t0),
    ):
        with pytest.raises(DomainError) as err:
            await call
        assert err.value.code == "groupbuy_unknown"
    assert (await groupbuys.get_team(session, community_id=shop.id, group_buy_id=campaign.id, team_id=opened.team.id)).number == 1


async def test_teams_page_lists_open_teams_first(session, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, price=1000, stock=50)
    await make_users(session, range(11, 16), now=t0)
    campaign = await team_campaign(session, shop, product, now=t0, size=2, open_limit=1)
    first = await join(session, shop, campaign, user_id=11, now=t0)
    await join(session, shop, campaign, user_id=12, now=t0, team_id=first.team.id)  # fills team 1
    for uid in (13, 14, 15):
        await join(session, shop, campaign, user_id=uid, now=t0)
    listed, total = await groupbuys.teams(session, group_buy_id=campaign.id, limit=3)
    assert total == 4
    assert [(t.number, t.status) for t in listed] == [(4, TeamStatus.OPEN), (3, TeamStatus.OPEN), (2, TeamStatus.OPEN)]
    rest, _ = await groupbuys.teams(session, group_buy_id=campaign.id, offset=3, limit=3)
    assert [(t.number, t.status) for t in rest] == [(1, TeamStatus.SUCCEEDED)]


async def test_end_team_campaign_fails_open_teams_and_keeps_filled_ones(session, fresh, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, price=1000, stock=50)
    await make_users(session, range(11, 15), now=t0)
    campaign = await team_campaign(session, shop, product, now=t0, size=2)
    filled = await join(session, shop, campaign, user_id=11, now=t0)
    await join(session, shop, campaign, user_id=12, now=t0, team_id=filled.team.id)
    waiting = await join(session, shop, campaign, user_id=13, now=t0)
    ended = await groupbuy_close.end_campaign(session, group_buy_id=campaign.id, community_id=shop.id, actor_id=LEADER,
                                              now=t0 + timedelta(minutes=5))
    assert (ended.status, ended.close_reason, ended.closed_at is not None, ended.announce_due) == (
        GroupBuyStatus.ENDED, "ended_by_leader", True, True)
    stats = await groupbuys.stats(session, group_buy_id=campaign.id)
    assert (stats.teams_open, stats.teams_succeeded, stats.teams_failed) == (0, 1, 1)
    async with fresh() as s:
        statuses = {o.user_id: o.status for o in await s.exec(select(Order).where(Order.group_buy_id == campaign.id))}
    assert statuses == {11: "confirmed", 12: "confirmed", 13: "cancelled"}
    assert waiting.team.id != filled.team.id
