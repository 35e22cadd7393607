"""The chat commands, by role and chat type: the source for setMyCommands and /help.

Later features append to COMMANDS; names stay English in every language (DESIGN.md contract).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiogram import Bot
from aiogram.types import (
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
)

from bot.core.i18n import translate
from bot.core.locales import LOCALES, TELEGRAM_LANGUAGE


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated later, per locale."""
    return message


MEMBER, LEADER, OWNER = "member", "leader", "owner"
PRIVATE, GROUP = "private", "group"


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    description: str
    roles: frozenset[str]
    chats: frozenset[str]


def _cmd(name: str, description: str, roles: set[str], chats: set[str]) -> Command:
    return Command(name, description, frozenset(roles), frozenset(chats))


COMMANDS: list[Command] = [
    _cmd("start", N_("Start the bot and see what it can do"), {MEMBER}, {PRIVATE}),
    _cmd("help", N_("Commands you can use"), {MEMBER}, {PRIVATE, GROUP}),
    _cmd("admin", N_("Manage your communities"), {LEADER, OWNER}, {PRIVATE, GROUP}),
    _cmd("lang", N_("Choose your language"), {MEMBER}, {PRIVATE}),
    _cmd("stop", N_("Stop promotional messages"), {MEMBER}, {PRIVATE}),
    _cmd("mydata", N_("Download the data the bot keeps about you"), {MEMBER}, {PRIVATE}),
    _cmd("forgetme", N_("Erase your personal data"), {MEMBER}, {PRIVATE}),
    _cmd("cancel", N_("Cancel the current form"), {MEMBER}, {PRIVATE}),
    _cmd("buy", N_("Buy a product by the number on its card, e.g. /buy 3"), {MEMBER}, {GROUP}),
    _cmd("orders", N_("Your orders"), {MEMBER}, {PRIVATE}),
    _cmd("coupons", N_("Your coupons and what they take off"), {MEMBER}, {PRIVATE}),
    _cmd("groupbuy", N_("Group-buys open now: join a team or a community order"), {MEMBER}, {PRIVATE, GROUP}),
    _cmd("checkin", N_("Check in for today: points and your streak"), {MEMBER}, {PRIVATE, GROUP}),
    _cmd("points", N_("Your points, rewards to redeem, make-up days"), {MEMBER}, {PRIVATE}),
    _cmd("top", N_("Leaderboard: streaks and points this month"), {MEMBER}, {PRIVATE, GROUP}),
    _cmd("invite", N_("Your invite link and the friends you brought"), {MEMBER}, {PRIVATE, GROUP}),
]


def for_role(roles: set[str], chat: str) -> list[Command]:
    return [c for c in COMMANDS if chat in c.chats and c.roles & roles]


def menus() -> list[tuple[BotCommandScope, str | None, list[BotCommand]]]:
    """Every command menu: (scope, Telegram language code or None for the default, commands)."""
    scopes = [
        (BotCommandScopeAllPrivateChats(), for_role({MEMBER}, PRIVATE)),
        (BotCommandScopeAllGroupChats(), for_role({MEMBER}, GROUP)),
        (BotCommandScopeAllChatAdministrators(), for_role({MEMBER, LEADER}, GROUP)),
    ]
    return [
        (scope, None if locale == "en" else TELEGRAM_LANGUAGE[locale],
         [BotCommand(command=c.name, description=translate(c.description, locale)) for c in listed])
        for scope, listed in scopes
        for locale in LOCALES
    ]


async def publish(bot: Bot) -> None:
    """setMyCommands for every scope and language, so each sees their own list in their language."""
    for scope, language, listed in menus():
        await bot.set_my_commands(listed, scope=scope, language_code=language)
