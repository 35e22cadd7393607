"""Plain group chatter off the routed path (bot/telegram/chatter.py): when it is taken, what proves it safe,
and that the database ends up exactly as when every message is routed."""

from __future__ import annotations

import copy
import json
import logging
from functools import partial

import pytest
from aiogram import Bot, F, Router
from aiogram import Dispatcher as AiogramDispatcher
from aiogram.exceptions import ClientDecodeError, TelegramConflictError
from aiogram.filters import Command, StateFilter
from aiogram.methods import GetMe, GetUpdates
from aiogram.types import Update
from sqlalchemy import text

from bot.core.config import load_settings
from bot.core.db import create_engine, session_factory
from bot.core.i18n import get_i18n
from bot.factory import create_dispatcher
from bot.services.activity import ActivityTracker
from bot.telegram.chatter import (
    ChatterSession,
    RawChatter,
    _probes,
    is_chatter,
    is_raw_chatter,
    why_routed,
)
from bot.telegram.dedup import MemoryLedger, RedisLedger
from bot.telegram.presence import Presence

TOKEN = "4242:CHATTER-token"
BOT_ID = 4242
GROUP, OTHER_GROUP = -1001000000001, -1001000000002


def user(uid: int, name: str, **extra) -> dict:
    return {"id": uid, "is_bot": False, "first_name": name, **extra}


def message(update_id: int, chat_id: int, sender: dict, text: str | None = "hello", *, chat_type: str = "supergroup",
            **fields) -> dict:
    msg = {"message_id": update_id, "date": 1_700_000_000 + update_id, "from": sender,
           "chat": {"id": chat_id, "type": chat_type, "title": f"Group {chat_id % 100}"}, **fields}
    if text is not None:
        msg["text"] = text
    return {"update_id": update_id, "message": msg}


ANN, BEN, CAT = user(11, "Ann", username="ann"), user(12, "Ben", language_code="zh-hans"), user(13, "Cat", last_name="C")
THE_BOT = {"id": BOT_ID, "is_bot": True, "first_name": "Shop", "username": "shop_bot"}


def traffic() -> list[dict]:
    """Chatter and its near misses, in two groups (one the bot has never heard of)."""
    reply_to_ben = {"message_id": 1, "date": 1_700_000_000, "chat": {"id": GROUP, "type": "supergroup"}, "from": BEN,
                    "text": "earlier"}
    reply_to_bot = {**reply_to_ben, "from": THE_BOT}
    updates = [
        message(1, GROUP, ANN, "hi all"),
        message(2, GROUP, BEN, "你好"),
        message(3, GROUP, ANN, "see https://example.com", entities=[{"type": "url", "offset": 4, "length": 19}]),
        message(4, GROUP, CAT, "same here", reply_to_message=reply_to_ben),
        message(5, OTHER_GROUP, ANN, "other group", chat_type="group"),
        message(6, GROUP, CAT, "thanks bot", reply_to_message=reply_to_bot),    # routed: a reply to the bot
        message(7, GROUP, BEN, None, photo=[{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}]),
        message(8, GROUP, {**THE_BOT, "id": 77, "username": "other_bot"}, "beep"),  # bots are not members
        message(9, GROUP, ANN, "posted as the group", sender_chat={"id": GROUP, "type": "supergroup"}),
        message(10, GROUP, BEN, "ok"),
    ]
    updates.append(updates[0])  # delivered again: counted once
    updates.append(message(11, GROUP, ANN, "last one"))
    return updates


