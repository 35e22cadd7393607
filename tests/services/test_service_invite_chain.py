"""bot.services.invite_chain on a real database: naming a member for the chain view (present or
gone, never erased) and walking their inviters upwards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from invite_builders import arrive, depart, link_of, make_group, profile, seat

from bot.services import invite_chain, users
from bot.services.errors import DomainError
from bot.services.users import Profile, upsert_user

A, B, C, D, E, OUTSIDER = 601, 602, 603, 604, 605, 699
HOUR = timedelta(hours=1)


async def chain(session, t0):
    """A invites B, B invites C, C invites D, D invites E (A was there before invites were tracked)."""
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    inviter = A
    for n, uid in enumerate((B, C, D, E)):
        await arrive(session, g, uid, now=t0 + n * HOUR, link=await link_of(session, g, inviter, now=t0))
        inviter = uid
    return g


async def test_find_person_by_id_or_username_present_or_gone(session, t0):
    g = await chain(session, t0)
    await upsert_user(session, Profile(id=C, first_name="Cat", username="Cat_C"), now=t0)
    await upsert_user(session, profile(OUTSIDER), now=t0)
    assert (await invite_chain.find_person(session, community_id=g.id, raw=" @cat_c ")).id == C
    assert (await invite_chain.find_person(session, community_id=g.id, raw=str(D))).id == D
    await depart(session, g, D, now=t0 + 2 * HOUR)
    assert (await invite_chain.find_person(session, community_id=g.id, raw=str(D))).id == D  # left: still found
    await users.forget(session, user_id=D, now=t0 + 3 * HOUR)
    for raw in (str(D), str(OUTSIDER), "@nobody", "@", "9" * 30):
        with pytest.raises(DomainError) as refusal:
            await invite_chain.find_person(session, community_id=g.id, raw=raw)
        assert (refusal.value.code, refusal.value.params) == ("invite_member_unknown", {"value": raw})


async def test_upline_walks_up_to_the_top_or_the_limit(session, t0):
    g = await chain(session, t0)
    up = await invite_chain.upline(session, community_id=g.id, user_id=E)
    assert (up.referral.invitee_id, up.referral.depth) == (E, 4)
    assert [(p.level, p.user.id, p.hidden) for p in up.people] == [(1, D, False), (2, C, False), (3, B, False),
                                                                   (4, A, False)]
    assert not up.more
    short = await invite_chain.upline(session, community_id=g.id, user_id=E, max_depth=2)
    assert [p.user.id for p in short.people] == [D, C] and short.more
    top = await invite_chain.upline(session, community_id=g.id, user_id=A)
    assert (top.referral, top.people, top.more) == (None, [], False)
    # An erased inviter cut their invites loose: the chain ends below them.
    await users.forget(session, user_id=B, now=t0 + 5 * HOUR)
    assert [p.user.id for p in (await invite_chain.upline(session, community_id=g.id, user_id=E)).people] == [D, C]
