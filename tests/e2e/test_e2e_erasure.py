"""/forgetme followed by the member's return, end to end: whatever they write afterwards (in the
group, in private, /start) makes them a new profile, but nothing from before the erasure shows a
name again, on any leader screen, in the CSV, or on the group-buy card in the group."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

import pytest
from buying_helpers import now, open_shop, see, start_bot
from e2e_harness import E2E, en

from bot.services import coupons, groupbuy_join, groupbuys, orders
from bot.services.coupons import CouponSpec
from bot.services.groupbuy_join import JoinMode, JoinRef
from bot.views import groupbuy_cards
from models import Community, CouponKind, GroupBuyKind, Order, PaymentMethod

ERASED = "Erased member"


@pytest.fixture(autouse=True)
def _jobs_run_only_when_called(e2e: E2E) -> None:
    """The card jobs would run on wall time; this test runs them when it needs the card redrawn."""
    e2e.app.scheduler._aps.pause()


async def _order(e2e: E2E, shop, user_id: int, key: str) -> Order:
    async with e2e.db() as s:
        community = await s.get(Community, shop.community_id)
        return (await orders.place(s, community=community, user_id=user_id, product_id=shop.product.id, quantity=1,
                                   unit_price=shop.product.price, payment_method=PaymentMethod.PICKUP, checkout_key=key,
                                   now=now(), pickup_point_id=shop.pickup_ids[0])).order


async def _join(e2e: E2E, shop, ref: JoinRef, user_id: int, key: str) -> groupbuy_join.Joined:
    async with e2e.db() as s:
        community = await s.get(Community, shop.community_id)
        return await groupbuy_join.join(s, community=community, ref=ref, user_id=user_id, quantity=1, unit_price=400,
                                        payment_method=PaymentMethod.PICKUP, checkout_key=key, now=now(),
                                        pickup_point_id=shop.pickup_ids[0])


def _names_by_order(text: str) -> dict[int, str]:
    """`#12 · Name · Apples × 1 · …` list lines, by order id."""
    return {int(line.split(" · ")[0][1:]): line.split(" · ")[1] for line in text.splitlines() if line.startswith("#")}


async def test_what_was_erased_stays_erased_when_the_member_comes_back(e2e: E2E) -> None:
    group = await e2e.make_group(members=3)
    alice, bob, carol, dan = group.leader, *group.members
    old_names = ("Bob", bob.username)
    await start_bot(e2e, bob)
    shop = await open_shop(e2e, group, price=500, stock=50)
    async with e2e.db() as s:
        draft = await groupbuys.create(s, community_id=group.community_id, actor_id=alice.id, now=now(), terms=groupbuys.Terms(
            kind=GroupBuyKind.TEAM, product_id=shop.product.id, price=400, ends_at=now() + timedelta(days=2),
            team_size=4, team_minutes=600))
        campaign = await groupbuys.publish(s, community_id=group.community_id, group_buy_id=draft.id, actor_id=alice.id,
                                           now=now())
        await coupons.issue(s, community_id=group.community_id, actor_id=alice.id, now=now(),
                            spec=CouponSpec(kind=CouponKind.FIXED, value=100, owner_id=bob.id, code="BOBS"))
    before = await _order(e2e, shop, bob.id, "before")
    opened = await _join(e2e, shop, JoinRef(campaign.id, JoinMode.OPEN), bob.id, "team-bob")
    invited = await _join(e2e, shop, JoinRef(campaign.id, JoinMode.TEAM, opened.team.id, bob.id), carol.id, "team-carol")
    async with e2e.db() as s:
        assert await groupbuy_cards.post_card(e2e.app.bot, s, campaign.id)
    card = e2e.last_msg(group.chat)
    assert "· Bob ·" in card.visible

    await e2e.say(bob, "/forgetme")
    await e2e.press(bob, en("Yes, erase my data"))
    erased_at = (await e2e.user_row(bob)).erased_at
    assert erased_at is not None

    # Bob comes back under a new name: in the group, in private, and with /start.
    bob.first_name, bob.username = "Robert", "robert_new"
    await e2e.say(bob, "hello again", group.chat)
    await e2e.say(bob, "/start")
    await e2e.say(bob, "thanks")
    await e2e.eventually(lambda: e2e.member_row(group.chat, bob), what="Bob's new membership")
    user = await e2e.user_row(bob)
    assert (user.first_name, user.username, user.erased, user.erased_at) == ("Robert", "robert_new", False, erased_at)
    after = await _order(e2e, shop, bob.id, "after")
    # Dan takes a seat in the team Bob opened before the erasure: the card in the group is drawn again.
    seated = await _join(e2e, shop, JoinRef(campaign.id, JoinMode.TEAM, opened.team.id), dan.id, "team-dan")
    await e2e.app.run_job("refresh_groupbuy_cards", now())
    card = e2e.last_msg(group.chat)
    assert "open seats: 1 of 4" in card.visible
    from_before = [card.visible]  # screens that show only what was there before the erasure

    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("🧾 Orders"))
    listing = e2e.last_msg(alice)
    assert _names_by_order(listing.visible) == {after.id: "Robert", seated.order.id: "Dan", invited.order.id: "Carol",
                                                opened.order.id: en(ERASED), before.id: en(ERASED)}
    await e2e.press(alice, f"#{before.id}", message=listing)
    from_before.append(e2e.last(alice))
    assert en("Buyer: {name}", name=en(ERASED)) in e2e.last(alice).splitlines()
    await e2e.press(alice, en("« Back to the list"))
    await e2e.press(alice, f"#{after.id}")
    assert en("Buyer: {name}", name="Robert @robert_new") in e2e.last(alice).splitlines()
    await e2e.press(alice, en("« Back to the list"))
    listing = e2e.last_msg(alice)

    await e2e.press(alice, en("📋 Pick list"), message=listing)
    await e2e.press(alice, "North Gate")
    blocks = {block.splitlines()[0]: block for block in e2e.last(alice).split("\n\n")[1:]}
    assert sorted(blocks) == sorted([en(ERASED), "Robert @robert_new"])
    assert f"#{before.id} ·" in blocks[en(ERASED)] and f"#{after.id} ·" not in blocks[en(ERASED)]
    assert f"#{after.id} ·" in blocks["Robert @robert_new"] and f"#{before.id} ·" not in blocks["Robert @robert_new"]

    await e2e.press(alice, en("State ▾"), message=listing)
    await e2e.press(alice, en("All states"), message=listing)
    await e2e.press(alice, en("⬇️ CSV"), message=listing)
    rows = list(csv.reader(io.StringIO(e2e.last_msg(alice).document.data.decode("utf-8-sig"))))
    assert {int(r[0]): r[2:4] for r in rows[1:]} == {
        before.id: [en(ERASED), ""], opened.order.id: [en(ERASED), ""], invited.order.id: ["Carol", f"@{carol.username}"],
        after.id: ["Robert", "@robert_new"], seated.order.id: ["Dan", f"@{dan.username}"]}

    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("🤝 Group-buys"))
    await e2e.press(alice, f"#1 Apples · {en('Team group-buy')}")
    await e2e.press(alice, en("👥 Teams ({count})", count=1))
    from_before.append(e2e.last(alice))
    assert e2e.last(alice).splitlines()[1].startswith(" · ".join([en("Team {number}", number=1), en(ERASED), "3/4"]))
    await e2e.press(alice, en("Team {number}", number=1))
    team = e2e.last(alice)
    from_before.append(team)
    assert see("Opened by {name} · seats {seats}/{size} · price {price}", name=en(ERASED), seats=3, size=4,
               price="$4.00") in team.splitlines()
    waiting = en("waiting for the group-buy")
    assert team.splitlines()[-3:] == [" · ".join([en(ERASED), "× 1", waiting]),
                                      " · ".join(["Carol", "× 1", waiting, en("invited by {name}", name=en(ERASED))]),
                                      " · ".join(["Dan", "× 1", waiting])]

    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("🎟 Coupons"))
    from_before.append(e2e.last(alice))
    assert en("for an erased member") in next(line for line in e2e.last(alice).splitlines() if "BOBS" in line)

    leader_texts = [m.visible for m in e2e.emu.bot_messages(alice)] + [",".join(r) for r in rows] + [card.visible]
    for name in old_names:
        assert not [text for text in leader_texts if name in text], name
    for name in ("Robert", "robert_new"):
        assert not [text for text in from_before if name in text], name

    # /mydata: the new profile and the membership since the return, nothing from before.
    await e2e.say(bob, "/mydata")
    exported = json.loads(e2e.last_msg(bob).document.text())
    assert (exported["user"]["first_name"], exported["user"]["username"]) == ("Robert", "robert_new")
    assert exported["user"]["first_seen"] == erased_at.isoformat()
    assert [datetime.fromisoformat(m["joined_at"]) > erased_at - timedelta(seconds=1) for m in exported["memberships"]] == [True]
    assert [m["invited_by"] for m in exported["memberships"]] == [None]
    assert not [name for name in old_names if name in json.dumps(exported, ensure_ascii=False)]