async def _snapshot(engine) -> dict[str, list]:
    queries = {
        "communities": "SELECT chat_id, title, bot_status, default_locale, timezone, active, created_at FROM communities ORDER BY chat_id",
        "users": "SELECT id, first_name, last_name, username, language_code, can_dm, erased, created_at, updated_at FROM users ORDER BY id",
        "members": "SELECT c.chat_id, m.user_id, m.status, m.is_leader, m.message_count, m.joined_at, m.last_active_at, m.left_at "
                   "FROM members m JOIN communities c ON c.id = m.community_id ORDER BY c.chat_id, m.user_id",
        "rhythm": "SELECT c.chat_id, m.user_id, m.first_active_on, m.last_active_on, m.active_days "
                  "FROM members m JOIN communities c ON c.id = m.community_id ORDER BY c.chat_id, m.user_id",
        "days": "SELECT c.chat_id, d.user_id, d.day, d.messages, d.checkins, d.orders, d.first_at, d.last_at "
                "FROM activity_days d JOIN communities c ON c.id = d.community_id ORDER BY c.chat_id, d.user_id, d.day",
        "hours": "SELECT c.chat_id, h.day, h.hour, h.messages FROM community_hours h "
                 "JOIN communities c ON c.id = h.community_id ORDER BY c.chat_id, h.day, h.hour",
    }
    async with engine.connect() as conn:
        return {name: [tuple(r) for r in (await conn.execute(text(q))).all()] for name, q in queries.items()}


async def _run(db_url: str, *, lane: bool, routed: list[int], raw: bool = False) -> tuple[dict, int]:
    """Feed `traffic()` through the real dispatcher, flush, and read the tables back; also how many
    updates aiogram's own feed_update (the routed path, recorded in `routed`) saw. `raw`: chatter
    reaches the lane as the polling session hands it over, unparsed."""
    engine = create_engine(db_url)
    routed.clear()
    try:
        async with engine.begin() as conn:
            # Everything the activity flush writes, children first.
            for table in ("activity_days", "community_hours", "members", "users", "communities"):
                await conn.execute(text(f"DELETE FROM {table}"))
        sessions = session_factory(engine)
        tracker = ActivityTracker(default_locale="en", default_timezone="UTC")
        dp = create_dispatcher(settings=load_settings(BOT_TOKEN=TOKEN, DATABASE_URL=db_url), sessions=sessions,
                               storage=None, ledger=MemoryLedger(), tracker=tracker, i18n=get_i18n())
        assert dp.chatter is not None, "the real routers must leave chatter off the routed path"
        if not lane:
            dp.chatter = None
        bot = Bot(TOKEN)
        for data in traffic():
            if raw and is_raw_chatter(data, BOT_ID):
                await dp.chatter.handle([RawChatter(data)])
            else:
                await dp.feed_update(bot, Update.model_validate(data, context={"bot": bot}))
        async with sessions() as session:
            await tracker.flush(session)
        await bot.session.close()
        return await _snapshot(engine), len(routed)
    finally:
        await engine.dispose()


async def test_chatter_lane_leaves_the_database_as_routing_does(db_url, routed_updates):
    routed_state, routed_count = await _run(db_url, lane=False, routed=routed_updates)
    lane_state, lane_count = await _run(db_url, lane=True, routed=routed_updates)

    assert lane_state == routed_state
    assert routed_count == len(traffic())
    # Only the reply to the bot, the photo, the other bot and the sender chat went through routing.
    assert lane_count == 4
    members = {(chat, uid): count for chat, uid, _status, _leader, count, *_ in lane_state["members"]}
    assert members == {(GROUP, 11): 3, (GROUP, 12): 3, (GROUP, 13): 2, (OTHER_GROUP, 11): 1}

    raw_state, raw_count = await _run(db_url, lane=True, routed=routed_updates, raw=True)
    assert raw_state == routed_state
    assert raw_count == 4


