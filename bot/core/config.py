"""Settings from the environment, exactly as the contract in DESIGN.md names them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{ROOT / 'data' / 'bot.db'}"

# BotFather tokens look like "123456789:AAH...": a numeric bot id, a colon, 35 url-safe characters.
# Local Bot API servers and emulators accept shorter secrets, so only the shape is enforced.
TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{1,100}$")
# What the Bot API accepts as setWebhook's secret_token.
WEBHOOK_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


class StartupError(Exception):
    """Something outside the bot is not there (database, Redis, Telegram); one line for the operator.

    Defined here, not in bot.app, so that the command line can report errors without importing
    aiogram first (seconds of start-up for a missing variable)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=True)

    BOT_TOKEN: SecretStr | None = None
    TELEGRAM_API_URL: str = "https://api.telegram.org"
    DATABASE_URL: str = DEFAULT_DATABASE_URL
    REDIS_URL: str | None = None
    OWNER_IDS: Annotated[frozenset[int], NoDecode] = frozenset()
    PAYMENT_PROVIDER_TOKEN: SecretStr | None = None
    WEBHOOK_URL: str | None = None
    # Comma-separated: the first is registered with Telegram, every one is accepted (a rotation
    # lists the old secret beside the new one until no worker or Telegram uses it).
    WEBHOOK_SECRET: SecretStr | None = None
    HOST: str = "0.0.0.0"
    PORT: int = Field(default=8080, ge=1, le=65535)
    DEFAULT_LOCALE: str = "en"
    DEFAULT_TIMEZONE: str = "UTC"
    # Operational knobs; not part of the public contract but documented in the README.
    ACTIVITY_FLUSH_SECONDS: float = Field(default=2.0, gt=0)
    THROTTLE_RATE: float = Field(default=3.0, gt=0)
    UPDATES_IN_FLIGHT: int = Field(default=100, ge=1)
    # Campaign sends with Telegram's allow_paid_broadcast: up to 1,000 messages a second instead of
    # 30, for 0.1 Star each from the bot's balance; off unless an operator chooses to pay.
    ALLOW_PAID_BROADCAST: bool = False
    # How often a serving worker looks for win-back runs whose worker is gone (with Redis: once its
    # heartbeat lapsed) and takes them over.
    CAMPAIGN_WATCH_SECONDS: float = Field(default=15.0, gt=0)
    LOG_LEVEL: str = "INFO"
    # /metrics and /healthz on this port when polling (the webhook server serves them on PORT).
    METRICS_PORT: int | None = Field(default=None, ge=1, le=65535)
    # The activity journal's directory (bot/services/activity_journal.py); unset: one per database.
    JOURNAL_DIR: Path | None = None

    @field_validator("OWNER_IDS", mode="before")
    @classmethod
    def _parse_owner_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError as exc:
                raise ValueError("OWNER_IDS must be comma-separated Telegram user ids") from exc
        return value

    @field_validator("DEFAULT_TIMEZONE")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value

    @field_validator("DEFAULT_LOCALE")
    @classmethod
    def _check_locale(cls, value: str) -> str:
        from bot.core.locales import LOCALES, normalize_locale

        locale = normalize_locale(value)
        if locale not in LOCALES:
            raise ValueError(f"must be one of {', '.join(LOCALES)}")
        return locale

    @field_validator("TELEGRAM_API_URL", "WEBHOOK_URL")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("WEBHOOK_SECRET")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not all(WEBHOOK_SECRET_RE.match(s.strip()) for s in value.get_secret_value().split(",")):
            raise ValueError("each comma-separated secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    def webhook_secrets(self) -> list[str]:
        """The secrets accepted from Telegram; the first is the one to register."""
        if self.WEBHOOK_SECRET is None:
            return []
        return [s.strip() for s in self.WEBHOOK_SECRET.get_secret_value().split(",")]

    def bot_token(self) -> str:
        """The token, or a ConfigError naming BOT_TOKEN."""
        if self.BOT_TOKEN is None or not self.BOT_TOKEN.get_secret_value().strip():
            raise ConfigError("BOT_TOKEN is not set: get a token from @BotFather and export BOT_TOKEN")
        token = self.BOT_TOKEN.get_secret_value().strip()
        if not TOKEN_RE.match(token):
            raise ConfigError("BOT_TOKEN is malformed: expected '<digits>:<secret>' as @BotFather gives it")
        return token

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")

    def journal_dir(self) -> Path | None:
        """Where the activity journal lives: `JOURNAL_DIR`, else one directory per database, so that
        bots (tests, benchmarks) on different databases never count each other's. None for an
        in-memory SQLite database, whose activity dies with the process anyway."""
        if self.JOURNAL_DIR is not None:
            return self.JOURNAL_DIR
        from sqlalchemy.engine import make_url

        url = make_url(self.DATABASE_URL)
        if url.get_backend_name() == "sqlite":
            database = url.database or ""
            if database in ("", ":memory:") or url.query.get("mode") == "memory":
                return None
            return Path(f"{database}.journal")
        return ROOT / "data" / "journal" / f"{url.host or 'localhost'}-{url.port or 5432}-{url.database}"


def load_settings(**overrides: object) -> Settings:
    """Read the environment; a malformed variable becomes a ConfigError naming it."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "settings"
        raise ConfigError(f"{name} is invalid: {err['msg']}") from None
