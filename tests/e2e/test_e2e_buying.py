"""Buying by chat, end to end: /buy and the Buy button in the group, the private checkout step by
step (quantity, pickup or delivery, coupon, summary, Confirm) with every refusal, and what the
database holds afterwards. Payments, /orders and the expiry job are in test_e2e_payments.py."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from html import escape

from buying_helpers import (
    add_product,
    buy_link,
    checkout_to_summary,
    coupon_row,
    issue_coupon,
    now,
    open_shop,
    orders_of,
    post_card,
    product_row,
    redemptions,
    see,
    start_bot,
    url_buttons,
)
from e2e_harness import E2E, Group, en

from bot.services import products, users
from bot.services.shop_settings import update_shop_settings
from models import Community
from models.shop import Coupon, CouponKind, OrderStatus, ProductStatus

CANCEL, BACK, CONFIRM = en("✖ Cancel"), en("« Back"), en("✅ Confirm")
NO_COUPON = en("Continue without a coupon")
COUPON_STEP = see("Do you have a coupon? Send its code, choose one of yours below, or continue without one.")
CLOSED = see("This checkout is closed. Press Buy on the product to start again.")
CANCELLED = see("Checkout cancelled. Nothing was ordered.")


def quantity_step(*, number: int = 1, title: str = "Apples", price: str = "$5.00", left: int | None = 10,
                  can: int | None = None) -> str:
    lines = [see("<b>#{number} · {title}</b>", number=number, title=escape(title)), see("{price} each", price=price)]
    if left is not None:
        lines.append(see("{count} left", count=left))
    if can is not None:
        lines.append(see("You can buy up to {count}.", count=can))
    return "\n".join(lines + ["", see("How many would you like? Choose below or send a number.")])


def pickup_step(qty: int, *, number: int = 1, title: str = "Apples") -> str:
    return see("{product} × {qty}\n\nWhere will you pick it up?",
               product=en("<b>#{number} · {title}</b>", number=number, title=escape(title)), qty=qty)


def summary(*, qty: int, price: str, subtotal: str, total: str, where: str, payment: str, coupon: str | None = None,
            number: int = 1, title: str = "Apples") -> str:
    lines = [see("<b>Your order</b>"), see("<b>#{number} · {title}</b>", number=number, title=escape(title)),
             see("{qty} × {price} = {subtotal}", qty=qty, price=price, subtotal=subtotal)]
    if coupon:
        lines.append(coupon)
    lines += [see("<b>Total: {total}</b>", total=total), where, see("Payment: {method}", method=payment)]
    return "\n".join(lines)


def pickup_at(place: str = "North Gate") -> str:
    return see("Pickup: {place}", place=escape(place))


def reasked(reason: str, step: str) -> str:
    return f"{reason}\n\n{step}"


def _tag(message) -> str:
    """The checkout tag in a step message's first button (to forge presses as a modified client)."""
    return message.reply_markup["inline_keyboard"][0][0]["callback_data"].split(":")[1]


# ----- the group ---------------------------------------------------------------------------------

async def test_buy_in_the_group_opens_the_checkout_in_private_for_a_member_who_started_the_bot(e2e: E2E, group: Group) -> None:
    await open_shop(e2e, group)
    bob = group.members[0]
    await start_bot(e2e, bob)
    in_group = e2e.bot_texts(group.chat)
    await e2e.say(bob, "/buy 1", group.chat)
    assert e2e.last(bob) == quantity_step()
    assert e2e.last_msg(bob).buttons == [["1", "2", "3", "5"], [CANCEL]]
    assert await e2e.fsm_state(bob) == "CheckoutForm:quantity"
    # With a quantity the checkout starts at the pickup point.
    await e2e.say(bob, "/buy 1 3", group.chat)
    assert e2e.last(bob) == pickup_step(3)
    # The checkout in private is Bob's answer: the group hears nothing of it, and spends nothing.
    assert e2e.bot_texts(group.chat) == in_group
    assert await orders_of(e2e) == []


