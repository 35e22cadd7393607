"""ALLOW_PAID_BROADCAST: off unless an operator turns it on, since every paid message costs Stars."""

from __future__ import annotations

import pytest

from bot.core.config import Settings


def test_paid_broadcast_is_off_by_default(monkeypatch):
    monkeypatch.delenv("ALLOW_PAID_BROADCAST", raising=False)
    assert Settings().ALLOW_PAID_BROADCAST is False


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("false", False), ("0", False)])
def test_operators_turn_it_on_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("ALLOW_PAID_BROADCAST", value)
    assert Settings().ALLOW_PAID_BROADCAST is expected
