"""Plain group chatter without routing, once it is proven that no handler could take it.

A busy group sends the bot thousands of plain text messages a minute. None of them is answered: the
activity tracker counts them, and every router then turns each one down after a few dozen filter
checks, which cost several times the tracking itself (bench/foundation.py, (a)). When nothing
registered can accept such a message, chatter goes from the polling loop straight to what the
update middlewares do for it (de-duplication, activity tracking, failures logged with an error id),
in batches, without a task, the FSM lookup or routing per message. When polling, it is recognised
in getUpdates' JSON (`is_raw_chatter`, which accepts only what `is_chatter` accepts once parsed)
and never parsed into aiogram's objects at all, which was half of what was left of its cost.

"Nothing can accept it" is decided from the routers themselves, at build time and again when
polling starts (routers included later count): every message handler needs one filter, its own or
a router's on the way to it, that provably turns down every plain group text message. A filter
proves that only in the ways listed in `_rejects_chatter`; a handler without such a filter (no
filters, a state filter with nothing else, a text pattern, a filter of unknown kind) keeps the
whole dispatcher on the routed path, and the reason is logged once. So a new group text handler
fires without anyone remembering this module.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from functools import partial
from typing import Any, Callable

import orjson
from aiogram import Bot
from aiogram import Dispatcher as AiogramDispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.dispatcher.dispatcher import DEFAULT_BACKOFF_CONFIG
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.dispatcher.event.handler import FilterObject
from aiogram.dispatcher.middlewares.error import ErrorsMiddleware as AiogramErrorsMiddleware
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.filters import Command
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.methods import GetUpdates, Response, TelegramMethod
from aiogram.types import Message, TelegramObject, Update
from aiogram.utils.backoff import Backoff, BackoffConfig
from aiohttp import FormData
from aiohttp.payload import BytesPayload
from pydantic import ValidationError

from bot.services.activity import Sighting
from bot.services.users import Profile
from bot.telegram.metrics import UPDATE_ERRORS, UPDATES, UpdateMetrics
from bot.telegram.middlewares.activity import GROUP_TYPES, ActivityMiddleware
from bot.telegram.middlewares.dedup import DedupMiddleware
from bot.telegram.middlewares.errors import ErrorsMiddleware
from bot.telegram.polling import PollingWindow

log = logging.getLogger(__name__)

# What a plain text message in a group may carry and still be chatter. Anything else (a photo, a
# caption, a forward, a service notice, a sender chat, an inline bot, a payment...) is routed.
CHATTER_FIELDS = frozenset({
    "message_id", "date", "chat", "from_user", "text", "entities", "reply_to_message", "quote",
    "message_thread_id", "is_topic_message", "link_preview_options", "has_protected_content",
})
# Attributes whose value is the same for every chatter message, or one of the values the probes
# below cover: a filter that reads nothing else decides chatter the way it decides the probes.
SETTLED_READS = frozenset({f for f in Message.model_fields if f not in CHATTER_FIELDS} | {"chat.type", "from_user.is_bot"})
# Chatter is held back at most this long behind de-duplication (Redis) before polling waits.
MAX_PENDING = 1_000


def is_chatter(update: Update, bot_id: int) -> bool:
    """A plain text message by a person in a group: no command, not a reply to the bot."""
    message = update.message
    if message is None or message.chat.type not in GROUP_TYPES or not message.model_fields_set <= CHATTER_FIELDS:
        return False
    text, user = message.text, message.from_user
    # Command filters split the text on whitespace first: " /buy 1" is a command too.
    if text is None or user is None or user.is_bot or text.lstrip().startswith("/"):
        return False
    if message.entities and any(entity.type == "bot_command" for entity in message.entities):
        return False
    reply = message.reply_to_message
    if reply is not None and reply.from_user is not None and reply.from_user.id == bot_id:
        return False
    return len(update.model_fields_set) == 2  # update_id and message, nothing Telegram added


# The same fields under the names Telegram's JSON gives them.
CHATTER_KEYS = frozenset(Message.model_fields[f].alias or f for f in CHATTER_FIELDS)


def is_raw_chatter(raw: Any, bot_id: int) -> bool:
    """`is_chatter` on an update as Telegram's JSON has it, before aiogram builds its objects.

    Says yes only for what `is_chatter` accepts once parsed (tests/test_chatter.py compares them),
    and only when every value it relies on has the type Telegram documents: anything else is
    parsed and routed as usual, where a malformed update fails as it always did.
    """
    if not isinstance(raw, dict) or raw.keys() != {"update_id", "message"} or not isinstance(raw["update_id"], int):
        return False
    message = raw["message"]
    if not isinstance(message, dict) or not message.keys() <= CHATTER_KEYS:
        return False
    chat, user, text = message.get("chat"), message.get("from"), message.get("text")
    if not (isinstance(chat, dict) and chat.get("type") in GROUP_TYPES and type(chat.get("id")) is int
            and isinstance(chat.get("title", ""), str) and type(message.get("date")) is int):
        return False
    if not (isinstance(user, dict) and user.get("is_bot") is False and type(user.get("id")) is int
            and isinstance(user.get("first_name"), str)
            and all(isinstance(user.get(k, ""), str) for k in ("last_name", "username", "language_code"))):
        return False
    if not isinstance(text, str) or text.lstrip().startswith("/"):
        return False
    entities = message.get("entities", [])
    if not isinstance(entities, list) or any(not isinstance(e, dict) or e.get("type") == "bot_command" for e in entities):
        return False
    reply = message.get("reply_to_message")
    if reply is not None:
        replied_to = reply.get("from") if isinstance(reply, dict) else None
        if not isinstance(replied_to, dict) or replied_to.get("id") == bot_id:
            return False
    return True


class RawChatter:
    """An update `is_raw_chatter` accepted: it is counted from its JSON and never becomes aiogram
    objects, whose building cost more than everything else done for chatter (bench/foundation.py, (a))."""

    __slots__ = ("update_id", "_message")

    def __init__(self, raw: dict) -> None:
        self.update_id, self._message = raw["update_id"], raw["message"]

    def parsed(self, bot: Bot) -> Update:
        """For a lane turned off while polling (tests do): the update as aiogram would have it."""
        return Update.model_validate({"update_id": self.update_id, "message": self._message}, context={"bot": bot})

    def sighting(self) -> Sighting:
        """What `ActivityMiddleware.sighting` gives for the same message once parsed."""
        chat, user = self._message["chat"], self._message["from"]
        return Sighting(
            chat["id"],
            chat.get("title") or "",
            Profile(id=user["id"], first_name=user["first_name"], last_name=user.get("last_name"),
                    username=user.get("username"), language_code=user.get("language_code")),
            datetime.fromtimestamp(self._message["date"], timezone.utc),
        )


class Unparsable:
    """An update aiogram cannot build (Telegram adds fields and values with every Bot API release).
    Polling passes it over, so its offset is confirmed: one such update must not stall the bot."""

    __slots__ = ("update_id",)

    def __init__(self, update_id: int) -> None:
        self.update_id = update_id


class Known(Unparsable):
    """An update polling already handed out (bot/telegram/polling.py): not parsed again."""

    __slots__ = ()


class ChatterSession(AiohttpSession):
    """The bots' HTTP session. A getUpdates answer is parsed update by update: one that aiogram
    cannot parse comes back as `Unparsable` instead of failing the whole answer (which polling would
    ask for again, forever), and while polling with the chatter lane on, chatter comes back as
    `RawChatter`. Calls without files are sent as JSON (`build_form_data`)."""

    chatter_of: Callable[[Any], bool] | None = None
    # While polling: ids being handled or handled already, which come back until confirmed.
    known: Callable[[int], bool] | None = None

    def build_form_data(self, bot: Bot, method: TelegramMethod[Any]) -> FormData | BytesPayload:
        """A call without files goes as one JSON body, which the Bot API takes as it takes forms:
        aiogram's urlencoded form (every nested object dumped to a string, then quoted) cost a
        broadcast a tenth of its CPU. Uploads keep aiogram's multipart form."""
        files: dict[str, Any] = {}
        fields = {}
        for key, value in method.model_dump(warnings=False).items():
            value = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if value is not None and value != "":
                fields[key] = value
        if files:
            return super().build_form_data(bot, method)
        return BytesPayload(orjson.dumps(fields), content_type="application/json")

    def check_response(self, bot: Bot, method, status_code: int, content: str):
        if not isinstance(method, GetUpdates) or status_code != 200:
            return super().check_response(bot=bot, method=method, status_code=status_code, content=content)
        try:
            data = self.json_loads(content)
        except Exception:  # noqa: BLE001 - aiogram's own check reports it
            data = None
        result = data.get("result") if isinstance(data, dict) and data.get("ok") is True else None
        if not isinstance(result, list) or not all(isinstance(raw, dict) and type(raw.get("update_id")) is int
                                                   for raw in result):
            return super().check_response(bot=bot, method=method, status_code=status_code, content=content)
        known = self.known
        return Response[list[Update]].model_construct(
            ok=True, result=[Known(raw["update_id"]) if known is not None and known(raw["update_id"]) else self._parse(bot, raw)
                             for raw in result])

    def _parse(self, bot: Bot, raw: dict) -> Update | RawChatter | Unparsable:
        if self.chatter_of is not None and self.chatter_of(raw):
            return RawChatter(raw)
        try:
            return Update.model_validate(raw, context={"bot": bot})
        except ValidationError as exc:
            log.error("update %s could not be parsed and is skipped: %s", raw["update_id"],
                      "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3]))
            return Unparsable(raw["update_id"])


class ChatterLane:
    """Does for chatter what the update middlewares do, a batch (one getUpdates answer) at a time."""

    def __init__(self, *, dedup: DedupMiddleware, errors: ErrorsMiddleware, activity: ActivityMiddleware,
                 tasks: set[asyncio.Task]) -> None:
        self.dedup, self.errors, self.activity = dedup, errors, activity
        # The dispatcher's in-flight tasks: draining and shutdown wait for chatter as for the rest.
        self._tasks = tasks
        self._pending: list[Update] = []
        self._drainer: asyncio.Task | None = None
        # Polling's window, told when a batch is recorded: until then its offset holds them.
        self.window: PollingWindow | None = None

    async def add(self, update: Update) -> None:
        """Queue chatter from the polling loop; it is handled once the current batch is read."""
        self._pending.append(update)
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain(), name="chatter")
            self._tasks.add(self._drainer)
            self._drainer.add_done_callback(self._tasks.discard)
        elif len(self._pending) >= MAX_PENDING:
            await self.drained()

    async def drained(self) -> None:
        """Until everything queued so far is recorded."""
        if self._drainer is not None:
            await asyncio.wait({self._drainer})

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self.handle(batch)
                if self.window is not None:
                    for update in batch:
                        self.window.finished(update.update_id)
        finally:
            self._drainer = None

    async def handle(self, updates: list[Update]) -> None:
        try:
            fresh = await self.dedup.fresh(updates)
        except Exception:
            for update in updates:
                self.errors.log_failure(update.update_id)
            return
        # UpdateMetrics does not see the lane: the batch is counted here, at once.
        UPDATES.labels("message").inc(len(fresh))
        sightings: list[Sighting] = []
        for update in fresh:
            try:
                sighting = update.sighting() if isinstance(update, RawChatter) else self.activity.sighting(update.message)
            except Exception:
                UPDATE_ERRORS.labels("message").inc()
                self.errors.log_failure(update.update_id)
                continue
            if sighting is not None:
                sightings.append(sighting)
        # One journal write for the batch, before the caller lets its updates be acknowledged.
        try:
            self.activity.tracker.record_many(sightings)
        except Exception:
            UPDATE_ERRORS.labels("message").inc(len(fresh))
            for update in fresh:
                self.errors.log_failure(update.update_id)


