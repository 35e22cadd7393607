"""bot.services.communities on a real database."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.services import communities, members, settings, users
from bot.services.communities import Change
from bot.services.users import Profile
from models import REQUIRED_RIGHTS, Community, Member, MemberStatus, PickupPoint

ALL_RIGHTS = {"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True, "can_manage_chat": True}


async def bot_status(session, *, status: str, rights: dict | None = None, chat_id: int = -100, title: str = "Group", now):
    return await communities.on_bot_status(
        session, chat_id=chat_id, title=title, status=status, rights=rights or {},
        default_locale="zh_Hans", default_timezone="Asia/Shanghai", now=now,
    )


async def _community(fresh, chat_id: int) -> Community | None:
    async with fresh() as s:
        return await communities.get_by_chat(s, chat_id)


async def test_added_as_member_creates_active_community_missing_every_right(session, fresh, audit_rows, t0):
    result = await bot_status(session, status="member", title="Fruit Club", now=t0)

    assert result.change is Change.ADDED
    assert result.missing_rights == list(REQUIRED_RIGHTS) and len(REQUIRED_RIGHTS) == 3
    assert result.refresh_leaders is True
    row = await _community(fresh, -100)
    assert row.id == result.community.id
    assert (row.title, row.active, row.bot_status, row.bot_rights) == ("Fruit Club", True, "member", {})
    assert (row.default_locale, row.timezone) == ("zh_Hans", "Asia/Shanghai")
    assert row.missing_rights == list(REQUIRED_RIGHTS)
    assert [(e.action, e.community_id) for e in await audit_rows()] == [("bot.added", row.id)]


async def test_added_as_admin_with_all_rights_misses_none(session, fresh, t0):
    result = await bot_status(session, status="administrator", rights=ALL_RIGHTS, now=t0)

    assert result.change is Change.ADDED
    assert result.missing_rights == []
    row = await _community(fresh, -100)
    assert row.bot_status == "administrator" and row.bot_rights == ALL_RIGHTS
    assert row.missing_rights == []


async def test_promotion_with_partial_rights_lists_exactly_the_missing_ones(session, fresh, audit_rows, t0):
    await bot_status(session, status="member", now=t0)
    rights = {"can_invite_users": True, "can_delete_messages": False, "can_manage_chat": True}

    result = await bot_status(session, status="administrator", rights=rights, now=t0 + timedelta(minutes=1))

    assert result.change is Change.RIGHTS_CHANGED
    assert result.missing_rights == ["can_delete_messages", "can_pin_messages"]
    assert result.refresh_leaders is True
    row = await _community(fresh, -100)
    assert row.bot_status == "administrator" and row.bot_rights == rights
    assert row.missing_rights == ["can_delete_messages", "can_pin_messages"]
    entries = await audit_rows("bot.rights_changed")
    assert len(entries) == 1
    assert entries[0].details == {"status": "administrator", "rights": ["can_invite_users", "can_manage_chat"]}


async def test_removed_keeps_data_and_re_added_returns_the_same_community(session, fresh, count, t0):
    added = await bot_status(session, status="administrator", rights=ALL_RIGHTS, now=t0)
    cid = added.community.id
    point = await settings.add_pickup_point(session, community_id=cid, actor_id=1, raw_name="Gate A", now=t0)
    await members.on_member_status(session, community=added.community, profile=Profile(id=7, first_name="Ann"),
                                   old_status="left", new_status="member", now=t0)

    removed = await bot_status(session, status="kicked", now=t0 + timedelta(hours=1))

    assert removed.change is Change.REMOVED
    assert removed.missing_rights == [] and removed.refresh_leaders is False
    row = await _community(fresh, -100)
    assert row.id == cid and row.active is False and row.bot_status == "kicked"
    assert await count(PickupPoint, PickupPoint.community_id == cid) == 1
    assert await count(Member, Member.community_id == cid) == 1

    # Removed twice (a redelivered update) is no change.
    again = await bot_status(session, status="left", now=t0 + timedelta(hours=2))
    assert again.change is Change.UNCHANGED

    back = await bot_status(session, status="member", now=t0 + timedelta(days=1))

    assert back.change is Change.RETURNED
    assert back.community.id == cid
    assert back.refresh_leaders is True
    assert back.missing_rights == list(REQUIRED_RIGHTS)
    row = await _community(fresh, -100)
    assert row.active is True and row.bot_status == "member"
    assert await count(Community) == 1
    async with fresh() as s:
        assert [p.id for p in await settings.pickup_points(s, community_id=cid)] == [point.id]
    assert await count(Member, Member.community_id == cid, Member.status == MemberStatus.MEMBER) == 1


async def test_unchanged_repeat_writes_no_audit_row(session, audit_rows, t0):
    await bot_status(session, status="administrator", rights=ALL_RIGHTS, now=t0)
    before = await audit_rows()

    result = await bot_status(session, status="administrator", rights=dict(ALL_RIGHTS), now=t0 + timedelta(minutes=5))

    assert result.change is Change.UNCHANGED
    assert result.refresh_leaders is False
    assert result.missing_rights == []
    assert [e.id for e in await audit_rows()] == [e.id for e in before]


async def test_removed_from_a_group_never_seen_records_it_inactive(session, fresh, t0):
    result = await bot_status(session, status="left", chat_id=-555, now=t0)

    assert result.change is Change.REMOVED
    row = await _community(fresh, -555)
    assert row is not None and row.active is False


async def test_set_leaders_replaces_the_leader_set(session, fresh, add_community, t0):
    community = await add_community()
    ann, bob, cat = (Profile(id=1, first_name="Ann"), Profile(id=2, first_name="Bob"), Profile(id=3, first_name="Cat"))
    # Cat had left the group before becoming an administrator.
    await members.on_member_status(session, community=community, profile=cat, old_status="member",
                                   new_status="left", now=t0)

    await communities.set_leaders(session, community_id=community.id, admins=[ann, bob], now=t0)
    t1 = t0 + timedelta(hours=2)
    await communities.set_leaders(session, community_id=community.id, admins=[ann, cat], now=t1)

    async with fresh() as s:
        rows = {m.user_id: m for m in await s.exec(select(Member).where(Member.community_id == community.id))}
        refreshed = (await s.get(Community, community.id)).leaders_refreshed_at
    assert {uid: m.is_leader for uid, m in rows.items()} == {1: True, 2: False, 3: True}
    assert rows[2].status == MemberStatus.MEMBER, "a demoted admin stays a member"
    assert rows[3].status == MemberStatus.MEMBER and rows[3].left_at is None
    assert refreshed == t1


async def test_set_leaders_with_no_admins_clears_every_leader(session, fresh, add_community, t0):
    community = await add_community()
    await communities.set_leaders(session, community_id=community.id, admins=[Profile(id=1, first_name="Ann")], now=t0)
    await communities.set_leaders(session, community_id=community.id, admins=[], now=t0)

    async with fresh() as s:
        assert not await communities.is_leader(s, community_id=community.id, user_id=1)


async def _three_communities(session, add_community, t0):
    """User 1 leads A, is a plain member of B, and left C where they had been a leader."""
    a = await add_community(-1, title="A")
    b = await add_community(-2, title="B")
    c = await add_community(-3, title="C")
    await communities.set_leaders(session, community_id=a.id, admins=[Profile(id=1, first_name="Ann")], now=t0)
    await communities.set_leaders(session, community_id=b.id, admins=[Profile(id=9, first_name="Zed")], now=t0)
    await users.upsert_user(session, Profile(id=2, first_name="Bob"), now=t0)
    session.add_all([
        Member(community_id=b.id, user_id=1, joined_at=t0),
        Member(community_id=c.id, user_id=1, is_leader=True, status=MemberStatus.LEFT, joined_at=t0, left_at=t0),
        Member(community_id=b.id, user_id=2, joined_at=t0),
    ])
    await session.commit()
    return a, b, c


async def test_manageable_owner_all_leader_own_member_none(session, add_community, t0):
    a, b, c = await _three_communities(session, add_community, t0)

    owner = await communities.manageable(session, user_id=999, is_owner=True)
    leader = await communities.manageable(session, user_id=1, is_owner=False)
    member = await communities.manageable(session, user_id=2, is_owner=False)

    assert sorted(x.id for x in owner) == sorted([a.id, b.id, c.id])
    assert [x.id for x in leader] == [a.id]
    assert member == []


async def test_can_manage(session, add_community, t0):
    a, b, c = await _three_communities(session, add_community, t0)

    assert (await communities.can_manage(session, community_id=a.id, user_id=1, is_owner=False)).id == a.id
    assert await communities.can_manage(session, community_id=b.id, user_id=1, is_owner=False) is None
    assert await communities.can_manage(session, community_id=c.id, user_id=1, is_owner=False) is None
    assert await communities.can_manage(session, community_id=a.id, user_id=2, is_owner=False) is None
    assert (await communities.can_manage(session, community_id=b.id, user_id=2, is_owner=True)).id == b.id
    assert await communities.can_manage(session, community_id=12345, user_id=1, is_owner=True) is None


async def test_stale_leader_communities_honours_the_interval(session, fresh, add_community, t0):
    now = t0 + timedelta(days=1)
    never = await add_community(-1, title="never")
    recent = await add_community(-2, title="recent")
    old = await add_community(-3, title="old")
    boundary = await add_community(-4, title="boundary")
    gone = await add_community(-5, title="gone")
    for community, ago in ((recent, timedelta(minutes=59)), (old, timedelta(minutes=61)), (boundary, timedelta(hours=1))):
        await communities.set_leaders(session, community_id=community.id, admins=[], now=now - ago)
    await communities.deactivate(session, chat_id=-5, now=t0)

    stale = await communities.stale_leader_communities(session, now=now)

    assert {c.id for c in stale} >= {never.id, old.id}
    assert recent.id not in {c.id for c in stale}
    assert gone.id not in {c.id for c in stale}, "inactive communities are not refreshed"
    # The query and the per-community check agree, including at exactly one hour.
    async with fresh() as s:
        active = list(await s.exec(select(Community).where(Community.active == True)))  # noqa: E712
    assert {c.id for c in stale} == {c.id for c in active if communities.leaders_stale(c, now)}
    assert [c.id for c in await communities.stale_leader_communities(session, now=now, limit=1)] == [never.id]


async def test_migrate_chat_moves_the_community_to_the_new_chat_id(session, fresh, add_community, t0):
    community = await add_community(-100)

    await communities.migrate_chat(session, old_chat_id=-100, new_chat_id=-1001234, now=t0 + timedelta(hours=1))

    assert await _community(fresh, -100) is None
    moved = await _community(fresh, -1001234)
    assert moved.id == community.id and moved.updated_at == t0 + timedelta(hours=1)


async def test_deactivate(session, fresh, add_community, t0):
    community = await add_community(-100)
    other = await add_community(-200)

    await communities.deactivate(session, chat_id=-100, now=t0 + timedelta(hours=1))
    await communities.deactivate(session, chat_id=-999, now=t0)  # unknown chat: nothing to do

    row = await _community(fresh, -100)
    assert row.id == community.id and row.active is False and row.updated_at == t0 + timedelta(hours=1)
    assert (await _community(fresh, -200)).active is True
    # The bot coming back brings it back.
    back = await bot_status(session, status="administrator", rights=ALL_RIGHTS, now=t0 + timedelta(hours=2))
    assert back.change is Change.RETURNED and back.community.id == community.id
    assert other.id != community.id
