"""This worker's name among its peers, and whether a peer is still alive.

Work a worker takes on (the claim on an update it is handling) carries its name, and its name is
kept alive in Redis by a heartbeat. A peer may take that work over once the heartbeat has lapsed,
so an update cut off by a killed worker is handled again within `HEARTBEAT_SECONDS` of the kill,
not when the claim itself runs out minutes later.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket

from redis.asyncio import Redis

log = logging.getLogger(__name__)

# Long enough that a busy event loop or a slow Redis round trip does not make a live worker look
# dead (which would let a peer handle its update a second time); short enough for a quick takeover.
HEARTBEAT_SECONDS = 10
BEATS_PER_PERIOD = 3


class Presence:
    """Call `start()` before taking work and `stop()` after the last of it is done."""

    def __init__(self, redis: Redis, *, bot_id: int, seconds: int = HEARTBEAT_SECONDS,
                 prefix: str = "ccb:alive") -> None:
        self._redis, self.seconds = redis, seconds
        self.name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.key_prefix = f"{prefix}:{bot_id}:"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._beat()
        self._task = asyncio.create_task(self._keep_beating(), name="presence")

    async def stop(self) -> None:
        """Peers may take over at once: whatever this worker had in hand is finished or released."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self._redis.delete(self.key_prefix + self.name)
        except Exception:  # noqa: BLE001 - the heartbeat lapses by itself
            log.warning("could not withdraw this worker's heartbeat", exc_info=True)

    async def gone(self, names: list[str]) -> set[str]:
        """Which of these workers no longer beat."""
        if not names:
            return set()
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.exists(self.key_prefix + name)
            beating = await pipe.execute()
        return {name for name, alive in zip(names, beating) if not alive}

    async def _beat(self) -> None:
        await self._redis.set(self.key_prefix + self.name, "1", ex=self.seconds)

    async def _keep_beating(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / BEATS_PER_PERIOD)
            try:
                await self._beat()
            except Exception:  # noqa: BLE001 - try again on the next beat; two misses still leave time
                log.warning("could not renew this worker's heartbeat", exc_info=True)
