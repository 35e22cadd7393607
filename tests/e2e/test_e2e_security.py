"""Callback data comes from the client: forged presses change nothing and are answered."""

from __future__ import annotations

from datetime import datetime, timezone

from e2e_harness import E2E, Group, en

from bot.services import settings as settings_service

NOT_LEADER = "Only this community's leaders can do that."


async def _add_point(e2e: E2E, community_id: int, actor_id: int, name: str) -> int:
    async with e2e.db() as session:
        point = await settings_service.add_pickup_point(session, community_id=community_id, actor_id=actor_id,
                                                        raw_name=name, now=datetime.now(timezone.utc))
        return point.id


async def test_a_member_forging_leader_buttons_changes_nothing(e2e: E2E, group: Group) -> None:
    bob, cid = group.members[0], group.community_id
    point_id = await _add_point(e2e, cid, group.leader.id, "North Gate")
    audit_before = await e2e.audit(cid)
    await e2e.say(bob, "/start")
    screen = e2e.last(bob)

    for data in (f"an:{cid}:set", f"an:{cid}:tz", f"an:{cid}:audit", f"ap:{cid}", f"pp:{cid}:rmy:{point_id}",
                 f"pp:{cid}:add:0", f"pp:{cid}:ren:{point_id}", f"cl:{cid}:zh_Hans"):
        callback = await e2e.press_data(bob, data)
        answer = e2e.answer(callback)
        assert (answer.text, answer.show_alert) == (en(NOT_LEADER), True), data
        assert await e2e.fsm_state(bob) is None, data

    community = await e2e.community_by_id(cid)
    assert (community.timezone, community.currency, community.default_locale) == ("UTC", "USD", "en")
    assert [p.id for p in await e2e.pickup_points(cid)] == [point_id]
    assert [a.id for a in await e2e.audit(cid)] == [a.id for a in audit_before]
    assert e2e.last(bob) == screen  # nothing was edited into a menu
    # Typing an answer afterwards does not reach a form either.
    await e2e.say(bob, "Asia/Tokyo")
    assert e2e.last(bob) == en("I did not understand that. Send /help to see what I can do.")


async def test_a_leader_cannot_reach_into_another_community(e2e: E2E, group: Group) -> None:
    alice = group.leader
    zoe = e2e.emu.add_user("Zoe")
    other = await e2e.make_group("Hill Side", leader=zoe, members=[])
    theirs = await _add_point(e2e, other.community_id, zoe.id, "Their Gate")
    await e2e.say(alice, "/admin")

    callback = await e2e.press_data(alice, f"pp:{other.community_id}:rmy:{theirs}")
    assert e2e.answer(callback).text == en(NOT_LEADER)
    # Her own community's id with the other community's point: the point is not found there.
    callback = await e2e.press_data(alice, f"pp:{group.community_id}:rmy:{theirs}")
    assert e2e.answer(callback).text == en("That pickup point no longer exists.")
    callback = await e2e.press_data(alice, f"pp:{group.community_id}:ren:{theirs}")
    assert e2e.answer(callback).text == en("That pickup point no longer exists.")
    # Ids no database column can hold (PostgreSQL refuses them as INTEGER arguments).
    callback = await e2e.press_data(alice, f"pp:{group.community_id}:rmy:{2**40}")
    assert e2e.answer(callback).text == en("That pickup point no longer exists.")
    callback = await e2e.press_data(alice, f"an:{2**63}:set")
    assert e2e.answer(callback).text == en(NOT_LEADER)
    assert await e2e.fsm_state(alice) is None
    assert [p.name for p in await e2e.pickup_points(other.community_id)] == ["Their Gate"]
    assert await e2e.audit(other.community_id, "pickup.remove") == []


GARBAGE = ["zzz", "an:abc:set", "an:-5:set", f"cl:{10**30}:en", f"ap:{2**31}", "an:1:nosuchsection",
           "pp:1:bogus:0", "cl:1", "ul:xx_YY", "pv:explode", "fm:back", "x" * 64, ":::"]


async def test_garbage_callback_data_is_answered(e2e: E2E, group: Group) -> None:
    bob, cid = group.members[0], group.community_id
    await e2e.say(bob, "/start")
    for data in GARBAGE:
        callback = await e2e.press_data(bob, data)
        # Answered, with a reason: the client stops spinning.
        assert e2e.answer(callback).text, data
    user = await e2e.user_row(bob)
    assert user.locale is None and not user.erased and not user.marketing_opt_out
    assert (await e2e.community_by_id(cid)).default_locale == "en"
    assert await e2e.memberships(bob)