async def test_buy_in_the_group_gives_the_link_to_a_member_who_never_started_the_bot(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group)
    carol = group.members[1]
    await e2e.say(carol, "/buy 1 2", group.chat)
    reply = e2e.last_msg(group.chat)
    assert reply.visible == see("{name}, press the button to order #{number} in a private chat with me.", name="Carol", number=1)
    assert reply.buttons == [[en("🛒 Continue in private chat")]]
    assert url_buttons(reply) == [buy_link(shop.product.id, 2)]
    assert e2e.emu.bot_messages(carol) == []
    assert not [c for c in e2e.emu.calls("sendMessage") if c.params.get("chat_id") == str(carol.id)]
    # Following the link (Telegram sends /start with the payload) opens the checkout at the pickup step.
    await e2e.say(carol, f"/start buy-{shop.product.id}-2")
    assert e2e.last(carol) == pickup_step(2)


async def test_buy_falls_back_to_the_link_when_the_private_chat_is_refused(e2e: E2E, group: Group) -> None:
    """The database says the member can be reached, Telegram says 403: the group reply still helps."""
    shop = await open_shop(e2e, group)
    carol = group.members[1]
    async with e2e.db() as s:
        await users.set_can_dm(s, user_id=carol.id, can_dm=True, now=now())
    e2e.allow_api_errors(403)
    await e2e.say(carol, "/buy 1", group.chat)
    reply = e2e.last_msg(group.chat)
    assert reply.visible == see("{name}, press the button to order #{number} in a private chat with me.", name="Carol", number=1)
    assert url_buttons(reply) == [buy_link(shop.product.id)]
    assert (await e2e.user_row(carol)).can_dm is False
    assert await e2e.fsm_state(carol) is None


async def test_buy_refuses_bad_input_in_the_group_with_a_short_reason(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group)  # #1 Apples, 10 in stock
    async with e2e.db() as s:
        community = await s.get(Community, group.community_id)
        paused = await add_product(s, community, group.leader.id, title="Pears", price=300, stock=5)
        archived = await add_product(s, community, group.leader.id, title="Plums", price=300, stock=5)
        await add_product(s, community, group.leader.id, title="Figs", price=300, stock=0)
        for product, status in ((paused, ProductStatus.PAUSED), (archived, ProductStatus.ARCHIVED)):
            await products.set_status(s, community_id=community.id, product_id=product.id, actor_id=group.leader.id,
                                      status=status, now=now())
    usage = see("Send /buy followed by the number on the product's card, for example /buy 3, or /buy 3 2 for two.")
    cases = [
        ("/buy", usage),
        ("/buy abc", see("“{value}” is not a product number.", value="abc") + " " + usage),
        ("/buy <b>", see("“{value}” is not a product number.", value="&lt;b&gt;") + " " + usage),
        ("/buy 1 2 3", usage),
        ("/buy 99", see("There is no product #{number} here. The number is on the product's card.", number=99)),
        ("/buy 99999999999999999999", see("There is no product #{number} here. The number is on the product's card.",
                                          number="999999999999")),
        ("/buy 2", see("Product #{number} is paused for now.", number=2)),
        ("/buy 3", see("Product #{number} is no longer sold.", number=3)),
        ("/buy 4", see("Product #{number} is sold out.", number=4)),
        ("/buy 1 0", see("The quantity must be at least 1.")),
        ("/buy 1 -1", see("The quantity cannot be negative.")),
        ("/buy 1 100000", see("Only {available} left. Send a smaller quantity.", available=10)),
        ("/buy 1 two", see("“{value}” is not a quantity. Send a whole number such as 2.", value="two")),
        ("/buy 1 11", see("Only {available} left. Send a smaller quantity.", available=10)),
    ]
    bob = group.members[0]
    await start_bot(e2e, bob)
    for text, expected in cases:
        await e2e.say(bob, text, group.chat)
        assert e2e.last(group.chat) == expected, text
        assert url_buttons(e2e.last_msg(group.chat)) == []
    assert len(e2e.emu.bot_messages(bob)) == 1  # only the welcome: no checkout was opened
    assert await e2e.fsm_state(bob) is None
    assert await orders_of(e2e) == []
    assert (await product_row(e2e, shop.product.id)).stock == 10


