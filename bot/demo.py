"""`python -m bot demo`: the real bot against the built-in emulator, printed as a transcript.

The demo is a list of chapters run in order against one community. A later feature adds its
chapter to CHAPTERS; each chapter drives simulated people and waits for the bot to settle.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.app import App, polling
from bot.core.config import ROOT, load_settings
from bot.core.logs import setup_logging
from bot.core.migrate import upgrade_async
from bot.sandbox import SimChat, SimUser, TelegramEmulator

TOKEN = "100200300:DEMO-sandbox-token"
LOG_FILE = ROOT / "data" / "demo.log"
OWNER_ID = 9000001
# Members from before the demo in the win-back chapter: enough for both arms of a 40 % holdout to
# reach the minimum a lift is measured on.
EARLIER_MEMBERS = 80


class HumanClock:
    """Wall time plus a second for every action a simulated person takes. Telegram's flood limits
    (one message a second into a private chat) and the bot's per-user throttle run on it: people
    do not act several times a second, and without the pacing the demo would mostly wait out
    flood control that no real member could cause."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self) -> None:
        self.offset += 1.0

    def jump_to(self, moment: float) -> None:
        """A chapter moved its days on: flood windows and throttles have long passed by then."""
        self.offset = max(self.offset, moment - time.time())


class PacedEmulator(TelegramEmulator):
    def __init__(self, *args, human_clock: HumanClock, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.human_clock = human_clock

    def rate_limit(self, chat: SimChat, *, paid: bool = False) -> None:
        self.rate_limits.acquire(chat.id, chat.is_group, self.human_clock(), paid=paid)


@dataclass
class Cast:
    """The people and the group every chapter shares."""

    emu: TelegramEmulator
    app: App
    leader: SimUser
    members: list[SimUser]
    group: SimChat
    clock: HumanClock
    notes: dict[str, object] = field(default_factory=dict)
    # Private chats left out of the printed transcript (members a chapter adds in bulk).
    quiet_chats: set[str] = field(default_factory=set)

    async def settle(self) -> None:
        await self.app.settle(self.emu)

    async def say(self, who: SimUser, text: str, chat: SimChat | None = None) -> None:
        self.clock.advance()
        self.emu.send(who, chat, text)
        await self.settle()

    async def press(self, who: SimUser, button: str, chat: SimChat | None = None) -> None:
        """Press a button on the newest bot message (in `who`'s private chat unless a chat is given)."""
        self.clock.advance()
        message = self.emu.last_bot_message(chat or self.emu.chat_for(who))
        self.emu.press(who, message, button)
        await self.settle()


Chapter = Callable[[Cast], Awaitable[None]]


def locale_of(who: SimUser) -> str:
    """The bot's locale for a simulated person: Bob speaks the demo's --locale."""
    return "zh_Hans" if (who.language_code or "").startswith("zh") else "en"


async def onboarding(cast: Cast) -> None:
    emu, alice = cast.emu, cast.leader
    emu.add_bot_to_group(cast.group, by=alice, admin=False)
    await cast.settle()
    emu.promote_bot(cast.group, by=alice, rights={"can_pin_messages": False})
    await cast.settle()
    emu.promote_bot(cast.group, by=alice, rights={})
    await cast.settle()
    for member in cast.members:
        emu.join(cast.group, member)
    await cast.settle()
    await cast.say(cast.members[0], "Hi everyone! 👋", cast.group)
    await cast.say(cast.members[0], "/help", cast.group)
    await cast.say(cast.members[0], "/admin", cast.group)


async def leader_settings(cast: Cast) -> None:
    alice = cast.leader
    await cast.say(alice, "/start")
    await cast.say(alice, "/admin")
    await cast.press(alice, "⚙️ Settings")
    await cast.press(alice, "🕒 Timezone: UTC")
    await cast.say(alice, "Mars/Olympus_Mons")
    await cast.say(alice, "asia/shanghai")
    await cast.press(alice, "💱 Currency: USD")
    await cast.say(alice, "cny")
    await cast.press(alice, "📍 Pickup points (0)")
    await cast.press(alice, "➕ Add a pickup point")
    await cast.say(alice, "North Gate <Lobby> & Café")
    await cast.press(alice, "« Back")
    await cast.press(alice, "🌐 Language: English")
    await cast.press(alice, "简体中文")


async def member_privacy(cast: Cast) -> None:
    from bot.core.i18n import translate

    bob, chen = cast.members[0], cast.members[1]
    # A member forging a leader's button: the server re-checks the role and changes nothing.
    community_id = cast.notes["community_id"]
    await cast.say(bob, "/start")
    cast.emu.press_data(bob, cast.emu.last_bot_message(cast.emu.chat_for(bob)), f"an:{community_id}:set")
    await cast.settle()
    await cast.say(chen, "/start")
    await cast.say(chen, "/help")
    await cast.say(bob, "/stop")
    await cast.press(bob, translate("Send me promotions again", locale_of(bob)))
    await cast.say(bob, "/mydata")


async def shop(cast: Cast) -> None:
    """A leader lists a product and posts it; two members buy, one with a coupon; the pick list."""
    from bot.core.i18n import translate

    emu, alice, (bob, chen) = cast.emu, cast.leader, cast.members
    await cast.say(alice, "/admin")
    await cast.press(alice, "📦 Products")
    await cast.press(alice, "➕ New product")
    await cast.say(alice, "Strawberries 500g")
    await cast.say(alice, "Picked this morning <sweet> & fresh")
    await cast.say(alice, "12,50")
    await cast.say(alice, "10")
    await cast.say(alice, "3")
    await cast.press(alice, "No photo")
    await cast.press(alice, "✅ Save")
    await cast.press(alice, "📣 Post now")
    # A coupon for Chen: 20% off, single use.
    await cast.say(alice, "/admin")
    await cast.press(alice, "🎟 Coupons")
    await cast.press(alice, "➕ New coupon")
    await cast.press(alice, "Percent")
    await cast.say(alice, "20")
    await cast.press(alice, "Skip")
    await cast.press(alice, "Skip")
    await cast.press(alice, "Skip")
    await cast.press(alice, "Single use")
    await cast.press(alice, "Anyone in the community")
    await cast.say(alice, "BERRY20")
    await cast.press(alice, "💾 Save")
    # Bob orders by command in the group; the checkout continues privately.
    await cast.say(bob, "/buy 1 2", cast.group)
    await cast.press(bob, "📍 North Gate <Lobby> & Café")
    await cast.press(bob, translate("Continue without a coupon", locale_of(bob)))
    await cast.press(bob, translate("✅ Confirm", locale_of(bob)))
    # Chen presses Buy on the card (labels are in the group's language) and follows the link.
    card = next(m for m in reversed(emu.bot_messages(cast.group)) if m.buttons and any("/buy" in (m.text or "") for _ in [0]))
    emu.press(chen, card, translate("🛒 Buy", "zh_Hans"))
    await cast.settle()
    await cast.say(chen, "/start buy-1")
    await cast.press(chen, "1")
    await cast.press(chen, "📍 North Gate <Lobby> & Café")
    await cast.say(chen, "berry20")
    await cast.press(chen, translate("✅ Confirm", "zh_Hans"))
    # The leader prints the pick list for the pickup point.
    await cast.say(alice, "/admin")
    await cast.press(alice, "🧾 Orders")
    await cast.press(alice, "📋 Pick list")
    await cast.press(alice, "North Gate <Lobby> & Café")


def _start_payload(message, label: str) -> str:
    """The /start payload behind a link button: what Telegram sends when a member follows it."""
    for row in (message.reply_markup or {}).get("inline_keyboard", []):
        for button in row:
            if button.get("text") == label and "url" in button:
                return button["url"].split("?start=", 1)[1]
    raise LookupError(f"no link button {label!r} on the message; buttons: {message.buttons}")


async def groupbuys(cast: Cast) -> None:
    """A leader publishes a team group-buy and a threshold group-buy; one team fills, another
    expires and its Stars come back, and the threshold reaches its second tier. The deadline job
    runs "as of" later moments, as `python -m bot jobs run groupbuy_deadlines --at ...` does."""
    from datetime import timedelta

    from bot.core.i18n import translate
    from models.types import utcnow

    emu, alice, (bob, chen), group = cast.emu, cast.leader, cast.members, cast.group
    zh = "zh_Hans"

    async def jobs_as_of(at) -> None:
        await cast.app.run_job("groupbuy_deadlines", at)
        await cast.settle()
        await cast.app.run_job("refresh_groupbuy_cards", at)
        await cast.settle()

    async def follow(who: SimUser, label: str) -> None:
        """`who` follows a link button on the newest group-buy card in the group."""
        card = next(m for m in reversed(emu.bot_messages(group)) if _has_link(m, label))
        await cast.say(who, f"/start {_start_payload(card, label)}")

    async def pay_last_invoice(who: SimUser) -> None:
        invoice = next(m for m in reversed(emu.bot_messages(emu.chat_for(who))) if m.invoice is not None)
        cast.clock.advance()
        await emu.pay(who, invoice)
        await cast.settle()

    def stars(count: int, locale: str = "en") -> str:
        return translate("⭐ Telegram Stars ({stars})", locale, stars=count)

    async def checkout(who: SimUser, qty: str, method: str, *, locale: str = "en") -> None:
        await cast.press(who, qty)
        await cast.press(who, "📍 North Gate <Lobby> & Café")
        await cast.press(who, translate("Continue without a coupon", locale))
        await cast.press(who, method)
        await cast.press(who, translate("✅ Confirm", locale))

    # Stars on, and a product for the group-buys.
    await cast.say(alice, "/admin")
    await cast.press(alice, "⚙️ Settings")
    await cast.press(alice, "🛒 Shop options")
    await cast.press(alice, "⭐ Stars per CNY: not set")
    await cast.say(alice, "2")
    await cast.press(alice, "⭐ Telegram Stars: off")
    await cast.say(alice, "/admin")
    await cast.press(alice, "📦 Products")
    await cast.press(alice, "➕ New product")
    await cast.say(alice, "Wildflower honey 250g")
    await cast.press(alice, "Skip")
    await cast.say(alice, "30")
    await cast.say(alice, "50")
    await cast.press(alice, "No limit")
    await cast.press(alice, "No photo")
    await cast.press(alice, "✅ Save")
    # A team group-buy: teams of 2 at ¥24, two hours to fill.
    await cast.say(alice, "/admin")
    await cast.press(alice, "🤝 Group-buys")
    await cast.press(alice, "➕ New team group-buy")
    await cast.press(alice, "#2 Wildflower honey 250g")
    await cast.say(alice, "24")
    await cast.say(alice, "2")
    await cast.say(alice, "2h")
    await cast.press(alice, "in 1 d")
    await cast.press(alice, "1")
    await cast.press(alice, "1")
    await cast.press(alice, "Yes")
    await cast.press(alice, "📣 Publish")
    await cast.app.run_job("refresh_groupbuy_cards", utcnow())
    await cast.settle()

    open_team, at_pickup = translate("🤝 Open a team", zh), translate("🤝 Pay at pickup", zh)
    # Bob opens team 1 from the card and pays in Stars; Chen joins it from the card.
    await follow(bob, open_team)
    await checkout(bob, "1", stars(48, locale_of(bob)), locale=locale_of(bob))
    await pay_last_invoice(bob)
    await cast.app.run_job("refresh_groupbuy_cards", utcnow())
    await cast.settle()
    await follow(chen, translate("Join team #{number}", zh, number=1))
    await checkout(chen, "1", at_pickup, locale=zh)
    await cast.app.run_job("refresh_groupbuy_cards", utcnow())
    await cast.settle()
    # Chen opens team 2 and pays in Stars; nobody joins, and two hours later it has failed.
    await follow(chen, open_team)
    await checkout(chen, "1", stars(48, zh), locale=zh)
    await pay_last_invoice(chen)
    await cast.app.run_job("refresh_groupbuy_cards", utcnow())
    await cast.settle()
    await jobs_as_of(utcnow() + timedelta(hours=2, minutes=1))

    # A threshold group-buy: ¥28 on joining; 3 units in all by tomorrow make it ¥26, 5 units ¥24.
    await cast.say(alice, "/admin")
    await cast.press(alice, "🤝 Group-buys")
    await cast.press(alice, "➕ New threshold group-buy")
    await cast.press(alice, "#2 Wildflower honey 250g")
    await cast.say(alice, "28")
    await cast.say(alice, "3")
    await cast.press(alice, "in 1 d")
    await cast.say(alice, "3 26")
    await cast.say(alice, "5 24")
    await cast.press(alice, "✅ Done")
    await cast.press(alice, "No limit")
    await cast.press(alice, "📣 Publish")
    join_threshold = translate("🛒 Join at {price}", zh, price="¥28.00")
    await follow(bob, join_threshold)
    await checkout(bob, "2", stars(112, locale_of(bob)), locale=locale_of(bob))
    await pay_last_invoice(bob)
    await follow(chen, join_threshold)
    await checkout(chen, "3", at_pickup, locale=zh)
    await cast.app.run_job("refresh_groupbuy_cards", utcnow())
    await cast.settle()
    # The next day: the threshold closes at its second tier (Bob's overpayment comes back as a
    # coupon), the team campaign's window is over, and the leader gets both summaries.
    await jobs_as_of(utcnow() + timedelta(days=1, minutes=1))


async def checkins(cast: Cast) -> None:
    """Four days of check-ins in the leader's timezone: the card posted and pinned at 08:00, members
    pressing it (toasts), /checkin in private and in the group, a missed day made up for points
    (which reaches the 3-day bonus), a redeem, the leaderboard. The days are moved, not waited:
    messages carry the emulator's date, presses the bot's `clock`, jobs run "as of" a moment."""
    from datetime import datetime, time, timedelta, timezone
    from zoneinfo import ZoneInfo

    from bot.core.i18n import translate
    from bot.services import checkin_settings, communities, points
    from bot.services.points import RewardDraft
    from models import CouponKind
    from models.types import utcnow

    emu, app, alice, (bob, chen), group = cast.emu, cast.app, cast.leader, cast.members, cast.group
    zh, zone = "zh_Hans", ZoneInfo("Asia/Shanghai")
    first = utcnow().astimezone(zone).date()
    moment: dict[str, datetime] = {}

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        local = datetime.combine(first + timedelta(days=day), time(hour, minute), zone)
        moment["now"] = local.astimezone(timezone.utc)
        cast.clock.jump_to(moment["now"].timestamp())
        return moment["now"]

    # The leader's options (the /admin → Check-in & points menu sets the same) and one reward.
    async with app.sessions() as session:
        community = await communities.get_by_chat(session, group.id)
        await checkin_settings.update_checkin_settings(
            session, community=community, actor_id=alice.id, now=utcnow(), card_time="08:00", pin_card=True,
            milestones={3: 30, 7: 100}, makeup_days=3, makeup_cost=10, makeups_per_month=2, reminder_hour=None)
        await points.add_reward(session, community_id=community.id, actor_id=alice.id, now=utcnow(),
                                draft=RewardDraft("¥5 off", 30, CouponKind.FIXED, 500, None, 2000, 30))
    wall_clock = emu.clock
    at(0, 8)
    # The jobs run as of the chapter's days, not on the scheduler's wall-clock ticks.
    app.scheduler._aps.pause()
    emu.clock = lambda: moment["now"].timestamp()
    app.dp["clock"] = lambda: moment["now"]
    check_in = translate("✅ Check in", zh)

    async def card_day(day: int) -> None:
        await app.run_job("post_checkin_cards", at(day, 8))
        await cast.settle()

    async def press_card(who: SimUser, day: int, hour: int) -> None:
        at(day, hour)
        card = next(m for m in reversed(emu.bot_messages(group)) if any(check_in in row for row in m.buttons))
        cast.clock.advance()
        emu.press(who, card, check_in)
        await cast.settle()

    try:
        # Day 1: the card goes up; two members press it; the card is redrawn once for both.
        await card_day(0)
        await press_card(bob, 0, 9)
        await press_card(chen, 0, 9)
        await app.run_job("refresh_checkin_cards", at(0, 9, 1))
        await cast.settle()
        # Day 2: Bob checks in from his private chat, Chen types /checkin in the group.
        await card_day(1)
        at(1, 9)
        await cast.say(bob, "/checkin")
        await cast.say(chen, "/checkin", group)
        # Day 3 Bob forgets; on day 4 he checks in and makes day 3 up for 10 points.
        await card_day(3)
        at(3, 10)
        await cast.say(bob, "/checkin")
        await cast.press(bob, translate("🗓 Make up a missed day", locale_of(bob)))
        await cast.press(bob, emu.last_bot_message(emu.chat_for(bob)).buttons[0][0])
        await cast.press(bob, translate("✅ Make up for {cost} points", locale_of(bob), cost=10))
        # His points buy a coupon; then the leaderboard in the group.
        await cast.say(bob, "/points")
        await cast.press(bob, translate("🎁 Redeem: {title} ({cost})", locale_of(bob), title="¥5 off", cost=30))
        await cast.press(bob, translate("✅ Redeem for {cost} points", locale_of(bob), cost=30))
        await cast.say(chen, "/top", group)
    finally:
        emu.clock = wall_clock
        del app.dp["clock"]
        app.scheduler._aps.resume()


async def invites(cast: Cast) -> None:
    """Bob asks for his invite link; Dana joins through it; Eli reaches the bot first through Bob's
    deep link and joins through the link he is handed; three days later the qualification job
    credits both invites to Bob and tells him; the group's invite board. The days are moved, not
    waited, after the check-in chapter's."""
    import re
    from datetime import timedelta

    from models.types import utcnow

    emu, app, bob, group = cast.emu, cast.app, cast.members[0], cast.group
    start = utcnow() + timedelta(days=5)
    moment = {"now": start}
    cast.clock.jump_to(start.timestamp())
    wall_clock = emu.clock
    emu.clock = lambda: moment["now"].timestamp()

    def private_text(who: SimUser) -> str:
        return emu.last_bot_message(emu.chat_for(who)).visible

    async def join(who: SimUser, link: str) -> None:
        cast.clock.advance()
        emu.join(group, who, invite_link=link)
        await cast.settle()

    try:
        await cast.say(bob, "/invite")
        own = re.search(r"https://t\.me/\+\S+", private_text(bob)).group(0)
        deep = re.search(r"start=(inv-\w+)", private_text(bob)).group(1)
        dana, eli = emu.add_user("Dana", language_code="en"), emu.add_user("Eli", language_code="en")
        await join(dana, own)
        await cast.say(eli, f"/start {deep}")
        await join(eli, re.search(r"https://t\.me/\+\S+", private_text(eli)).group(0))
        await cast.say(bob, "/invite")
        moment["now"] = start + timedelta(days=3, minutes=5)
        cast.clock.jump_to(moment["now"].timestamp())
        await app.run_job("qualify_invites", moment["now"])
        await cast.settle()
        await cast.say(dana, "/top invites", group)
    finally:
        emu.clock = wall_clock


async def stats(cast: Cast) -> None:
    """The leader opens Stats: the overview chart with its numbers in the caption, then Growth in
    its place."""
    alice = cast.leader
    await cast.say(alice, "/admin")
    await cast.press(alice, "📊 Stats")
    await cast.press(alice, "Growth")


async def winback(cast: Cast) -> None:
    """Five weeks on, the demo's members have drifted, and so have members from before the demo
    (written straight into the database with their history; their private chats are left out of
    the transcript). The leader creates a win-back with a 40 % holdout, runs a dry run and Run now;
    Bob comes back with his coupon through the checkout, a few others order too; after the
    attribution window the leader opens Results. The days are moved, not waited, as in the
    check-in chapter: the dispatcher's `clock`, the emulator's dates, and orders dated "as of"."""
    from datetime import datetime, time, timedelta, timezone
    from uuid import uuid4
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from bot.core.i18n import translate
    from bot.sandbox.state import ChatMemberState
    from bot.services import communities, orders
    from models import Arm, CampaignSend, Coupon, Member, PaymentMethod, User
    from models.types import utcnow

    emu, app, alice, bob, group = cast.emu, cast.app, cast.leader, cast.members[0], cast.group
    zone = ZoneInfo("Asia/Shanghai")
    first = (utcnow() + timedelta(days=35)).astimezone(zone).date()
    moment: dict[str, datetime] = {}
    bob_locale = locale_of(bob)

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        local = datetime.combine(first + timedelta(days=day), time(hour, minute), zone)
        moment["now"] = local.astimezone(timezone.utc)
        cast.clock.jump_to(moment["now"].timestamp())
        return moment["now"]

    # Members from before the demo: regulars every week or two who went quiet four to nine weeks ago.
    earlier = []
    for n in range(EARLIER_MEMBERS):
        person = emu.add_user(f"Neighbour {n + 1:02d}", language_code="en")
        person.started_bot = True
        group.members[person.id] = ChatMemberState("member")
        group.ever_members.add(person.id)
        cast.quiet_chats.add(emu.chat_for(person).label)
        earlier.append(person)
    at(0, 10, 30)
    async with app.sessions() as session:
        community = await communities.get_by_chat(session, group.id)
        session.add_all(User(id=p.id, first_name=p.first_name, language_code="en", can_dm=True) for p in earlier)
        await session.flush()
        for n, person in enumerate(earlier):
            session.add(Member(community_id=community.id, user_id=person.id,
                               joined_at=moment["now"] - timedelta(days=400 - n),
                               first_active_on=first - timedelta(days=300 - n),
                               last_active_on=first - timedelta(days=28 + n % 35), active_days=20 + n % 15))
        await session.commit()

    wall_clock = emu.clock
    app.scheduler._aps.pause()
    emu.clock = lambda: moment["now"].timestamp()
    app.dp["clock"] = lambda: moment["now"]
    try:
        # The leader sets the campaign up: everyone active counts, 40 % held out.
        await cast.say(alice, "/admin")
        await cast.press(alice, "📣 Campaigns")
        await cast.press(alice, "➕ New win-back")
        await cast.press(alice, "👥 Audience: buyers")
        await cast.press(alice, "⚖️ Holdout: 10%")
        await cast.say(alice, "40")
        await cast.press(alice, "🔍 Dry run")
        await cast.press(alice, "🚀 Run now")
        await cast.press(alice, "✅ Yes, send now")
        await app.campaigns.wait(max(app.campaigns.running, default=0))
        await cast.settle()

        async with app.sessions() as session:
            sends = {s.user_id: s for s in (await session.execute(select(CampaignSend))).scalars()}
            codes = {c.owner_id: c.code for c in (await session.execute(
                select(Coupon).where(Coupon.source == "winback"))).scalars()}
        # Two days later Bob orders honey again, with the coupon from his offer. He is in the
        # treatment: the arm hashes campaign, run and member, and all three are the same in every
        # demo (a fresh database, the emulator's ids counted from the same start).
        at(2, 19)
        await cast.say(bob, "/buy 2 1", group)
        await cast.press(bob, "📍 North Gate <Lobby> & Café")
        await cast.say(bob, codes[bob.id])
        await cast.press(bob, translate("🤝 Pay at pickup", bob_locale))
        await cast.press(bob, translate("✅ Confirm", bob_locale))

        # Over the next days more members order (placed through the orders service: their
        # checkouts would look like Bob's); the holdout comes back too, less often.
        treated = [p for p in earlier if p.id in sends and sends[p.id].arm == Arm.TREATMENT]
        held = [p for p in earlier if p.id in sends and sends[p.id].arm == Arm.HOLDOUT]
        # A third of the treatment's returns leave their coupon unused: the lift counts orders.
        returns = [(p, codes[p.id] if n % 3 else None) for n, p in enumerate(treated[:17])] + [(p, None) for p in held[:2]]
        async with app.sessions() as session:
            community = await communities.get_by_chat(session, group.id)
            for n, (person, code) in enumerate(returns):
                await orders.place(session, community=community, user_id=person.id, product_id=2, quantity=1,
                                   unit_price=3000, payment_method=PaymentMethod.PICKUP, checkout_key=uuid4().hex,
                                   now=at(1 + n % 6, 12), pickup_point_id=1, coupon_code=code)

        # The attribution window (14 days) has closed: the results.
        at(15, 10)
        await cast.say(alice, "/admin")
        await cast.press(alice, "📣 Campaigns")
        await cast.press(alice, "📣 Win-back 1")
        await cast.press(alice, "📈 Results")
    finally:
        emu.clock = wall_clock
        del app.dp["clock"]
        app.scheduler._aps.resume()


def _has_link(message, label: str) -> bool:
    return any(b.get("text") == label and "url" in b for row in (message.reply_markup or {}).get("inline_keyboard", [])
               for b in row)


CHAPTERS: list[tuple[str, Chapter]] = [
    ("Onboarding: the bot joins the group", onboarding),
    ("The leader sets up the community", leader_settings),
    ("Members: roles, language, privacy", member_privacy),
    ("Selling in the group: a product, two buyers, a coupon, the pick list", shop),
    ("Group-buys: a team fills, a team expires and is refunded, a threshold reaches its second tier", groupbuys),
    ("Check-ins: the daily card, a streak over four days, a make-up, a redeem, the leaderboard", checkins),
    ("Invites: a member's own link, a friend through it, another through the bot first, the reward", invites),
    ("Stats: the leader's overview chart, then growth by way in", stats),
    ("Win-back: five weeks on, a campaign with a holdout, a member back with his coupon, the lift", winback),
]


async def _community_id(app: App, chat_id: int) -> int:
    from bot.services import communities

    async with app.sessions() as session:
        community = await communities.get_by_chat(session, chat_id)
        return community.id


async def _run(locale: str, out) -> None:
    with tempfile.TemporaryDirectory(prefix="ccb-demo-") as tmp:
        db_url = f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}"
        await upgrade_async(db_url)
        clock = HumanClock()
        emu = PacedEmulator(token=TOKEN, bot_username="community_demo_bot", human_clock=clock)
        await emu.start()
        try:
            settings = load_settings(BOT_TOKEN=TOKEN, TELEGRAM_API_URL=emu.url, DATABASE_URL=db_url, REDIS_URL=None,
                                     OWNER_IDS=str(OWNER_ID), DEFAULT_LOCALE="en", ACTIVITY_FLUSH_SECONDS=0.5)
            app = await App.connect(settings)
            await app.start()
            _pace_throttle(app, clock)
            alice = emu.add_user("Alice", last_name="Wang", username="alice_leader", language_code="en")
            bob = emu.add_user("Bob", username="bob_buys", language_code=locale if locale != "zh_Hans" else "zh-hans")
            chen = emu.add_user("陈", last_name="小红", language_code="zh-hans")
            group = emu.create_group("Green Valley Neighbours", alice)
            cast = Cast(emu, app, alice, [bob, chen], group, clock)
            async with polling(app):
                for title, chapter in CHAPTERS:
                    start = len(emu.transcript)
                    print(f"\n=== {title} ===", file=out)
                    try:
                        await chapter(cast)
                    finally:
                        # Whatever happened, show the conversation up to here.
                        print(_render(emu, start, cast.quiet_chats), file=out)
                    if "community_id" not in cast.notes:
                        cast.notes["community_id"] = await _community_id(app, group.id)
        finally:
            await emu.stop()


