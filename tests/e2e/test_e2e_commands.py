"""setMyCommands at start: every scope the bot uses, in English (default) and Chinese."""

from __future__ import annotations

from e2e_harness import E2E, en, zh

from bot.telegram import commands
from bot.telegram.commands import COMMANDS

# The scopes the bot publishes and the role table behind each (bot.telegram.commands declares the table;
# features add commands to it).
SCOPES = {
    "all_private_chats": commands.for_role({commands.MEMBER}, commands.PRIVATE),
    "all_group_chats": commands.for_role({commands.MEMBER}, commands.GROUP),
    "all_chat_administrators": commands.for_role({commands.MEMBER, commands.LEADER}, commands.GROUP),
}


# This foundation's commands; their Chinese descriptions exist and must be the ones published.
BASE = {"start", "help", "lang", "stop", "mydata", "forgetme", "cancel", "admin"}


async def test_commands_are_published_per_scope_and_language(e2e: E2E) -> None:
    descriptions = {c.name: c.description for c in COMMANDS}
    assert BASE - {"admin"} <= {c.name for c in SCOPES["all_private_chats"]}
    assert "admin" not in {c.name for c in SCOPES["all_group_chats"]}
    assert "admin" in {c.name for c in SCOPES["all_chat_administrators"]}
    for scope, listed in SCOPES.items():
        names = [c.name for c in listed]
        assert names, scope
        english = e2e.emu.commands_for({"type": scope}, "")
        chinese = e2e.emu.commands_for({"type": scope}, "zh")
        assert [c["command"] for c in english] == names, scope
        assert [c["command"] for c in chinese] == names, scope
        for en_cmd, zh_cmd in zip(english, chinese):
            assert en_cmd["description"] == en(descriptions[en_cmd["command"]])
            assert zh_cmd["description"] == zh(descriptions[zh_cmd["command"]])
            if zh_cmd["command"] in BASE:  # (catalog completeness as such is tests/test_i18n.py's job)
                assert zh_cmd["description"] != en_cmd["description"], zh_cmd["command"]
    # Nothing else was set: no stray scope or language that would shadow these.
    assert len(e2e.emu.commands) == 2 * len(SCOPES)
    assert e2e.emu.commands_for({"type": "all_private_chats"}, "en") == []