async def test_buy_button_answers_with_the_deep_link_or_an_alert(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group)
    card = await post_card(e2e, group, shop.product)
    bob = group.members[0]
    before = len(e2e.emu.bot_messages(group.chat))
    answer = e2e.answer(await e2e.press(bob, "🛒 Buy", group.chat, message=card))
    assert answer.url == buy_link(shop.product.id) and not answer.show_alert
    assert len(e2e.emu.bot_messages(group.chat)) == before  # nothing said in the group
    # Telegram opens the private chat with the link: the checkout starts.
    await e2e.say(bob, f"/start buy-{shop.product.id}")
    assert e2e.last(bob) == quantity_step()

    async def alert_after(change: dict | None, status: ProductStatus | None) -> str:
        async with e2e.db() as s:
            if change:
                await products.edit(s, community_id=shop.community_id, product_id=shop.product.id,
                                    actor_id=group.leader.id, now=now(), **change)
            if status:
                await products.set_status(s, community_id=shop.community_id, product_id=shop.product.id,
                                          actor_id=group.leader.id, status=status, now=now())
        answer = e2e.answer(await e2e.press(bob, "🛒 Buy", group.chat, message=card))
        assert answer.show_alert and answer.url is None
        return answer.text

    assert await alert_after({"stock": 0}, None) == en("Product #{number} is sold out.", number=1)
    assert await alert_after({"stock": 4}, ProductStatus.PAUSED) == en("Product #{number} is paused for now.", number=1)
    assert await alert_after(None, ProductStatus.ARCHIVED) == en("Product #{number} is no longer sold.", number=1)


async def test_buy_button_with_forged_or_foreign_product_ids(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group)
    other = await e2e.make_group("Hill Side", leader=e2e.emu.add_user("Hank"), members=[])
    foreign = await open_shop(e2e, other, title="Honey", pickups=("Mill",))
    card = await post_card(e2e, group, shop.product)
    bob = group.members[0]
    unknown = en("That product does not exist in this community.")
    for data in (f"by:{foreign.product.id}", "by:424242", "by:0", "by:-5", "by:99999999999"):
        answer = e2e.answer(await e2e.press_data(bob, data, group.chat, message=card))
        assert (answer.text, answer.show_alert, answer.url) == (unknown, True, None), data
    answer = e2e.answer(await e2e.press_data(bob, "by:abc", group.chat, message=card))
    assert answer.text == en("This button is no longer valid.")


async def test_deep_links_that_are_not_valid(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group)
    bob = group.members[0]
    await e2e.say(bob, "/start buy-abc")
    assert e2e.last(bob) == see("This link is not valid or has expired.")
    out_of_date = see("This link is out of date: the product it was for is gone. Press Buy on a product's card in "
                      "your group to order.")
    await e2e.say(bob, "/start buy-999999")
    assert e2e.last(bob) == out_of_date
    await e2e.say(bob, "/start buy-9999999999")  # beyond any id: not looked up
    assert e2e.last(bob) == out_of_date
    await e2e.say(bob, "/start buy-99999999999")
    assert e2e.last(bob) == see("This link is not valid or has expired.")
    # A bad quantity in the link asks for the quantity, with the reason.
    await e2e.say(bob, f"/start buy-{shop.product.id}-0")
    assert e2e.last(bob) == reasked(see("The quantity must be at least 1."), quantity_step())
    await e2e.say(bob, f"/start buy-{shop.product.id}-two")
    assert e2e.last(bob) == reasked(see("“{value}” is not a quantity. Send a whole number such as 2.", value="two"), quantity_step())
    assert await e2e.fsm_state(bob) == "CheckoutForm:quantity"


