"""Products and their cards in the group, end to end: the leader's new-product form with every
refusal, Back and Cancel, edits, pause/resume/archive, posting now and at a community-local time
(once, even when the job runs twice or concurrently; missed when found past the grace period),
and cards kept current with one edit per card per run and never an edit that changes nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from html import escape
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from e2e_harness import BOT_USERNAME, E2E, Group, en, zh
from sqlmodel import select

from bot.sandbox import SimMessage, SimUser
from bot.sandbox.api.messages import register_file
from bot.sandbox.formatting import parse_text
from bot.services import orders, posts, products, settings
from bot.services.shop_settings import update_shop_settings
from bot.views.keyboards import BuyProduct
from models import Community
from models.shop import PaymentMethod, PostStatus, Product, ProductPost, ProductStatus

FORM = [[en("« Back"), en("✖ Cancel")]]
NOT_LEADER = "Only this community's leaders can do that."
TITLE_PROMPT = "<b>New product</b> · step 1 of 6\nSend the title (up to {max} characters)."
DESC_PROMPT = "Step 2 of 6 · Send a description (up to {max} characters), or press Skip."
PRICE_PROMPT = "Step 3 of 6 · Send the price in {currency}, for example 12.5 or 12,50."
STOCK_PROMPT = "Step 4 of 6 · How many are in stock? Send a number, or press Unlimited."
LIMIT_PROMPT = "Step 5 of 6 · The most one member may buy. Send a number, or press No limit."
PHOTO_PROMPT = "Step 6 of 6 · Send a photo of the product, or press No photo."
PREVIEW_PROMPT = "Above is the card as the group will see it, with the buttons Buy and Share under it. Save the product?"
HOW_TO_BUY = "To order, press Buy or send /buy {number}; for several, add the quantity: /buy {number} 2."
VIEW_BUTTONS = [[en("✏️ Title"), en("✏️ Description")], [en("✏️ Price"), en("✏️ Stock")],
                [en("✏️ Limit"), en("🖼 Photo")], [en("📣 Post now"), en("🕒 Schedule post")],
                [en("⏸ Pause"), en("🗄 Archive")], [en("« Products")]]


def seen(html: str) -> str:
    """What a reader sees of `html` (the emulator's parser, which refuses what Telegram refuses)."""
    return parse_text(html, "HTML").text


def en_seen(msgid: str, **kwargs: object) -> str:
    return seen(en(msgid, **kwargs))


def now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture(autouse=True)
def _jobs_run_only_when_called(e2e: E2E) -> None:
    """The scheduler would run the post jobs every few seconds of wall time; these tests run them
    with `run_job` at the moments they name, so the background runs are paused."""
    e2e.app.scheduler._aps.pause()


async def configure(e2e: E2E, group: Group, *, currency: str = "USD", tz: str = "UTC", grace: int | None = None) -> None:
    async with e2e.db() as s:
        cid, who = group.community_id, group.leader.id
        if currency != "USD":
            await settings.set_currency(s, community_id=cid, actor_id=who, raw=currency, now=now())
        if tz != "UTC":
            await settings.set_timezone(s, community_id=cid, actor_id=who, raw=tz, now=now())
        if grace is not None:
            community = await s.get(Community, cid)
            await update_shop_settings(s, community=community, actor_id=who, now=now(), post_grace_minutes=grace)


async def open_products(e2e: E2E, leader: SimUser) -> None:
    await e2e.say(leader, "/admin")
    await e2e.press(leader, en("📦 Products"))


async def product_rows(e2e: E2E, community_id: int) -> list[Product]:
    async with e2e.db() as s:
        return list(await s.exec(select(Product).where(Product.community_id == community_id).order_by(Product.number)))


async def post_rows(e2e: E2E, product_id: int) -> list[ProductPost]:
    async with e2e.db() as s:
        return list(await s.exec(select(ProductPost).where(ProductPost.product_id == product_id).order_by(ProductPost.id)))


async def add_product(e2e: E2E, group: Group, *, title: str = "Eggs", description: str = "", price: int = 1250,
                      stock: int | None = 10, limit: int | None = None, photo: str | None = None) -> Product:
    async with e2e.db() as s:
        community = await s.get(Community, group.community_id)
        return await products.create(s, community=community, actor_id=group.leader.id, now=now(), draft=products.ProductDraft(
            title=title, description=description, price=price, stock=stock, per_member_limit=limit, photo_file_id=photo))


async def open_product(e2e: E2E, leader: SimUser, product: Product) -> None:
    await open_products(e2e, leader)
    await e2e.press(leader, f"#{product.number} {product.title}")


def group_cards(e2e: E2E, group: Group) -> list[SimMessage]:
    return [m for m in e2e.emu.bot_messages(group.chat) if m.visible.startswith("#")]


def edits(e2e: E2E) -> list:
    return [c for c in e2e.emu.requests if c.method.lower() in ("editmessagetext", "editmessagecaption")
            and int(c.params.get("chat_id", 0)) < 0]


def assert_no_empty_edits(e2e: E2E) -> None:
    """No card in a group was ever edited to what it already showed. (Leader menus may be: a menu
    re-drawn after a refused press is tolerated by `edit_or_send`.)"""
    assert not [c for c in e2e.emu.requests if "message is not modified" in (c.description or "")
                and int(c.params.get("chat_id", 0)) < 0]


# ----- the new-product form ----------------------------------------------------------------------

async def test_new_product_form_refuses_bad_input_then_saves(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await configure(e2e, group, currency="CNY")
    await open_products(e2e, alice)
    assert e2e.last(alice) == en_seen("<b>Products · {title}</b>", title="Green Valley") + "\n" + en(
        "No products yet. Add the first one.")
    assert e2e.last_msg(alice).buttons == [[en("➕ New product")], [en("🗄 Archived")], [en("« Back")]]

    await e2e.press(alice, en("➕ New product"))
    assert e2e.last(alice) == en_seen(TITLE_PROMPT, max=64)
    assert e2e.last_msg(alice).buttons == FORM
    assert await e2e.fsm_state(alice) == "ProductForm:title"

    async def refused(answer: str | None, reason: str, prompt: str, state: str, buttons=FORM) -> None:
        if answer is None:
            await e2e.send_raw(alice, text="   ", html="   ")
        else:
            await e2e.say(alice, answer)
        assert e2e.last(alice) == seen(escape(reason) if reason.startswith("“") else reason) + "\n\n" + prompt
        assert e2e.last_msg(alice).buttons == buttons
        assert await e2e.fsm_state(alice) == state

    title_prompt = en_seen(TITLE_PROMPT, max=64)
    await refused("x" * 65, en("The title has {length} characters; the limit is {max}. Send a shorter one.", length=65, max=64),
                  title_prompt, "ProductForm:title")
    await refused(None, en("The title is empty. Send the product's name as text."), title_prompt, "ProductForm:title")
    await e2e.send_raw(alice, service={"location": {"latitude": 31.2, "longitude": 121.5}})
    assert e2e.last(alice) == en("Please answer with text.") + "\n\n" + title_prompt

    title, description = "Eggs <b>&</b> milk", "Farm <i>fresh</i> & cold"
    await e2e.say(alice, title)
    assert e2e.last(alice) == en(DESC_PROMPT, max=700)
    assert e2e.last_msg(alice).buttons == [[en("Skip")]] + FORM
    await e2e.say(alice, description)
    price_prompt = en(PRICE_PROMPT, currency="CNY")
    assert e2e.last(alice) == price_prompt
    for bad, reason in (
        ("abc", en("“{value}” is not an amount. Send a number such as 12.5 or 12,50.", value="abc")),
        ("0", en("The price must be more than zero.")),
        ("-1", en("The amount cannot be negative.")),
        ("12.345", en("{currency} has {digits} decimal places; send the amount with no more than that.", currency="CNY", digits=2)),
    ):
        await refused(bad, reason, price_prompt, "ProductForm:price")
    await e2e.say(alice, "12,50")
    assert e2e.last(alice) == en(STOCK_PROMPT)
    stock_buttons = [[en("♾ Unlimited")]] + FORM
    assert e2e.last_msg(alice).buttons == stock_buttons
    await refused("x", en("“{value}” is not a whole number.", value="x"), en(STOCK_PROMPT), "ProductForm:stock", stock_buttons)
    await refused("-5", en("Send a whole number from 1 to {max}.", max=1_000_000), en(STOCK_PROMPT), "ProductForm:stock",
                  stock_buttons)
    await e2e.say(alice, "10")
    limit_buttons = [[en("No limit")]] + FORM
    await refused("abc", en("“{value}” is not a whole number.", value="abc"), en(LIMIT_PROMPT), "ProductForm:limit",
                  limit_buttons)
    await e2e.say(alice, "3")
    assert e2e.last(alice) == en(PHOTO_PROMPT)
    photo_buttons = [[en("No photo")]] + FORM
    await refused("a nice picture", en("That is not a photo. Send the picture as a photo (not as a file)."),
                  en(PHOTO_PROMPT), "ProductForm:photo", photo_buttons)
    assert await product_rows(e2e, cid) == []  # nothing is written before Save

    await e2e.press(alice, en("No photo"))
    *_, card, confirm = e2e.emu.bot_messages(alice)
    assert card.photo is None
    assert card.visible.splitlines() == [
        f"#1 · {title}", description, "", en("Price: {price}", price="CN¥12.50"), en("Left: {count}", count=10),
        en("Limit: {count} per member", count=3), en(HOW_TO_BUY, number=1)]
    assert escape(title) in card.html
    assert confirm.visible == en(PREVIEW_PROMPT)
    assert confirm.buttons == [[en("✅ Save")]] + FORM
    await refused("ok", en("Press Save to add the product, or Back to change it."), en(PREVIEW_PROMPT),
                  "ProductForm:preview", [[en("✅ Save")]] + FORM)
    assert await product_rows(e2e, cid) == []

    # Save tapped twice at once (a double tap): one product, the confirmation edited into its view.
    e2e.clock.advance()
    taps = [e2e.emu.press(alice, confirm, en("✅ Save")) for _ in range(2)]
    await e2e.settle()
    assert sorted(e2e.answer(tap).text for tap in taps) in (
        [en("Saved."), en("This product is already saved.")], [en("Saved."), en("This form is no longer open.")])
    lines = confirm.visible.splitlines()
    assert lines[:8] == [en("✅ Product #{number} is saved.", number=1), "", f"#1 · {title}",
                         en("Status: {status}", status=en("on sale")), en("Price: {price}", price="CN¥12.50"),
                         en("Stock left: {stock} · Sold: {sold}", stock=10, sold=0),
                         en("Limit per member: {limit}", limit=3), en("Photo: {photo}", photo=en("no"))]
    assert lines[-1] == description
    assert confirm.buttons == VIEW_BUTTONS
    [product] = await product_rows(e2e, cid)
    assert (product.number, product.title, product.description, product.price, product.stock, product.per_member_limit,
            product.photo_file_id, product.status) == (1, title, description, 1250, 10, 3, None, "active")
    [created] = await e2e.audit(cid, "product.create")
    assert created.actor_id == alice.id
    assert await e2e.fsm_state(alice) is None

    # Save pressed again (the repeated prompt has it too) finds the form closed: still one product.
    callback = await e2e.press(alice, en("✅ Save"))
    assert e2e.answer(callback).text == en("This form is no longer open.")
    assert len(await product_rows(e2e, cid)) == 1

    await open_products(e2e, alice)
    assert e2e.last(alice).splitlines()[1] == seen(f"#1 {escape(title)} — CN¥12.50 · " + en("left {count}", count=10)
                                                   + " · " + en("sold {count}", count=0))


async def test_back_and_cancel_on_the_new_product_form(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await open_products(e2e, alice)
    await e2e.press(alice, en("➕ New product"))
    await e2e.say(alice, "Tea")
    skip_on_description = e2e.last_msg(alice)
    await e2e.say(alice, "Green tea")
    assert await e2e.fsm_state(alice) == "ProductForm:price"

    # A button left on an earlier prompt does not act on the current step.
    callback = await e2e.press(alice, en("Skip"), message=skip_on_description)
    assert e2e.answer(callback).text == en("That step is already behind you. Use the buttons under the latest message.")
    assert await e2e.fsm_state(alice) == "ProductForm:price"

    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice) == en(DESC_PROMPT, max=700)
    assert await e2e.fsm_state(alice) == "ProductForm:description"
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice) == en_seen(TITLE_PROMPT, max=64)
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice).startswith(en("Nothing was changed.") + "\n\n" + en_seen("<b>Products · {title}</b>", title="Green Valley"))
    assert await e2e.fsm_state(alice) is None

    # Skip and Unlimited, then Back from the preview, then Cancel.
    await e2e.press(alice, en("➕ New product"))
    await e2e.say(alice, "Tea")
    await e2e.press(alice, en("Skip"))
    assert e2e.last(alice) == en(PRICE_PROMPT, currency="USD")
    await e2e.say(alice, "3")
    await e2e.press(alice, en("♾ Unlimited"))
    await e2e.press(alice, en("No limit"))
    await e2e.press(alice, en("No photo"))
    card = e2e.emu.bot_messages(alice)[-2]
    assert card.visible.splitlines() == ["#1 · Tea", "", en("Price: {price}", price="$3.00"), en("In stock: unlimited"),
                                         en(HOW_TO_BUY, number=1)]
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice) == en(PHOTO_PROMPT)
    assert await e2e.fsm_state(alice) == "ProductForm:photo"
    await e2e.press(alice, en("✖ Cancel"))
    assert e2e.last(alice).startswith(en("Cancelled. Nothing was saved.") + "\n\n" + en_seen(
        "<b>Products · {title}</b>", title="Green Valley"))
    assert await e2e.fsm_state(alice) is None
    assert await product_rows(e2e, cid) == []
    await e2e.say(alice, "Tea")  # the form is closed: just text now
    assert e2e.last(alice) == en("I did not understand that. Send /help to see what I can do.")

    # /cancel closes it too.
    await open_products(e2e, alice)
    await e2e.press(alice, en("➕ New product"))
    assert await e2e.fsm_state(alice) == "ProductForm:title"
    await e2e.say(alice, "/cancel")
    assert await e2e.fsm_state(alice) is None
    assert await product_rows(e2e, cid) == []


