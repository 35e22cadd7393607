"""Registry mapping Bot API method names (case-insensitive) to implementations.

Each implementation takes the emulator and the request `Params` and returns
the `result` value, or raises `ApiError`. It may be a coroutine function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

METHODS: dict[str, Callable[..., Any]] = {}


def method(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        for name in names:
            METHODS[name.lower()] = func
        return func

    return register