# ----- the private checkout ----------------------------------------------------------------------

async def test_full_checkout_to_pay_at_pickup(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, pickups=("North Gate", "South Market"))
    bob = group.members[0]
    await start_bot(e2e, bob)
    await e2e.say(bob, "/buy 1", group.chat)
    await e2e.press(bob, "2")
    assert e2e.last(bob) == pickup_step(2)
    assert e2e.last_msg(bob).buttons == [["📍 North Gate"], ["📍 South Market"], [BACK, CANCEL]]
    await e2e.press(bob, "📍 South Market")
    assert e2e.last(bob) == COUPON_STEP
    assert e2e.last_msg(bob).buttons == [[NO_COUPON], [BACK, CANCEL]]
    await e2e.press(bob, NO_COUPON)
    # Pay at pickup is the only way to pay here: no payment question, straight to the summary.
    assert e2e.last(bob) == summary(qty=2, price="$5.00", subtotal="$10.00", total="$10.00",
                                    where=pickup_at("South Market"), payment=en("pay at pickup"))
    assert e2e.last_msg(bob).buttons == [[CONFIRM], [BACK, CANCEL]]
    assert await orders_of(e2e) == []
    assert (await product_row(e2e, shop.product.id)).stock == 10  # nothing reserved before Confirm
    confirm = await e2e.press(bob, CONFIRM)
    assert e2e.answer(confirm).text == en("Order placed.")
    [order] = await orders_of(e2e)
    assert (order.user_id, order.quantity, order.unit_price, order.total, order.status, order.payment_method) == (
        bob.id, 2, 500, 1000, OrderStatus.PENDING_PAYMENT, "pickup")
    assert order.pickup_point_id == shop.pickup_ids[1] and order.expires_at is None and order.currency == "USD"
    assert e2e.last(bob) == "\n".join([
        see("Order #{id} · {title} × {qty} · {amount}", id=order.id, title="Apples", qty=2, amount="$10.00"),
        see("Your order is placed. You pay when you pick it up."), pickup_at("South Market"),
        "", see("Send /orders to see your orders.")])
    assert e2e.last_msg(bob).buttons == []
    product = await product_row(e2e, shop.product.id)
    assert (product.stock, product.sold) == (8, 2)
    assert await e2e.fsm_state(bob) is None
    assert not e2e.emu.calls("sendInvoice")
    # The confirmed summary's buttons are gone; an old step button says the checkout is closed.
    answer = e2e.answer(await e2e.press_data(bob, f"co:{order.checkout_key[:8]}:ok:0"))
    assert answer.text == CLOSED
    assert len(await orders_of(e2e)) == 1


async def test_back_and_cancel_on_every_step(e2e: E2E, group: Group) -> None:
    await open_shop(e2e, group, pickups=("North Gate",), delivery_enabled=True)
    bob = group.members[0]
    await start_bot(e2e, bob)
    await e2e.say(bob, "/buy 1 2", group.chat)
    assert e2e.last_msg(bob).buttons == [["📍 North Gate"], [en("🚚 Deliver to my address")], [BACK, CANCEL]]
    await e2e.press(bob, BACK)
    assert e2e.last(bob) == quantity_step()
    await e2e.press(bob, "3")
    await e2e.press(bob, en("🚚 Deliver to my address"))
    address_prompt = see("Send the delivery address as text: street, building, and how to reach you (up to {max} characters).", max=300)
    assert e2e.last(bob) == address_prompt
    assert e2e.last_msg(bob).buttons == [[BACK, CANCEL]]
    await e2e.press(bob, BACK)
    assert e2e.last(bob) == pickup_step(3)
    await e2e.press(bob, "📍 North Gate")
    await e2e.press(bob, BACK)
    assert e2e.last(bob) == pickup_step(3)
    await e2e.press(bob, "📍 North Gate")
    await e2e.press(bob, NO_COUPON)
    await e2e.press(bob, BACK)  # the payment step was skipped (one way to pay): back to the coupon
    assert e2e.last(bob) == COUPON_STEP
    await e2e.press(bob, NO_COUPON)
    confirm_data = e2e.last_msg(bob).reply_markup["inline_keyboard"][0][0]["callback_data"]
    await e2e.press(bob, CANCEL)
    assert e2e.last(bob) == CANCELLED and e2e.last_msg(bob).buttons == []
    assert await e2e.fsm_state(bob) is None
    # Buttons left on older messages of the cancelled checkout do nothing.
    answer = e2e.answer(await e2e.press_data(bob, confirm_data))
    assert answer.text == CLOSED
    # /cancel works while typing too.
    await e2e.say(bob, "/buy 1", group.chat)
    await e2e.say(bob, "/cancel")
    assert e2e.last(bob) == CANCELLED
    assert await e2e.fsm_state(bob) is None
    assert await orders_of(e2e) == []


