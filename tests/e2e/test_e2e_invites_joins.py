"""Joins and what becomes of them, against the real bot and the emulator: join requests approved
and declined, rejoins and self-invites held, a burst through one link held, leaving before and after
qualifying, redelivered chat_member updates, and a chain four deep whose third level is never
rewarded, whatever the stored settings say. Rewarded inviters hear of it in private, once.

The scheduler is paused: the qualification job runs "as of" the moments the tests name (joins carry
the emulator's wall-clock dates; a departure days later is dated so).
"""

from __future__ import annotations

import pytest
from checkin_helpers import dated
from e2e_harness import E2E, Group, en
from invite_member_helpers import (
    calls,
    days_later,
    deep_link_in,
    invite,
    invite_entries,
    joins,
    link_of,
    links,
    member_link_in,
    now,
    options,
    payload_of,
    qualify,
    referral,
    referrals,
    see,
)

from bot.services.invite_settings import LevelReward
from models import Community, ReferralFlag, ReferralState, Via


@pytest.fixture(autouse=True)
def paused(e2e: E2E) -> None:
    e2e.app.scheduler._aps.pause()


def counts(regular: int = 0, pending: int = 0, left: int = 0, fake: int = 0, bonus: int = 0) -> str:
    return see("📊 Your invites: ✅ {regular} regular · ⏳ {pending} pending · 🚪 {left} left · ⚠️ {fake} held or "
               "rejected · 🎁 {bonus} bonus", regular=regular, pending=pending, left=left, fake=fake, bonus=bonus)


async def joined_while_invites_were_off(e2e: E2E, group: Group, name: str):
    """Someone who was a member before invites were counted: a member row, no referral."""
    await options(e2e, group, enabled=False)
    person = e2e.emu.add_user(name)
    await joins(e2e, group.chat, person)
    await options(e2e, group, enabled=True)
    assert await referral(e2e, group, person) is None
    return person


# --- join requests ---------------------------------------------------------------------------------------

async def test_join_requests_through_a_members_link_are_approved_and_credited_a_bots_is_declined(
        e2e: E2E, group: Group) -> None:
    emu, bob = e2e.emu, group.members[0]
    await options(e2e, group, approve_joins=True)
    text = await invite(e2e, bob)
    url = member_link_in(text)
    assert see("People who open it ask to join, and I let them in.") in text
    [made] = calls(e2e, "createChatInviteLink")
    assert made.params.get("creates_join_request") in (True, "true", "True")
    assert "member_limit" not in made.params

    gus = emu.add_user("Gus")
    await e2e.act(lambda: emu.request_join(group.chat, gus, invite_link=url))
    assert emu.chats[group.chat.id].member(gus.id).is_member
    found = await referral(e2e, group, gus)
    assert (found.via, found.inviter_id, found.state, found.flags) == (Via.JOIN_REQUEST, bob.id,
                                                                        ReferralState.PENDING, [])
    # The chat_member update of the approval changed nothing; a redelivery of it neither.
    emu.redeliver(e2e.last_update_id("chat_member"))
    await e2e.settle()
    assert [r.id for r in await referrals(e2e, group) if r.invitee_id == gus.id] == [found.id]

    robo = emu.add_user("Robo")
    robo.is_bot = True
    await e2e.act(lambda: emu.request_join(group.chat, robo, invite_link=url))
    assert [c.params["user_id"] for c in calls(e2e, "declineChatJoinRequest")] in ([robo.id], [str(robo.id)])
    assert not emu.chats[group.chat.id].member(robo.id).is_member
    assert await referral(e2e, group, robo) is None
    assert len(calls(e2e, "approveChatJoinRequest")) == 1

    # A request through a link some administrator made is the administrators' to decide.
    flyers = emu.create_invite_link(group.chat, group.leader, name="Flyers", creates_join_request=True)
    ona = emu.add_user("Ona")
    await e2e.act(lambda: emu.request_join(group.chat, ona, invite_link=flyers.link))
    assert ona.id in emu.chats[group.chat.id].join_requests
    assert len(calls(e2e, "approveChatJoinRequest")) == 1 and len(calls(e2e, "declineChatJoinRequest")) == 1