class Dispatcher(AiogramDispatcher):
    """aiogram's Dispatcher, with chatter taken off the routed path when that is proven safe."""

    chatter: ChatterLane | None = None
    _window: PollingWindow | None = None

    def use_chatter_lane(self, *, dedup: DedupMiddleware, errors: ErrorsMiddleware,
                         activity: ActivityMiddleware) -> None:
        """Decide now and again when polling starts (routers may be included after this call)."""
        parts = {"dedup": dedup, "errors": errors, "activity": activity}
        logged = "not decided yet"

        def decide() -> None:
            nonlocal logged
            reason = why_routed(self, known_middlewares=parts.values())
            if reason is None and self.chatter is None:
                self.chatter = ChatterLane(tasks=self._handle_update_tasks, **parts)
            elif reason is not None:
                self.chatter = None
            if reason != logged:
                logged = reason
                if reason is None:
                    log.info("plain group chatter skips routing: no handler can take it")
                else:
                    log.info("plain group chatter is routed: %s", reason)

        async def on_startup() -> None:
            decide()

        decide()
        self.startup.register(on_startup)

    async def feed_update(self, bot: Bot, update: Update, **kwargs: Any) -> Any:
        # Webhook mode and direct feeding come through here, one update at a time.
        if self.chatter is not None and is_chatter(update, bot.id):
            await self.chatter.handle([update])
            return UNHANDLED
        return await super().feed_update(bot, update, **kwargs)

    async def _listen_updates(self, bot: Bot, polling_timeout: int = 30,  # type: ignore[override]
                              backoff_config: BackoffConfig = DEFAULT_BACKOFF_CONFIG,
                              allowed_updates: list[str] | None = None):
        """aiogram's polling loop, confirming only what was handled (bot/telegram/polling.py); chatter
        goes to its lane instead of a task per update."""
        window = self._window = PollingWindow()
        session = bot.session if isinstance(bot.session, ChatterSession) else None
        if session is not None:
            session.chatter_of = partial(is_raw_chatter, bot_id=bot.id) if self.chatter is not None else None
            session.known = window.known
        if self.chatter is not None:
            self.chatter.window = window
        backoff = Backoff(config=backoff_config)
        get_updates = GetUpdates(timeout=polling_timeout, allowed_updates=allowed_updates)
        kwargs = {"request_timeout": int(bot.session.timeout + polling_timeout)} if bot.session.timeout else {}
        try:
            while True:
                get_updates.offset = window.next_offset()
                try:
                    updates = await bot(get_updates, **kwargs)
                except Exception as exc:  # noqa: BLE001 - Telegram unreachable: wait and ask again
                    log.error("could not fetch updates (%s: %s); again in %.1f s", type(exc).__name__, exc,
                              backoff.next_delay)
                    await backoff.asleep()
                    continue
                backoff.reset()
                fresh = False
                for update in updates:
                    if isinstance(update, Known) or window.known(update.update_id):
                        continue
                    fresh = True
                    window.started(update.update_id)
                    if isinstance(update, Unparsable):
                        window.finished(update.update_id)
                        continue
                    lane = self.chatter
                    if lane is not None and (isinstance(update, RawChatter) or is_chatter(update, bot.id)):
                        await lane.add(update)
                    else:
                        yield update.parsed(bot) if isinstance(update, RawChatter) else update
                if self.chatter is not None:
                    # Asking again before this answer's chatter is recorded would only bring the same
                    # updates back: the offset holds them until then.
                    await self.chatter.drained()
                if updates and not fresh:
                    await window.wait_for_progress()
        finally:
            if session is not None:
                session.chatter_of = session.known = None
            if self.chatter is not None:
                self.chatter.window = None

    async def _process_update(self, bot: Bot, update: Update, call_answer: bool = True, **kwargs: Any) -> bool:
        # aiogram's, telling polling's window how it went. An exception here escaped every handler
        # (the errors middleware answers theirs): the update is fetched and tried again.
        window = self._window
        try:
            response = await self.feed_update(bot, update, polling=True, **kwargs)
            if call_answer and isinstance(response, TelegramMethod):
                await self.silent_call_request(bot=bot, result=response)
        except Exception:
            log.exception("update %s failed outside every handler", update.update_id)
            if window is not None:
                window.failed(update.update_id)
            return True
        if window is not None:
            window.finished(update.update_id)
        return response is not UNHANDLED

    async def confirm_handled(self, bot: Bot) -> None:
        """After polling stopped and handlers drained: tell Telegram what was handled since the last
        getUpdates, so a restart does not receive it again."""
        offset = self._window.offset if self._window is not None else None
        if offset is not None:
            await bot(GetUpdates(offset=offset, limit=1, timeout=0))