async def test_a_new_checkout_makes_older_buttons_stale(e2e: E2E, group: Group) -> None:
    await open_shop(e2e, group)
    bob = group.members[0]
    await start_bot(e2e, bob)
    await e2e.say(bob, "/buy 1", group.chat)
    first = e2e.last_msg(bob)
    await e2e.say(bob, "/buy 1", group.chat)
    answer = e2e.answer(await e2e.press(bob, "2", message=first))
    assert answer.text == CLOSED and answer.show_alert
    assert await e2e.fsm_state(bob) == "CheckoutForm:quantity"
    # A button of the current checkout but of another step is not taken either.
    await e2e.press(bob, "2")
    tag = _tag(e2e.last_msg(bob))
    answer = e2e.answer(await e2e.press_data(bob, f"co:{tag}:q:3"))
    assert answer.text == en("That step is already behind you.")
    assert await e2e.fsm_state(bob) == "CheckoutForm:pickup"
    # A forged pickup point (another community's, or no id at all) is refused on the step.
    for forged in (-99999999999, 424242):
        await e2e.press_data(bob, f"co:{tag}:p:{forged}")
        assert e2e.last(bob) == reasked(see("That pickup point no longer exists."), pickup_step(2))


async def test_typed_quantities_are_checked_against_stock_and_the_member_limit(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, stock=10, limit=4)
    bob = group.members[0]
    await e2e.say(bob, f"/start buy-{shop.product.id}")
    step = quantity_step(can=4)
    assert e2e.last(bob) == step
    assert e2e.last_msg(bob).buttons == [["1", "2", "3"], [CANCEL]]  # 5 is over the limit
    cases = [
        ("0", see("The quantity must be at least 1.")),
        ("-1", see("The quantity cannot be negative.")),
        ("two", see("“{value}” is not a quantity. Send a whole number such as 2.", value="two")),
        ("100000", see("Only {available} left. Send a smaller quantity.", available=10)),
        ("11", see("Only {available} left. Send a smaller quantity.", available=10)),
        ("5", see("Each member may buy at most {limit}; you can still buy {left}.", limit=4, left=4)),
    ]
    for text, reason in cases:
        await e2e.say(bob, text)
        assert e2e.last(bob) == reasked(reason, step), text
        assert await e2e.fsm_state(bob) == "CheckoutForm:quantity"
    await e2e.send_raw(bob, service={"location": {"latitude": 1.0, "longitude": 2.0}})
    assert e2e.last(bob) == reasked(see("Please answer with text or use the buttons."), step)
    await e2e.say(bob, "4")
    assert e2e.last(bob) == pickup_step(4)
    # Typing on a step that wants a button points to the buttons.
    await e2e.say(bob, "North Gate")
    assert e2e.last(bob) == reasked(see("Please use the buttons to choose."), pickup_step(4))
    await e2e.press(bob, "📍 North Gate")
    await e2e.press(bob, NO_COUPON)
    await e2e.press(bob, CONFIRM)
    # The limit counts what the member already holds: a new checkout ends at once.
    await e2e.say(bob, f"/start buy-{shop.product.id}")
    assert e2e.last(bob) == see("Each member may buy at most {limit}; you can still buy {left}.", limit=4, left=0)
    assert await e2e.fsm_state(bob) is None


