"""The in-process FSM storage: same answers as aiogram's MemoryStorage, no record once a form ends."""

from __future__ import annotations

import pytest
from aiogram.exceptions import DataNotDictLikeError
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey

from bot.telegram.fsm_storage import CompactMemoryStorage


class Form(StatesGroup):
    name = State()


def key(user: int) -> StorageKey:
    return StorageKey(bot_id=1, chat_id=user, user_id=user)


async def test_a_form_keeps_its_state_and_data_until_cleared():
    storage = CompactMemoryStorage()
    form = FSMContext(storage, key(7))
    await form.set_state(Form.name)
    await form.update_data(title="Tea", price=350)

    assert await form.get_state() == "Form:name"
    assert await form.get_data() == {"title": "Tea", "price": 350}
    assert await form.get_value("price") == 350
    assert await form.get_value("missing", "none") == "none"
    assert await FSMContext(storage, key(8)).get_state() is None, "another user's chat is not touched"

    await form.clear()
    assert (await form.get_state(), await form.get_data()) == (None, {})


async def test_users_without_a_form_take_no_memory():
    storage = CompactMemoryStorage()
    for user in range(1000):
        form = FSMContext(storage, key(user))
        await form.get_state()
        await form.clear()  # what /start does for every new user
    form = FSMContext(storage, key(5))
    await form.set_state(Form.name)
    await form.set_data({"step": 1})

    assert (storage._states, storage._data) == ({key(5): "Form:name"}, {key(5): {"step": 1}})


async def test_data_handed_out_is_a_copy():
    storage = CompactMemoryStorage()
    form = FSMContext(storage, key(1))
    await form.set_data({"items": 1})
    got = await form.get_data()
    got["items"] = 2
    assert await form.get_data() == {"items": 1}


async def test_data_must_be_a_dict():
    with pytest.raises(DataNotDictLikeError):
        await CompactMemoryStorage().set_data(key(1), [("a", 1)])
