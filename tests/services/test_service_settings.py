"""bot.services.settings (and the audit trail it writes) on a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.services import audit, settings
from bot.services.errors import DomainError
from models import AuditLog, Community, PickupPoint

LEADER = 42


@pytest.mark.parametrize("raw, expected", [
    ("asia/shanghai", "Asia/Shanghai"),
    ("  Europe/Berlin ", "Europe/Berlin"),
    ("america/new york", "America/New_York"),
    ("utc", "UTC"),
])
def test_parse_timezone_canonicalises(raw, expected):
    assert settings.parse_timezone(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "Mars/Phobos", "Asia", "../../etc/passwd", "x" * 200, "+08:00"])
def test_parse_timezone_rejects_junk(raw):
    with pytest.raises(DomainError) as exc:
        settings.parse_timezone(raw)
    assert exc.value.code == "timezone_unknown"


@pytest.mark.parametrize("raw, expected", [("cny", "CNY"), (" usd ", "USD"), ("EUR", "EUR")])
def test_parse_currency_canonicalises(raw, expected):
    assert settings.parse_currency(raw) == expected


@pytest.mark.parametrize("raw, code", [
    ("XYZ", "currency_unknown"),
    ("12", "currency_format"),
    ("123", "currency_format"),
    ("US", "currency_format"),
    ("USDT", "currency_format"),
    ("", "currency_format"),
    ("¥", "currency_format"),
])
def test_parse_currency_rejects(raw, code):
    with pytest.raises(DomainError) as exc:
        settings.parse_currency(raw)
    assert exc.value.code == code


async def _community(fresh, community_id: int) -> Community:
    async with fresh() as s:
        return await s.get(Community, community_id)


@pytest.mark.parametrize("setter, field, raw, stored, before", [
    (settings.set_timezone, "timezone", "asia/shanghai", "Asia/Shanghai", "UTC"),
    (settings.set_currency, "currency", "cny", "CNY", "USD"),
])
async def test_set_field_writes_value_and_audit(session, fresh, audit_rows, add_community, t0,
                                                setter, field, raw, stored, before):
    community = await add_community()
    t1 = t0 + timedelta(hours=1)

    assert await setter(session, community_id=community.id, actor_id=LEADER, raw=raw, now=t1) == stored

    row = await _community(fresh, community.id)
    assert getattr(row, field) == stored and row.updated_at == t1
    entries = await audit_rows(f"settings.{field}")
    assert [(e.community_id, e.actor_id, e.details, e.created_at) for e in entries] == [
        (community.id, LEADER, {"from": before, "to": stored}, t1),
    ]

    # The same value again (typed differently) changes nothing and is not audited.
    await setter(session, community_id=community.id, actor_id=LEADER, raw=raw.upper(), now=t1 + timedelta(hours=1))
    assert len(await audit_rows(f"settings.{field}")) == 1
    assert (await _community(fresh, community.id)).updated_at == t1


async def test_set_timezone_rejects_junk_and_keeps_the_old_value(session, fresh, audit_rows, add_community, t0):
    community = await add_community()
    before = len(await audit_rows())

    with pytest.raises(DomainError) as exc:
        await settings.set_timezone(session, community_id=community.id, actor_id=LEADER, raw="Nowhere/Land", now=t0)
    assert exc.value.code == "timezone_unknown"
    assert (await _community(fresh, community.id)).timezone == "UTC"
    assert len(await audit_rows()) == before


async def test_set_default_locale(session, fresh, audit_rows, add_community, t0):
    community = await add_community()

    await settings.set_default_locale(session, community_id=community.id, actor_id=LEADER, locale="zh_Hans", now=t0)
    with pytest.raises(DomainError) as exc:
        await settings.set_default_locale(session, community_id=community.id, actor_id=LEADER, locale="xx", now=t0)

    assert exc.value.code == "unknown_locale"
    assert (await _community(fresh, community.id)).default_locale == "zh_Hans"
    assert [e.details for e in await audit_rows("settings.default_locale")] == [{"from": "en", "to": "zh_Hans"}]


async def test_settings_of_an_unknown_community(session, t0):
    with pytest.raises(DomainError) as exc:
        await settings.set_currency(session, community_id=999, actor_id=LEADER, raw="EUR", now=t0)
    assert exc.value.code == "community_unknown"
    with pytest.raises(DomainError) as exc:
        await settings.add_pickup_point(session, community_id=999, actor_id=LEADER, raw_name="Gate", now=t0)
    assert exc.value.code == "community_unknown"


# Pickup points


async def add(session, community_id: int, name: str, now) -> PickupPoint:
    return await settings.add_pickup_point(session, community_id=community_id, actor_id=LEADER, raw_name=name, now=now)


async def listed(fresh, community_id: int) -> list[str]:
    async with fresh() as s:
        return [p.name for p in await settings.pickup_points(s, community_id=community_id)]


async def all_points(fresh, community_id: int) -> dict[int, PickupPoint]:
    async with fresh() as s:
        return {p.id: p for p in await s.exec(select(PickupPoint).where(PickupPoint.community_id == community_id))}


async def test_pickup_add_rename_remove(session, fresh, audit_rows, add_community, t0):
    c = await add_community()
    gate = await add(session, c.id, "  North   gate ", t0)
    alley = await add(session, c.id, "Alley", t0)
    assert await listed(fresh, c.id) == ["Alley", "North gate"]

    await settings.rename_pickup_point(session, community_id=c.id, actor_id=LEADER, point_id=gate.id,
                                       raw_name="South gate", now=t0)
    assert await listed(fresh, c.id) == ["Alley", "South gate"]

    t1 = t0 + timedelta(days=1)
    await settings.remove_pickup_point(session, community_id=c.id, actor_id=LEADER, point_id=gate.id, now=t1)
    assert await listed(fresh, c.id) == ["Alley"]
    kept = (await all_points(fresh, c.id))[gate.id]
    assert kept.removed_at == t1 and kept.name == "South gate", "removed points stay for old orders"

    entries = [(e.action, e.actor_id, e.details) for e in await audit_rows() if e.action.startswith("pickup.")]
    assert entries == [
        ("pickup.add", LEADER, {"id": gate.id, "name": "North gate"}),
        ("pickup.add", LEADER, {"id": alley.id, "name": "Alley"}),
        ("pickup.rename", LEADER, {"id": gate.id, "from": "North gate", "to": "South gate"}),
        ("pickup.remove", LEADER, {"id": gate.id, "name": "South gate"}),
    ]


async def test_pickup_duplicates_refused(session, fresh, add_community, t0):
    c = await add_community()
    await add(session, c.id, "Gate A", t0)
    other = await add(session, c.id, "Gate B", t0)

    with pytest.raises(DomainError) as exc:
        await add(session, c.id, " Gate   A", t0)
    assert exc.value.code == "pickup_duplicate" and exc.value.params == {"name": "Gate A"}
    with pytest.raises(DomainError) as exc:
        await settings.rename_pickup_point(session, community_id=c.id, actor_id=LEADER, point_id=other.id,
                                           raw_name="Gate A", now=t0)
    assert exc.value.code == "pickup_duplicate"
    assert await listed(fresh, c.id) == ["Gate A", "Gate B"]


async def test_pickup_same_name_in_another_community_is_fine(session, fresh, add_community, t0):
    a = await add_community(-1)
    b = await add_community(-2)
    await add(session, a.id, "Gate", t0)
    await add(session, b.id, "Gate", t0)
    assert await listed(fresh, a.id) == await listed(fresh, b.id) == ["Gate"]


async def test_pickup_names_stored_verbatim(session, fresh, add_community, t0):
    c = await add_community()
    name = '<b>Tom & "Jerry"</b> 门口'
    point = await add(session, c.id, name, t0)
    assert (await all_points(fresh, c.id))[point.id].name == name


async def test_pickup_name_length_and_emptiness(session, fresh, add_community, t0):
    c = await add_community()
    with pytest.raises(DomainError) as exc:
        await add(session, c.id, "x" * 65, t0)
    assert exc.value.code == "pickup_name_too_long" and exc.value.params == {"max": 64, "length": 65}
    with pytest.raises(DomainError) as exc:
        await add(session, c.id, " \n\t ", t0)
    assert exc.value.code == "pickup_name_empty"
    assert await listed(fresh, c.id) == []

    longest = "界" * 64
    await add(session, c.id, longest, t0)
    assert await listed(fresh, c.id) == [longest]
    point = next(iter((await all_points(fresh, c.id)).values()))
    with pytest.raises(DomainError) as exc:
        await settings.rename_pickup_point(session, community_id=c.id, actor_id=LEADER, point_id=point.id,
                                           raw_name="y" * 65, now=t0)
    assert exc.value.code == "pickup_name_too_long"
    assert await listed(fresh, c.id) == [longest]


async def test_removed_point_re_added_by_name_revives(session, fresh, add_community, t0):
    c = await add_community()
    point = await add(session, c.id, "Gate", t0)
    await settings.remove_pickup_point(session, community_id=c.id, actor_id=LEADER, point_id=point.id, now=t0)

    again = await add(session, c.id, "Gate", t0 + timedelta(days=1))

    assert again.id == point.id
    points = await all_points(fresh, c.id)
    assert list(points) == [point.id] and points[point.id].removed_at is None
    assert await listed(fresh, c.id) == ["Gate"]


async def test_rename_onto_a_removed_points_name(session, fresh, add_community, t0):
    c = await add_community()
    old = await add(session, c.id, "Gate", t0)
    await settings.remove_pickup_point(session, community_id=c.id, actor_id=LEADER, point_id=old.id, now=t0)
    new = await add(session, c.id, "Alley", t0)

    await settings.rename_pickup_point(session, community_id=c.id, actor_id=LEADER, point_id=new.id,
                                       raw_name="Gate", now=t0)

    assert await listed(fresh, c.id) == ["Gate"]
    points = await all_points(fresh, c.id)
    assert points[new.id].name == "Gate" and points[new.id].removed_at is None
    assert points[old.id].removed_at is not None and points[old.id].name != "Gate"
    # Adding "Gate" now is a duplicate of the live point, not a revival of the old one.
    with pytest.raises(DomainError) as exc:
        await add(session, c.id, "Gate", t0)
    assert exc.value.code == "pickup_duplicate"


async def test_pickup_rename_to_the_same_name_is_a_no_op(session, audit_rows, add_community, t0):
    c = await add_community()
    point = await add(session, c.id, "Gate", t0)
    await settings.rename_pickup_point(session, community_id=c.id, actor_id=LEADER, point_id=point.id,
                                       raw_name=" Gate ", now=t0)
    assert await audit_rows("pickup.rename") == []


async def test_pickup_points_of_another_community_are_refused(session, fresh, add_community, t0):
    mine = await add_community(-1)
    theirs = await add_community(-2)
    their_point = await add(session, theirs.id, "Theirs", t0)

    for call in (
        settings.rename_pickup_point(session, community_id=mine.id, actor_id=LEADER, point_id=their_point.id,
                                     raw_name="Mine", now=t0),
        settings.remove_pickup_point(session, community_id=mine.id, actor_id=LEADER, point_id=their_point.id, now=t0),
        settings.get_pickup_point(session, community_id=mine.id, point_id=their_point.id),
        settings.get_pickup_point(session, community_id=mine.id, point_id=987654),
    ):
        with pytest.raises(DomainError) as exc:
            await call
        assert exc.value.code == "pickup_unknown"

    points = await all_points(fresh, theirs.id)
    assert points[their_point.id].name == "Theirs" and points[their_point.id].removed_at is None


async def test_removed_point_cannot_be_renamed_or_removed_again(session, add_community, t0):
    c = await add_community()
    point = await add(session, c.id, "Gate", t0)
    await settings.remove_pickup_point(session, community_id=c.id, actor_id=LEADER, point_id=point.id, now=t0)
    with pytest.raises(DomainError) as exc:
        await settings.remove_pickup_point(session, community_id=c.id, actor_id=LEADER, point_id=point.id, now=t0)
    assert exc.value.code == "pickup_unknown"
    with pytest.raises(DomainError) as exc:
        await settings.rename_pickup_point(session, community_id=c.id, actor_id=LEADER, point_id=point.id,
                                           raw_name="Other", now=t0)
    assert exc.value.code == "pickup_unknown"


async def test_pickup_points_are_capped(session, fresh, add_community, t0):
    c = await add_community()
    for i in range(settings.MAX_PICKUP_POINTS):
        await add(session, c.id, f"Point {i:02d}", t0)
    with pytest.raises(DomainError) as exc:
        await add(session, c.id, "One too many", t0)
    assert exc.value.code == "pickup_too_many"
    assert len(await listed(fresh, c.id)) == settings.MAX_PICKUP_POINTS


async def test_audit_recent_is_newest_first_and_per_community(session, add_community, t0):
    a = await add_community(-1)
    b = await add_community(-2)
    for i, community in enumerate((a, b, a, a)):
        audit.record(session, community_id=community.id, actor_id=i, action="test", details={"i": i},
                     now=t0 + timedelta(minutes=i))
    await session.commit()

    entries = await audit.recent(session, community_id=a.id, limit=2)
    assert [e.details for e in entries] == [{"i": 3}, {"i": 2}]
    assert all(isinstance(e, AuditLog) and e.community_id == a.id for e in entries)