async def test_coupon_refusals_then_a_good_code_and_the_members_own_coupon(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, price=500)
    bob, carol = group.members
    other = await e2e.make_group("Hill Side", leader=e2e.emu.add_user("Hank"), members=[])
    await issue_coupon(e2e, other.community_id, "ELSEWHERE")
    await issue_coupon(e2e, shop.community_id, "CAROLS", owner_id=carol.id)
    await issue_coupon(e2e, shop.community_id, "BIGSPEND", min_spend=5000)
    expired = await issue_coupon(e2e, shop.community_id, "OLD", expires_at=now() + timedelta(days=1))
    used = await issue_coupon(e2e, shop.community_id, "GONE")
    async with e2e.db() as s:
        (await s.get(Coupon, expired.id)).expires_at = now() - timedelta(minutes=1)
        (await s.get(Coupon, used.id)).uses = 1
        await s.commit()
    good = await issue_coupon(e2e, shop.community_id, "SAVE1", kind=CouponKind.FIXED, value=100)
    mine = await issue_coupon(e2e, shop.community_id, "BOBS20", kind=CouponKind.PERCENT, value=20, owner_id=bob.id)
    await e2e.say(bob, f"/start buy-{shop.product.id}")
    await e2e.press(bob, "2")
    await e2e.press(bob, "📍 North Gate")
    # Only the coupons Bob can use are offered as buttons (open and his own, not expired or used).
    assert e2e.last_msg(bob).buttons == [["🎟 BIGSPEND · −$1.00"], ["🎟 SAVE1 · −$1.00"], ["🎟 BOBS20 · −20%"],
                                         [NO_COUPON], [BACK, CANCEL]]
    cases = [
        ("NOPE", see("There is no coupon “{code}”. Check the code and send it again.", code="NOPE")),
        ("<i>x&y</i>", see("There is no coupon “{code}”. Check the code and send it again.", code=escape("<I>X&Y</I>"))),
        ("elsewhere", see("Coupon “{code}” belongs to another community.", code="ELSEWHERE")),
        ("CAROLS", see("This coupon belongs to someone else.")),
        ("OLD", see("This coupon has expired.")),
        ("GONE", see("This coupon has already been used.")),
        ("BIGSPEND", see("This coupon needs a minimum spend of {amount}.", amount="$50.00")),
    ]
    for code, reason in cases:
        await e2e.say(bob, code)
        assert e2e.last(bob) == reasked(reason, COUPON_STEP), code
        assert await e2e.fsm_state(bob) == "CheckoutForm:coupon"
    await e2e.say(bob, " save1 ")
    assert e2e.last(bob) == summary(qty=2, price="$5.00", subtotal="$10.00", total="$9.00", where=pickup_at(),
                                    payment=en("pay at pickup"), coupon=see("Coupon {code}: −{discount}", code="SAVE1", discount="$1.00"))
    # Back to the coupon step and pick his own coupon with the button instead.
    await e2e.press(bob, BACK)
    await e2e.press(bob, "🎟 BOBS20 · −20%")
    assert e2e.last(bob) == summary(qty=2, price="$5.00", subtotal="$10.00", total="$8.00", where=pickup_at(),
                                    payment=en("pay at pickup"), coupon=see("Coupon {code}: −{discount}", code="BOBS20", discount="$2.00"))
    await e2e.press(bob, CONFIRM)
    [order] = await orders_of(e2e)
    assert (order.total, order.discount, order.coupon_id) == (800, 200, mine.id)
    assert (await coupon_row(e2e, mine.id)).uses == 1 and (await coupon_row(e2e, good.id)).uses == 0
    assert [(r.coupon_id, r.order_id, r.user_id) for r in await redemptions(e2e)] == [(mine.id, order.id, bob.id)]
    # A forged coupon button of another community is refused like an unknown code.
    await e2e.say(bob, f"/start buy-{shop.product.id}")
    await e2e.press(bob, "1")
    await e2e.press(bob, "📍 North Gate")
    tag = _tag(e2e.last_msg(bob))
    foreign = (await issue_coupon(e2e, other.community_id, "THEIRS")).id
    await e2e.press_data(bob, f"co:{tag}:c:{foreign}")
    assert e2e.last(bob) == reasked(see("This button is no longer valid."), COUPON_STEP)
    await e2e.press_data(bob, f"co:{tag}:p:-99999999999")  # not this step's button
    assert await e2e.fsm_state(bob) == "CheckoutForm:coupon"


