"""The job that cancels unpaid online orders past their deadline and tells each buyer.

`orders.expire_due` cancels each order with a conditional UPDATE from pending-payment, so a
payment arriving at the same moment, a second run or a second worker cannot cancel it twice;
only orders this run really cancelled are announced.
"""

from __future__ import annotations

from datetime import datetime

from bot.jobs.registry import job
from bot.services import orders
from bot.telegram.context import BotContext
from bot.views.order_notify import notify_member


@job("expire_orders", "Cancel unpaid card and Stars orders past the community's payment time; tell the buyers",
     trigger="interval", seconds=30)
async def expire_orders(ctx: BotContext, now: datetime) -> str:
    async with ctx.sessions() as session:
        expired = await orders.expire_due(session, now=now)
        for order in expired:
            await notify_member(ctx.sender, session, order)
    return f"{len(expired)} expired"
