"""The leader's side of group-buys, end to end: /admin → Group-buys, the team and threshold setup
forms with every refusal, Back and Cancel, the preview and Publish (the card appears in the
group), a campaign's screens, live edits that may only get better, ending early, and forged
presses that change nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from buying_helpers import now, open_shop, see
from e2e_harness import E2E, Group, en
from sqlmodel import select

from bot.sandbox import SimUser
from bot.services import groupbuy_join, groupbuys
from bot.services import settings as community_settings
from bot.services.groupbuy_join import JoinMode, JoinRef
from bot.views.keyboards import GroupBuyAdmin, GroupBuyEditTerm, GroupBuyOp, GroupBuyTerm
from models import (
    AuditLog,
    Community,
    GroupBuy,
    GroupBuyKind,
    GroupBuyStatus,
    GroupBuyTeam,
    Order,
    PaymentMethod,
    TeamStatus,
)

FORM = [[en("« Back"), en("✖ Cancel")]]
LIST_BUTTONS = [[en("➕ New team group-buy")], [en("➕ New threshold group-buy")], [en("« Back")]]
NOT_LEADER = "Only this community's leaders can do that."


@pytest.fixture(autouse=True)
def _jobs_run_only_when_called(e2e: E2E) -> None:
    """The announcement and card jobs would run on wall time; these tests look at the leader's side."""
    e2e.app.scheduler._aps.pause()


async def configure(e2e: E2E, group: Group, *, currency: str, tz: str) -> None:
    async with e2e.db() as s:
        await community_settings.set_currency(s, community_id=group.community_id, actor_id=group.leader.id, raw=currency, now=now())
        await community_settings.set_timezone(s, community_id=group.community_id, actor_id=group.leader.id, raw=tz, now=now())


async def open_groupbuys(e2e: E2E, leader: SimUser) -> None:
    await e2e.say(leader, "/admin")
    await e2e.press(leader, en("🤝 Group-buys"))


async def campaigns(e2e: E2E, community_id: int) -> list[GroupBuy]:
    async with e2e.db() as s:
        return list(await s.exec(select(GroupBuy).where(GroupBuy.community_id == community_id).order_by(GroupBuy.id)))


def step(n: int, total: int, text: str) -> str:
    return en("Step {n} of {total}", n=n, total=total) + " · " + text


async def refused(e2e: E2E, user: SimUser, answer: str, reason: str, prompt: str, state: str) -> None:
    """A bad answer: the reason, then the same question again, in the same step."""
    await e2e.say(user, answer)
    assert e2e.last(user) == reason + "\n\n" + prompt
    assert await e2e.fsm_state(user) == state


