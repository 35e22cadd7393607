"""Members inviting, against the real bot and the emulator: /invite's own link (made once, named
after the member, reused), whom a join is credited to (a member's link, the primary link, an
administrator's link, an administrator adding someone, a deep link before a public group's Join
button, a group-buy "join my team" link), /invite typed in the group, the missing right to invite
users, /top invites, and a member's invites under /mydata and /forgetme.

The scheduler is paused: the qualification job runs "as of" the moments the tests name.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from buying_helpers import open_shop, orders_of
from e2e_harness import E2E, Group, en
from invite_member_helpers import (
    calls,
    deep_link_in,
    group_sends,
    invite,
    joins,
    link_of,
    links,
    member_link_in,
    now,
    payload_of,
    referral,
    see,
)

from bot.services import groupbuys, invite_links
from bot.services.groupbuys import Terms
from models import GroupBuyKind, ReferralState, Via


@pytest.fixture(autouse=True)
def paused(e2e: E2E) -> None:
    e2e.app.scheduler._aps.pause()


def made_links(e2e: E2E) -> list:
    return calls(e2e, "createChatInviteLink")


# --- the member's own link -----------------------------------------------------------------------------

async def test_invite_makes_the_members_link_once_named_after_them_and_reuses_it(e2e: E2E, group: Group) -> None:
    long = e2e.emu.add_user("Maximilian Alexander", last_name="von Hohenzollern-Sigmaringen")
    await joins(e2e, group.chat, long)
    text = await invite(e2e, long)
    assert text.startswith(see("<b>🤝 Invite friends to {title}</b>", title="Green Valley"))
    url, deep = member_link_in(text), deep_link_in(text)
    [made] = made_links(e2e)
    name = made.params["name"]
    code = payload_of(deep).removeprefix("inv-")
    # Telegram keeps 32 characters: the name, cut, and the member's code, which tells namesakes apart.
    assert name == "Maximilian Alexander vo " + code and len(name) == 32
    assert made.params.get("creates_join_request") in (None, False, "false", "False")
    [row] = await links(e2e, group, long)
    assert (row.url, row.name, row.revoked_at) == (url, name, None)
    assert e2e.emu.chats[group.chat.id].invite_links[url].name == name
    assert deep.startswith("https://t.me/community_e2e_bot?start=inv-")
    # What a qualified invite earns (the default: 10 points after 3 days) and the counts, all zero.
    assert see("🎁 For each friend who joins through your link and stays {days} day(s), you get {reward}.", days=3,
               reward=en("+{points} points", points=10)) in text
    assert see("📊 Your invites: ✅ {regular} regular · ⏳ {pending} pending · 🚪 {left} left · ⚠️ {fake} held or "
               "rejected · 🎁 {bonus} bonus", regular=0, pending=0, left=0, fake=0, bonus=0) in text
    # Asked again: the same link and code, nothing new made at Telegram.
    again = await invite(e2e, long)
    assert (member_link_in(again), deep_link_in(again)) == (url, deep)
    assert len(made_links(e2e)) == 1
    assert e2e.last_msg(long).buttons == [[en("📤 Share my link")]]


async def test_a_member_of_two_groups_picks_one_and_gets_a_link_per_group(e2e: E2E, group: Group) -> None:
    bob = group.members[0]
    orchard = await e2e.make_group("Orchard", leader=e2e.emu.add_user("Olive"), members=[bob])
    await e2e.say(bob, "/invite")
    assert e2e.last(bob) == en("Invite friends to which group?")
    assert e2e.last_msg(bob).buttons == [["Green Valley"], ["Orchard"]]
    await e2e.press(bob, "Orchard")
    assert e2e.last(bob).startswith(see("<b>🤝 Invite friends to {title}</b>", title="Orchard"))
    orchards = member_link_in(e2e.last(bob))
    assert orchards in e2e.emu.chats[orchard.chat.id].invite_links
    await e2e.say(bob, "/invite")
    await e2e.press(bob, "Green Valley")
    assert member_link_in(e2e.last(bob)) in e2e.emu.chats[group.chat.id].invite_links
    assert len(made_links(e2e)) == 2


async def test_a_join_through_a_members_link_credits_its_owner(e2e: E2E, group: Group) -> None:
    bob = group.members[0]
    url = await link_of(e2e, bob)
    dee = e2e.emu.add_user("Dee")
    await joins(e2e, group.chat, dee, url)
    found = await referral(e2e, group, dee)
    assert (found.inviter_id, found.via, found.state, found.flags, found.depth) == (
        bob.id, Via.MEMBER_LINK, ReferralState.PENDING, [], 1)
    assert (await e2e.member_row(group.chat, dee)).invited_by == bob.id
    # Bob sees it pending.
    assert see("📊 Your invites: ✅ {regular} regular · ⏳ {pending} pending · 🚪 {left} left · ⚠️ {fake} held or "
               "rejected · 🎁 {bonus} bonus", regular=0, pending=1, left=0, fake=0, bonus=0) in await invite(e2e, bob)


async def test_the_primary_link_an_admins_link_and_an_admin_adding_someone_are_recorded_without_inviter(
        e2e: E2E, group: Group) -> None:
    emu, alice = e2e.emu, group.leader
    primary, by_admin = emu.primary_link(group.chat), emu.create_invite_link(group.chat, alice, name="Flyers")
    pia, ada, ted = emu.add_user("Pia"), emu.add_user("Ada"), emu.add_user("Ted")
    await joins(e2e, group.chat, pia, primary.link)
    await joins(e2e, group.chat, ada, by_admin.link)
    await e2e.act(lambda: emu.add_member(group.chat, ted, by=alice))
    got = {user.first_name: await referral(e2e, group, user) for user in (pia, ada, ted)}
    assert {name: (r.via, r.inviter_id, r.state, r.depth) for name, r in got.items()} == {
        "Pia": (Via.PRIMARY_LINK, None, ReferralState.PENDING, 0),
        "Ada": (Via.ADMIN_LINK, None, ReferralState.PENDING, 0),
        "Ted": (Via.ADDED_BY_ADMIN, None, ReferralState.PENDING, 0),
    }
    for user in (pia, ada, ted):
        assert (await e2e.member_row(group.chat, user)).invited_by is None


# --- people who reach the bot first ---------------------------------------------------------------------

async def test_a_deep_link_names_the_inviter_of_a_public_groups_join(e2e: E2E, group: Group) -> None:
    """A public group's Join button reports no link: the inviter the deep link named is credited."""
    group.chat.username = "green_valley_market"
    bob = group.members[0]
    text = await invite(e2e, bob)
    url, deep = member_link_in(text), deep_link_in(text)
    hana = e2e.emu.add_user("Hana")
    await e2e.say(hana, f"/start {payload_of(deep)}")
    told = e2e.last(hana)
    assert told.startswith(see("<b>{name} invited you to {title}</b>", name="Bob", title="Green Valley"))
    # She is handed Bob's own link: a join through it would name him exactly.
    assert see("Join the group here:") + "\n" + url in told
    await joins(e2e, group.chat, hana, url)
    assert e2e.emu.updates.get(e2e.last_update_id("chat_member"))["chat_member"].get("invite_link") is None
    found = await referral(e2e, group, hana)
    assert (found.via, found.inviter_id, found.state) == (Via.DEEP_LINK, bob.id, ReferralState.PENDING)
    # Followed again once she is in: nothing is recorded twice, and she is told she is in.
    await e2e.say(hana, f"/start {payload_of(deep)}")
    assert e2e.last(hana) == see("You are already in {title}. Send /invite to get your own link and bring friends.",
                                 title="Green Valley")


