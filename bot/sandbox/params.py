"""Bot API request parameters, whatever encoding the client used.

Telegram accepts query strings, urlencoded and multipart forms and JSON
bodies. In forms every value is a string and objects (reply_markup, scope,
prices, ...) arrive JSON-encoded; aiogram also uploads files as separate
multipart parts referenced by `attach://<name>`. `Params` hides all that
behind typed getters that fail with Telegram-style 400 errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import ApiError, bad_request

TRUE_STRINGS = {"true", "1", "yes", "on"}
FALSE_STRINGS = {"false", "0", "no", "off", ""}


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str | None
    data: bytes


class Params:
    def __init__(
        self,
        values: dict[str, Any],
        uploads: dict[str, Upload],
        client_connected: Callable[[], bool] = lambda: True,
    ):
        self.values = values
        self.uploads = uploads
        self.client_connected = client_connected  # lets a long poll notice its caller hung up

    def get_str(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None:
            if required:
                raise bad_request(f"{name} is empty")
            return None
        return value if isinstance(value, str) else json.dumps(value)

    def get_int(self, name: str, *, required: bool = False) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, bool):
            raise bad_request(f"invalid {name} specified")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def get_bool(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in TRUE_STRINGS:
            return True
        if text in FALSE_STRINGS:
            return False
        raise bad_request(f"invalid {name} specified")

    def get_json(self, name: str) -> Any:
        """An object/array parameter, decoded if it arrived as a JSON string."""
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None

    def chat_id(self, name: str = "chat_id") -> int | str:
        value = self.values.get(name)
        if value is None or value == "":
            raise bad_request(f"{name} is empty")
        if isinstance(value, str) and value.startswith("@"):
            return value
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request("chat not found") from None

    def file(self, name: str) -> Upload | str | None:
        """An InputFile parameter: an Upload, or a file_id/URL string."""
        if name in self.uploads:
            return self.uploads[name]
        value = self.get_str(name)
        if value and value.startswith("attach://"):
            upload = self.uploads.get(value.removeprefix("attach://"))
            if upload is None:
                raise bad_request(f"wrong HTTP URL specified: can't find the attached file for {name}")
            return upload
        return value

    def summary(self) -> dict[str, Any]:
        """Values for the request log, with uploads reduced to their names."""
        summary = dict(self.values)
        for name, upload in self.uploads.items():
            summary[name] = f"<upload {upload.filename} {len(upload.data)} bytes>"
        return summary


async def read_params(request: web.Request) -> Params:
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.body_exists:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad_request("can't parse JSON body") from None
            if not isinstance(body, dict):
                raise bad_request("JSON body must be an object")
            values.update(body)
        else:
            try:
                form = await request.post()
            except web.HTTPRequestEntityTooLarge:
                # Telegram answers an upload over its 50 MB limit the same way.
                raise ApiError(413, "Request Entity Too Large") from None
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    uploads[key] = Upload(value.filename, value.content_type, value.file.read())
                else:
                    values[key] = value
    return Params(values, uploads, lambda: request.transport is not None and not request.transport.is_closing())