def why_routed(dp: AiogramDispatcher, *, known_middlewares) -> str | None:
    """None when no registered handler can take plain group chatter; else the first reason why."""
    known = {id(m) for m in known_middlewares}
    # The lane counts chatter itself, so the metrics middleware loses nothing when skipped.
    builtin = (AiogramErrorsMiddleware, UserContextMiddleware, FSMContextMiddleware, UpdateMetrics)
    for middleware in dp.update.outer_middleware:
        if id(middleware) not in known and not isinstance(middleware, builtin):
            return f"update middleware {middleware!r} would not see it"
    if dp.update._handler.filters or [h.callback for h in dp.update.handlers] != [dp._listen_update]:
        return "the dispatcher's update observer has other handlers or filters"
    probes = _probes()
    for router in dp.chain_tail:
        observer = router.observers["message"]
        for middleware in observer.outer_middleware:
            if id(middleware) not in known:
                return f"message middleware {middleware!r} of router {router.name!r} would not see it"
        inherited = [f for r in reversed(tuple(router.chain_head)) for f in (r.observers["message"]._handler.filters or [])]
        for handler in observer.handlers:
            doubts = []
            for filter_object in [*inherited, *(handler.filters or [])]:
                verdict = _rejects_chatter(filter_object, probes)
                if verdict is True:
                    break
                doubts.append(verdict)
            else:
                name = getattr(handler.callback, "__qualname__", repr(handler.callback))
                return f"handler {name} of router {router.name!r} may take it ({'; '.join(dict.fromkeys(doubts)) or 'no filters'})"
    return None


