"""Helpers for the check-in and points end-to-end tests: moving the bot's clock and the dates of
the messages people send, check-in options, and what the ledger holds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from html import unescape
from zoneinfo import ZoneInfo

from e2e_harness import E2E, Group, en
from sqlmodel import select

from bot.sandbox import SimChat, SimMessage, SimUser
from bot.services import checkin_settings, points, settings
from bot.services.points import RewardDraft
from models import CheckIn, Coupon, CouponKind, PointsAccount, PointsEntry, User
from models.checkin_card import CheckinCard, CheckinNotice
from models.points import PointsReward

_TAG = re.compile(r"<[^>]+>")


def see(msgid: str, **kwargs: object) -> str:
    """What a reader sees of an English message: tags gone, entities decoded."""
    return unescape(_TAG.sub("", en(msgid, **kwargs)))


def local(tz: str, *parts: int) -> datetime:
    """The UTC instant of a wall-clock time in `tz`: local("Asia/Shanghai", 2026, 11, 1, 23, 59, 59)."""
    return datetime(*parts, tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


def now() -> datetime:
    return datetime.now(timezone.utc)


class BotClock:
    """The bot's "now" for button presses (the dispatcher's `clock`): wall time until a test sets it."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def __call__(self) -> datetime:
        return self.at or now()


def bot_clock(e2e: E2E) -> BotClock:
    clock = BotClock()
    e2e.app.dp["clock"] = clock
    return clock


@contextmanager
def dated(e2e: E2E, when: datetime) -> Iterator[None]:
    """Messages and joins made inside carry `when` as their date (Telegram's own clock)."""
    emu = e2e.emu
    before = emu.clock
    emu.clock = lambda: when.timestamp()
    try:
        yield
    finally:
        emu.clock = before


async def say_at(e2e: E2E, user: SimUser, text: str, when: datetime, chat: SimChat | None = None) -> SimMessage:
    with dated(e2e, when):
        e2e.clock.advance()
        msg = e2e.emu.send(user, chat, text)
    await e2e.settle()
    return msg


async def configure(e2e: E2E, group: Group, *, tz: str | None = None, **options: object) -> None:
    """Check-in options (and the community's timezone), set through the services as a leader would."""
    async with e2e.db() as s:
        if tz is not None:
            await settings.set_timezone(s, community_id=group.community_id, actor_id=group.leader.id, raw=tz, now=now())
        community = await e2e.community_by_id(group.community_id)
        community = await s.merge(community)
        await checkin_settings.update_checkin_settings(s, community=community, actor_id=group.leader.id, now=now(),
                                                       **options)


async def add_reward(e2e: E2E, group: Group, *, title: str = "5 off", cost: int = 100, value: int = 500,
                     min_spend: int = 2000, valid_days: int | None = 30) -> PointsReward:
    async with e2e.db() as s:
        return await points.add_reward(s, community_id=group.community_id, actor_id=group.leader.id, now=now(),
                                       draft=RewardDraft(title, cost, CouponKind.FIXED, value, None, min_spend,
                                                         valid_days))


async def give_points(e2e: E2E, group: Group, user: SimUser, amount: int, reference: str = "test") -> None:
    async with e2e.db() as s:
        await points.credit(s, community_id=group.community_id, user_id=user.id, amount=amount,
                            reason=points.PointsReason.INVITE, reference=reference, now=now())


async def checkin_rows(e2e: E2E, group: Group, user: SimUser | None = None) -> list[CheckIn]:
    async with e2e.db() as s:
        query = select(CheckIn).where(CheckIn.community_id == group.community_id)
        if user is not None:
            query = query.where(CheckIn.user_id == user.id)
        return list(await s.exec(query.order_by(CheckIn.user_id, CheckIn.day)))


async def entries(e2e: E2E, group: Group, user: SimUser) -> list[PointsEntry]:
    async with e2e.db() as s:
        return list(await s.exec(select(PointsEntry).where(
            PointsEntry.community_id == group.community_id, PointsEntry.user_id == user.id).order_by(PointsEntry.id)))


async def account(e2e: E2E, group: Group, user: SimUser) -> PointsAccount | None:
    async with e2e.db() as s:
        return await points.account(s, community_id=group.community_id, user_id=user.id)


async def balance(e2e: E2E, group: Group, user: SimUser) -> tuple[int, int]:
    """(cached balance, ledger sum): always equal."""
    async with e2e.db() as s:
        cached = await points.balance(s, community_id=group.community_id, user_id=user.id)
        total = await points.ledger_total(s, community_id=group.community_id, user_id=user.id)
    return cached, total


async def coupons_of(e2e: E2E, user: SimUser) -> list[Coupon]:
    async with e2e.db() as s:
        return list(await s.exec(select(Coupon).where(Coupon.owner_id == user.id).order_by(Coupon.id)))


async def cards(e2e: E2E, group: Group) -> list[CheckinCard]:
    async with e2e.db() as s:
        return list(await s.exec(select(CheckinCard).where(CheckinCard.community_id == group.community_id)
                                 .order_by(CheckinCard.day)))


async def notices(e2e: E2E, group: Group) -> list[CheckinNotice]:
    async with e2e.db() as s:
        return list(await s.exec(select(CheckinNotice).where(CheckinNotice.community_id == group.community_id)
                                 .order_by(CheckinNotice.id)))


async def stop_promotions(e2e: E2E, user: SimUser) -> None:
    async with e2e.db() as s:
        row = await s.get(User, user.id)
        row.marketing_opt_out = True
        await s.commit()


def card_messages(e2e: E2E, group: Group) -> list[SimMessage]:
    return [m for m in e2e.emu.bot_messages(group.chat) if any(en("✅ Check in") in row for row in m.buttons)]


def group_sends(e2e: E2E, group: Group) -> list:
    """Every message the bot sent into the group (not edits), as the API log has them."""
    return [c for c in e2e.emu.requests if c.ok and c.method == "sendMessage"
            and str(c.params.get("chat_id")) == str(group.chat.id)]


def edits(e2e: E2E, group: Group) -> list:
    return [c for c in e2e.emu.requests if c.method == "editMessageText"
            and str(c.params.get("chat_id")) == str(group.chat.id)]
