"""FSM forms. Their data holds primitives only (ids, strings), never ORM objects."""

from aiogram.fsm.state import State, StatesGroup


class SettingsForm(StatesGroup):
    timezone = State()
    currency = State()
    pickup_add = State()
    pickup_rename = State()
