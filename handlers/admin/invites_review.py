"""/admin → Invites → Review: invites held for review, oldest first, a page at a time, each with
why it was held; Approve rewards it now, Reject means never.

`invites.approve` / `invites.reject` claim the invite by one conditional UPDATE and audit it: a
double tap, a redelivered press or a second leader acting on the same invite finds it reviewed and
is told so (`invite_review_done`). Every press re-checks the leader; the invite must belong to the
community the press names.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from aiogram import F, Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.localtime import local_time
from bot.services import invites
from bot.services.errors import DomainError
from bot.telegram.middlewares.actor import Actor
from bot.telegram.sender import Sender
from bot.views.errors_text import error_text
from bot.views.invite_admin import flags_text, label, person
from bot.views.invite_notices import tell_rewarded
from bot.views.keyboards import InviteAdmin, InviteOp, InviteReview, InviteReviewOp, Section
from bot.views.render import edit_or_send
from handlers.admin.menu import back_button, guard
from models import Community

router = Router(name=__name__)

PAGE = 5


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def review_view(session: AsyncSession, community: Community, page: int) -> tuple[str, InlineKeyboardMarkup]:
    cid = community.id
    count = await invites.review_count(session, community_id=cid)
    pages = max(1, -(-count // PAGE))
    page = min(max(page, 0), pages - 1)  # the queue moved, or the page came from forged data
    items = await invites.review_queue(session, community_id=cid, limit=PAGE, offset=page * PAGE)
    lines = [_("<b>Review · {title}</b>").format(title=escape(community.title))]
    if not items:
        lines.append(_("Nothing is held for review."))
    else:
        lines.append(_("{count} invite(s) held: nobody is rewarded for them unless you approve. A rejected invite is "
                       "never rewarded.").format(count=count))
    rows = []
    for n, item in enumerate(items, page * PAGE + 1):
        r = item.referral
        lines += ["", _("{n}. {invitee}, invited by {inviter}").format(
                      n=n, invitee=person(item.invitee, item.invitee_hidden),
                      inviter=person(item.inviter, item.inviter_hidden)),
                  _("Joined {when} · source: {via} · held for: {reasons}").format(
                      when=local_time(r.joined_at, community), via=label(r.via), reasons=flags_text(r.flags))]

        def decide(text: str, op: InviteReviewOp, referral_id: int = r.id) -> InlineKeyboardButton:
            data = InviteReview(op=op, community_id=cid, referral_id=referral_id, page=page).pack()
            return InlineKeyboardButton(text=text, callback_data=data)

        rows.append([decide(_("✅ Approve {n}").format(n=n), InviteReviewOp.APPROVE),
                     decide(_("❌ Reject {n}").format(n=n), InviteReviewOp.REJECT)])
    if pages > 1:
        lines += ["", _("Page {page} of {pages} · times in {tz}").format(page=page + 1, pages=pages,
                                                                         tz=community.timezone)]
        turn = []
        if page > 0:
            turn.append(InlineKeyboardButton(text=_("« Previous"), callback_data=InviteAdmin(
                op=InviteOp.REVIEW, community_id=cid, item=page - 1).pack()))
        if page < pages - 1:
            turn.append(InlineKeyboardButton(text=_("Next »"), callback_data=InviteAdmin(
                op=InviteOp.REVIEW, community_id=cid, item=page + 1).pack()))
        rows.append(turn)
    elif items:
        lines += ["", _("Times in {tz}.").format(tz=community.timezone)]
    rows.append([back_button(cid, Section.INVITES)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


@router.callback_query(InviteAdmin.filter(F.op == InviteOp.REVIEW))
async def on_review(query: CallbackQuery, callback_data: InviteAdmin, session: AsyncSession, actor: Actor) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await query.answer()
    await edit_or_send(query.message, *await review_view(session, community, callback_data.item))


@router.callback_query(InviteReview.filter())
async def on_decision(query: CallbackQuery, callback_data: InviteReview, session: AsyncSession, actor: Actor,
                      sender: Sender) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    decide = invites.approve if callback_data.op is InviteReviewOp.APPROVE else invites.reject
    try:
        done = await decide(session, community=community, referral_id=callback_data.referral_id,
                            actor_id=actor.user.id, now=_now())
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
    else:
        if callback_data.op is InviteReviewOp.REJECT:
            await query.answer(_("Rejected: it will never be rewarded."))
        elif done.grants:
            await query.answer(_("Approved: the rewards were given."))
            await tell_rewarded(session, sender, done.grants)
        else:
            await query.answer(_("Approved: nothing was due, so nobody was rewarded."))
    await edit_or_send(query.message, *await review_view(session, community, callback_data.page))
