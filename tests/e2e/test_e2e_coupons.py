"""/admin → Coupons (the create form with every refusal, Back and Cancel), the coupon then at
checkout, /coupons for members, and Settings → Shop options, against the real bot and emulator."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html import unescape

import pytest
from e2e_harness import E2E, Group, en
from sqlmodel import select

from bot.services import coupons, orders, products, settings
from bot.services.coupons import CouponSpec
from bot.services.errors import DomainError
from bot.services.money import format_money
from bot.services.products import ProductDraft
from bot.views.keyboards import CouponAdmin, CouponOp
from models import Community
from models.shop import Coupon, CouponKind, PaymentMethod

_TAG = re.compile(r"<[^>]+>")
FORM_NAV = [en("« Back"), en("✖ Cancel")]
CANCELLED = "Cancelled. Nothing was changed. Send /admin to open the menu again."
KIND = "New coupon: a fixed amount off, or a percentage?"
PERCENT = "How many percent off? Send a whole number from 1 to 100."
FIXED = "How much off? Send an amount in {currency}, for example 5 or 12.50."
CAP = "The most it takes off, in {currency}? Send an amount, or Skip for no cap."
MIN_SPEND = "Minimum spend for the coupon to work, in {currency}? Send an amount, or Skip for none."
EXPIRY = ("When does it expire? Send a number of days (for example 7) or a date as YYYY-MM-DD; it works until the end "
          "of that day, {tz} time. Skip: it never expires.")
SINGLE = "Single use (one redemption in all), or once per member?"
OWNER = "Who may use it? Send a member's @username or numeric Telegram id, or choose Anyone."
CODE = "The code members type at checkout: send one (letters, digits, - or _), or let me generate one."


def see(msgid: str, **kwargs: object) -> str:
    return unescape(_TAG.sub("", en(msgid, **kwargs)))


def now() -> datetime:
    return datetime.now(timezone.utc)


def usd(amount: int) -> str:
    return format_money(amount, "USD", "en")


async def coupon_rows(e2e: E2E, community_id: int) -> list[Coupon]:
    async with e2e.db() as s:
        return list(await s.exec(select(Coupon).where(Coupon.community_id == community_id).order_by(Coupon.id)))


async def open_coupons(e2e: E2E, leader) -> None:
    await e2e.say(leader, "/admin")
    await e2e.press(leader, en("🎟 Coupons"))


async def answer_again(e2e: E2E, leader, text: str, reason: str, prompt: str) -> None:
    """A refused answer: the reason, then the same question, with the same buttons."""
    buttons = e2e.last_msg(leader).buttons
    await e2e.say(leader, text)
    assert e2e.last(leader) == reason + "\n\n" + prompt
    assert e2e.last_msg(leader).buttons == buttons


async def test_percent_coupon_form_refuses_bad_answers_then_works_at_checkout(e2e: E2E, group: Group) -> None:
    alice, bob, carol = group.leader, *group.members
    cid = group.community_id
    async with e2e.db() as s:
        await coupons.issue(s, community_id=cid, spec=CouponSpec(kind=CouponKind.FIXED, value=100, code="TAKEN"), actor_id=None, now=now())
    await open_coupons(e2e, alice)
    assert e2e.last(alice).splitlines()[1].startswith("TAKEN · ")
    await e2e.press(alice, en("➕ New coupon"))
    assert e2e.last(alice) == en(KIND)
    assert e2e.last_msg(alice).buttons == [[en("Fixed amount"), en("Percent")], FORM_NAV]
    await answer_again(e2e, alice, "10%", en("Please choose with the buttons."), en(KIND))
    await e2e.press(alice, en("Percent"))
    assert e2e.last(alice) == en(PERCENT)
    for bad in ("0", "101", "abc"):
        await answer_again(e2e, alice, bad, en("A percentage must be from 1 to 100."), en(PERCENT))
    await e2e.say(alice, "15%")
    assert e2e.last(alice) == en(CAP, currency="USD")
    assert e2e.last_msg(alice).buttons == [[en("Skip")], FORM_NAV]
    await answer_again(e2e, alice, "abc", en("“{value}” is not an amount. Send a number such as 12.5 or 12,50.", value="abc"),
                       en(CAP, currency="USD"))
    await answer_again(e2e, alice, "0", en("The amount must be more than zero."), en(CAP, currency="USD"))
    await e2e.say(alice, "3")
    assert e2e.last(alice) == en(MIN_SPEND, currency="USD")
    await e2e.say(alice, "10")
    assert e2e.last(alice) == en(EXPIRY, tz="UTC")
    await answer_again(e2e, alice, "2020-01-01", en("The expiry must be in the future."), en(EXPIRY, tz="UTC"))
    await answer_again(e2e, alice, "soon", en("“{value}” is not an expiry. Send a number of days (for example 7) or a date as "
                                              "YYYY-MM-DD.", value="soon"), en(EXPIRY, tz="UTC"))
    await e2e.say(alice, "7")
    assert e2e.last(alice) == en(SINGLE)
    await e2e.press(alice, en("Single use"))
    assert e2e.last(alice) == en(OWNER)
    await answer_again(e2e, alice, "@nobody", en("“{value}” is not a member of this community. Send their @username or numeric "
                                                 "Telegram id, or choose Anyone.", value="@nobody"), en(OWNER))
    await e2e.say(alice, f"@{bob.username.upper()}")
    assert e2e.last(alice) == en(CODE)
    await answer_again(e2e, alice, "no way!", en("A code is 1 to {max} letters, digits, - or _.", max=32), en(CODE))
    await answer_again(e2e, alice, "taken", en("The code {code} is already taken in this community.", code="TAKEN"), en(CODE))
    await e2e.say(alice, "bob-15")
    expires = (now() + timedelta(days=7)).strftime("%Y-%m-%d") + " 23:59 (UTC)"
    preview = "\n".join([see("<b>New coupon</b> — check and save"), en("Code: {code}", code="BOB-15"),
                         en("Takes off: {value}", value=en("{percent}% off, up to {cap}", percent=15, cap=usd(300))),
                         en("Minimum spend: {amount}", amount=usd(1000)), en("Expires: {when}", when=expires),
                         en("Use: {use}", use=en("single use")), en("Who: {owner}", owner="@" + bob.username)])
    assert e2e.last(alice) == preview
    assert e2e.last_msg(alice).buttons == [[en("💾 Save")], FORM_NAV]
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice) == en(CODE)
    await e2e.say(alice, "BOB-15")
    assert e2e.last(alice) == preview
    assert len(await coupon_rows(e2e, cid)) == 1  # nothing saved before Save
    answer = e2e.answer(await e2e.press(alice, en("💾 Save")))
    assert answer.text == en("Saved.")
    saved = e2e.last(alice).splitlines()
    assert saved[0] == en("Coupon {code} saved.", code="BOB-15")
    assert saved[3].startswith("BOB-15 · " + en("{percent}% off, up to {cap}", percent=15, cap=usd(300)))
    assert await e2e.fsm_state(alice) is None
    coupon = (await coupon_rows(e2e, cid))[-1]
    assert (coupon.code, coupon.kind, coupon.value, coupon.cap, coupon.min_spend, coupon.single_use, coupon.owner_id,
            coupon.source, coupon.created_by) == ("BOB-15", "percent", 15, 300, 1000, True, bob.id, "manual", alice.id)
    assert coupon.expires_at.strftime("%H:%M:%S") == "23:59:59"
    entry = (await e2e.audit(cid, "coupon.issue"))[-1]
    assert entry.actor_id == alice.id and entry.details["code"] == "BOB-15"

    # At checkout: works for Bob above the minimum, and is refused with the reason otherwise.
    async with e2e.db() as s:
        community = await s.get(Community, cid)
        point = await settings.add_pickup_point(s, community_id=cid, actor_id=alice.id, raw_name="Gate", now=now())
        apples = await products.create(s, community=community, actor_id=alice.id, now=now(),
                                       draft=ProductDraft(title="Apples", description="", price=800, stock=None, per_member_limit=None))

        async def refused(user_id: int, qty: int, when: datetime = now()) -> str:
            with pytest.raises(DomainError) as err:
                await orders.quote(s, community=community, product_id=apples.id, user_id=user_id, quantity=qty,
                                   coupon_code="bob-15", now=when)
            return err.value.code

        assert await refused(bob.id, 1) == "coupon_below_minimum"
        assert await refused(carol.id, 2) == "coupon_not_yours"
        assert await refused(bob.id, 2, now() + timedelta(days=9)) == "coupon_expired"
        placed = await orders.place(s, community=community, user_id=bob.id, product_id=apples.id, quantity=2, unit_price=800,
                                    payment_method=PaymentMethod.PICKUP, checkout_key="bob-1", now=now(),
                                    pickup_point_id=point.id, coupon_code="bob-15")
        assert (placed.order.discount, placed.order.total) == (240, 1360)
        assert await refused(bob.id, 2) == "coupon_used"
        await orders.cancel(s, order=placed.order, reason="member", actor_id=bob.id, now=now())
        assert (await orders.quote(s, community=community, product_id=apples.id, user_id=bob.id, quantity=3,
                                   coupon_code="BOB-15", now=now())).discount == 300  # given back; 15 % capped


async def test_fixed_coupon_for_anyone_with_a_generated_code_and_leaving_the_form(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await open_coupons(e2e, alice)
    assert e2e.last(alice).splitlines()[1] == en("No coupons yet.")
    await e2e.press(alice, en("➕ New coupon"))
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice).splitlines()[1] == en("No coupons yet.")
    await e2e.press(alice, en("➕ New coupon"))
    await e2e.press(alice, en("Fixed amount"))
    assert e2e.last(alice) == en(FIXED, currency="USD")
    await answer_again(e2e, alice, "abc", en("“{value}” is not an amount. Send a number such as 12.5 or 12,50.", value="abc"),
                       en(FIXED, currency="USD"))
    await answer_again(e2e, alice, "0", en("The amount must be more than zero."), en(FIXED, currency="USD"))
    await answer_again(e2e, alice, "-3", en("The amount cannot be negative."), en(FIXED, currency="USD"))
    await e2e.say(alice, "2.50")
    assert e2e.last(alice) == en(MIN_SPEND, currency="USD")  # no cap for a fixed amount
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice) == en(FIXED, currency="USD")
    await e2e.say(alice, "2.50")
    await e2e.press(alice, en("Skip"))
    await e2e.press(alice, en("Skip"))
    # A button left on an earlier prompt (or pressed twice) cannot answer this one.
    await e2e.press(alice, en("Once per member"))
    answer = e2e.answer(await e2e.press_data(alice, CouponAdmin(op=CouponOp.SINGLE_NO, step="single_use").pack()))
    assert answer.text == en("This button is no longer valid.")
    assert e2e.last(alice) == en(OWNER)
    await e2e.press(alice, en("Anyone in the community"))
    await e2e.press(alice, en("Generate a code"))
    preview = e2e.last(alice).splitlines()
    assert preview[2:] == [en("Takes off: {value}", value=en("{amount} off", amount=usd(250))),
                           en("Minimum spend: {amount}", amount=en("none")), en("Expires: {when}", when=en("never")),
                           en("Use: {use}", use=en("once per member")), en("Who: {owner}", owner=en("anyone in the community"))]
    code = preview[1].split(": ")[1]
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{8}", code)
    await e2e.press(alice, en("✖ Cancel"))
    assert e2e.last(alice) == en(CANCELLED)
    assert await coupon_rows(e2e, cid) == []

    # /cancel mid-form, and a Save pressed after the form closed, leave nothing behind.
    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("🎟 Coupons"))
    await e2e.press(alice, en("➕ New coupon"))
    await e2e.press(alice, en("Fixed amount"))
    await e2e.say(alice, "/cancel")
    assert e2e.last(alice) == en(CANCELLED)
    assert await e2e.fsm_state(alice) is None
    form = e2e.emu.bot_messages(alice)[-2]
    await e2e.press(alice, en("« Back"), message=form)
    assert form.visible == en("This form is no longer open. Send /admin to start again.")
    assert await coupon_rows(e2e, cid) == []


async def test_members_list_their_coupons(e2e: E2E, group: Group) -> None:
    bob, carol = group.members
    cid = group.community_id
    street = await e2e.make_group("Apple Street", leader=e2e.emu.add_user("Zoe"), members=[bob])
    async with e2e.db() as s:
        community = await s.get(Community, cid)
        community.timezone = "Asia/Shanghai"
        await s.commit()
        spec = dict(actor_id=None, now=now())
        await coupons.issue(s, community_id=cid, spec=CouponSpec(kind=CouponKind.PERCENT, value=10, cap=500, min_spend=2000,
                                                                 owner_id=bob.id, code="BOB10",
                                                                 expires_at=datetime(2099, 5, 31, 15, 59, tzinfo=timezone.utc)), **spec)
        await coupons.issue(s, community_id=cid, spec=CouponSpec(kind=CouponKind.FIXED, value=300, code="CAROL",
                                                                 owner_id=carol.id), **spec)
        await coupons.issue(s, community_id=street.community_id, spec=CouponSpec(kind=CouponKind.FIXED, value=100,
                                                                                 code="STREET", single_use=False), **spec)
    await e2e.say(bob, "/coupons")
    assert e2e.last(bob) == "\n".join([
        see("<b>Your coupons</b>"), "",
        see("<b>{title}</b> (times in {tz})", title="Apple Street", tz="UTC"),
        " · ".join(["STREET", en("{amount} off", amount=usd(100)), en("no minimum spend"), en("no expiry")]), "",
        see("<b>{title}</b> (times in {tz})", title="Green Valley", tz="Asia/Shanghai"),
        " · ".join(["BOB10", en("{percent}% off, up to {cap}", percent=10, cap=usd(500)),
                    en("minimum spend {amount}", amount=usd(2000)), en("until {when}", when="2099-05-31 23:59")]),
        "", en("Type the code when you check out."),
    ])
    listing = e2e.last(bob)
    dan = e2e.emu.add_user("Dan")
    await e2e.say(dan, "/coupons")
    assert e2e.last(dan) == en("You have no coupons to use right now.")

    # In the group, /coupons only points to the private chat, whose link shows the same list.
    await e2e.say(bob, "/coupons", group.chat)
    pointer = e2e.last_msg(group.chat)
    assert pointer.visible == en("Your coupons are in our private chat.") and "BOB10" not in pointer.visible
    assert pointer.reply_markup["inline_keyboard"][0][0]["url"].endswith("?start=coupons")
    await e2e.say(bob, "/start coupons")
    assert e2e.last(bob) == listing


# --- shop options ---------------------------------------------------------------------------------------

async def open_shop_options(e2e: E2E, leader) -> None:
    await e2e.say(leader, "/admin")
    await e2e.press(leader, en("⚙️ Settings"))
    await e2e.press(leader, en("🛒 Shop options"))


async def shop_options(e2e: E2E, cid: int) -> dict:
    async with e2e.db() as s:
        return (await s.get(Community, cid)).settings.get("shop", {})


async def test_shop_options_toggle_and_forms_persist_and_are_audited(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await open_shop_options(e2e, alice)
    view = e2e.last_msg(alice)
    assert view.visible.splitlines()[0] == see("<b>Shop options · {title}</b>", title="Green Valley")
    assert view.buttons == [
        [en("💵 Pay at pickup: {state}", state=en("on"))], [en("⭐ Telegram Stars: {state}", state=en("off"))],
        [en("⭐ Stars per {currency}: {rate}", currency="USD", rate=en("not set"))],
        [en("🚚 Delivery: {state}", state=en("off"))], [en("⏳ Unpaid orders cancel after {n} min", n=30)],
        [en("↩️ Members may cancel within {n} h", n=24)], [en("📊 Daily summary: {time}", time=en("off"))],
        [en("🕒 Late posts allowed for {n} min", n=60)], [en("« Back")]]

    answer = e2e.answer(await e2e.press(alice, en("💵 Pay at pickup: {state}", state=en("on"))))
    assert answer.text == en("Saved.")
    await e2e.press(alice, en("🚚 Delivery: {state}", state=en("off")))
    assert [en("💵 Pay at pickup: {state}", state=en("off"))] in e2e.last_msg(alice).buttons
    assert [en("🚚 Delivery: {state}", state=en("on"))] in e2e.last_msg(alice).buttons

    # Stars need a rate first: the toggle asks for it, and switches Stars on with it.
    await e2e.press(alice, en("⭐ Telegram Stars: {state}", state=en("off")))
    rate_prompt = (en("Set how many Stars one {currency} costs; Stars are switched on with it.", currency="USD") + "\n\n"
                   + en("How many Telegram Stars for 1 {currency}? Send a whole number from {min} to {max}.\nNow: {value}",
                        currency="USD", min=1, max=10000, value=en("not set")))
    assert e2e.last(alice) == rate_prompt
    for bad in ("0", "abc", "10001"):
        await answer_again(e2e, alice, bad, en("“{value}” is not allowed. Send a whole number from {min} to {max}.",
                                               value=bad, min=1, max=10000), rate_prompt)
    assert (await shop_options(e2e, cid))["stars_enabled"] is False
    await e2e.say(alice, "7")
    assert e2e.last(alice).startswith(en("Saved.") + "\n\n")
    assert [en("⭐ Telegram Stars: {state}", state=en("on"))] in e2e.last_msg(alice).buttons

    summary_prompt = en("At what time ({tz}) should I send leaders the day's order summary? Send HH:MM, for example 21:00, "
                        "or off.\nNow: {value}", tz="UTC", value=en("off"))
    await e2e.press(alice, en("📊 Daily summary: {time}", time=en("off")))
    assert e2e.last(alice) == summary_prompt
    assert e2e.last_msg(alice).buttons == [[en("Turn the summary off")], FORM_NAV]
    await answer_again(e2e, alice, "25:00", en("“{value}” is not a time. Send HH:MM (for example 21:00), or off.", value="25:00"),
                       summary_prompt)
    await e2e.say(alice, "9:30")
    await e2e.press(alice, en("↩️ Members may cancel within {n} h", n=24))
    await e2e.say(alice, "0")
    await e2e.press(alice, en("⏳ Unpaid orders cancel after {n} min", n=30))
    await answer_again(e2e, alice, "4", en("“{value}” is not allowed. Send a whole number from {min} to {max}.",
                                           value="4", min=5, max=10080),
                       en("After how many minutes is an unpaid online order cancelled and its stock returned? "
                          "Send a whole number from {min} to {max}.\nNow: {value}", min=5, max=10080, value=30))
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice).splitlines()[0] == see("<b>Shop options · {title}</b>", title="Green Valley")
    await e2e.press(alice, en("🕒 Late posts allowed for {n} min", n=60))
    await e2e.press(alice, en("✖ Cancel"))
    assert e2e.last(alice) == en(CANCELLED)

    stored = await shop_options(e2e, cid)
    assert {k: stored[k] for k in ("pay_at_pickup", "delivery_enabled", "stars_enabled", "stars_per_unit", "summary_time",
                                   "cancel_hours", "unpaid_minutes", "post_grace_minutes")} == {
        "pay_at_pickup": False, "delivery_enabled": True, "stars_enabled": True, "stars_per_unit": 7,
        "summary_time": "09:30", "cancel_hours": 0, "unpaid_minutes": 30, "post_grace_minutes": 60}
    assert [(a.action, a.details, a.actor_id) for a in await e2e.audit(cid) if a.action.startswith("shop.")] == [
        ("shop.pay_at_pickup", {"from": True, "to": False}, alice.id),
        ("shop.delivery_enabled", {"from": False, "to": True}, alice.id),
        ("shop.stars_per_unit", {"from": 0, "to": 7}, alice.id),
        ("shop.stars_enabled", {"from": False, "to": True}, alice.id),
        ("shop.summary_time", {"from": None, "to": "09:30"}, alice.id),
        ("shop.cancel_hours", {"from": 24, "to": 0}, alice.id),
    ]

    await open_shop_options(e2e, alice)
    await e2e.press(alice, en("📊 Daily summary: {time}", time="09:30"))
    await e2e.press(alice, en("Turn the summary off"))
    assert [en("📊 Daily summary: {time}", time=en("off"))] in e2e.last_msg(alice).buttons
    assert (await shop_options(e2e, cid))["summary_time"] is None
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice).startswith(see("<b>Settings · {title}</b>\nChoose what to change.", title="Green Valley"))