def test_chatter_is_plain_text_from_a_person_in_a_group():
    def chatter(raw: dict) -> bool:
        parsed = is_chatter(Update.model_validate(raw), BOT_ID)
        assert is_raw_chatter(raw, BOT_ID) == parsed, f"the JSON and the parsed update disagree on {raw}"
        return parsed

    assert chatter(message(1, GROUP, ANN, "hello"))
    assert chatter(message(1, GROUP, ANN, "hello", chat_type="group"))
    assert not chatter(message(1, GROUP, ANN, "hello", chat_type="private"))
    assert not chatter(message(1, GROUP, ANN, "/buy 1"))
    assert not chatter(message(1, GROUP, ANN, "  /buy 1"))  # Command filters strip first
    assert not chatter(message(1, GROUP, ANN, "x /buy", entities=[{"type": "bot_command", "offset": 2, "length": 4}]))
    assert not chatter(message(1, GROUP, ANN, None, new_chat_members=[BEN]))
    assert not chatter(message(1, GROUP, ANN, "hi", forward_origin={"type": "hidden_user", "date": 1, "sender_user_name": "x"}))
    assert not chatter(message(1, GROUP, ANN, "hi", some_future_field=1))
    assert not chatter(message(1, GROUP, THE_BOT, "hi"))
    reply = {"message_id": 1, "date": 1, "chat": {"id": GROUP, "type": "supergroup"}, "from": THE_BOT, "text": "x"}
    assert not chatter(message(2, GROUP, ANN, "hi", reply_to_message=reply))
    assert chatter(message(2, GROUP, ANN, "hi", reply_to_message={**reply, "from": BEN}))
    edited = message(1, GROUP, ANN, "hello")
    assert not chatter({"update_id": 1, "edited_message": edited["message"]})


def test_the_json_check_accepts_nothing_the_parsed_check_refuses():
    for raw in traffic():
        assert is_raw_chatter(raw, BOT_ID) == is_chatter(Update.model_validate(raw), BOT_ID), raw
    probes = [{"update_id": 1, "message": p.model_dump(mode="json", by_alias=True, exclude_unset=True)}
              for p in _probes()]
    assert all(is_raw_chatter(p, BOT_ID) and is_chatter(Update.model_validate(p), BOT_ID) for p in probes)


@pytest.mark.parametrize("change", [
    lambda m: m.update(text=5),
    lambda m: m.update(date="today"),
    lambda m: m["chat"].update(id="-100"),
    lambda m: m["chat"].update(title=None),
    lambda m: m["from"].update(is_bot=None),
    lambda m: m["from"].pop("first_name"),
    lambda m: m["from"].update(username=7),
    lambda m: m.update(entities={"type": "url"}),
    lambda m: m.update(entities=["url"]),
    lambda m: m.update(reply_to_message="hi"),
    lambda m: m.update(reply_to_message={"message_id": 1, "date": 1, "chat": {"id": 1, "type": "group"}}),
])
def test_json_of_unexpected_shape_is_left_to_the_parser(change):
    raw = copy.deepcopy(message(1, GROUP, ANN, "hello"))
    assert is_raw_chatter(raw, BOT_ID)
    change(raw["message"])
    assert not is_raw_chatter(raw, BOT_ID)


async def test_the_polling_session_hands_over_chatter_unparsed_and_parses_the_rest():
    session = ChatterSession()
    bot = Bot(TOKEN, session=session)
    answer = json.dumps({"ok": True, "result": traffic()})
    try:
        everything = session.check_response(bot, GetUpdates(), 200, answer).result
        assert all(isinstance(u, Update) for u in everything)

        session.chatter_of = partial(is_raw_chatter, bot_id=BOT_ID)
        split = session.check_response(bot, GetUpdates(), 200, answer).result
        assert [u.update_id for u in split] == [u.update_id for u in everything]
        assert {u.update_id for u in split if not isinstance(u, RawChatter)} == {6, 7, 8, 9}
        assert [u.parsed(bot) for u in split if isinstance(u, RawChatter)] == [
            u for u in everything if is_chatter(u, BOT_ID)]

        refused = json.dumps({"ok": False, "error_code": 409, "description": "Conflict: terminated by other getUpdates"})
        with pytest.raises(TelegramConflictError):
            session.check_response(bot, GetUpdates(), 409, refused)
        with pytest.raises(ClientDecodeError):
            session.check_response(bot, GetUpdates(), 200, json.dumps({"ok": True, "result": [{"update_id": "x"}]}))
        assert session.check_response(bot, GetMe(), 200, json.dumps({"ok": True, "result": THE_BOT})).result.id == BOT_ID
    finally:
        await session.close()