# ----- posting -----------------------------------------------------------------------------------

async def test_photo_product_is_posted_as_a_photo_with_caption(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await open_products(e2e, alice)
    await e2e.press(alice, en("➕ New product"))
    for answer in ("Strawberries", "From the hill farm", "8.8", "2"):
        await e2e.say(alice, answer)
    await e2e.press(alice, en("No limit"))
    photo = register_file(e2e.emu, "photo", "https://example.com/strawberries.jpg")
    await e2e.send_raw(alice, photo=photo)
    preview, confirm = e2e.emu.bot_messages(alice)[-2:]
    assert preview.photo is photo and preview.caption.startswith("#1 · Strawberries\nFrom the hill farm")
    await e2e.press(alice, en("✅ Save"))
    [product] = await product_rows(e2e, cid)
    assert product.photo_file_id == photo.file_id
    assert en("Photo: {photo}", photo=en("yes")) in confirm.visible.splitlines()

    callback = await e2e.press(alice, en("📣 Post now"))
    assert e2e.answer(callback).text in (None, "")
    assert e2e.last(alice).startswith(en("✅ Posted to the group.") + "\n\n#1 · Strawberries")
    [card] = e2e.emu.bot_messages(group.chat)[-1:]
    assert card.photo is photo and card.text is None
    assert card.caption.splitlines() == ["#1 · Strawberries", "From the hill farm", "", en("Price: {price}", price="$8.80"),
                                         en("Left: {count}", count=2), en(HOW_TO_BUY, number=1)]
    assert card.buttons == [[en("🛒 Buy"), en("↗️ Share")]]
    [post] = await post_rows(e2e, product.id)
    assert (post.status, post.chat_id, post.message_id, post.with_photo, post.created_by) == (
        PostStatus.POSTED, group.chat.id, card.message_id, True, alice.id)

    # Stock moves: the caption is edited (editMessageCaption), once, and sold out drops Buy.
    async with e2e.db() as s:
        await products.edit(s, community_id=cid, product_id=product.id, actor_id=alice.id, now=now(), stock=0)
    assert await e2e.app.run_job("refresh_cards", now()) == "1 edited, 0 unchanged, 0 failed, 0 skipped"
    [edit] = edits(e2e)
    assert edit.method == "editMessageCaption" and edit.ok
    assert card.photo is photo and en("❌ SOLD OUT") in card.caption.splitlines()
    assert card.buttons == []  # Share would only lead to "sold out"
    assert_no_empty_edits(e2e)


async def test_text_card_escapes_and_carries_buy_and_share(e2e: E2E, group: Group) -> None:
    alice = group.leader
    title, description = "Cake <b>&</b> cream", "<script>alert(1)</script> & more"
    product = await add_product(e2e, group, title=title, description=description, stock=None, limit=2)
    await open_product(e2e, alice, product)
    await e2e.press(alice, en("📣 Post now"))
    card = e2e.emu.last_bot_message(group.chat)
    assert card.photo is None
    assert card.text.splitlines() == [f"#1 · {title}", description, "", en("Price: {price}", price="$12.50"),
                                      en("In stock: unlimited"), en("Limit: {count} per member", count=2),
                                      en(HOW_TO_BUY, number=1)]
    assert escape(title) in card.html and escape(description) in card.html
    buy, share = card.reply_markup["inline_keyboard"][0]
    assert buy["text"] == en("🛒 Buy") and BuyProduct.unpack(buy["callback_data"]).product_id == product.id
    query = parse_qs(urlsplit(share["url"]).query)
    assert query == {"url": [f"https://t.me/{BOT_USERNAME}?start=buy-{product.id}"], "text": [title]}
    [post] = await post_rows(e2e, product.id)
    assert (post.status, post.message_id, post.with_photo) == (PostStatus.POSTED, card.message_id, False)


async def test_card_speaks_the_communitys_language(e2e: E2E, group: Group) -> None:
    alice = group.leader
    await configure(e2e, group, currency="CNY")
    async with e2e.db() as s:
        await settings.set_default_locale(s, community_id=group.community_id, actor_id=alice.id, locale="zh_Hans", now=now())
    product = await add_product(e2e, group, title="鸡蛋", stock=6)
    await open_product(e2e, alice, product)
    await e2e.press(alice, en("📣 Post now"))
    card = e2e.emu.last_bot_message(group.chat)
    assert card.text.splitlines()[2:4] == [zh("Price: {price}", price="¥12.50"), zh("Left: {count}", count=6)]
    assert card.buttons == [[zh("🛒 Buy"), zh("↗️ Share")]]


async def test_scheduled_post_goes_out_at_the_local_time_once(e2e: E2E, group: Group) -> None:
    alice, chat = group.leader, group.chat
    await configure(e2e, group, tz="Asia/Shanghai", grace=30)
    product = await add_product(e2e, group, title="Dumplings")
    await open_product(e2e, alice, product)
    await e2e.press(alice, en("🕒 Schedule post"))
    assert await e2e.fsm_state(alice) == "PostForm:time"
    prompt = e2e.last(alice)
    head, tail = en("When should #{number} be posted? Send a time in {tz}: HH:MM (the next time it comes) or "
                    "YYYY-MM-DD HH:MM. It is {now} there now.", number=1, tz="Asia/Shanghai", now="\0").split("\0")
    assert prompt.startswith(head) and prompt.endswith(tail)
    shown_now = datetime.strptime(prompt[len(head):-len(tail)], "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    assert abs(shown_now - now()) < timedelta(minutes=2)
    assert e2e.last_msg(alice).buttons == FORM
    for bad, reason in (("tomorrow", en("“{value}” is not a time. Send HH:MM (for example 18:30) or YYYY-MM-DD HH:MM.",
                                        value="tomorrow")),
                        ("2020-01-01 10:00", en("That time has already passed.")),
                        ("2099-01-01 10:00", en("Posts can be scheduled up to 60 days ahead."))):
        await e2e.say(alice, bad)
        assert e2e.last(alice) == reason + "\n\n" + prompt
    assert await post_rows(e2e, product.id) == []

    zone = ZoneInfo("Asia/Shanghai")
    day = (now().astimezone(zone) + timedelta(days=1)).date()
    local = datetime(day.year, day.month, day.day, 9, 30, tzinfo=zone)
    due = local.astimezone(timezone.utc)
    when = f"{day.isoformat()} 09:30"
    await e2e.say(alice, when)
    reply = e2e.last(alice)
    assert reply.startswith(en("🕒 #{number} will be posted on {when} ({tz}). If I am offline then, it goes out when I "
                               "am back, up to {grace} minutes late; later than that it is not sent and I tell you it "
                               "was missed.", number=1, when=when, tz="Asia/Shanghai", grace=30))
    assert en("🕒 {when} — scheduled", when=when) in reply.splitlines()
    assert [en("✖ Cancel post {when}", when=when)] in e2e.last_msg(alice).buttons
    [post] = await post_rows(e2e, product.id)
    assert (post.status, post.due_at, post.grace_minutes, post.created_by) == (PostStatus.SCHEDULED, due, 30, alice.id)

    before = len(e2e.emu.bot_messages(chat))
    assert await e2e.app.run_job("send_due_posts", due - timedelta(seconds=1)) == "0 sent, 0 missed, 0 failed"
    assert len(e2e.emu.bot_messages(chat)) == before
    assert await e2e.app.run_job("send_due_posts", due + timedelta(minutes=5)) == "1 sent, 0 missed, 0 failed"
    assert await e2e.app.run_job("send_due_posts", due + timedelta(minutes=6)) == "0 sent, 0 missed, 0 failed"
    cards = e2e.emu.bot_messages(chat)[before:]
    assert [m.text.splitlines()[0] for m in cards] == ["#1 · Dumplings"]
    [post] = await post_rows(e2e, product.id)
    assert (post.status, post.message_id) == (PostStatus.POSTED, cards[0].message_id)

    # Two workers at once (or a restart racing the scheduler): one message.
    async with e2e.db() as s:
        community = await s.get(Community, group.community_id)
        second = await posts.schedule(s, community=community, product=product, actor_id=alice.id,
                                      due_at=due + timedelta(hours=1), now=now())
    at = due + timedelta(hours=1, seconds=5)
    results = await asyncio.gather(e2e.app.run_job("send_due_posts", at), e2e.app.run_job("send_due_posts", at))
    assert sorted(results) == ["0 sent, 0 missed, 0 failed", "1 sent, 0 missed, 0 failed"]
    assert len(e2e.emu.bot_messages(chat)) == before + 2
    assert [(p.id, p.status) for p in await post_rows(e2e, product.id)] == [
        (post.id, PostStatus.POSTED), (second.id, PostStatus.POSTED)]

    # A worker claimed a post and died before it knew whether it went out (a crash, a restart):
    # it may be in the group already, so it is never sent again.
    async with e2e.db() as s:
        community = await s.get(Community, group.community_id)
        third = await posts.schedule(s, community=community, product=product, actor_id=alice.id,
                                     due_at=due + timedelta(hours=2), now=now())
        [claimed] = await posts.claim_due(s, now=due + timedelta(hours=2))
    assert claimed.post.id == third.id
    for later in (timedelta(hours=2, minutes=1), timedelta(hours=2, minutes=11)):
        assert await e2e.app.run_job("send_due_posts", due + later) == "0 sent, 0 missed, 0 failed"
    assert len(e2e.emu.bot_messages(chat)) == before + 2
    assert (await post_rows(e2e, product.id))[2].status == PostStatus.FAILED


async def test_post_found_past_its_grace_is_reported_missed_not_sent(e2e: E2E, group: Group) -> None:
    alice, chat = group.leader, group.chat
    await configure(e2e, group, grace=20)
    product = await add_product(e2e, group, title="Buns")
    await open_product(e2e, alice, product)
    await e2e.press(alice, en("🕒 Schedule post"))
    local = now() + timedelta(days=1)
    when = local.strftime("%Y-%m-%d %H:%M")
    await e2e.say(alice, when)
    [post] = await post_rows(e2e, product.id)
    before = len(e2e.emu.bot_messages(chat))

    # The bot was down: it comes back 21 minutes after the post was due.
    assert await e2e.app.run_job("send_due_posts", post.due_at + timedelta(minutes=21)) == "0 sent, 1 missed, 0 failed"
    assert len(e2e.emu.bot_messages(chat)) == before
    assert e2e.last(alice) == en(
        "⚠️ The post of #{number} {title} scheduled for {when} ({tz}) was missed: I was offline then and came back more "
        "than {grace} minutes late, so it was not sent. Post it now or schedule it again in /admin.",
        number=1, title="Buns", when=when, tz="UTC", grace=20)
    [post] = await post_rows(e2e, product.id)
    assert post.status == PostStatus.MISSED and post.message_id is None
    assert await e2e.app.run_job("send_due_posts", post.due_at + timedelta(minutes=22)) == "0 sent, 0 missed, 0 failed"

    await open_product(e2e, alice, product)
    assert en("⚠️ {when} — missed: I was offline then", when=when) in e2e.last(alice).splitlines()
    assert not [row for row in e2e.last_msg(alice).buttons if row[0].startswith("✖")]


async def test_posts_that_cannot_go_out_are_reported_to_the_leader(e2e: E2E, group: Group) -> None:
    alice, chat, cid = group.leader, group.chat, group.community_id
    e2e.allow_api_errors(400)  # Telegram refuses a photo it does not know
    broken = await add_product(e2e, group, title="Figs", photo="AgAC-no-such-file")
    paused = await add_product(e2e, group, title="Plums")
    when = (now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    async with e2e.db() as s:
        community = await s.get(Community, cid)
        for product in (broken, paused):
            await posts.schedule(s, community=community, product=product, actor_id=alice.id, due_at=when, now=now())
        await products.set_status(s, community_id=cid, product_id=paused.id, actor_id=alice.id,
                                  status=ProductStatus.PAUSED, now=now())
    await e2e.say(alice, "/start")  # Alice has a private chat with the bot
    before = len(e2e.emu.bot_messages(chat))

    assert await e2e.app.run_job("send_due_posts", when) == "0 sent, 0 missed, 2 failed"
    assert len(e2e.emu.bot_messages(chat)) == before
    told = e2e.bot_texts(alice)[-2:]
    failed = ("⚠️ The post of #{number} {title} scheduled for {when} ({tz}) did not go out: {reason}")
    local = when.strftime("%Y-%m-%d %H:%M")
    assert sorted(told) == sorted([
        en(failed, number=1, title="Figs", when=local, tz="UTC",
           reason=en("Telegram refused it ({detail}).", detail="Bad Request: wrong file identifier/HTTP URL specified")),
        en(failed, number=2, title="Plums", when=local, tz="UTC", reason=en("the product is paused.")),
    ])
    assert [p.status for p in await post_rows(e2e, broken.id) + await post_rows(e2e, paused.id)] == [PostStatus.FAILED] * 2

    # Post now says so in place.
    await open_product(e2e, alice, broken)
    await e2e.press(alice, en("📣 Post now"))
    assert e2e.last(alice).startswith(en("⚠️ Not posted: {reason}", reason=en(
        "Telegram refused it ({detail}).", detail="Bad Request: wrong file identifier/HTTP URL specified")) + "\n\n#1 · Figs")
    assert len(e2e.emu.bot_messages(chat)) == before


async def test_cancel_a_scheduled_post(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    product = await add_product(e2e, group, title="Rice")
    await open_product(e2e, alice, product)
    await e2e.press(alice, en("🕒 Schedule post"))
    when = (now() + timedelta(hours=5)).strftime("%Y-%m-%d %H:%M")
    await e2e.say(alice, when)
    callback = await e2e.press(alice, en("✖ Cancel post {when}", when=when))
    assert e2e.answer(callback).text == en("The post is cancelled.")
    assert en("🕒 {when} — scheduled", when=when) not in e2e.last(alice).splitlines()
    [post] = await post_rows(e2e, product.id)
    assert post.status == PostStatus.CANCELLED
    assert len(await e2e.audit(cid, "post.cancel")) == 1
    assert await e2e.app.run_job("send_due_posts", post.due_at + timedelta(minutes=1)) == "0 sent, 0 missed, 0 failed"


# ----- keeping cards current ---------------------------------------------------------------------

async def test_stock_changes_edit_each_card_once_per_run_and_never_to_the_same_content(e2e: E2E, group: Group) -> None:
    alice, bob, cid = group.leader, group.members[0], group.community_id
    product = await add_product(e2e, group, title="Milk", stock=10)
    await open_product(e2e, alice, product)
    await e2e.press(alice, en("📣 Post now"))
    card = e2e.emu.last_bot_message(group.chat)
    assert en("Left: {count}", count=10) in card.text.splitlines()
    # Nothing changed since it was posted: nothing to edit.
    assert await e2e.app.run_job("refresh_cards", now()) == "0 edited, 0 unchanged, 0 failed, 0 skipped"

    async with e2e.db() as s:
        for stock in (9, 8, 7):
            await products.edit(s, community_id=cid, product_id=product.id, actor_id=alice.id, now=now(), stock=stock)
    assert await e2e.app.run_job("refresh_cards", now()) == "1 edited, 0 unchanged, 0 failed, 0 skipped"
    assert len(edits(e2e)) == 1 and card.edited == 1
    assert en("Left: {count}", count=7) in card.text.splitlines()
    assert await e2e.app.run_job("refresh_cards", now()) == "0 edited, 0 unchanged, 0 failed, 0 skipped"

    # Orders reserve stock: two orders between runs, one edit.
    async with e2e.db() as s:
        community = await s.get(Community, cid)
        for key, quantity in (("k1", 2), ("k2", 1)):
            await orders.place(s, community=community, user_id=bob.id, product_id=product.id, quantity=quantity,
                               unit_price=product.price, payment_method=PaymentMethod.PICKUP, checkout_key=key,
                               now=now(), delivery_address=None, pickup_point_id=await _pickup_point(e2e, group))
    assert await e2e.app.run_job("refresh_cards", now()) == "1 edited, 0 unchanged, 0 failed, 0 skipped"
    assert en("Left: {count}", count=4) in card.text.splitlines() and card.edited == 2

    # A change the card does not show (a photo for a card already posted as text): no request at all.
    async with e2e.db() as s:
        await products.edit(s, community_id=cid, product_id=product.id, actor_id=alice.id, now=now(), photo_file_id="AgAC-x")
    assert await e2e.app.run_job("refresh_cards", now()) == "0 edited, 1 unchanged, 0 failed, 0 skipped"

    # Sold out: the card says so and Buy is gone.
    async with e2e.db() as s:
        await products.edit(s, community_id=cid, product_id=product.id, actor_id=alice.id, now=now(), stock=0)
    await e2e.app.run_job("refresh_cards", now())
    assert "<b>" + en("❌ SOLD OUT") + "</b>" in card.html
    assert en(HOW_TO_BUY, number=1) not in card.text
    assert card.buttons == [] and card.reply_markup is None  # Share would only lead to "sold out"
    assert len(edits(e2e)) == 3 and all(c.ok for c in edits(e2e))
    [post] = await post_rows(e2e, product.id)
    assert post.refresh_due is False

    # Back in stock: Buy and Share come back.
    async with e2e.db() as s:
        await products.edit(s, community_id=cid, product_id=product.id, actor_id=alice.id, now=now(), stock=3)
    assert await e2e.app.run_job("refresh_cards", now()) == "1 edited, 0 unchanged, 0 failed, 0 skipped"
    assert card.buttons == [[en("🛒 Buy"), en("↗️ Share")]] and en("Left: {count}", count=3) in card.text.splitlines()
    assert_no_empty_edits(e2e)


async def _pickup_point(e2e: E2E, group: Group) -> int:
    points = await e2e.pickup_points(group.community_id)
    if points:
        return points[0].id
    async with e2e.db() as s:
        point = await settings.add_pickup_point(s, community_id=group.community_id, actor_id=group.leader.id,
                                                raw_name="Gate", now=now())
        return point.id


async def test_pause_resume_archive_in_list_and_card(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    product = await add_product(e2e, group, title="Honey", stock=5)
    await open_product(e2e, alice, product)
    await e2e.press(alice, en("📣 Post now"))
    card = e2e.emu.last_bot_message(group.chat)

    callback = await e2e.press(alice, en("⏸ Pause"))
    assert e2e.answer(callback).text == en("Paused.")
    view = e2e.last_msg(alice)
    assert en("Status: {status}", status=en("paused")) in view.visible.splitlines()
    assert [en("▶️ Resume"), en("🗄 Archive")] in view.buttons
    assert [en("📣 Post now"), en("🕒 Schedule post")] not in view.buttons
    await e2e.app.run_job("refresh_cards", now())
    assert en("⏸ Paused: not on sale right now.") in card.text.splitlines()
    assert card.buttons == []
    await e2e.press(alice, en("« Products"))
    assert e2e.last(alice).splitlines()[1].endswith(" · " + en("paused"))

    await e2e.press(alice, "#1 Honey")
    callback = await e2e.press(alice, en("▶️ Resume"))
    assert e2e.answer(callback).text == en("On sale again.")
    await e2e.app.run_job("refresh_cards", now())
    assert card.buttons == [[en("🛒 Buy"), en("↗️ Share")]] and en(HOW_TO_BUY, number=1) in card.text

    # A scheduled post of an archived product is called off.
    await e2e.press(alice, en("🕒 Schedule post"))
    await e2e.say(alice, (now() + timedelta(hours=3)).strftime("%Y-%m-%d %H:%M"))
    await e2e.press(alice, en("🗄 Archive"))
    assert e2e.last(alice) == en("Archive #{number} {title}? It can no longer be bought, its cards in the group say so, "
                                 "and its scheduled posts are cancelled. This cannot be undone.", number=1, title="Honey")
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice).startswith("#1 · Honey")
    await e2e.press(alice, en("🗄 Archive"))
    callback = await e2e.press(alice, en("Yes, archive it"))
    assert e2e.answer(callback).text == en("Archived.")
    assert e2e.last(alice) == en_seen("<b>Products · {title}</b>", title="Green Valley") + "\n" + en(
        "No products yet. Add the first one.")
    await e2e.app.run_job("refresh_cards", now())
    assert card.text.splitlines()[-1] == en("🚫 No longer sold.") and card.reply_markup is None
    assert [p.status for p in await post_rows(e2e, product.id)] == [PostStatus.POSTED, PostStatus.CANCELLED]

    await e2e.press(alice, en("🗄 Archived"))
    assert e2e.last(alice).splitlines()[1].endswith(" · " + en("archived"))
    await e2e.press(alice, "#1 Honey")
    assert e2e.last_msg(alice).buttons == [[en("« Archived")]]
    assert en("Status: {status}", status=en("archived")) in e2e.last(alice).splitlines()
    # Old buttons cannot bring it back or change it.
    callback = await e2e.press_data(alice, f"pra:{cid}:{product.id}:resume:0")
    assert e2e.answer(callback).text == en("Product #{number} is no longer sold.", number=1)
    callback = await e2e.press_data(alice, f"prf:{cid}:{product.id}:price")
    assert e2e.answer(callback).text == en("Product #{number} is no longer sold.", number=1)
    assert (await product_rows(e2e, cid))[0].status == "archived"
    assert_no_empty_edits(e2e)


# ----- edits, pages, roles -----------------------------------------------------------------------

async def test_one_step_edits(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    product = await add_product(e2e, group, title="Bread", description="Rye", stock=4, limit=2)
    await open_product(e2e, alice, product)

    await e2e.press(alice, en("✏️ Title"))
    assert e2e.last(alice) == en("Send the new title of #{number} (up to {max} characters).\nNow: {value}",
                                 number=1, max=64, value="Bread")
    assert await e2e.fsm_state(alice) == "ProductEditForm:title"
    await e2e.say(alice, "y" * 65)
    assert e2e.last(alice).startswith(en("The title has {length} characters; the limit is {max}. Send a shorter one.",
                                         length=65, max=64))
    await e2e.say(alice, "Sourdough")
    assert e2e.last(alice).startswith(en("Saved.") + "\n\n#1 · Sourdough")

    await e2e.press(alice, en("✏️ Price"))
    await e2e.say(alice, "0")
    assert e2e.last(alice).startswith(en("The price must be more than zero."))
    await e2e.say(alice, "4.5")
    await e2e.press(alice, en("✏️ Stock"))
    assert e2e.last_msg(alice).buttons == [[en("♾ Unlimited")]] + FORM
    await e2e.press(alice, en("♾ Unlimited"))
    assert en("Stock left: {stock} · Sold: {sold}", stock="∞", sold=0) in e2e.last(alice).splitlines()
    await e2e.press(alice, en("✏️ Limit"))
    await e2e.press(alice, en("No limit"))
    await e2e.press(alice, en("✏️ Description"))
    await e2e.press(alice, en("Remove the description"))
    await e2e.press(alice, en("🖼 Photo"))
    await e2e.say(alice, "not a photo")
    assert e2e.last(alice).startswith(en("That is not a photo. Send the picture as a photo (not as a file)."))
    photo = register_file(e2e.emu, "photo", "https://example.com/bread.jpg")
    await e2e.send_raw(alice, photo=photo)
    assert e2e.last(alice).startswith(en("Saved."))

    # Back leaves a field unchanged.
    await e2e.press(alice, en("✏️ Title"))
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice).startswith(en("Nothing was changed.") + "\n\n#1 · Sourdough")
    assert await e2e.fsm_state(alice) is None

    [row] = await product_rows(e2e, cid)
    assert (row.title, row.description, row.price, row.stock, row.per_member_limit, row.photo_file_id) == (
        "Sourdough", "", 450, None, None, photo.file_id)
    assert len(await e2e.audit(cid, "product.edit")) == 6


async def test_list_pages_by_ten(e2e: E2E, group: Group) -> None:
    alice = group.leader
    for i in range(1, 13):
        await add_product(e2e, group, title=f"Item {i}", stock=i)
    await open_products(e2e, alice)
    lines = e2e.last(alice).splitlines()
    assert lines[1] == en("Page {page} of {pages}", page=1, pages=2)
    assert lines[2:] == [f"#{i} Item {i} — $12.50 · " + en("left {count}", count=i) + " · " + en("sold {count}", count=0)
                         for i in range(1, 11)]
    assert e2e.last_msg(alice).buttons[10] == ["›"]
    await e2e.press(alice, "›")
    lines = e2e.last(alice).splitlines()
    assert lines[1] == en("Page {page} of {pages}", page=2, pages=2)
    assert [line.split(" — ")[0] for line in lines[2:]] == ["#11 Item 11", "#12 Item 12"]
    assert e2e.last_msg(alice).buttons[2] == ["‹"]
    await e2e.press(alice, "‹")
    assert e2e.last(alice).splitlines()[1] == en("Page {page} of {pages}", page=1, pages=2)


async def test_members_and_other_leaders_cannot_touch_products(e2e: E2E, group: Group) -> None:
    alice, bob, cid = group.leader, group.members[0], group.community_id
    product = await add_product(e2e, group, title="Jam")
    await e2e.say(bob, "/start")
    for data in (f"an:{cid}:prod", f"prl:{cid}:0:1", f"pra:{cid}:0:new:0", f"pra:{cid}:{product.id}:post:0",
                 f"pra:{cid}:{product.id}:archy:0", f"prf:{cid}:{product.id}:price"):
        callback = await e2e.press_data(bob, data)
        answer = e2e.answer(callback)
        assert (answer.text, answer.show_alert) == (en(NOT_LEADER), True), data
        assert await e2e.fsm_state(bob) is None
    assert group_cards(e2e, group) == []
    [row] = await product_rows(e2e, cid)
    assert row.status == "active" and await post_rows(e2e, product.id) == []

    # A leader who loses the role mid-form: the answer is refused and the form closes.
    emu, chat = e2e.emu, group.chat
    await e2e.act(lambda: emu.promote(chat, bob, by=alice))
    await open_product(e2e, bob, product)
    await e2e.press(bob, en("✏️ Price"))
    assert await e2e.fsm_state(bob) == "ProductEditForm:price"
    await e2e.act(lambda: emu.demote(chat, bob, by=alice))
    await e2e.say(bob, "99")
    assert e2e.last(bob) == en(NOT_LEADER)
    assert await e2e.fsm_state(bob) is None
    assert (await product_rows(e2e, cid))[0].price == 1250
    assert await e2e.audit(cid, "product.edit") == []
