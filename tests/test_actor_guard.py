"""No handler that takes the actor runs without one (bot/telegram/middlewares/actor.py): a message
sent on behalf of a chat, or by a bot, has no person behind it, so such a handler is skipped and the
next handler that needs no actor may take the message. Fed through the real dispatcher."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import Message, Update

from bot.core.config import load_settings
from bot.core.db import create_engine, session_factory
from bot.core.i18n import get_i18n
from bot.factory import create_dispatcher
from bot.services.activity import ActivityTracker
from bot.telegram.dedup import MemoryLedger
from bot.telegram.middlewares.actor import Actor

TOKEN = "4242:GUARD-token"
GROUP = -1001000000001
CHAT = {"id": GROUP, "type": "supergroup", "title": "Valley"}
PERSON = {"id": 11, "is_bot": False, "first_name": "Ann"}
ANONYMOUS = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
SERVICE = {"id": 777000, "is_bot": False, "first_name": "Telegram"}
CHANNEL = {"id": -1001000000002, "type": "channel", "title": "News"}


def _update(update_id: int, sender: dict, **fields) -> Update:
    return Update.model_validate({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_700_000_000, "chat": CHAT, "from": sender, "text": "/ping", **fields}})


async def test_a_handler_that_takes_the_actor_never_runs_without_one(db_url) -> None:
    engine = create_engine(db_url)
    calls: list[tuple[str, int]] = []
    probe = Router(name="probe")

    @probe.message(F.text == "/ping")
    async def with_actor(message: Message, actor: Actor) -> None:
        calls.append(("actor", actor.user.id))

    @probe.message(F.text == "/ping")
    async def without_actor(message: Message) -> None:
        calls.append(("no actor", message.from_user.id))

    try:
        dp = create_dispatcher(settings=load_settings(BOT_TOKEN=TOKEN, DATABASE_URL=db_url),
                               sessions=session_factory(engine), storage=None, ledger=MemoryLedger(),
                               tracker=ActivityTracker(default_locale="en", default_timezone="UTC"), i18n=get_i18n())
        dp.include_router(probe)
        bot = Bot(TOKEN)
        await dp.feed_update(bot, _update(1, PERSON))
        await dp.feed_update(bot, _update(2, ANONYMOUS, sender_chat=CHAT))
        await dp.feed_update(bot, _update(3, SERVICE, sender_chat=CHANNEL, is_automatic_forward=True))
        await dp.feed_update(bot, _update(4, {"id": 77, "is_bot": True, "first_name": "Other bot"}))
        await bot.session.close()
    finally:
        await engine.dispose()
    assert calls == [("actor", 11), ("no actor", 1087968824), ("no actor", 777000), ("no actor", 77)]
