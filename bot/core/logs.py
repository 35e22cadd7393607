"""Where the bot's logs go, and which libraries are too chatty to log at INFO."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str, *handlers: logging.Handler) -> None:
    """Log at `level` to `handlers` (standard error when none is given)."""
    logging.basicConfig(level=level.upper(), format=FORMAT, handlers=list(handlers) or None, force=True)
    # Python's own warnings (deprecations and the like) go where the logs go, not to the terminal.
    logging.captureWarnings(True)
    # aiogram logs every update at INFO; that is noise in production logs.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    # Alembic announces each of its autogenerate plugins at INFO on every import: noise before any error.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