async def test_a_rejoin_is_held_whether_it_comes_by_join_request_or_after_a_deep_link(e2e: E2E, group: Group) -> None:
    emu, bob = e2e.emu, group.members[0]
    hal = await joined_while_invites_were_off(e2e, group, "Hal")
    jo = await joined_while_invites_were_off(e2e, group, "Jo")
    for person in (hal, jo):
        await e2e.act(lambda p=person: emu.leave(group.chat, p))
    deep = deep_link_in(await invite(e2e, bob))

    # Jo reaches the bot first and comes back through the link she is handed: Telegram does not
    # report the link for someone coming back, the deep link names Bob, and the rejoin is held.
    await e2e.say(jo, f"/start {payload_of(deep)}")
    await joins(e2e, group.chat, jo, member_link_in(e2e.last(jo)))
    found = await referral(e2e, group, jo)
    assert (found.via, found.inviter_id, found.state, found.flags) == (Via.DEEP_LINK, bob.id, ReferralState.FLAGGED,
                                                                        [ReferralFlag.REJOIN])

    # Hal asks to join through Bob's request link: exact for people coming back, approved, held.
    await options(e2e, group, approve_joins=True)
    url = member_link_in(await invite(e2e, bob))
    await e2e.act(lambda: emu.request_join(group.chat, hal, invite_link=url))
    found = await referral(e2e, group, hal)
    assert (found.via, found.inviter_id, found.state, found.flags) == (Via.JOIN_REQUEST, bob.id,
                                                                        ReferralState.FLAGGED, [ReferralFlag.REJOIN])
    # Held: the qualification job never rewards them.
    assert (await qualify(e2e, days_later(3))).startswith("2 qualified, 0 rewarded")
    assert await invite_entries(e2e, group) == []
    assert counts(fake=2) in await invite(e2e, bob)


async def test_a_self_invite_is_approved_as_a_person_and_held(e2e: E2E, group: Group) -> None:
    """Ian leaves while the bot is not an administrator (so it neither sees the departure as a
    chat_member update nor revokes his link) and asks to come back through his own link."""
    emu, alice = e2e.emu, group.leader
    ian = await joined_while_invites_were_off(e2e, group, "Ian")
    await options(e2e, group, approve_joins=True)
    url = member_link_in(await invite(e2e, ian))
    await e2e.act(lambda: emu.demote_bot(group.chat, by=alice))
    await e2e.act(lambda: emu.leave(group.chat, ian))
    await e2e.act(lambda: emu.promote_bot(group.chat, by=alice, rights={}))
    await e2e.act(lambda: emu.request_join(group.chat, ian, invite_link=url))
    assert emu.chats[group.chat.id].member(ian.id).is_member
    found = await referral(e2e, group, ian)
    assert (found.inviter_id, found.state) == (ian.id, ReferralState.FLAGGED)
    assert set(found.flags) == {ReferralFlag.SELF_INVITE, ReferralFlag.REJOIN}
    await qualify(e2e, days_later(3))
    assert await invite_entries(e2e, group) == []


# --- fraud and departures ------------------------------------------------------------------------------

async def test_a_burst_through_one_link_is_held(e2e: E2E, group: Group) -> None:
    bob = group.members[0]
    await options(e2e, group, burst_joins=2, burst_minutes=10)
    url = await link_of(e2e, bob)
    crowd = [e2e.emu.add_user(name) for name in ("Kai", "Lea", "Mo")]
    for person in crowd[:2]:
        await joins(e2e, group.chat, person, url)
    assert [(await referral(e2e, group, p)).state for p in crowd[:2]] == [ReferralState.PENDING] * 2
    await joins(e2e, group.chat, crowd[2], url)
    held = [await referral(e2e, group, p) for p in crowd]
    assert [(r.state, r.flags) for r in held] == [(ReferralState.FLAGGED, [ReferralFlag.BURST])] * 3
    await qualify(e2e, days_later(3))
    assert await invite_entries(e2e, group) == []
    assert counts(fake=3) in await invite(e2e, bob)


async def test_leaving_before_qualifying_earns_nothing_leaving_after_keeps_the_reward(e2e: E2E, group: Group) -> None:
    bob = group.members[0]
    url = await link_of(e2e, bob)
    kay, lu = e2e.emu.add_user("Kay"), e2e.emu.add_user("Lu")
    await joins(e2e, group.chat, kay, url)
    await joins(e2e, group.chat, lu, url)
    with dated(e2e, days_later(1)):
        await e2e.act(lambda: e2e.emu.leave(group.chat, kay))
    left = await referral(e2e, group, kay)
    assert (left.state, left.flags) == (ReferralState.LEFT, [ReferralFlag.LEFT_WITHIN_72H])
    await qualify(e2e, days_later(3))
    lus = await referral(e2e, group, lu)
    assert await invite_entries(e2e, group) == [(bob.id, f"referral:{lus.id}", 10)]
    with dated(e2e, days_later(4)):
        await e2e.act(lambda: e2e.emu.leave(group.chat, lu))
    after = await referral(e2e, group, lu)
    assert (after.state, after.left_at is not None, after.flags) == (ReferralState.REWARDED, True, [])
    assert await invite_entries(e2e, group) == [(bob.id, f"referral:{lus.id}", 10)]
    assert counts(regular=1, left=2) in await invite(e2e, bob)


