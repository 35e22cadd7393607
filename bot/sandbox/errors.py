"""Error types of the emulator.

`ApiError` is what a Bot API method raises to produce a Telegram-shaped error
response; `SandboxError` signals that a *test* misused the control API (for
example pressing a button that does not exist), which must never be confused
with an error the bot is supposed to handle.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Bot API error; serialised exactly like Telegram does."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description
        self.parameters = parameters

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


class SandboxError(Exception):
    """The control API was used in a way real Telegram users could not act."""


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> ApiError:
    return ApiError(403, f"Forbidden: {detail}")


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})


QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
# The Bot API documents no error for a paid broadcast the bot's Stars cannot cover; this text is a
# guess modelled on the MTProto error for a Stars balance that is too low.
NOT_ENOUGH_STARS = "BALANCE_TOO_LOW"