async def test_html_in_product_pickup_and_address_is_shown_as_typed(e2e: E2E, group: Group) -> None:
    title = "<b>Tom & Jerry</b> > 5"
    shop = await open_shop(e2e, group, title=title, pickups=("Gate <A> & B",), delivery_enabled=True)
    bob = group.members[0]
    await start_bot(e2e, bob)
    await e2e.say(bob, "/buy 1", group.chat)
    assert e2e.last(bob).splitlines()[0] == f"#1 · {title}"
    await e2e.press(bob, "1")
    assert e2e.last_msg(bob).buttons[0] == ["📍 Gate <A> & B"]
    await e2e.press(bob, "📍 Gate <A> & B")
    await e2e.press(bob, NO_COUPON)
    assert f"#1 · {title}" in e2e.last(bob) and "Pickup: Gate <A> & B" in e2e.last(bob)
    await e2e.press(bob, CONFIRM)
    assert e2e.last(bob).splitlines()[0] == f"Order #1 · {title} × 1 · $5.00"
    # Delivery with an address full of markup.
    address = "12 <Main> St & \"Co\" </b>"
    await e2e.say(bob, f"/start buy-{shop.product.id}-1")
    await e2e.press(bob, en("🚚 Deliver to my address"))
    await e2e.say(bob, "x" * 301)
    assert e2e.last(bob).startswith(see("The address is too long (at most {max} characters).", max=300))
    await e2e.say(bob, address)
    assert e2e.last(bob) == COUPON_STEP
    await e2e.press(bob, NO_COUPON)
    assert see("Delivery to: {address}", address=escape(address)) in e2e.last(bob)
    await e2e.press(bob, CONFIRM)
    orders = await orders_of(e2e)
    assert (orders[1].delivery_address, orders[1].pickup_point_id) == (address, None)
    await e2e.say(bob, "/orders")
    assert f"Order #2 · {title} × 1 · $5.00" in e2e.last(bob) and f"Delivery to: {address}" in e2e.last(bob)


async def test_a_shop_without_pickup_points_or_payment_says_so(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, pickups=())
    bob = group.members[0]
    await e2e.say(bob, f"/start buy-{shop.product.id}-1")
    assert e2e.last(bob) == see("This shop has no pickup point yet, so orders cannot be placed. Please tell the leader.")
    assert await e2e.fsm_state(bob) is None
    async with e2e.db() as s:
        await update_shop_settings(s, community=await s.get(Community, shop.community_id), actor_id=group.leader.id,
                                   now=now(), pay_at_pickup=False)
    await e2e.say(bob, f"/start buy-{shop.product.id}")
    assert e2e.last(bob) == see("This shop does not take orders yet: no way of paying is set up. Please tell the leader.")


# ----- Confirm under change and contention -------------------------------------------------------