def _rejects_chatter(filter_object: FilterObject, probes: list[Message]) -> bool | str:
    """True when the filter turns down every chatter message; else why that is not proven."""
    callback = filter_object.callback
    if isinstance(callback, Command):
        # Chatter never starts with "/" once stripped (is_chatter); Command looks only there.
        return True if set(callback.prefix) <= {"/"} else f"Command with prefix {callback.prefix!r}"
    if filter_object.magic is None:
        return f"{type(callback).__name__} cannot be decided without the update"
    reads: set[str] = set()
    for probe in probes:
        try:
            accepted = filter_object.magic.resolve(_Reading(probe, "", reads))
        except Exception as exc:
            return f"{filter_object.magic!r} raised {type(exc).__name__} on a probe"
        if accepted:
            return "a magic filter accepts plain group text"
    unsettled = reads - SETTLED_READS
    if not reads or unsettled:
        return f"a magic filter reads {', '.join(sorted(unsettled)) or 'the message itself'}"
    return True


class _Reading:
    """A message (or part of one) that notes which attributes a magic filter reads.

    Nested Telegram objects are wrapped in turn, so reading `chat.type` counts as reading
    "chat.type", not "chat"; using a wrapped object itself (comparing it, its truth value) counts
    as reading its whole path.
    """

    __slots__ = ("_object", "_path", "_reads")

    def __init__(self, obj: TelegramObject, path: str, reads: set[str]) -> None:
        self._object, self._path, self._reads = obj, path, reads

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._object, name)
        path = self._path + name
        if isinstance(value, TelegramObject):
            return _Reading(value, path + ".", self._reads)
        self._reads.add(path)
        return value

    def _whole(self) -> TelegramObject:
        self._reads.add(self._path.rstrip(".") or "<message>")
        return self._object

    def __eq__(self, other: object) -> bool:
        return self._whole() == other

    def __ne__(self, other: object) -> bool:
        return self._whole() != other

    def __hash__(self) -> int:
        return hash(self._whole())

    def __bool__(self) -> bool:
        return bool(self._whole())

    def __str__(self) -> str:
        return str(self._whole())