def local_in(days: int, tz: str, hour: int = 20) -> tuple[str, datetime]:
    """A community-local time `days` ahead at `hour`:00, as typed and in UTC."""
    local = (now().astimezone(ZoneInfo(tz)) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return local.strftime("%Y-%m-%d %H:%M"), local.astimezone(ZoneInfo("UTC"))


async def test_leader_sets_up_and_publishes_a_team_group_buy(e2e: E2E, group: Group) -> None:
    alice, cid, tz = group.leader, group.community_id, "Asia/Shanghai"
    await configure(e2e, group, currency="CNY", tz=tz)
    await open_shop(e2e, group, title="Apples", price=1250, stock=30)
    await open_groupbuys(e2e, alice)
    assert e2e.last(alice).splitlines()[0] == en("Group-buys · {title}", title="Green Valley").replace("<b>", "")
    assert e2e.last_msg(alice).buttons == LIST_BUTTONS

    await e2e.press(alice, en("➕ New team group-buy"))
    product_prompt = see("<b>New team group-buy</b>") + " · " + en("Step {n} of {total}", n=1, total=8) + "\n" + en(
        "Which product? Choose one on sale.")
    assert e2e.last(alice) == product_prompt
    assert e2e.last_msg(alice).buttons == [["#1 Apples"]] + FORM
    await refused(e2e, alice, "Apples", en("Choose the product with the buttons."), product_prompt, "GroupBuyForm:product")
    await e2e.press(alice, "#1 Apples")

    price_prompt = step(2, 8, en("The team price in {currency}: lower than the normal price of #{number}, {normal}.",
                                 currency="CNY", number=1, normal="CN¥12.50"))
    assert e2e.last(alice) == price_prompt
    for bad, reason in (
        ("abc", en("“{value}” is not an amount. Send a number such as 12.5 or 12,50.", value="abc")),
        ("0", en("The group price must be more than zero.")),
        ("12.50", en("The team price must be lower than the normal price, {price}.", price="CN¥12.50")),
        ("15", en("The team price must be lower than the normal price, {price}.", price="CN¥12.50")),
    ):
        await refused(e2e, alice, bad, reason, price_prompt, "GroupBuyForm:price")
    await e2e.say(alice, "9,90")

    size_prompt = step(3, 8, en("How many people make a team? Send a number from 2 to {max}.", max=100))
    assert e2e.last(alice) == size_prompt
    await refused(e2e, alice, "1", en("Send a whole number from {min} to {max}.", min=2, max=100), size_prompt, "GroupBuyForm:team_size")
    await refused(e2e, alice, "three", en("“{value}” is not a whole number.", value="three"), size_prompt, "GroupBuyForm:team_size")
    await e2e.say(alice, "3")

    time_prompt = step(4, 8, en("How long does a team have to fill once it opens? For example 24 (hours), 24h, 1d 12h or 90m; at most {days} days.", days=7))
    assert e2e.last(alice) == time_prompt
    await refused(e2e, alice, "soon", en("“{value}” is not a duration. Send hours (24), or for example 24h, 1d 12h or 90m.", value="soon"),
                  time_prompt, "GroupBuyForm:team_minutes")
    await refused(e2e, alice, "8d", en("At most {days} days.", days=7), time_prompt, "GroupBuyForm:team_minutes")
    await e2e.say(alice, "1d 12h")

    assert e2e.last(alice).startswith(step(5, 8, en("Until when may members open new teams?")))
    assert e2e.last_msg(alice).buttons == [[en("in {count} d", count=d) for d in (1, 3, 7)]] + FORM
    end_prompt = e2e.last(alice)
    await refused(e2e, alice, "next week", en("“{value}” is not a time. Send HH:MM (for example 18:30) or YYYY-MM-DD HH:MM.", value="next week"),
                  end_prompt, "GroupBuyForm:ends_at")
    await refused(e2e, alice, "2020-01-01 10:00", en("That time has already passed. Send a time in the future."), end_prompt,
                  "GroupBuyForm:ends_at")
    typed, ends_at = local_in(2, tz)
    await e2e.say(alice, typed)

    open_prompt = step(6, 8, en("How many teams may one member open? Choose, or send a number from 0 to {max}.", max=20))
    assert e2e.last(alice) == open_prompt
    assert e2e.last_msg(alice).buttons == [["1", "2", "3"]] + FORM
    await e2e.press(alice, "2")
    join_prompt = step(7, 8, en("How many teams opened by others may one member join? Choose, or send a number from 0 to {max}.", max=20))
    await refused(e2e, alice, "25", en("Send a whole number from {min} to {max}.", min=0, max=20), join_prompt, "GroupBuyForm:join_limit")
    await e2e.say(alice, "3")
    solo_prompt = step(8, 8, en("May members still buy alone at the normal price while the group-buy runs?"))
    assert e2e.last(alice) == solo_prompt
    assert e2e.last_msg(alice).buttons == [[en("Yes"), en("No")]] + FORM
    await refused(e2e, alice, "no", en("Please choose with the buttons."), solo_prompt, "GroupBuyForm:solo")
    assert await campaigns(e2e, cid) == []  # nothing is written before Publish
    await e2e.press(alice, en("No"))

    preview = "\n".join([
        see("<b>Preview</b> — the terms as members will see them:"), "",
        see("<b>{kind} · #{number} {title}</b>", kind=en("Team group-buy"), number=1, title="Apples"),
        en("Team price: {price} (normal price {normal})", price="CN¥9.90", normal="CN¥12.50"),
        en("A team is {size} people and must fill within {time} of opening.", size=3, time="1 d 12 h"),
        en("New teams can be opened until {when} ({tz}).", when=typed, tz=tz),
        en("Each member may open {open} and join {join} teams opened by others.", open=2, join=3),
        en("Buying alone at the normal price: {answer}", answer=en("not while the group-buy runs")), "",
        en("Publish it? Its card is posted in the group at once."),
    ])
    assert e2e.last(alice) == preview
    assert e2e.last_msg(alice).buttons == [[en("📣 Publish")]] + FORM
    await refused(e2e, alice, "ok", en("Press Publish to put it live, or Back to change it."), preview, "GroupBuyForm:preview")
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice) == solo_prompt
    await e2e.press(alice, en("No"))
    assert e2e.last(alice) == preview

    before = len(e2e.emu.bot_messages(group.chat))
    preview_msg = e2e.last_msg(alice)
    e2e.clock.advance()
    taps = [e2e.emu.press(alice, preview_msg, en("📣 Publish")) for _ in range(2)]
    await e2e.settle()
    assert sorted(e2e.answer(t).text or "" for t in taps) in (
        sorted([en("Published."), en("This group-buy is already published.")]),
        sorted([en("Published."), en("This form is no longer open.")]))
    [campaign] = await campaigns(e2e, cid)
    assert (campaign.kind, campaign.status, campaign.price, campaign.team_size, campaign.team_minutes) == (
        GroupBuyKind.TEAM, GroupBuyStatus.LIVE, 990, 3, 2160)
    assert (campaign.ends_at, campaign.open_limit, campaign.join_limit, campaign.solo_allowed) == (ends_at, 2, 3, False)
    assert campaign.created_by == alice.id and campaign.message_id is not None
    cards = e2e.emu.bot_messages(group.chat)[before:]
    assert len(cards) == 1 and "Apples" in cards[0].visible and cards[0].message_id == campaign.message_id
    shown = e2e.last(alice)
    assert shown.startswith(en("✅ Published. Its card is in the group.") + "\n\n" + preview.split("\n\n", 1)[1].rsplit("\n\n", 1)[0])
    assert en("State: {status}", status=en("live")) in shown
    assert en("Teams: {open} open · {done} filled · {failed} failed", open=0, done=0, failed=0) in shown
    assert await e2e.fsm_state(alice) is None
    assert [a.action for a in await e2e.audit(cid) if a.action.startswith("groupbuy.")] == ["groupbuy.create", "groupbuy.publish"]