def _render(emu: TelegramEmulator, since: int, quiet: set[str]) -> str:
    return "\n".join(event.render() for event in emu.transcript.events[since:] if event.chat not in quiet)


def _pace_throttle(app: App, clock: HumanClock) -> None:
    """The bot's per-user throttle and its sending budget run on the people's clock, as the
    emulator's flood control does: a chapter that moves its days on leaves the group's minute
    behind instead of waiting it out (the check-in days waited most of a minute)."""
    from bot.telegram.middlewares.throttle import ThrottleMiddleware
    from bot.telegram.send_budget import MemoryBudget

    for observer in app.dp.observers.values():
        for middleware in observer.middleware:
            if isinstance(middleware, ThrottleMiddleware):
                middleware.clock = clock
    app.sender.budget = MemoryBudget(clock=clock)


def run_demo(*, locale: str = "en", out=None, verbose: bool = False, log_level: str = "INFO") -> int:
    out = out or sys.stdout
    LOG_FILE.parent.mkdir(exist_ok=True)
    to_file = logging.FileHandler(LOG_FILE, mode="w", encoding="utf-8")
    setup_logging(log_level, to_file, *([logging.StreamHandler(sys.stderr)] if verbose else []))
    try:
        asyncio.run(_run(locale, out))
    finally:
        to_file.close()
        print(f"\nThe bot's logs of this run are in {LOG_FILE}" + ("." if verbose else " (--verbose shows them as they come)."),
              file=out)
    return 0