def _probes() -> list[Message]:
    """Chatter as it comes: both kinds of group, with and without entities, replies, topics."""
    person = {"id": 1001, "is_bot": False, "first_name": "Probe", "language_code": "en"}
    other = {"id": 1002, "is_bot": False, "first_name": "Other"}
    texts = [
        ("hi", None), ("Hello everyone!", None), ("ok", None), ("+1", None), ("1", None), ("buy", None),
        ("check in", None), ("签到", None), ("👍", None), ("how much is it?", None), ("x" * 4096, None),
        ("see https://example.com", [{"type": "url", "offset": 4, "length": 19}]),
        ("@someone look", [{"type": "mention", "offset": 0, "length": 8}]),
        ("bold move", [{"type": "bold", "offset": 0, "length": 4}]),
        ("#deal today", [{"type": "hashtag", "offset": 0, "length": 5}]),
    ]
    probes = []
    for chat_type in GROUP_TYPES:
        chat = {"id": -1001234567890, "type": chat_type, "title": "Probe group"}
        for text, entities in texts:
            base = {"message_id": 10, "date": 1_700_000_000, "chat": chat, "from": person, "text": text}
            if entities:
                base["entities"] = entities
            probes.append(base)
        reply_to = {"message_id": 9, "date": 1_699_999_990, "chat": chat, "from": other, "text": "earlier"}
        probes.append({"message_id": 11, "date": 1_700_000_001, "chat": chat, "from": person, "text": "same here",
                       "reply_to_message": reply_to})
        probes.append({"message_id": 12, "date": 1_700_000_002, "chat": {**chat, "is_forum": True}, "from": person,
                       "text": "in a topic", "message_thread_id": 5, "is_topic_message": True})
    return [Message.model_validate(p) for p in probes]
