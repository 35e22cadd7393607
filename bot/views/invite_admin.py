"""Words for invitations as leaders read them: sources, states, fraud flags, people, the CSV header.

Shared by the /admin → Invites screens, the CSV export and the refusal texts (errors_text.py).
"""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import gettext as _

from models import ReferralFlag, ReferralState, User, Via


def _words() -> dict[str, str]:
    """Every source, state and flag in the reader's language (built per call: the language is the update's)."""
    return {
        Via.MEMBER_LINK: _("member link"),
        Via.JOIN_REQUEST: _("join request"),
        Via.DEEP_LINK: _("bot link"),
        Via.PRIMARY_LINK: _("group's main link"),
        Via.ADMIN_LINK: _("administrator's link"),
        Via.ADDED_BY_ADMIN: _("added by an administrator"),
        Via.GROUP_BUY_LINK: _("group-buy link"),
        Via.UNKNOWN: _("no link"),
        ReferralState.PENDING: _("waiting to qualify"),
        ReferralState.QUALIFIED: _("qualified"),
        ReferralState.REWARDED: _("rewarded"),
        ReferralState.LEFT: _("left before qualifying"),
        ReferralState.FLAGGED: _("held for review"),
        ReferralState.REJECTED: _("rejected"),
        ReferralFlag.SELF_INVITE: _("self-invite"),
        ReferralFlag.REJOIN: _("rejoin"),
        ReferralFlag.BOT: _("bot"),
        ReferralFlag.LEFT_WITHIN_72H: _("left within 72 h"),
        ReferralFlag.BURST: _("burst of joins"),
        ReferralFlag.HIGH_LEAVE_RATE: _("inviter's invitees mostly leave"),
    }


def label(value: str) -> str:
    """A source, state or flag in words; a value this version does not know as it is stored."""
    return _words().get(value, value)


def flags_text(flags: list[str]) -> str:
    return ", ".join(label(flag) for flag in flags)


def person(user: User | None, hidden: bool = False) -> str:
    """A person for an HTML message: name and @username, or that they erased their data."""
    if user is None or hidden:
        return _("Erased member")
    name = escape(user.display_name)
    return f"{name} (@{escape(user.username)})" if user.username else name


def csv_header() -> list[str]:
    return [_("Joined"), _("Invitee ID"), _("Invitee"), _("Inviter ID"), _("Inviter"), _("Source"), _("State"),
            _("Depth"), _("Flags"), _("Qualified at"), _("Rewarded at"), _("Left at")]