async def test_leader_sets_up_a_threshold_group_buy_with_tiers(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await open_shop(e2e, group, title="Rice", price=1200, stock=200)
    await open_groupbuys(e2e, alice)
    await e2e.press(alice, en("➕ New threshold group-buy"))
    await e2e.press(alice, "#1 Rice")
    assert e2e.last(alice) == step(2, 6, en("The price members pay on joining, in {currency} (the normal price of #{number} is {normal}).",
                                            currency="USD", number=1, normal="$12.00"))
    await e2e.say(alice, "10")
    min_prompt = step(3, 6, en("The minimum total units the community must order for the group-buy to succeed. Send a number."))
    await refused(e2e, alice, "lots", en("“{value}” is not a whole number.", value="lots"), min_prompt, "GroupBuyForm:min_units")
    await e2e.say(alice, "10")
    assert e2e.last(alice).startswith(step(4, 6, en("The cut-off: when is the total counted?")))
    await e2e.press(alice, en("in {count} d", count=1))

    tiers_prompt = step(5, 6, en("Optional lower prices by total units: send a tier as the units and the price, for example “30 8.80” "
                                 "(several, one per line). Everyone pays the tier reached at the cut-off."))
    assert e2e.last(alice) == tiers_prompt
    assert e2e.last_msg(alice).buttons == [[en("No tiers")]] + FORM
    await refused(e2e, alice, "cheaper", en("“{value}” is not a tier. Send the units and the price, for example “30 8.80”.", value="cheaper"),
                  tiers_prompt, "GroupBuyForm:tiers")
    await refused(e2e, alice, "5 8", en("A tier at {units} units does not fit: the first tier starts at the minimum total or above, and each next tier needs more units than {after}.",
                                        units=5, after=10), tiers_prompt, "GroupBuyForm:tiers")
    await e2e.say(alice, "10 9.50")
    with_one = tiers_prompt + "\n" + en("Tiers so far: {tiers}", tiers="≥ 10 → $9.50")
    assert e2e.last(alice) == en("Tier added.") + "\n\n" + with_one
    assert e2e.last_msg(alice).buttons == [[en("✅ Done")], [en("Clear the tiers")]] + FORM
    await refused(e2e, alice, "30 9.60", en("A tier's price must be above zero and lower than the price before it, {before}.", before="$9.50"),
                  with_one, "GroupBuyForm:tiers")
    await e2e.say(alice, "30 8,80\n50 8")
    await e2e.press(alice, en("Clear the tiers"))
    assert e2e.last(alice) == tiers_prompt
    await e2e.say(alice, "10 9.50\n30 8.80")
    await e2e.press(alice, en("✅ Done"))

    limit_prompt = step(6, 6, en("The most units one member may order: send a number, or press No limit."))
    assert e2e.last_msg(alice).buttons == [[en("No limit")]] + FORM
    await refused(e2e, alice, "0", en("Send a whole number from {min} to {max}.", min=1, max=1_000_000), limit_prompt, "GroupBuyForm:member_limit")
    await e2e.say(alice, "5")
    lines = e2e.last(alice).splitlines()
    assert lines[2:8] == [
        see("<b>{kind} · #{number} {title}</b>", kind=en("Threshold group-buy"), number=1, title="Rice"),
        en("Price on joining: {price} (normal price {normal})", price="$10.00", normal="$12.00"),
        lines[4],
        en("Price tiers: {tiers}", tiers="≥ 10 → $9.50; ≥ 30 → $8.80"),
        en("Everyone pays the price of the tier reached at the cut-off; if the goal is not reached, every order is cancelled and refunded."),
        en("Per member: at most {count} units", count=5),
    ]
    assert lines[4].startswith(en("Goal: {units} units in all by {when} ({tz}).", units=10, when="", tz="UTC")[:18])
    await e2e.press(alice, en("📣 Publish"))
    [campaign] = await campaigns(e2e, cid)
    assert (campaign.kind, campaign.status, campaign.price, campaign.min_units, campaign.tiers, campaign.member_limit) == (
        GroupBuyKind.THRESHOLD, GroupBuyStatus.LIVE, 1000, 10, "[[10, 950], [30, 880]]", 5)
    assert abs((campaign.ends_at - now()) - timedelta(days=1)) < timedelta(minutes=2)
    assert campaign.message_id is not None and "Rice" in e2e.last(group.chat)
    assert en("Units: {units} of {goal} · goal not reached yet", units=0, goal=10) in e2e.last(alice)


async def test_back_cancel_and_stale_buttons(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await open_shop(e2e, group, title="Apples", price=1000)
    await open_groupbuys(e2e, alice)
    await e2e.press(alice, en("➕ New team group-buy"))
    await e2e.press(alice, "#1 Apples")
    await e2e.say(alice, "8")
    await e2e.press(alice, en("« Back"))
    assert await e2e.fsm_state(alice) == "GroupBuyForm:price"
    await e2e.press(alice, en("« Back"))
    assert await e2e.fsm_state(alice) == "GroupBuyForm:product"
    # Buttons left under an earlier step's prompt are refused once the form has moved on.
    await e2e.press(alice, "#1 Apples")
    price_msg = e2e.last_msg(alice)
    await e2e.say(alice, "8")
    answer = e2e.answer(await e2e.press(alice, en("« Back"), message=price_msg))
    assert answer.text == en("That step is already behind you. Use the buttons under the latest message.")
    assert await e2e.fsm_state(alice) == "GroupBuyForm:team_size"
    await e2e.press(alice, en("✖ Cancel"))
    assert e2e.last(alice).startswith(en("Cancelled. Nothing was changed.") + "\n\n")
    assert e2e.last_msg(alice).buttons[-3:] == LIST_BUTTONS
    assert await e2e.fsm_state(alice) is None
    answer = e2e.answer(await e2e.press(alice, en("« Back"), message=price_msg))
    assert answer.text == en("This form is no longer open.")
    await e2e.press(alice, en("➕ New threshold group-buy"))
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice).startswith(en("Nothing was changed."))
    assert await campaigns(e2e, cid) == []


async def test_no_product_on_sale_points_to_products(e2e: E2E, group: Group) -> None:
    alice = group.leader
    await open_groupbuys(e2e, alice)
    await e2e.press(alice, en("➕ New team group-buy"))
    assert e2e.last(alice) == see("<b>New team group-buy</b>") + "\n" + en(
        "There is no product on sale yet. Add one in 📦 Products first, then come back.")
    assert e2e.last_msg(alice).buttons == [[en("📦 Products")], [en("« Group-buys")]]
    assert await e2e.fsm_state(alice) is None
    await e2e.press(alice, en("📦 Products"))
    assert e2e.last_msg(alice).buttons[0] == [en("➕ New product")]


async def live_team(e2e: E2E, group: Group, *, size: int = 3, joiners: int = 2) -> tuple[GroupBuy, list[Order]]:
    """A live team campaign on the shop's product, and `joiners` members who each opened a team."""
    shop = await open_shop(e2e, group, title="Apples", price=1000, stock=20)
    async with e2e.db() as s:
        draft = await groupbuys.create(s, community_id=group.community_id, actor_id=group.leader.id, now=now(),
                                       terms=groupbuys.Terms(kind=GroupBuyKind.TEAM, product_id=shop.product.id, price=800,
                                                             ends_at=now() + timedelta(days=2), team_size=size, team_minutes=600))
        campaign = await groupbuys.publish(s, community_id=group.community_id, group_buy_id=draft.id,
                                           actor_id=group.leader.id, now=now())
        community = await s.get(Community, group.community_id)
        placed = []
        for i, member in enumerate(group.members[:joiners]):
            joined = await groupbuy_join.join(
                s, community=community, ref=JoinRef(campaign.id, JoinMode.OPEN), user_id=member.id, quantity=1,
                unit_price=800, payment_method=PaymentMethod.PICKUP, checkout_key=f"e2e-{campaign.id}-{i}", now=now(),
                pickup_point_id=shop.pickup_ids[0])
            placed.append(joined.order)
    return campaign, placed


async def test_leader_sees_teams_and_ends_the_campaign(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    campaign, placed = await live_team(e2e, group)
    await open_groupbuys(e2e, alice)
    assert e2e.last_msg(alice).buttons[0] == [f"#1 Apples · {en('Team group-buy')}"]
    assert en("{open} open teams, {done} filled", open=2, done=0) in e2e.last(alice)
    await e2e.press(alice, f"#1 Apples · {en('Team group-buy')}")
    shown = e2e.last(alice)
    assert en("Teams: {open} open · {done} filled · {failed} failed", open=2, done=0, failed=0) in shown
    assert en("Participants: {people} · units: {units}", people=2, units=2) in shown
    assert en("Money: {confirmed} confirmed · {waiting} waiting for the group", confirmed="$0.00", waiting="$16.00") in shown
    assert e2e.last_msg(alice).buttons == [[en("👥 Teams ({count})", count=2)], [en("✏️ Edit terms")], [en("⏹ End now")],
                                           [en("« Group-buys")]]
    await e2e.press(alice, en("👥 Teams ({count})", count=2))
    lines = e2e.last(alice).splitlines()
    assert lines[1].startswith(" · ".join([en("Team {number}", number=2), "Carol", "1/3"]))
    assert lines[2].startswith(" · ".join([en("Team {number}", number=1), "Bob", "1/3"]))
    await e2e.press(alice, en("Team {number}", number=1))
    assert e2e.last(alice).splitlines()[-1] == " · ".join(["Bob", "× 1", en("waiting for the group-buy")])
    await e2e.press(alice, en("« Teams"))
    await e2e.press(alice, en("« Back"))

    await e2e.press(alice, en("⏹ End now"))
    assert e2e.last(alice) == see(
        "End the team group-buy {title} now? No new teams can be opened; the {count} open teams fail at once, their orders are cancelled and paid ones refunded. Teams that already filled stay as they are. This cannot be undone.",
        title="#1 Apples", count=2)
    assert await _status(e2e, campaign.id) == GroupBuyStatus.LIVE  # asking changes nothing
    end_data = e2e.last_msg(alice).reply_markup["inline_keyboard"][0][0]["callback_data"]
    await e2e.press(alice, en("Yes, end it now"))
    assert e2e.last(alice).startswith(en("⏹ Ended: {count} open teams cancelled; participants are being told.", count=2))
    async with e2e.db() as s:
        row = await s.get(GroupBuy, campaign.id)
        assert (row.status, row.close_reason, row.closed_at is not None, row.announce_due) == (
            GroupBuyStatus.ENDED, "ended_by_leader", True, True)
        teams = list(await s.exec(select(GroupBuyTeam).where(GroupBuyTeam.group_buy_id == campaign.id)))
        assert {(t.status, t.close_reason) for t in teams} == {(TeamStatus.FAILED, "ended_by_leader")}
        orders = list(await s.exec(select(Order).where(Order.group_buy_id == campaign.id)))
        assert {(o.status, o.cancel_reason) for o in orders} == {("cancelled", "groupbuy_failed")}
    assert [a.actor_id for a in await e2e.audit(cid, "groupbuy.ended")] == [alice.id]
    # The confirmation pressed again (a double tap, a redelivery) ends nothing twice.
    answer = e2e.answer(await e2e.press_data(alice, end_data))
    assert answer.text == en("This group-buy is already closed.")
    assert len(await e2e.audit(cid, "groupbuy.ended")) == 1
    assert [b for row in e2e.last_msg(alice).buttons for b in row] == [en("👥 Teams ({count})", count=2), en("« Group-buys")]


async def _status(e2e: E2E, group_buy_id: int) -> str:
    async with e2e.db() as s:
        return (await s.get(GroupBuy, group_buy_id)).status


async def test_live_edit_better_saved_worse_refused_with_the_term(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    campaign, _ = await live_team(e2e, group, joiners=1)
    await open_groupbuys(e2e, alice)
    await e2e.press(alice, f"#1 Apples · {en('Team group-buy')}")
    await e2e.press(alice, en("✏️ Edit terms"))
    assert e2e.last_msg(alice).buttons == [[en("✏️ Price"), en("✏️ Team size")], [en("✏️ Time limit"), en("✏️ Window end")],
                                           [en("✏️ Teams to open"), en("✏️ Teams to join")], [en("✏️ Buying alone")], [en("« Back")]]
    await e2e.press(alice, en("✏️ Price"))
    prompt = en("The team price in {currency}: lower than the normal price of #{number}, {normal}.", currency="USD", number=1,
                normal="$10.00") + "\n" + en("Now: {value}", value="$8.00")
    assert e2e.last(alice) == prompt
    worse = en("That would make {term} worse for members already in. A live group-buy can only get better: a lower price, more time, smaller teams, a later end, better tiers.",
               term=en("the price"))
    await refused(e2e, alice, "8.50", worse, prompt, "GroupBuyEditForm:value")
    await e2e.say(alice, "7.50")
    assert e2e.last(alice).startswith(en("✅ Saved. The card in the group shows the new terms.") + "\n\n")
    await e2e.press(alice, en("✏️ Edit terms"))
    await e2e.press(alice, en("✏️ Time limit"))
    await e2e.say(alice, "2h")
    assert e2e.last(alice).startswith(en("That would make {term} worse for members already in. A live group-buy can only get better: a lower price, more time, smaller teams, a later end, better tiers.",
                                         term=en("the team time limit")))
    await e2e.say(alice, "1d")
    await e2e.press(alice, en("✏️ Edit terms"))
    await e2e.press(alice, en("✏️ Buying alone"))
    await e2e.press(alice, en("No"))
    assert e2e.last(alice).startswith(en("That would make {term} worse for members already in. A live group-buy can only get better: a lower price, more time, smaller teams, a later end, better tiers.",
                                         term=en("buying alone at the normal price")))
    await e2e.press(alice, en("✖ Cancel"))
    assert e2e.last(alice).startswith(en("Cancelled. Nothing was changed."))
    async with e2e.db() as s:
        row = await s.get(GroupBuy, campaign.id)
        assert (row.price, row.team_minutes, row.solo_allowed) == (750, 1440, True)
    assert len(await e2e.audit(cid, "groupbuy.edit")) == 2


async def test_forged_presses_from_others_change_nothing(e2e: E2E, group: Group) -> None:
    alice, bob, cid = group.leader, group.members[0], group.community_id
    campaign, _ = await live_team(e2e, group, joiners=1)
    dan = e2e.emu.add_user("Dan", username="dan_leads")
    other = await e2e.make_group("Other Hill", leader=dan, members=0)
    await e2e.say(bob, "/start")
    await e2e.say(dan, "/admin")
    forged = [
        GroupBuyAdmin(community_id=cid, op=GroupBuyOp.END_CONFIRM, group_buy_id=campaign.id).pack(),
        GroupBuyAdmin(community_id=cid, op=GroupBuyOp.TEAM, group_buy_id=campaign.id, team_id=1).pack(),
        GroupBuyAdmin(community_id=cid, op=GroupBuyOp.NEW_TEAM).pack(),
        GroupBuyEditTerm(community_id=cid, group_buy_id=campaign.id, term=GroupBuyTerm.PRICE).pack(),
    ]
    for data in forged:
        for who in (bob, dan):
            answer = e2e.answer(await e2e.press_data(who, data))
            assert (answer.text, answer.show_alert) == (en(NOT_LEADER), True), data
    assert await e2e.fsm_state(bob) is None and await e2e.fsm_state(dan) is None
    # Dan leads his own group: its id with Alice's campaign finds nothing.
    for data in (GroupBuyAdmin(community_id=other.community_id, op=GroupBuyOp.END_CONFIRM, group_buy_id=campaign.id).pack(),
                 GroupBuyAdmin(community_id=other.community_id, op=GroupBuyOp.OPEN, group_buy_id=campaign.id).pack()):
        answer = e2e.answer(await e2e.press_data(dan, data))
        assert answer.text == en("That group-buy does not exist in this community.")
    answer = e2e.answer(await e2e.press_data(dan, GroupBuyEditTerm(community_id=other.community_id, group_buy_id=campaign.id,
                                                                   term=GroupBuyTerm.PRICE).pack()))
    assert answer.text == en("That group-buy does not exist in this community.")
    assert await e2e.fsm_state(dan) is None
    async with e2e.db() as s:
        row = await s.get(GroupBuy, campaign.id)
        assert (row.status, row.price, row.closed_at) == (GroupBuyStatus.LIVE, 800, None)
        assert not list(await s.exec(select(AuditLog).where(AuditLog.actor_id.in_([bob.id, dan.id]),
                                                            AuditLog.action.like("groupbuy.%"))))
    assert alice.id not in (bob.id, dan.id)


async def test_threshold_participants_and_end_now(e2e: E2E, group: Group) -> None:
    alice, (bob, carol) = group.leader, group.members
    shop = await open_shop(e2e, group, title="Rice", price=1200, stock=50)
    async with e2e.db() as s:
        draft = await groupbuys.create(s, community_id=group.community_id, actor_id=alice.id, now=now(),
                                       terms=groupbuys.Terms(kind=GroupBuyKind.THRESHOLD, product_id=shop.product.id, price=1000,
                                                             ends_at=now() + timedelta(hours=5), min_units=10, tiers=((10, 950),)))
        campaign = await groupbuys.publish(s, community_id=group.community_id, group_buy_id=draft.id, actor_id=alice.id, now=now())
        community = await s.get(Community, group.community_id)
        for i, (member, qty, inviter) in enumerate(((bob, 3, None), (carol, 2, bob.id))):
            await groupbuy_join.join(s, community=community, ref=JoinRef(campaign.id, JoinMode.THRESHOLD, None, inviter),
                                     user_id=member.id, quantity=qty, unit_price=1000, payment_method=PaymentMethod.PICKUP,
                                     checkout_key=f"e2e-t-{i}", now=now(), pickup_point_id=shop.pickup_ids[0])
    await open_groupbuys(e2e, alice)
    assert en("{units} of {goal} units", units=5, goal=10) in e2e.last(alice)
    await e2e.press(alice, f"#1 Rice · {en('Threshold group-buy')}")
    assert en("Units: {units} of {goal} · goal not reached yet", units=5, goal=10) in e2e.last(alice)
    assert e2e.last_msg(alice).buttons == [[en("👥 Participants ({count})", count=2)], [en("✏️ Edit terms")], [en("⏹ End now")],
                                           [en("« Group-buys")]]
    await e2e.press(alice, en("👥 Participants ({count})", count=2))
    assert e2e.last(alice).splitlines()[-2:] == [
        " · ".join(["Bob", "× 3", en("waiting for the group-buy")]),
        " · ".join(["Carol", "× 2", en("waiting for the group-buy"), en("invited by {name}", name="Bob")]),
    ]
    await e2e.press(alice, en("« Back"))
    await e2e.press(alice, en("⏹ End now"))
    assert e2e.last(alice) == see(
        "End the threshold group-buy {title} now? It fails: the orders of all {count} participants are cancelled and paid ones refunded. This cannot be undone.",
        title="#1 Rice", count=2)
    await e2e.press(alice, en("Yes, end it now"))
    shown = e2e.last(alice)
    assert shown.startswith(en("⏹ Ended: the group-buy failed and {count} participants' orders were cancelled; participants are being told.", count=2))
    assert en("State: {status}", status=en("failed: ended by a leader")) in shown
    assert en("✏️ Edit terms") not in [b for row in e2e.last_msg(alice).buttons for b in row]
    async with e2e.db() as s:
        row = await s.get(GroupBuy, campaign.id)
        assert (row.status, row.close_reason, row.announce_due) == (GroupBuyStatus.FAILED, "ended_by_leader", True)
        orders = list(await s.exec(select(Order).where(Order.group_buy_id == campaign.id)))
        assert {o.status for o in orders} == {"cancelled"}
    # The forged edit of a closed campaign is refused.
    answer = e2e.answer(await e2e.press_data(alice, GroupBuyEditTerm(community_id=group.community_id, group_buy_id=campaign.id,
                                                                     term=GroupBuyTerm.PRICE).pack()))
    assert answer.text == en("This group-buy is already closed.")
    assert await e2e.fsm_state(alice) is None


async def test_draft_is_edited_freely_then_deleted(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    shop = await open_shop(e2e, group, title="Apples", price=1000)
    async with e2e.db() as s:
        await groupbuys.create(s, community_id=cid, actor_id=alice.id, now=now(),
                               terms=groupbuys.Terms(kind=GroupBuyKind.TEAM, product_id=shop.product.id, price=800,
                                                     ends_at=now() + timedelta(days=2), team_size=3, team_minutes=60))
    await open_groupbuys(e2e, alice)
    assert en("draft, not published") in e2e.last(alice)
    await e2e.press(alice, f"#1 Apples · {en('Team group-buy')}")
    assert e2e.last_msg(alice).buttons == [[en("📣 Publish")], [en("✏️ Edit terms")], [en("🗑 Delete draft")], [en("« Group-buys")]]
    await e2e.press(alice, en("✏️ Edit terms"))
    await e2e.press(alice, en("✏️ Team size"))
    await e2e.say(alice, "5")  # a bigger team: worse, but nobody is in a draft
    assert e2e.last(alice).startswith(en("✅ Saved.") + "\n\n")
    assert en("A team is {size} people and must fill within {time} of opening.", size=5, time="1 h") in e2e.last(alice)
    await e2e.press(alice, en("🗑 Delete draft"))
    assert e2e.last(alice) == en("Delete this draft? Members never saw it.")
    await e2e.press(alice, en("Yes, delete it"))
    assert e2e.last(alice).startswith(en("🗑 The draft is deleted.") + "\n\n")
    assert await campaigns(e2e, cid) == []
    assert [a.action for a in await e2e.audit(cid) if a.action.startswith("groupbuy.")] == [
        "groupbuy.create", "groupbuy.edit", "groupbuy.delete"]
