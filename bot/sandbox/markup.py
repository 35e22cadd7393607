"""Validation and inspection of `reply_markup`.

Telegram rejects malformed keyboards at send time (oversized callback data,
buttons without exactly one action, URLs it cannot open); a bot that only
works against a lenient server would break in production, so the same checks
run here.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from .errors import bad_request

INLINE_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
MAX_CALLBACK_DATA_BYTES = 64
_HOST_LABEL = re.compile(r"^(?!-)[\w-]{1,63}(?<!-)$")
_TLD = re.compile(r"^[^\W\d_]{2,63}$|^xn--[a-z0-9-]+$")


def is_valid_button_url(url: str) -> bool:
    """Whether Telegram would accept `url` on a URL button.

    http(s) links need a public-looking domain (no localhost, no bare IPs,
    a letter TLD); `tg://` links are accepted; a missing scheme means http.
    """
    if not url or any(ch.isspace() for ch in url):
        return False
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = parts.scheme.lower()
    if scheme == "tg":
        return bool(parts.netloc or parts.path)
    if scheme not in ("http", "https"):
        return False
    try:
        host, _port = parts.hostname or "", parts.port
    except ValueError:  # a non-numeric or out-of-range port
        return False
    labels = host.split(".")
    return len(labels) >= 2 and all(_HOST_LABEL.match(label) for label in labels) and bool(_TLD.match(labels[-1]))


def _validate_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
    actions = [key for key in INLINE_ACTIONS if key in button]
    if not actions:
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    if len(actions) > 1:
        raise bad_request(f"can't parse inline keyboard button: only one of {', '.join(actions)} can be specified")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button and not (isinstance(button["url"], str) and is_valid_button_url(button["url"])):
        raise bad_request("BUTTON_URL_INVALID")


def parse_reply_markup(value: Any, *, inline_only: bool = False) -> dict[str, Any] | None:
    """Validate a reply_markup object; an empty inline keyboard means no markup."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in value:
        rows = value["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request('Field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays')
        for row in rows:
            for button in row:
                _validate_inline_button(button)
        rows = [row for row in rows if row]
        return {"inline_keyboard": rows} if rows else None
    if inline_only:
        raise bad_request("can't parse inline keyboard markup JSON object")
    if "keyboard" in value:
        rows = value["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request('Field "keyboard" of the ReplyKeyboardMarkup should be an Array of Arrays')
        for row in rows:
            for button in row:
                if not isinstance(button, str) and not (
                    isinstance(button, dict) and isinstance(button.get("text"), str)
                ):
                    raise bad_request('can\'t parse keyboard button: Field "text" must be of type String')
        return value
    if value.get("remove_keyboard") is True or value.get("force_reply") is True:
        return value
    raise bad_request("can't parse reply keyboard markup JSON object")


def inline_buttons(markup: dict[str, Any] | None) -> list[list[dict[str, Any]]]:
    return (markup or {}).get("inline_keyboard", [])


def button_label(button: dict[str, Any]) -> str:
    """`[ label ]`, with ↗ marking buttons that leave the chat (URLs, web apps)."""
    leaves = "url" in button or "web_app" in button or "login_url" in button
    return f"[ {button['text']}{' ↗' if leaves else ''} ]"


def find_button(markup: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    """The inline button whose text or callback_data equals `key` (text wins)."""
    buttons = [button for row in inline_buttons(markup) for button in row]
    for field in ("text", "callback_data"):
        for button in buttons:
            if button.get(field) == key:
                return button
    return None
