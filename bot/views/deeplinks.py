"""The one routing table for `/start <payload>` deep links.

A payload is `<key>` or `<key>-<argument>` (Telegram allows 64 characters of A-Za-z0-9_-). Features
register a key with the coroutine that handles it; /start looks the key up here.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

PAYLOAD_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

DeepLinkHandler = Callable[..., Awaitable[Any]]
_routes: dict[str, DeepLinkHandler] = {}


def route(key: str) -> Callable[[DeepLinkHandler], DeepLinkHandler]:
    if not re.fullmatch(r"[a-z0-9_]+", key):
        raise ValueError(f"deep-link key {key!r} must be lower-case letters, digits or _")

    def register(func: DeepLinkHandler) -> DeepLinkHandler:
        if key in _routes:
            raise ValueError(f"deep-link key {key!r} registered twice")
        _routes[key] = func
        return func

    return register


def resolve(payload: str) -> tuple[DeepLinkHandler, str] | None:
    """The handler and its argument, or None for a payload nobody handles."""
    if not PAYLOAD_RE.match(payload):
        return None
    key, _, arg = payload.partition("-")
    handler = _routes.get(key)
    return (handler, arg) if handler else None


def build(bot_username: str, key: str, arg: str | int | None = None) -> str:
    payload = key if arg is None else f"{key}-{arg}"
    if not PAYLOAD_RE.match(payload):
        raise ValueError(f"invalid deep-link payload {payload!r}")
    return f"https://t.me/{bot_username}?start={payload}"
