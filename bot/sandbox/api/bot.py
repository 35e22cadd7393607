"""Bot-level methods: identity, update delivery, webhooks, commands, descriptions."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ApiError, bad_request
from ..serialize import user_json
from .registry import method

COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
LANGUAGE_CODE = re.compile(r"^([a-z]{2})?$")
SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
SCOPES_WITH_CHAT = ("chat", "chat_administrators", "chat_member")
SCOPE_TYPES = ("default", "all_private_chats", "all_group_chats", "all_chat_administrators", *SCOPES_WITH_CHAT)
DESCRIPTION_LIMITS = {"description": 512, "short_description": 120}
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)


@method("getMe")
def get_me(emu, p):
    return {
        **user_json(emu.me),
        "can_join_groups": True,
        "can_read_all_group_messages": not emu.privacy_mode,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@method("logOut", "close")
def log_out(emu, p):
    return True


@method("setWebhook")
def set_webhook(emu, p):
    url = p.get_str("url") or ""
    if url and not url.startswith("https://"):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = p.get_str("secret_token")
    if secret and not SECRET_TOKEN.match(secret):
        raise bad_request("secret token contains unallowed characters")
    emu.webhook_url = url
    if p.get_bool("drop_pending_updates"):
        emu.updates.drop_pending()
    return True


@method("deleteWebhook")
def delete_webhook(emu, p):
    emu.webhook_url = ""
    if p.get_bool("drop_pending_updates"):
        emu.updates.drop_pending()
    return True


@method("getWebhookInfo")
def get_webhook_info(emu, p):
    return {"url": emu.webhook_url, "has_custom_certificate": False, "pending_update_count": emu.updates.pending}


@method("getUpdates")
async def get_updates(emu, p):
    if emu.webhook_url:
        raise ApiError(409, WEBHOOK_CONFLICT)
    allowed = p.get_json("allowed_updates")
    if allowed is not None:
        if not isinstance(allowed, list):
            raise bad_request("can't parse allowed_updates JSON object")
        emu.updates.set_allowed(allowed)
    limit = min(max(p.get_int("limit") or 100, 1), 100)
    timeout = max(p.get_int("timeout") or 0, 0)
    updates = await emu.updates.poll(p.get_int("offset") or 0, limit, timeout, p.client_connected)
    if updates:
        emu.mark_activity()
    return updates


def _scope_key(emu, p) -> str:
    scope = p.get_json("scope") or {"type": "default"}
    if not isinstance(scope, dict) or scope.get("type") not in SCOPE_TYPES:
        raise bad_request("can't parse BotCommandScope")
    key: dict[str, Any] = {"type": scope["type"]}
    if scope["type"] in SCOPES_WITH_CHAT:
        if "chat_id" not in scope:
            raise bad_request("chat_id is empty")
        chat_id = scope["chat_id"]
        named = isinstance(chat_id, str) and chat_id.startswith("@")
        key["chat_id"] = emu.resolve_chat(chat_id if named else int(chat_id)).id
    if scope["type"] == "chat_member":
        key["user_id"] = int(scope.get("user_id") or 0)
        if emu.user(key["user_id"]) is None:
            raise bad_request("user not found")
    return json.dumps(key, sort_keys=True)


def _language(p) -> str:
    language = p.get_str("language_code") or ""
    if not LANGUAGE_CODE.match(language):
        raise bad_request("invalid language code specified")
    return language


@method("setMyCommands")
def set_my_commands(emu, p):
    commands = p.get_json("commands")
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad_request("too many commands specified")
    cleaned = []
    for command in commands:
        if not isinstance(command, dict):
            raise bad_request("can't parse BotCommand")
        name = str(command.get("command", "")).removeprefix("/")
        description = str(command.get("description", "")).strip()
        if not COMMAND_NAME.match(name):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        cleaned.append({"command": name, "description": description})
    key = (_scope_key(emu, p), _language(p))
    if cleaned:
        emu.commands[key] = cleaned
    else:
        emu.commands.pop(key, None)
    return True


@method("getMyCommands")
def get_my_commands(emu, p):
    return emu.commands.get((_scope_key(emu, p), _language(p)), [])


@method("deleteMyCommands")
def delete_my_commands(emu, p):
    emu.commands.pop((_scope_key(emu, p), _language(p)), None)
    return True


def _set_description(emu, p, field: str):
    text = p.get_str(field) or ""
    if len(text) > DESCRIPTION_LIMITS[field]:
        raise bad_request(f"{field} is too long")
    key = (field, _language(p))
    if text:
        emu.descriptions[key] = text
    else:
        emu.descriptions.pop(key, None)
    return True


@method("setMyDescription")
def set_my_description(emu, p):
    return _set_description(emu, p, "description")


@method("setMyShortDescription")
def set_my_short_description(emu, p):
    return _set_description(emu, p, "short_description")


@method("getMyDescription")
def get_my_description(emu, p):
    return {"description": emu.descriptions.get(("description", _language(p)), "")}


@method("getMyShortDescription")
def get_my_short_description(emu, p):
    return {"short_description": emu.descriptions.get(("short_description", _language(p)), "")}