async def test_a_deep_link_before_the_member_has_a_link_hands_one_made_for_them(e2e: E2E, group: Group) -> None:
    """An inviter who never sent /invite: their code still works (it is in no message yet, so it is
    made here), and the link the friend is handed is made for the inviter then and there."""
    bob, carol = group.members
    text = await invite(e2e, carol)
    carols_code = payload_of(deep_link_in(text))
    # Bob's code, the way /invite would show it, without making his link.
    async with e2e.db() as s:
        code = await invite_links.own_code(s, community_id=group.community_id, user_id=bob.id, now=now())
    ivy = e2e.emu.add_user("Ivy")
    await e2e.say(ivy, f"/start inv-{code}")
    [bobs] = await links(e2e, group, bob)
    assert see("Join the group here:") + "\n" + bobs.url in e2e.last(ivy)
    # Ivy follows Carol's link too, within the week: Bob, named first, stays her inviter.
    await e2e.say(ivy, f"/start {carols_code}")
    assert e2e.last(ivy).startswith(see("<b>{name} invited you to {title}</b>", name="Bob", title="Green Valley"))
    await joins(e2e, group.chat, ivy, bobs.url)
    assert (await referral(e2e, group, ivy)).inviter_id == bob.id


async def test_a_deep_link_of_oneself_a_member_who_left_or_a_made_up_code_is_answered_plainly(
        e2e: E2E, group: Group) -> None:
    bob, carol = group.members
    deep = deep_link_in(await invite(e2e, bob))
    await e2e.say(bob, f"/start {payload_of(deep)}")
    assert e2e.last(bob) == see("This is your own invite link: share it with friends. Send /invite to see your "
                                "invites.")
    gone = see("This invite link does not work any more: the member who shared it may have left the group. Ask them "
               "for a new one.")
    kim = e2e.emu.add_user("Kim")
    for payload in ("inv-ZZZZZZZZ", "inv-abc"):
        await e2e.say(kim, f"/start {payload}")
        assert e2e.last(kim) == gone, payload
    await e2e.act(lambda: e2e.emu.leave(group.chat, bob))
    await e2e.say(kim, f"/start {payload_of(deep)}")
    assert e2e.last(kim) == gone
    assert await referral(e2e, group, kim) is None