def _dispatcher_with(*filters) -> tuple[AiogramDispatcher, list]:
    dp = create_dispatcher(settings=load_settings(BOT_TOKEN=TOKEN, DATABASE_URL="sqlite+aiosqlite://"), sessions=None,
                           storage=None, ledger=MemoryLedger(),
                           tracker=ActivityTracker(default_locale="en", default_timezone="UTC"), i18n=get_i18n())
    lane = dp.chatter
    assert lane is not None
    extra = Router(name="extra")
    extra.message(*filters)(lambda message: None)
    dp.include_router(extra)
    return dp, [lane.dedup, lane.errors, lane.activity]


@pytest.mark.parametrize("filters, reason", [
    ((), "no filters"),
    ((F.text,), "accepts plain group text"),
    ((F.chat.type == "supergroup",), "accepts plain group text"),
    ((F.text.regexp(r"^!deal\b"),), "reads text"),
    ((F.text == "exactly this",), "reads text"),
    ((StateFilter("some:state"),), "StateFilter cannot be decided"),
    ((Command("buy", prefix="!"),), "prefix '!'"),
    ((lambda m: False,), "function cannot be decided"),
    ((F.content_type == "photo",), "reads content_type"),
    ((F.reply_to_message.from_user.is_bot,), "reads reply_to_message"),
    ((F.chat == 5,), "reads chat"),
])
def test_a_handler_that_might_take_chatter_keeps_it_routed(filters, reason):
    dp, known = _dispatcher_with(*filters)
    found = why_routed(dp, known_middlewares=known)
    assert found is not None and "extra" in found and reason in found, found


@pytest.mark.parametrize("filters", [
    (F.chat.type == "private",),
    (F.chat.type == "private", StateFilter("some:state")),
    (StateFilter("some:state"), F.photo),
    (Command("ping"),),
    (F.new_chat_members,),
    (F.successful_payment.invoice_payload.regexp("x"),),
])
def test_handlers_that_cannot_take_chatter_leave_it_off_the_routed_path(filters):
    dp, known = _dispatcher_with(*filters)
    assert why_routed(dp, known_middlewares=known) is None


def test_an_unknown_middleware_keeps_chatter_routed():
    dp, known = _dispatcher_with(F.chat.type == "private")

    async def spy(handler, event, data):
        return await handler(event, data)

    dp.sub_routers[-1].message.outer_middleware(spy)
    assert "message middleware" in why_routed(dp, known_middlewares=known)


async def test_a_router_included_later_is_seen_when_polling_starts(caplog):
    dp, _known = _dispatcher_with(F.chat.type == "private")
    late = Router(name="late")

    @late.message(F.chat.type.in_({"group", "supergroup"}), F.text)
    async def thanks(message) -> None:
        pass

    dp.include_router(late)
    with caplog.at_level(logging.INFO, logger="bot.telegram.chatter"):
        await dp.emit_startup()
    assert dp.chatter is None
    assert [r.getMessage() for r in caplog.records if "routed" in r.getMessage()] == [
        "plain group chatter is routed: handler test_a_router_included_later_is_seen_when_polling_starts.<locals>"
        ".thanks of router 'late' may take it "
        "(a magic filter accepts plain group text)"]


async def test_ledgers_answer_for_a_batch_in_order(redis_url):
    ledgers = [MemoryLedger()]
    clients = []
    if redis_url:
        from redis.asyncio import Redis

        clients.append(Redis.from_url(redis_url))
        ledgers.append(RedisLedger(clients[0], Presence(clients[0], bot_id=42), bot_id=42))
    try:
        for ledger in ledgers:
            assert await ledger.first_time(2)
            assert await ledger.first_times([1, 2, 3, 1]) == [True, False, True, False]
            assert await ledger.first_times([]) == []
            assert not await ledger.first_time(3)
    finally:
        for client in clients:
            await client.aclose()
