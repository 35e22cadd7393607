"""Builds the Bot and the Dispatcher; shared by `run`, `demo`, tests and benchmarks."""

from __future__ import annotations

import logging

import orjson
from aiogram import Bot, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.storage.base import BaseStorage
from aiogram.methods import AnswerCallbackQuery, Response
from aiogram.utils.i18n import I18n

from bot.core.config import Settings
from bot.core.db import SessionFactory
from bot.services.activity import ActivityTracker
from bot.services.seen_users import SeenUsers
from bot.telegram.chatter import ChatterSession, Dispatcher
from bot.telegram.dedup import UpdateLedger
from bot.telegram.flood import WaitOutFloodControl
from bot.telegram.fsm_storage import CompactMemoryStorage
from bot.telegram.membership import MembershipCheck
from bot.telegram.middlewares.activity import ActivityMiddleware
from bot.telegram.middlewares.actor import ActorMiddleware
from bot.telegram.middlewares.database import DatabaseMiddleware
from bot.telegram.middlewares.dedup import DedupMiddleware
from bot.telegram.middlewares.errors import ErrorsMiddleware
from bot.telegram.middlewares.throttle import ThrottleMiddleware

log = logging.getLogger(__name__)

# How Telegram refuses a callback answer after the query's deadline (or a second answer to it).
QUERY_TOO_OLD = "query is too old"
# Observers that get a DB session, the actor and throttling (inner: only when a handler matched).
HANDLED_EVENTS = ("message", "callback_query", "chat_member", "my_chat_member", "chat_join_request", "pre_checkout_query")


class KeepResponseModels(BaseRequestMiddleware):
    """Keeps alive the `Response[...]` model of every Bot API method this bot has called.

    aiogram parses each result as `Response[<result type>]`, a pydantic generic built on first
    use. Pydantic caches built generics only weakly, so every full garbage collection drops them
    and the next call rebuilds the schema: about 10 ms for `Response[Message]`, several times a
    second under a burst of answers (bench/foundation.py, (b)). One dict lookup per call instead.
    """

    def __init__(self) -> None:
        self._models: dict[type, object] = {}

    async def __call__(self, make_request, bot, method):
        kind = type(method)
        if kind not in self._models:
            self._models[kind] = Response[method.__returning__]
        return await make_request(bot, method)


class LateCallbackAnswers(BaseRequestMiddleware):
    """An answer to a button press that Telegram refuses as too late becomes a logged no-op.

    Telegram takes a callback answer for about 15 s after the press; in a rush the bot gets to it
    later. By then the press has usually done what it was for, and the toast is all that is lost:
    raising would stop the handler half way and make the errors middleware apologise for an action
    that took effect. The refusal reads the same for a query answered twice, so the answer comes
    back False ("nothing was shown"), never True.
    """

    async def __call__(self, make_request, bot, method):
        try:
            return await make_request(bot, method)
        except TelegramBadRequest as exc:
            if not isinstance(method, AnswerCallbackQuery) or QUERY_TOO_OLD not in exc.message:
                raise
            log.info("callback query %s not answered: %s", method.callback_query_id, exc.message)
            return False


def create_bot(settings: Settings, token: str, *, wait_out_flood: bool = True) -> Bot:
    """A Bot on the configured API server. Handlers' bot waits out 429s; the sender's does not,
    because the sender paces itself from a shared budget and must see every 429 to pause it."""
    # orjson parses a getUpdates answer (a hundred updates, each with the message its button is on)
    # several times faster than the standard library, which took a twentieth of a check-in rush.
    session = ChatterSession(api=TelegramAPIServer.from_base(settings.TELEGRAM_API_URL), json_loads=orjson.loads)
    session.middleware(KeepResponseModels())
    session.middleware(LateCallbackAnswers())
    if wait_out_flood:
        session.middleware(WaitOutFloodControl())
    return Bot(token=token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def create_dispatcher(
    *,
    settings: Settings,
    sessions: SessionFactory,
    storage: BaseStorage | None,
    ledger: UpdateLedger,
    tracker: ActivityTracker,
    i18n: I18n,
    **workflow_data: object,
) -> Dispatcher:
    from handlers import routers

    dp = Dispatcher(storage=storage or CompactMemoryStorage(), settings=settings, sessions=sessions, tracker=tracker,
                    membership=MembershipCheck(), **workflow_data)
    dedup, errors, activity = DedupMiddleware(ledger), ErrorsMiddleware(settings.DEFAULT_LOCALE), ActivityMiddleware(tracker)
    dp.update.outer_middleware(dedup)
    dp.update.outer_middleware(errors)
    dp.message.outer_middleware(activity)
    dp.callback_query.outer_middleware(activity)
    database = DatabaseMiddleware(sessions)
    actor = ActorMiddleware(users=SeenUsers(sessions), i18n=i18n, owner_ids=settings.OWNER_IDS,
                            default_locale=settings.DEFAULT_LOCALE)
    throttle = ThrottleMiddleware(rate=settings.THROTTLE_RATE)
    for name in HANDLED_EVENTS:
        observer = dp.observers[name]
        observer.middleware(database)
        observer.middleware(actor)
        observer.middleware(throttle)
    ordered = routers()
    for router in ordered:
        # Module-level routers can belong to one dispatcher at a time; tests and the demo build
        # a fresh dispatcher per run in the same process.
        router._parent_router = None
        dp.include_router(router)
    inline_magic_filters(dp)
    log.info("routers: %s", " → ".join(r.name for r in ordered))
    dp.use_chatter_lane(dedup=dedup, errors=errors, activity=activity)
    return dp


def inline_magic_filters(root: Router) -> int:
    """Evaluate `F.…` filters on the event loop instead of in a thread; returns how many changed.

    aiogram runs every filter that is not a coroutine through `asyncio.to_thread`, magic filters
    included. They are pure attribute checks (`F.chat.type == "private"`), but the thread hop costs
    a pool hand-off and two GIL switches each, and a plain group message is checked against a
    dozen of them before it falls through every router. Measured (bench/foundation.py, (a)): the
    hops were about 40 % of the bot's CPU per group message. Same filters, same order, same
    results; only where they run changes.
    """
    changed = 0
    for router in root.chain_tail:
        for observer in router.observers.values():
            filters = list(observer._handler.filters or [])
            for handler in observer.handlers:
                filters.extend(handler.filters or [])
            for filter_object in filters:
                if filter_object.magic is not None and not filter_object.awaitable:
                    filter_object.callback = _on_loop(filter_object.callback)
                    filter_object.awaitable = True
                    changed += 1
    return changed


def _on_loop(resolve):
    async def check(*args, **kwargs):
        return resolve(*args, **kwargs)

    return check
