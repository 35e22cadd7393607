"""A feature's options in `Community.settings[section]`: validated as a whole, stored, audited per option.

Check-ins and invites keep their options as a pydantic model under a key of their own; a leader's
change is refused as a whole with the feature's error code (detail: the first problem), and each
option that really changed gets an audit row `<section>.<option>` with its value before and after.
A feature whose options belong to a person rather than the community (the weekly digest: one set
per leader) keeps one set per `entry` under its section, `settings[section][entry]`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import audit
from bot.services.errors import DomainError
from models import Community

Options = TypeVar("Options", bound=BaseModel)


async def update_options(session: AsyncSession, *, community: Community, section: str, current: Options,
                         changes: dict[str, object], actor_id: int, now: datetime, refusal: str,
                         problem: Callable[[ValueError], str], entry: str | None = None) -> Options:
    """Validate `current` with `changes` applied, store it and audit each changed option, and commit
    when anything changed. `refusal` is the DomainError code; `problem` words a validation error.
    With `entry`, the options are stored as `settings[section][entry]` and each audit row names it."""
    model = type(current)
    unknown = set(changes) - set(model.model_fields)
    if unknown:
        raise DomainError(refusal, detail=f"unknown option {sorted(unknown)[0]}")
    try:
        updated = model.model_validate(current.model_dump() | changes)
    except ValueError as exc:
        raise DomainError(refusal, detail=problem(exc)) from None
    before, after = current.model_dump(mode="json"), updated.model_dump(mode="json")
    diff = [key for key in changes if before[key] != after[key]]
    if diff:
        # JSON columns are compared by value: assign a new dict so the change is flushed.
        stored: dict = after if entry is None else {**community.settings.get(section, {}), entry: after}
        community.settings = {**community.settings, section: stored}
        community.updated_at = now
        whose = {} if entry is None else {"entry": entry}
        for key in diff:
            audit.record(session, community_id=community.id, actor_id=actor_id, action=f"{section}.{key}",
                         details={**whose, "from": before[key], "to": after[key]}, now=now)
        await session.commit()
    return updated
