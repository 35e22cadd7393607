"""The weekly stats digest's schedule: each leader's own options, who is due when, and the claims."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.services import communities, job_marks, members, stats_digest, users
from bot.services.errors import DomainError
from bot.services.users import Profile
from models import Community, MemberStatus

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)  # a Saturday; the bot is added then


async def leaders(session, community: Community, reachable: dict[int, bool]) -> None:
    for uid, can_dm in reachable.items():
        user = await users.upsert_user(session, Profile(uid, f"Leader {uid}"), now=T0)
        user.can_dm = can_dm
        await members.ensure(session, community_id=community.id, user_id=uid, now=T0)
    await session.commit()
    await communities.set_leaders(session, community_id=community.id, now=T0,
                                  admins=[Profile(uid, f"Leader {uid}") for uid in reachable])


async def test_each_leader_is_due_at_their_own_local_time_once_a_week(session, add_community, audit_rows) -> None:
    shop = await add_community(now=T0)
    shop.timezone = "Europe/Berlin"  # UTC+1 in March before the clocks change
    await session.commit()
    await leaders(session, shop, {1: True, 2: True, 3: True, 4: False, 5: True})
    gone = await members.get(session, community_id=shop.id, user_id=5)
    gone.status = MemberStatus.LEFT
    await session.commit()
    await stats_digest.update_digest_settings(session, community=shop, leader_id=2, now=T0, weekday=3, time="20:00")
    await stats_digest.update_digest_settings(session, community=shop, leader_id=3, now=T0, enabled=False)

    async def due(at: datetime) -> list[int]:
        return [d.leader.id for d in await stats_digest.digests_due(session, now=at)]

    # The first Monday comes before the bot has known the community for a week.
    assert await due(datetime(2025, 3, 3, 8, 0, tzinfo=timezone.utc)) == []
    assert await due(datetime(2025, 3, 10, 7, 59, tzinfo=timezone.utc)) == []
    assert await due(datetime(2025, 3, 10, 8, 0, tzinfo=timezone.utc)) == [1]
    wednesday = datetime(2025, 3, 12, 19, 0, tzinfo=timezone.utc)
    first, second = await stats_digest.digests_due(session, now=wednesday)
    assert (first.leader.id, second.leader.id) == (1, 2)
    assert (first.key, second.key) == (f"{shop.id}:1:2025-W11", f"{shop.id}:2:2025-W11")
    assert await job_marks.claim(session, job=stats_digest.JOB, key=first.key, now=wednesday)
    await session.commit()
    assert await due(wednesday) == [2]
    # Leader 1's claim is for that week only; the next week both are due again.
    assert await due(wednesday + timedelta(days=7)) == [1, 2]

    assert shop.settings["stats_digest"] == {"2": {"enabled": True, "weekday": 3, "time": "20:00"},
                                             "3": {"enabled": False, "weekday": 1, "time": "09:00"}}
    assert stats_digest.digest_settings(shop, leader_id=1) == stats_digest.DigestSettings()
    rows = [(r.actor_id, r.action, r.details) for r in await audit_rows()
            if r.action.startswith("stats_digest.")]
    assert rows == [(2, "stats_digest.weekday", {"entry": "2", "from": 1, "to": 3}),
                    (2, "stats_digest.time", {"entry": "2", "from": "09:00", "to": "20:00"}),
                    (3, "stats_digest.enabled", {"entry": "3", "from": True, "to": False})]


async def test_a_bad_choice_is_refused_and_stores_nothing(session, add_community) -> None:
    shop = await add_community(now=T0)
    with pytest.raises(DomainError) as refused:
        await stats_digest.update_digest_settings(session, community=shop, leader_id=1, now=T0, weekday=8)
    assert refused.value.code == "digest_setting_invalid"
    assert "stats_digest" not in shop.settings
