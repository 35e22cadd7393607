"""What code outside a handler reaches the database and the chats through.

The App builds one when the bot knows who it is (its username goes into every deep link). Jobs get
it as their first argument; handlers find it in their data as `ctx`, for the notices they share
with jobs (a product post sent now, a group-buy team announced). Nobody below the App imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiogram import Bot

from bot.core.config import Settings
from bot.core.db import SessionFactory
from bot.telegram.campaign_runner import CampaignRunner
from bot.telegram.sender import Sender


@dataclass(frozen=True, slots=True)
class BotContext:
    settings: Settings
    sessions: SessionFactory
    # The handlers' Bot: for calls whose answer is needed now (refunds, admin lists).
    bot: Bot
    # The one outbox for bot-initiated messages and card edits.
    sender: Sender
    bot_username: str
    # Win-back runs: started by the scheduled job or a leader's "Run now", resumed after a crash.
    campaigns: CampaignRunner