# --- /invite in the group -------------------------------------------------------------------------------

async def test_invite_in_the_group_answers_in_private_or_points_there_once_a_minute(e2e: E2E, group: Group) -> None:
    bob, carol = group.members
    dan = e2e.emu.add_user("Dan")
    await joins(e2e, group.chat, dan)
    await e2e.say(bob, "/start")
    before = len(group_sends(e2e, group.chat))
    await e2e.say(bob, "/invite", group.chat)
    assert e2e.last(bob).startswith(see("<b>🤝 Invite friends to {title}</b>", title="Green Valley"))
    assert member_link_in(e2e.last(bob))
    assert len(group_sends(e2e, group.chat)) == before
    # Carol has not started the bot: one pointer in the group; Dan, within the minute, gets nothing there.
    await e2e.say(carol, "/invite", group.chat)
    hint = e2e.last_msg(group.chat)
    assert hint.visible == en("Your invite link is in our private chat.")
    assert hint.buttons == [[en("🤝 My invite link")]]
    await e2e.say(dan, "/invite", group.chat)
    assert len(group_sends(e2e, group.chat)) == before + 1
    # The pointer opens her screen for that group.
    button = hint.reply_markup["inline_keyboard"][0][0]["url"]
    await e2e.say(carol, f"/start {button.split('?start=', 1)[1]}")
    assert member_link_in(e2e.last(carol))


# --- the right to invite users ---------------------------------------------------------------------------

async def test_without_the_right_to_invite_the_member_is_told_and_the_leaders_hear_once_a_week(
        e2e: E2E, group: Group) -> None:
    alice, (bob, carol) = group.leader, group.members
    await e2e.say(alice, "/start")
    await e2e.act(lambda: e2e.emu.promote_bot(group.chat, by=alice, rights={"can_invite_users": False}))
    text = await invite(e2e, bob)
    assert see("⚠️ I cannot make invite links in this group: its admins have not given me the right “{right}”. I "
               "have told them.", right=en("Invite users via link")) in text
    assert not made_links(e2e)
    # The deep link needs no right: it is offered instead.
    assert deep_link_in(text)
    told = e2e.last(alice)
    assert told.startswith(see("Members of {title} asked for their invite links, and I cannot make them.",
                               title="Green Valley"))
    assert "• " + en("Invite users via link") in told
    count = len(e2e.bot_texts(alice))
    await invite(e2e, carol)
    await invite(e2e, bob)
    assert len(e2e.bot_texts(alice)) == count
    # Granted again: the link is made.
    await e2e.act(lambda: e2e.emu.promote_bot(group.chat, by=alice, rights={}))
    assert member_link_in(await invite(e2e, bob))


# --- /top invites ------------------------------------------------------------------------------------------

