"""bot.services.invites and invite_links on a real database: member links made once and reused,
attribution from what Telegram says (first attribution wins, redelivered joins, sources without an
inviter, deep-link and group-buy inviters), rejoins, self-invites, bots, cycles, chain depth, join
requests, leaving, bursts and high leave rates."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from invite_builders import arrive, depart, link_of, make_group, member_of, profile, referral_of, seat, with_options
from shop_builders import make_users
from sqlmodel import func, select

from bot.services import communities, invite_links, invites, members
from bot.services.errors import DomainError
from bot.services.invites import IntentStatus, JoinReason
from models import InviteIntent, Referral, ReferralFlag, ReferralState, Via

A, B, C, D, E, F = 301, 302, 303, 304, 305, 306
BOT_ID = 999


async def code_of(coro) -> str:
    try:
        await coro
    except DomainError as err:
        return err.code
    return "ok"


# ----- links and codes ----------------------------------------------------------------------------------

async def test_a_member_link_is_made_once_and_reused_and_revoked_when_they_leave(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    first = await invite_links.link_for(session, community=g, user_id=A, now=t0)
    assert first.needs_creating and not first.creates_join_request
    assert first.name == f"U{A} {first.code}" and len(first.code) == invite_links.CODE_LENGTH
    saved = await invite_links.save_link(session, community_id=g.id, user_id=A, url="https://t.me/+one",
                                         name=first.name, creates_join_request=False, now=t0)
    # A second /invite pressed at once made another link: the first saved stays, the handler revokes its own.
    other = await invite_links.save_link(session, community_id=g.id, user_id=A, url="https://t.me/+two",
                                         name=first.name, creates_join_request=False, now=t0)
    assert other.id == saved.id and other.url == "https://t.me/+one"
    again = await invite_links.link_for(session, community=g, user_id=A, now=t0)
    assert not again.needs_creating and again.link.url == "https://t.me/+one" and again.code == first.code
    # The leader switches "approve joins" on: links that create join requests are another kind.
    await with_options(session, g, approve_joins=True)
    requests = await invite_links.link_for(session, community=g, user_id=A, now=t0)
    assert requests.needs_creating and requests.creates_join_request
    await invite_links.save_link(session, community_id=g.id, user_id=A, url="https://t.me/+req", name=first.name,
                                 creates_join_request=True, now=t0)
    assert await invite_links.revoke_links_of(session, community_id=g.id, user_id=A, now=t0) == [
        "https://t.me/+one", "https://t.me/+req"]
    assert await invite_links.revoke_links_of(session, community_id=g.id, user_id=A, now=t0) == []
    async with fresh() as s:
        revoked = await invite_links.link_by_url(s, community_id=g.id, url="https://t.me/+one")
    assert revoked.revoked_at == t0  # kept: a join reported late still names its owner


def test_link_names_fit_telegrams_32_characters():
    name = invite_links.link_name("Maximilian   Alexander\nvon Hohenzollern-Sigmaringen", "ABCDEFGH")
    assert name == "Maximilian Alexander vo ABCDEFGH" and len(name) == 32
    assert invite_links.link_name("", "ABCDEFGH") == "ABCDEFGH"
    assert invite_links.link_name("   ", "ABCDEFGH") == "ABCDEFGH"


async def test_who_may_get_a_link(session, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    assert await code_of(invite_links.link_for(session, community=g, user_id=B, now=t0)) == "invite_not_member"
    await with_options(session, g, enabled=False)
    assert await code_of(invite_links.link_for(session, community=g, user_id=A, now=t0)) == "invites_disabled"
    await with_options(session, g, enabled=True)
    await communities.on_bot_status(session, chat_id=g.chat_id, title=g.title, status="administrator",
                                    rights={"can_invite_users": False, "can_delete_messages": True,
                                            "can_pin_messages": True}, default_locale="en", default_timezone="UTC",
                                    now=t0)
    with pytest.raises(DomainError) as refused:
        await invite_links.link_for(session, community=g, user_id=A, now=t0)
    assert (refused.value.code, refused.value.params) == ("invite_right_missing", {"right": "can_invite_users"})
    # The deep link does not need the right.
    code = await invite_links.code_for(session, community_id=g.id, user_id=A, now=t0)
    await session.commit()
    assert invite_links.code_from_payload(invite_links.deep_link_payload(code)) == code


async def test_deep_link_codes_resolve_to_present_members_only(session, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    code = await invite_links.code_for(session, community_id=g.id, user_id=A, now=t0)
    await session.commit()
    assert await invite_links.code_for(session, community_id=g.id, user_id=A, now=t0) == code
    assert await invite_links.inviter_for_code(session, code=code.lower()) == invite_links.CodeOwner(g.id, A)
    assert invite_links.code_from_payload("inv-" + code.lower()) == code
    assert invite_links.code_from_payload("buy-12") is None
    assert invite_links.code_from_payload("inv-AB") is None
    await depart(session, g, A, now=t0)
    assert await invite_links.inviter_for_code(session, code=code) is None


# ----- attribution -------------------------------------------------------------------------------------

async def test_a_member_link_credits_its_owner_and_the_first_attribution_wins(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, C, now=t0)
    la, lc = await link_of(session, g, A, now=t0), await link_of(session, g, C, now=t0)
    made = await arrive(session, g, B, now=t0 + timedelta(minutes=1), link=la)
    assert made.created
    ref = await referral_of(fresh, g.id, B)
    assert (ref.inviter_id, ref.via, ref.link_id, ref.depth, ref.state, ref.flags) == (
        A, Via.MEMBER_LINK, la.id, 1, ReferralState.PENDING, [])
    member = await member_of(fresh, g.id, B)
    assert (member.invited_by, member.invite_depth, member.status) == (A, 1, "member")
    # The same update delivered again, and the join service message's path: nothing changes.
    again = await invites.attribute_join(session, community=g, profile=profile(B), is_bot=False, via=Via.MEMBER_LINK,
                                         link_url=la.url, joined_at=t0 + timedelta(minutes=1))
    assert not again.created and again.referral.id == ref.id
    # B leaves and comes back through C's link: still A's invite.
    await depart(session, g, B, now=t0 + timedelta(days=5))
    await arrive(session, g, B, now=t0 + timedelta(days=6), link=lc)
    after = await referral_of(fresh, g.id, B)
    assert (after.id, after.inviter_id, after.link_id) == (ref.id, A, la.id)
    async with fresh() as s:
        assert (await s.exec(select(func.count()).select_from(Referral))).one() == 1
    assert (await member_of(fresh, g.id, B)).invited_by == A


async def test_concurrent_deliveries_of_one_join_record_one_referral(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    la = await link_of(session, g, A, now=t0)

    async def deliver():
        async with fresh() as s:
            return await invites.attribute_join(s, community=g, profile=profile(B), is_bot=False,
                                                via=Via.MEMBER_LINK, link_url=la.url, joined_at=t0)

    results = await asyncio.gather(*(deliver() for _ in range(4)))
    assert sorted(r.created for r in results) == [False, False, False, True]
    assert len({r.referral.id for r in results}) == 1
    assert (await referral_of(fresh, g.id, B)).inviter_id == A


async def test_sources_without_an_inviter_are_recorded_by_source(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    await arrive(session, g, B, now=t0, via=Via.PRIMARY_LINK, link="https://t.me/+primary")
    await arrive(session, g, C, now=t0, via=Via.ADMIN_LINK, link="https://t.me/+AbCd…")
    # A link the bot made that is no member's is an administrator's link as far as invites go.
    await arrive(session, g, D, now=t0, via=Via.MEMBER_LINK, link="https://t.me/+not-a-member-link")
    await arrive(session, g, E, now=t0, via=Via.ADDED_BY_ADMIN)
    await arrive(session, g, F, now=t0)
    found = {uid: await referral_of(fresh, g.id, uid) for uid in (B, C, D, E, F)}
    assert {uid: (r.via, r.inviter_id, r.depth, r.state) for uid, r in found.items()} == {
        B: (Via.PRIMARY_LINK, None, 0, "pending"), C: (Via.ADMIN_LINK, None, 0, "pending"),
        D: (Via.ADMIN_LINK, None, 0, "pending"), E: (Via.ADDED_BY_ADMIN, None, 0, "pending"),
        F: (Via.UNKNOWN, None, 0, "pending")}


def test_the_source_of_a_join_from_the_update():
    def via(**kw):
        return invites.via_of(user_id=B, bot_id=BOT_ID, **kw)

    assert via(actor_id=B, link_url=None) == Via.UNKNOWN
    assert via(actor_id=A, link_url=None) == Via.ADDED_BY_ADMIN
    assert via(actor_id=B, link_url="u", link_is_primary=True, link_creator_id=A) == Via.PRIMARY_LINK
    assert via(actor_id=B, link_url="u", link_creator_id=BOT_ID) == Via.MEMBER_LINK
    assert via(actor_id=B, link_url="u", link_creator_id=A) == Via.ADMIN_LINK
    assert via(actor_id=BOT_ID, link_url="u", link_creator_id=BOT_ID, via_join_request=True) == Via.JOIN_REQUEST


async def test_invites_switched_off_record_nothing(session, fresh, t0):
    g = await make_group(session, now=t0, enabled=False)
    await seat(session, g, A, now=t0)
    assert await arrive(session, g, B, now=t0) is None
    assert await referral_of(fresh, g.id, B) is None


async def test_a_deep_link_names_the_inviter_when_no_link_does(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, C, now=t0)
    la = await link_of(session, g, A, now=t0)
    await make_users(session, [B], now=t0)
    first = await invites.record_intent(session, community=g, user_id=B, inviter_id=A, now=t0)
    assert first == invites.Intent(IntentStatus.RECORDED, A, la.url)
    # Another member's code later: the first inviter stands.
    second = await invites.record_intent(session, community=g, user_id=B, inviter_id=C, now=t0 + timedelta(hours=1))
    assert (second.status, second.inviter_id) == (IntentStatus.KEPT, A)
    await arrive(session, g, B, now=t0 + timedelta(hours=2), via=Via.PRIMARY_LINK, link="https://t.me/+primary")
    ref = await referral_of(fresh, g.id, B)
    assert (ref.inviter_id, ref.via, ref.depth) == (A, Via.DEEP_LINK, 1)
    async with fresh() as s:
        assert (await s.exec(select(func.count()).select_from(InviteIntent))).one() == 0
    # Already here, their own code, an unknown inviter.
    assert (await invites.record_intent(session, community=g, user_id=B, inviter_id=C, now=t0)).status == "member"
    assert (await invites.record_intent(session, community=g, user_id=D, inviter_id=D, now=t0)).status == "self"
    assert (await invites.record_intent(session, community=g, user_id=F, inviter_id=12345, now=t0)).status == "unknown"


async def test_a_member_link_beats_a_deep_link_and_an_old_intent_gives_way(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, C, now=t0)
    lc = await link_of(session, g, C, now=t0)
    await make_users(session, [E, F], now=t0)  # they pressed Start in the bot first
    assert (await invites.record_intent(session, community=g, user_id=E, inviter_id=A, now=t0)).status == "recorded"
    assert (await invites.record_intent(session, community=g, user_id=F, inviter_id=A, now=t0)).status == "recorded"
    await arrive(session, g, E, now=t0 + timedelta(hours=1), link=lc)
    e = await referral_of(fresh, g.id, E)
    assert (e.inviter_id, e.via) == (C, Via.MEMBER_LINK)
    # A week on, another member's deep link takes the place of A's.
    later = await invites.record_intent(session, community=g, user_id=F, inviter_id=C, now=t0 + timedelta(days=8))
    assert (later.status, later.inviter_id, later.link_url) == (IntentStatus.RECORDED, C, lc.url)
    await arrive(session, g, F, now=t0 + timedelta(days=8, hours=1))
    f = await referral_of(fresh, g.id, F)
    assert (f.inviter_id, f.via) == (C, Via.DEEP_LINK)


async def test_an_intent_is_forgotten_after_a_week(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    await make_users(session, [B], now=t0)
    await invites.record_intent(session, community=g, user_id=B, inviter_id=A, now=t0)
    await arrive(session, g, B, now=t0 + timedelta(days=8), via=Via.PRIMARY_LINK, link="https://t.me/+p")
    b = await referral_of(fresh, g.id, B)
    assert (b.inviter_id, b.via) == (None, Via.PRIMARY_LINK)


async def test_a_group_buy_link_counts_as_an_invitation_when_it_brings_someone_new(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    await arrive(session, g, B, now=t0, via=Via.GROUP_BUY_LINK, hint=A)
    b = await referral_of(fresh, g.id, B)
    assert (b.inviter_id, b.via, b.depth, b.state) == (A, Via.GROUP_BUY_LINK, 1, "pending")
    # The checkout came first (recorded as an intent); the join later, by the public group's Join button.
    await make_users(session, [C], now=t0)
    intent = await invites.record_intent(session, community=g, user_id=C, inviter_id=A, now=t0,
                                         via=Via.GROUP_BUY_LINK)
    assert intent.status == IntentStatus.RECORDED
    await arrive(session, g, C, now=t0 + timedelta(hours=3))
    c = await referral_of(fresh, g.id, C)
    assert (c.inviter_id, c.via) == (A, Via.GROUP_BUY_LINK)
    # An inviter id the bot has never seen (the link is client-made) credits nobody.
    await arrive(session, g, D, now=t0, via=Via.GROUP_BUY_LINK, hint=424242)
    assert (await referral_of(fresh, g.id, D)).inviter_id is None


# ----- what is held -------------------------------------------------------------------------------------

async def test_rejoins_self_invites_and_bots_are_held(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, B, now=t0)  # B was a member before invites were tracked
    la = await link_of(session, g, A, now=t0)
    await depart(session, g, B, now=t0 + timedelta(days=1))
    await arrive(session, g, B, now=t0 + timedelta(days=2), link=la)
    rejoin = await referral_of(fresh, g.id, B)
    assert (rejoin.inviter_id, rejoin.state, rejoin.flags) == (A, "flagged", [ReferralFlag.REJOIN])
    # A leaves and comes back through their own link (revoked when they left, still A's).
    await depart(session, g, A, now=t0 + timedelta(days=3))
    await invite_links.revoke_links_of(session, community_id=g.id, user_id=A, now=t0 + timedelta(days=3))
    await arrive(session, g, A, now=t0 + timedelta(days=4), link=la)
    self_invite = await referral_of(fresh, g.id, A)
    assert (self_invite.inviter_id, self_invite.state) == (A, "flagged")
    assert set(self_invite.flags) == {ReferralFlag.REJOIN, ReferralFlag.SELF_INVITE}
    assert (await member_of(fresh, g.id, A)).invited_by is None  # nobody invites themselves
    await arrive(session, g, 777, now=t0 + timedelta(days=4), link=la, is_bot=True)
    bot = await referral_of(fresh, g.id, 777)
    assert (bot.inviter_id, bot.state, bot.flags) == (A, "flagged", [ReferralFlag.BOT])
    assert await member_of(fresh, g.id, 777) is None


async def test_a_new_member_whose_first_message_came_first_is_no_rejoin(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    la = await link_of(session, g, A, now=t0)
    # The activity flusher wrote B's first message before the chat_member update was handled.
    await seat(session, g, B, now=t0 + timedelta(seconds=5))
    await arrive(session, g, B, now=t0, link=la)
    assert (await referral_of(fresh, g.id, B)).flags == []


async def test_an_inviter_in_the_invitees_downline_is_refused(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    la = await link_of(session, g, A, now=t0)
    await arrive(session, g, B, now=t0, link=la)
    lb = await link_of(session, g, B, now=t0)
    await arrive(session, g, C, now=t0, link=lb)
    lc = await link_of(session, g, C, now=t0)
    # A (no referral: there before tracking) leaves and comes back through C's link: C is A's downline.
    await depart(session, g, A, now=t0 + timedelta(days=1))
    await arrive(session, g, A, now=t0 + timedelta(days=2), link=lc)
    back = await referral_of(fresh, g.id, A)
    assert (back.inviter_id, back.depth, back.via, back.flags) == (None, 0, Via.MEMBER_LINK, [ReferralFlag.REJOIN])
    assert back.state == "pending"  # nobody to reward: not in the review queue


async def test_chains_keep_their_depth(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    inviter = A
    for uid in (B, C, D, E):
        link = await link_of(session, g, inviter, now=t0)
        await arrive(session, g, uid, now=t0, link=link)
        inviter = uid
    depths = {uid: (await referral_of(fresh, g.id, uid)).depth for uid in (B, C, D, E)}
    assert depths == {B: 1, C: 2, D: 3, E: 4}
    assert [(await member_of(fresh, g.id, uid)).invite_depth for uid in (B, C, D, E)] == [1, 2, 3, 4]
    assert (await member_of(fresh, g.id, E)).invited_by == D


async def test_a_burst_through_one_link_is_held(session, fresh, t0):
    g = await make_group(session, now=t0, burst_joins=3, burst_minutes=10)
    await seat(session, g, A, now=t0)
    la = await link_of(session, g, A, now=t0)
    for n, uid in enumerate((B, C, D)):
        await arrive(session, g, uid, now=t0 + timedelta(minutes=n), link=la)
    assert [(await referral_of(fresh, g.id, uid)).state for uid in (B, C, D)] == ["pending"] * 3
    await arrive(session, g, E, now=t0 + timedelta(minutes=3), link=la)  # the 4th within 10 minutes
    held = [await referral_of(fresh, g.id, uid) for uid in (B, C, D, E)]
    assert [(r.state, r.flags) for r in held] == [("flagged", [ReferralFlag.BURST])] * 4
    await arrive(session, g, F, now=t0 + timedelta(minutes=30), link=la)  # the burst is over
    assert (await referral_of(fresh, g.id, F)).state == "pending"


async def test_an_inviter_most_of_whose_invitees_left_is_held(session, fresh, t0):
    g = await make_group(session, now=t0, leave_rate_min_invites=3, leave_rate_percent=50)
    await seat(session, g, A, now=t0)
    la = await link_of(session, g, A, now=t0)
    for n, uid in enumerate((B, C, D)):
        await arrive(session, g, uid, now=t0 + timedelta(hours=n), link=la)
    await depart(session, g, B, now=t0 + timedelta(days=1))
    await arrive(session, g, E, now=t0 + timedelta(days=1, hours=1), link=la)  # 1 of 3 left: fine
    assert (await referral_of(fresh, g.id, E)).state == "pending"
    await depart(session, g, C, now=t0 + timedelta(days=2))
    await depart(session, g, D, now=t0 + timedelta(days=2))
    await arrive(session, g, F, now=t0 + timedelta(days=3), link=la)  # 3 of 4 left
    held = await referral_of(fresh, g.id, F)
    assert (held.state, held.flags) == ("flagged", [ReferralFlag.HIGH_LEAVE_RATE])


# ----- join requests ------------------------------------------------------------------------------------

async def test_join_requests_through_member_links_are_the_bots_to_decide(session, fresh, t0):
    g = await make_group(session, now=t0, approve_joins=True)
    await seat(session, g, A, D, now=t0)
    la = await link_of(session, g, A, now=t0, join_request=True)

    async def decide(uid, url, *, is_bot=False):
        return await invites.should_approve(session, community=g, user_id=uid, is_bot=is_bot, link_url=url)

    assert (await decide(B, "https://t.me/+AbCd…")).approve is None  # an administrator's link
    assert (await decide(B, None)).reason == JoinReason.NOT_OURS
    assert (await decide(777, la.url, is_bot=True)).approve is False
    ok = await decide(B, la.url)
    assert (ok.approve, ok.reason, ok.link.id) == (True, JoinReason.OK, la.id)
    await arrive(session, g, B, now=t0 + timedelta(minutes=1), via=Via.JOIN_REQUEST, link=la)
    ref = await referral_of(fresh, g.id, B)
    assert (ref.inviter_id, ref.via, ref.link_id, ref.state) == (A, Via.JOIN_REQUEST, la.id, "pending")
    # The chat_member update that follows the approval changes nothing.
    after = await invites.attribute_join(session, community=g, profile=profile(B), is_bot=False,
                                         via=Via.JOIN_REQUEST, link_url=la.url, joined_at=t0 + timedelta(minutes=1))
    assert not after.created
    # Someone an administrator removed, and a link whose owner left.
    await members.on_member_status(session, community=g, profile=profile(D), old_status="member",
                                   new_status="kicked", now=t0)
    assert (await decide(D, la.url)).reason == JoinReason.BANNED
    await invite_links.revoke_links_of(session, community_id=g.id, user_id=A, now=t0)
    revoked = await decide(C, la.url)
    assert (revoked.approve, revoked.reason) == (False, JoinReason.LINK_REVOKED)


# ----- leaving -----------------------------------------------------------------------------------------

async def test_leaving_early_is_flagged_and_the_first_departure_counts(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    la = await link_of(session, g, A, now=t0)
    await arrive(session, g, B, now=t0, link=la)
    await arrive(session, g, C, now=t0, link=la)
    left = await depart(session, g, B, now=t0 + timedelta(hours=71))
    assert (left.state, left.flags, left.left_at) == ("left", [ReferralFlag.LEFT_WITHIN_72H], t0 + timedelta(hours=71))
    await depart(session, g, C, now=t0 + timedelta(hours=72))  # not within 72 h
    assert ((await referral_of(fresh, g.id, C)).state, (await referral_of(fresh, g.id, C)).flags) == ("left", [])
    # Redelivered, or leaving again after a rejoin: the first departure stands.
    again = await invites.member_left(session, community_id=g.id, user_id=B, at=t0 + timedelta(days=9))
    assert again.left_at == t0 + timedelta(hours=71)
    assert await invites.member_left(session, community_id=g.id, user_id=A, at=t0) is None


async def test_left_state_wins_over_a_concurrent_reward_only_when_still_pending(session, fresh, t0):
    g = await make_group(session, now=t0)
    await seat(session, g, A, now=t0)
    la = await link_of(session, g, A, now=t0)
    await arrive(session, g, B, now=t0, link=la)
    async with fresh() as s:
        await s.execute(Referral.__table__.update().where(Referral.invitee_id == B).values(state="rewarded"))
        await s.commit()
    # member_left read the row before the job rewarded it; the UPDATE decides on the row as it is.
    left = await invites.member_left(session, community_id=g.id, user_id=B, at=t0 + timedelta(days=10))
    assert (left.state, left.left_at) == ("rewarded", t0 + timedelta(days=10))
