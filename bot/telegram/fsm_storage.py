"""Where form state lives: Redis when configured, else this process's memory."""

from __future__ import annotations

from collections.abc import Mapping
from copy import copy
from typing import Any

from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from aiogram.fsm.storage.redis import RedisStorage


class SharedRedisStorage(RedisStorage):
    """FSM storage on the App's Redis client, which the App closes itself.

    aiogram closes the FSM storage as soon as polling stops, while updates already fetched are
    still being handled; with RedisStorage that closes the Redis client under them (and under the
    sender's budget and the de-dup ledger). The App drains those updates first, then closes Redis.
    """

    async def close(self) -> None:
        return None


class CompactMemoryStorage(BaseStorage):
    """aiogram's MemoryStorage without its growth: a user with no form open takes no memory.

    MemoryStorage keeps a record for every chat and user it was ever asked about, even only read
    (`/start` clears the state of every new user), so the process grows with every person who
    ever wrote to the bot: about 0.3 KB each (bench/foundation.py, (b)). Here a record exists only
    while it holds a state or data.
    """

    def __init__(self) -> None:
        self._states: dict[StorageKey, str] = {}
        self._data: dict[StorageKey, dict[str, Any]] = {}

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        if value is None:
            self._states.pop(key, None)
        else:
            self._states[key] = value

    async def get_state(self, key: StorageKey) -> str | None:
        return self._states.get(key)

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        if not isinstance(data, dict):
            raise DataNotDictLikeError(f"Data must be a dict or dict-like object, got {type(data).__name__}")
        if data:
            self._data[key] = data.copy()
        else:
            self._data.pop(key, None)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return self._data.get(key, {}).copy()

    async def get_value(self, storage_key: StorageKey, dict_key: str, default: Any | None = None) -> Any | None:
        return copy(self._data.get(storage_key, {}).get(dict_key, default))

    async def close(self) -> None:
        return None