async def test_price_changed_between_summary_and_confirm_shows_the_new_summary(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, price=500)
    bob = group.members[0]
    await checkout_to_summary(e2e, bob, shop.product, qty="2")
    async with e2e.db() as s:
        await products.edit(s, community_id=shop.community_id, product_id=shop.product.id, actor_id=group.leader.id,
                            now=now(), price=650)
    await e2e.press(bob, CONFIRM)
    assert e2e.last(bob) == reasked(see("The price changed since you saw it. Please check the new summary."),
                                    summary(qty=2, price="$6.50", subtotal="$13.00", total="$13.00", where=pickup_at(),
                                            payment=en("pay at pickup")))
    assert await orders_of(e2e) == []
    assert (await product_row(e2e, shop.product.id)).stock == 10
    await e2e.press(bob, CONFIRM)
    [order] = await orders_of(e2e)
    assert (order.unit_price, order.total) == (650, 1300)


async def test_two_members_race_for_the_last_unit(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group, stock=1)
    bob, carol = group.members
    await checkout_to_summary(e2e, bob, shop.product)
    await checkout_to_summary(e2e, carol, shop.product)
    e2e.clock.advance()
    callbacks = [e2e.emu.press(bob, e2e.last_msg(bob), CONFIRM), e2e.emu.press(carol, e2e.last_msg(carol), CONFIRM)]
    await e2e.settle()
    [order] = await orders_of(e2e)
    winner, loser = (bob, carol) if order.user_id == bob.id else (carol, bob)
    assert e2e.last(winner).startswith(see("Order #{id} · {title} × {qty} · {amount}", id=order.id, title="Apples", qty=1, amount="$5.00"))
    assert e2e.last(loser) == see("Product #{number} is sold out.", number=1)
    assert await e2e.fsm_state(loser) is None
    product = await product_row(e2e, shop.product.id)
    assert (product.stock, product.sold) == (0, 1)
    assert all(e2e.answer(c) for c in callbacks)


async def test_many_members_race_for_a_few_units(e2e: E2E) -> None:
    """Six buyers confirm at once for three units: three orders, three told it is sold out."""
    buyers = [e2e.emu.add_user(f"Buyer{n}") for n in range(6)]
    group = await e2e.make_group(members=buyers)
    shop = await open_shop(e2e, group, stock=3)
    for buyer in buyers:
        await checkout_to_summary(e2e, buyer, shop.product)
    e2e.clock.advance()
    for buyer in buyers:
        e2e.emu.press(buyer, e2e.last_msg(buyer), CONFIRM)
    await e2e.settle()
    placed = await orders_of(e2e)
    assert len(placed) == 3 and len({o.user_id for o in placed}) == 3
    sold_out = [b for b in buyers if e2e.last(b) == see("Product #{number} is sold out.", number=1)]
    assert len(sold_out) == 3 and not {b.id for b in sold_out} & {o.user_id for o in placed}
    product = await product_row(e2e, shop.product.id)
    assert (product.stock, product.sold) == (0, 3)


async def test_double_tap_on_confirm_makes_one_order(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group)
    bob = group.members[0]
    await checkout_to_summary(e2e, bob, shop.product, qty="2")
    e2e.clock.advance()
    summary_message = e2e.last_msg(bob)
    taps = [e2e.emu.press(bob, summary_message, CONFIRM), e2e.emu.press(bob, summary_message, CONFIRM)]
    await e2e.settle()
    [order] = await orders_of(e2e)
    assert order.quantity == 2
    assert (await product_row(e2e, shop.product.id)).stock == 8
    # One tap placed the order; the other found it placed, or the checkout already closed.
    answers = Counter(e2e.answer(t).text for t in taps)
    assert answers[en("Order placed.")] == 1 and answers.total() == 2
    assert set(answers) <= {en("Order placed."), en("This order is already placed."), CLOSED}
    placed_texts = [t for t in e2e.bot_texts(bob) if t.startswith("Order #")]
    assert len(placed_texts) == 1
    # The same press delivered again changes nothing either.
    e2e.emu.redeliver(e2e.last_update_id("callback_query"))
    await e2e.settle()
    assert len(await orders_of(e2e)) == 1