async def test_redelivered_chat_member_updates_change_nothing(e2e: E2E, group: Group) -> None:
    emu, bob = e2e.emu, group.members[0]
    url = await link_of(e2e, bob)
    max_ = emu.add_user("Max")
    await joins(e2e, group.chat, max_, url)
    joined = e2e.last_update_id("chat_member")
    before = (await referral(e2e, group, max_), await e2e.member_row(group.chat, max_))
    # The same update again, and the same change under a new update id (as after a lost offset).
    emu.redeliver(joined)
    emu.enqueue("chat_member", emu.updates.get(joined)["chat_member"])
    await e2e.settle()
    after = (await referral(e2e, group, max_), await e2e.member_row(group.chat, max_))
    assert [r.invitee_id for r in await referrals(e2e, group)].count(max_.id) == 1
    assert (after[0].id, after[0].state, after[0].joined_at) == (before[0].id, before[0].state, before[0].joined_at)
    assert after[1].joined_at == before[1].joined_at

    # Bob leaves: his link is revoked at Telegram, once, however often the departure arrives.
    await e2e.act(lambda: emu.leave(group.chat, bob))
    gone = e2e.last_update_id("chat_member")
    emu.redeliver(gone)
    emu.enqueue("chat_member", emu.updates.get(gone)["chat_member"])
    await e2e.settle()
    assert [c.params["invite_link"] for c in calls(e2e, "revokeChatInviteLink")] == [url]
    assert emu.chats[group.chat.id].invite_links[url].is_revoked
    assert [link.revoked_at is not None for link in await links(e2e, group, bob)] == [True]


# --- chains --------------------------------------------------------------------------------------------

async def test_a_chain_four_deep_rewards_two_levels_and_never_the_third(e2e: E2E, group: Group) -> None:
    """Bob → Dee → Eli → Fay. Level 2 is on, and the stored options even ask for a third level."""
    bob = group.members[0]
    await options(e2e, group, level2=LevelReward(points=5))
    async with e2e.db() as s:
        community = await s.get(Community, group.community_id)
        community.settings = {**community.settings,
                              "invites": {**community.settings["invites"], "level3": {"points": 1000}}}
        await s.commit()
    dee, eli, fay = (e2e.emu.add_user(name) for name in ("Dee", "Eli", "Fay"))
    inviter = bob
    for person in (dee, eli, fay):
        await joins(e2e, group.chat, person, await link_of(e2e, inviter))
        inviter = person
    chain = {p.first_name: await referral(e2e, group, p) for p in (dee, eli, fay)}
    assert {n: (r.inviter_id, r.depth) for n, r in chain.items()} == {
        "Dee": (bob.id, 1), "Eli": (dee.id, 2), "Fay": (eli.id, 3)}

    assert await qualify(e2e, days_later(3)) == "5 qualified, 3 rewarded, 40 points, 0 coupons, 3 told"
    d, e, f = (chain[n].id for n in ("Dee", "Eli", "Fay"))
    assert sorted(await invite_entries(e2e, group)) == sorted([
        (bob.id, f"referral:{d}", 10),
        (dee.id, f"referral:{e}", 10), (bob.id, f"referral:{e}:2", 5),
        (eli.id, f"referral:{f}", 10), (dee.id, f"referral:{f}:2", 5),
    ])
    assert not [entry for entry in await invite_entries(e2e, group) if entry[0] == bob.id and str(f) in entry[1]]
    # Each rewarded inviter hears of it in private.
    told = e2e.last(bob)
    assert told.startswith(see("<b>🎉 Your invites in {title} paid off</b>", title="Green Valley"))
    assert see("• {name} stayed: {reward}", name="Dee", reward=en("+{points} points", points=10)) in told
    assert see("• Someone {name} invited stayed: {reward}", name="Dee", reward=en("+{points} points", points=5)) in told
    assert see("💰 +{points} points in all: /points shows your balance.", points=15) in told
    assert counts(regular=1, bonus=1) in await invite(e2e, bob)
    # Run again, or late: nothing more is given, nobody is told twice.
    heard = {p.first_name: len(e2e.bot_texts(p)) for p in (bob, dee, eli)}
    assert await qualify(e2e, days_later(5)) == "0 qualified, 0 rewarded, 0 points, 0 coupons, 0 told"
    assert {p.first_name: len(e2e.bot_texts(p)) for p in (bob, dee, eli)} == heard
    assert len(await invite_entries(e2e, group)) == 5


async def test_invitees_must_stay_the_days_the_leader_set(e2e: E2E, group: Group) -> None:
    bob = group.members[0]
    await options(e2e, group, qualify_days=7)
    url = await link_of(e2e, bob)
    assert see("🎁 For each friend who joins through your link and stays {days} day(s), you get {reward}.", days=7,
               reward=en("+{points} points", points=10)) in e2e.last(bob)
    nia = e2e.emu.add_user("Nia")
    await joins(e2e, group.chat, nia, url)
    joined = now()
    assert (await qualify(e2e, days_later(6, joined))).startswith("0 qualified")
    assert (await qualify(e2e, days_later(7, joined))).startswith("3 qualified, 1 rewarded")
    assert [entry[0] for entry in await invite_entries(e2e, group)] == [bob.id]
