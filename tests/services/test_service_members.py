"""bot.services.members on a real database: membership changes, and whose lists a community is in."""

from __future__ import annotations

from datetime import timedelta

from shop_builders import buy, make_product, make_shop
from sqlmodel import select

from bot.services import coupons, members
from bot.services.coupons import CouponSpec
from bot.services.users import Profile
from models import Member, MemberStatus, User
from models.shop import CouponKind

ANN = Profile(id=7, first_name="Ann", username="ann")


async def _row(fresh, community_id: int, user_id: int = ANN.id) -> Member | None:
    async with fresh() as s:
        rows = list(await s.exec(select(Member).where(Member.community_id == community_id, Member.user_id == user_id)))
    assert len(rows) <= 1
    return rows[0] if rows else None


async def change(session, community, old: str, new: str, now, profile: Profile = ANN) -> Member:
    return await members.on_member_status(session, community=community, profile=profile, old_status=old,
                                          new_status=new, now=now)


async def test_join_creates_user_and_member(session, fresh, add_community, t0):
    community = await add_community()

    await change(session, community, "left", "member", t0)

    row = await _row(fresh, community.id)
    assert (row.status, row.joined_at, row.left_at, row.is_leader) == (MemberStatus.MEMBER, t0, None, False)
    async with fresh() as s:
        assert (await s.get(User, ANN.id)).username == "ann"


async def test_leave_then_rejoin(session, fresh, add_community, t0):
    community = await add_community()
    await change(session, community, "left", "member", t0)
    first_id = (await _row(fresh, community.id)).id

    t1 = t0 + timedelta(days=1)
    await change(session, community, "member", "left", t1)
    row = await _row(fresh, community.id)
    assert (row.status, row.left_at, row.joined_at) == (MemberStatus.LEFT, t1, t0)

    t2 = t0 + timedelta(days=2)
    await change(session, community, "left", "member", t2)
    row = await _row(fresh, community.id)
    assert row.id == first_id, "re-joining reuses the membership"
    assert (row.status, row.left_at, row.joined_at) == (MemberStatus.MEMBER, None, t2)


async def test_kick(session, fresh, add_community, t0):
    community = await add_community()
    await change(session, community, "left", "administrator", t0)

    t1 = t0 + timedelta(hours=3)
    await change(session, community, "administrator", "kicked", t1)

    row = await _row(fresh, community.id)
    assert (row.status, row.left_at, row.is_leader) == (MemberStatus.KICKED, t1, False)


async def test_promotion_and_demotion(session, fresh, add_community, t0):
    community = await add_community()
    await change(session, community, "left", "member", t0)

    await change(session, community, "member", "administrator", t0 + timedelta(hours=1))
    row = await _row(fresh, community.id)
    assert row.is_leader is True
    assert (row.status, row.joined_at) == (MemberStatus.MEMBER, t0), "a promotion is not a new join"

    await change(session, community, "administrator", "member", t0 + timedelta(hours=2))
    assert (await _row(fresh, community.id)).is_leader is False

    await change(session, community, "member", "creator", t0 + timedelta(hours=3))
    assert (await _row(fresh, community.id)).is_leader is True


async def test_redelivered_join_keeps_the_first_join_time(session, fresh, add_community, t0):
    community = await add_community()
    await change(session, community, "left", "member", t0)
    await change(session, community, "left", "member", t0 + timedelta(minutes=5))

    row = await _row(fresh, community.id)
    assert (row.status, row.joined_at) == (MemberStatus.MEMBER, t0)


async def test_memberships_are_per_community(session, fresh, add_community, t0):
    a = await add_community(-1)
    b = await add_community(-2)
    await change(session, a, "left", "member", t0)
    await change(session, b, "left", "administrator", t0)
    await change(session, a, "member", "left", t0 + timedelta(hours=1))

    assert (await _row(fresh, a.id)).status == MemberStatus.LEFT
    row_b = await _row(fresh, b.id)
    assert (row_b.status, row_b.is_leader, row_b.left_at) == (MemberStatus.MEMBER, True, None)


async def test_a_users_communities_are_where_they_are_or_left_traces_without_having_left(session, t0):
    """Present members count; without a row, orders or an own coupon count; a row saying they left wins."""
    joined = await make_shop(session, now=t0, chat_id=-11)
    bought = await make_shop(session, now=t0, chat_id=-12)
    rewarded = await make_shop(session, now=t0, chat_id=-13)
    departed = await make_shop(session, now=t0, chat_id=-14)
    await make_shop(session, now=t0, chat_id=-15)  # nothing there
    await change(session, joined.community, "left", "member", t0)
    await buy(session, bought, user_id=ANN.id, product=await make_product(session, bought, now=t0), now=t0)
    for shop in (rewarded, departed):
        await coupons.issue(session, community_id=shop.id, actor_id=None, now=t0,
                            spec=CouponSpec(kind=CouponKind.FIXED, value=100, owner_id=ANN.id))
    await coupons.issue(session, community_id=joined.id, actor_id=None, now=t0,
                        spec=CouponSpec(kind=CouponKind.FIXED, value=100))  # anyone's: no trace of Ann
    await change(session, departed.community, "member", "left", t0)

    found = await members.communities_of(session, user_id=ANN.id)
    assert [c.chat_id for c in found] == [-11, -12, -13]
    rewarded.community.active = False
    await session.commit()
    assert [c.chat_id for c in await members.communities_of(session, user_id=ANN.id, active_only=True)] == [-11, -12]