async def test_top_invites_posts_one_board_a_minute_and_top_stays_the_checkin_board(e2e: E2E, group: Group) -> None:
    bob, carol = group.members
    await e2e.say(carol, "/start")
    before = len(group_sends(e2e, group.chat))
    await e2e.say(bob, "/top invites", group.chat)
    board = e2e.last(group.chat)
    assert board.startswith(see("<b>🤝 {title} · top inviters</b>", title="Green Valley"))
    assert see("No invite has counted yet. Send /invite in our private chat to get your link.") in board
    await e2e.say(carol, "/top invites", group.chat)
    assert len(group_sends(e2e, group.chat)) == before + 1
    # Carol, within the minute, got the board in private.
    assert e2e.last(carol) == board
    # /top alone is the check-ins' board (and the minute is taken by the invites' board).
    await e2e.say(carol, "/top", group.chat)
    assert len(group_sends(e2e, group.chat)) == before + 1
    assert e2e.last(carol).startswith(see("<b>🏆 {title} · leaderboard</b>", title="Green Valley"))


# --- privacy -------------------------------------------------------------------------------------------------

async def test_mydata_lists_the_members_invites_and_forgetme_revokes_their_links_first(e2e: E2E, group: Group) -> None:
    bob = group.members[0]
    url = await link_of(e2e, bob)
    dee = e2e.emu.add_user("Dee")
    await joins(e2e, group.chat, dee, url)
    await e2e.say(bob, "/mydata")
    exported = json.loads(e2e.last_msg(bob).document.text())
    [mine] = exported["invites"]
    assert mine["community"] == "Green Valley"
    assert [link["url"] for link in mine["invite_links"]] == [url]
    assert mine["people_invited_by_state"] == {"pending": 1}
    assert mine["invite_code"]

    await e2e.say(bob, "/forgetme")
    await e2e.press(bob, en("Yes, erase my data"))
    assert [c.params["invite_link"] for c in calls(e2e, "revokeChatInviteLink")] == [url]
    assert e2e.emu.chats[group.chat.id].invite_links[url].is_revoked
    [row] = await links(e2e, group, bob)
    assert row.revoked_at is not None and row.name == ""
    # Dee's invite stays counted, without naming Bob.
    assert (await referral(e2e, group, dee)).inviter_id is None


# --- group-buy "join my team" links --------------------------------------------------------------------------

async def test_a_join_my_team_link_that_brings_a_newcomer_credits_the_teams_inviter(e2e: E2E, group: Group) -> None:
    group.chat.username = "green_valley_market"
    bob = group.members[0]
    shop = await open_shop(e2e, group)
    async with e2e.db() as s:
        draft = await groupbuys.create(s, community_id=shop.community_id, actor_id=group.leader.id, now=now(),
                                       terms=Terms(kind=GroupBuyKind.TEAM, product_id=shop.product.id, price=400,
                                                   team_size=3, team_minutes=120, ends_at=now() + timedelta(days=1)))
        gb = await groupbuys.publish(s, community_id=shop.community_id, group_buy_id=draft.id,
                                     actor_id=group.leader.id, now=now())
    await e2e.say(bob, f"/start gbo-{gb.id}")
    for step in ("1", "📍 North Gate", en("Continue without a coupon"), en("✅ Confirm")):
        await e2e.press(bob, step)
    [order] = await orders_of(e2e, bob)
    zoe = e2e.emu.add_user("Zoe")
    await e2e.say(zoe, f"/start gbt-{order.team_id}-{bob.id}")
    refusal, way_in = e2e.bot_texts(zoe)[-2:]
    assert refusal == see("This shop is for the members of {title}, and you are not in that group now. Join it to "
                          "order; if you joined just now, try the link again in a few minutes.", title="Green Valley")
    [bobs] = await links(e2e, group, bob)
    assert way_in == see("{name} invited you to their team. Join {title} first:\n{link}\nThen open the team link "
                         "again.", name="Bob", title="Green Valley", link=bobs.url)
    await joins(e2e, group.chat, zoe, bobs.url)
    found = await referral(e2e, group, zoe)
    assert (found.via, found.inviter_id) == (Via.GROUP_BUY_LINK, bob.id)
    # A member following the same link is not noted as anyone's invitee.
    carol = group.members[1]
    await e2e.say(carol, f"/start gbt-{order.team_id}-{bob.id}")
    assert not [t for t in e2e.bot_texts(carol) if "invited you to their team" in t]
