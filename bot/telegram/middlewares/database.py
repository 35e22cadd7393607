"""One database session per handled update: committed on success, rolled back on error."""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware

from bot.core.db import SessionFactory


class DatabaseMiddleware(BaseMiddleware):
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    async def __call__(self, handler, event, data: dict[str, Any]) -> Any:
        async with self.sessions() as session:
            data["session"] = session
            try:
                result = await handler(event, data)
            except BaseException:
                await session.rollback()
                raise
            # Services commit their own use case; this catches anything a handler left pending.
            if session.in_transaction():
                await session.commit()
            return result
