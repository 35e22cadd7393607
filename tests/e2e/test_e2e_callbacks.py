"""Button presses as Telegram treats them: an answer that comes too late is refused, and an edit to
what the message already shows is refused. Neither may stop, undo or misreport what the press did."""

from __future__ import annotations

from buying_helpers import checkout_to_summary, open_shop, orders_of, product_row, see
from e2e_harness import E2E, Group, en

from bot.sandbox import SimMessage, SimUser
from models.shop import OrderStatus

CONFIRM = en("✅ Confirm")
APOLOGY = "Sorry, something went wrong"
NOT_MODIFIED = "message is not modified"
LATE = 20.0  # seconds between a press and the bot's answer: Telegram takes answers for about 15


def late_answers(e2e: E2E) -> list:
    return [c for c in e2e.failed_requests(400) if c.method.lower() == "answercallbackquery"]


def apologies(e2e: E2E, *chats) -> list[str]:
    texts = [t for chat in chats for t in e2e.bot_texts(chat) if t.startswith(APOLOGY)]
    answers = [c.answer.text for c in e2e.emu.callbacks.values() if c.answer and (c.answer.text or "").startswith(APOLOGY)]
    return texts + answers


async def test_a_rush_of_confirms_answered_too_late_places_every_order_once(e2e: E2E) -> None:
    buyers = [e2e.emu.add_user(f"Buyer{n}") for n in range(6)]
    group = await e2e.make_group(members=buyers)
    shop = await open_shop(e2e, group, stock=10)
    for buyer in buyers:
        await checkout_to_summary(e2e, buyer, shop.product)
    e2e.allow_api_errors(400)
    e2e.clock.advance()
    presses = [e2e.emu.press(buyer, e2e.last_msg(buyer), CONFIRM) for buyer in buyers]
    # The bot is busy: every answer reaches Telegram after the press's deadline.
    e2e.clock.advance(LATE)
    await e2e.settle()
    placed = await orders_of(e2e)
    assert sorted(o.user_id for o in placed) == sorted(b.id for b in buyers)
    product = await product_row(e2e, shop.product.id)
    assert (product.stock, product.sold) == (4, 6)
    # Each buyer got the order confirmation the press was for, and nobody an apology.
    for buyer, order in zip(sorted(buyers, key=lambda b: b.id), sorted(placed, key=lambda o: o.user_id), strict=True):
        assert e2e.last(buyer).startswith(see("Order #{id} · {title} × {qty} · {amount}", id=order.id, title="Apples",
                                              qty=1, amount="$5.00"))
        assert await e2e.fsm_state(buyer) is None
    assert apologies(e2e, group.chat, *buyers) == []
    # Telegram refused every answer as too old, and the bot left it at that.
    assert all(e2e.emu.callback_answer(p) is None for p in presses)
    refused = late_answers(e2e)
    assert len(refused) == len(buyers) and all("query is too old" in c.description for c in refused)
    assert e2e.failed_requests() == refused
    # The rush delivered again (Telegram retries when the bot was slow): still one order each.
    for update_id in range(e2e.last_update_id("callback_query") - len(buyers) + 1, e2e.last_update_id() + 1):
        if "callback_query" in e2e.emu.updates.get(update_id):
            e2e.emu.redeliver(update_id)
    await e2e.settle()
    assert len(await orders_of(e2e)) == len(buyers)


async def test_a_leader_action_answered_too_late_still_refreshes_the_screen(e2e: E2E, group: Group) -> None:
    shop = await open_shop(e2e, group)
    alice, bob = group.leader, group.members[0]
    await checkout_to_summary(e2e, bob, shop.product, qty="2")
    await e2e.press(bob, CONFIRM)
    [order] = await orders_of(e2e)
    told = len(e2e.bot_texts(bob))
    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("🧾 Orders"))
    screen = e2e.last_msg(alice)
    label = next(b for row in screen.buttons for b in row if f"#{order.id}" in b)
    await e2e.press(alice, label)
    before = e2e.last(alice)
    e2e.allow_api_errors(400)
    e2e.clock.advance()
    press = e2e.emu.press(alice, e2e.last_msg(alice), en("💵 Mark paid"))
    e2e.clock.advance(LATE)
    await e2e.settle()
    [order] = await orders_of(e2e)
    assert order.status == OrderStatus.PAID
    assert e2e.emu.callback_answer(press) is None
    # The rest of the action went ahead: the member is told once, the order's screen shows the new state.
    assert len(e2e.bot_texts(bob)) == told + 1
    assert e2e.last(alice) != before
    assert apologies(e2e, alice, bob, group.chat) == []
    assert len(await e2e.audit(shop.community_id, "order.paid")) == 1


# ----- replayed presses edit nothing that is already shown -------------------------------------------

def callback_buttons(message: SimMessage) -> list[tuple[str, str]]:
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    return [(b["text"], b["callback_data"]) for row in rows for b in row if "callback_data" in b]


async def crawl(e2e: E2E, user: SimUser, message: SimMessage, *, depth: int, limit: int) -> list[str]:
    """Press every button reachable from `message` (breadth first, `depth` levels, at most `limit`
    distinct ones), each one twice in a row: the second press finds the screen the first one made."""
    seen: set[str] = set()
    queue = [(data, 1) for _label, data in callback_buttons(message)]
    pressed = []
    while queue and len(seen) < limit:
        data, level = queue.pop(0)
        if data in seen:
            continue
        seen.add(data)
        await e2e.press_data(user, data, message=message)
        await e2e.press_data(user, data, message=message)
        pressed.append(data)
        if level < depth:
            queue.extend((d, level + 1) for _label, d in callback_buttons(message) if d not in seen)
    return pressed


async def test_replayed_presses_on_every_leader_screen_edit_nothing_twice(e2e: E2E, group: Group) -> None:
    # Quotes and markup characters in what the screens show: escaped as HTML, still the same text.
    place = 'Gate "A" & B\'s'
    shop = await open_shop(e2e, group, title='Bob\'s "best" <apples> & pears', pickups=(place,))
    alice, bob = group.leader, group.members[0]
    await checkout_to_summary(e2e, bob, shop.product, pickup=f"📍 {place}")
    await e2e.press(bob, CONFIRM)
    await e2e.say(alice, "/admin")
    menu = e2e.last_msg(alice)
    edits_before = len(e2e.emu.calls("editMessageText"))
    pressed = await crawl(e2e, alice, menu, depth=3, limit=45)
    assert len(pressed) >= 20
    refused = [c for c in e2e.emu.requests if NOT_MODIFIED in (c.description or "")]
    assert refused == [], f"{len(refused)} edits to identical content:\n" + "\n".join(
        f"  {c.params.get('text', '')[:80]!r}" for c in refused)
    # Every first press that changed the screen edited it once; no replay did.
    assert len(e2e.emu.calls("editMessageText")) - edits_before <= len(pressed)
    assert apologies(e2e, alice) == []
