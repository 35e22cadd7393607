"""`TelegramEmulator`: the HTTP face of the emulator.

Serves `{base}/bot{token}/{method}` like api.telegram.org so an unmodified
aiogram bot can point `TelegramAPIServer.from_base(emu.url)` at it, and runs
in the caller's event loop so tests drive users through the control API
while the bot polls over real HTTP.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from aiohttp import web

from .api import METHODS
from .control import SimulationControls
from .core import ApiCall
from .errors import ApiError
from .params import Params, read_params

log = logging.getLogger(__name__)
MAX_UPLOAD = 50 * 1024 * 1024


class TelegramEmulator(SimulationControls):
    """The emulator: `async with TelegramEmulator() as emu:` then point the bot at `emu.url`."""

    url: str | None = None
    _runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start serving; returns (and sets) `url`, the base URL for the bot."""
        app = web.Application(client_max_size=MAX_UPLOAD)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.url = f"http://{bound_host}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        self.updates.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TelegramEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").to_json(), status=401)
        implementation = METHODS.get(name.lower())
        if implementation is None:
            log.warning("the emulator does not implement Bot API method %s", name)
            failure = ApiError(404, "Not Found")
            self._record(name, None, failure)
            return web.json_response(failure.to_json(), status=404)
        polling = implementation is METHODS["getupdates"]
        if not polling:
            self._inflight += 1
            self.mark_activity()
        params = failure = None
        try:
            params = await read_params(request)
            fault = self.take_fault(name)
            if fault is not None:
                raise fault
            result = implementation(self, params)
            if inspect.isawaitable(result):
                result = await result
        except ApiError as error:
            failure = error
        except Exception:  # an emulator bug: answer like Telegram's 500, keep the traceback in the log
            log.exception("emulator failed while serving %s", name)
            failure = ApiError(500, "Internal Server Error")
        finally:
            if not polling:
                self._inflight -= 1
                self.mark_activity()
        self._record(name, params, failure)
        if failure is not None:
            return web.json_response(failure.to_json(), status=failure.code)
        return web.json_response({"ok": True, "result": result})

    def _record(self, name: str, params: Params | None, error: ApiError | None) -> None:
        summary = params.summary() if params is not None else {}
        self.requests.append(
            ApiCall(name, summary, error is None, error.code if error else None, error.description if error else None)
        )
        self.counters[name] += 1
        if error is not None:
            self.counters["errors"] += 1
            log.debug("%s failed: %s %s", name, error.code, error.description)
        self.touch()
