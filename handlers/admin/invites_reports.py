"""/admin → Invites: the leaderboard with the community's totals, the chain view and the CSV export.

The chain view is a one-step form (`InviteChainForm`): the member is named by @username or numeric
id, or by forwarding one of their messages, as for manual point adjustments; people who left have
chains too. Erased people are never named (the services mark them; the export leaves out their
names and ids).
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.localtime import local_time
from bot.services import invite_chain, invite_stats
from bot.services.errors import DomainError
from bot.services.invite_settings import MAX_REWARDED_LEVEL
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views.errors_text import error_text
from bot.views.invite_admin import csv_header, flags_text, label, person
from bot.views.keyboards import InviteAdmin, InviteFormNav, InviteFormOp, InviteOp, Section
from bot.views.render import edit_or_send
from handlers.admin.form_nav import ask_again, form_press, forwarded_sender
from handlers.admin.invites import action, form_nav_row, main_view
from handlers.admin.menu import back_button, form_guard, guard
from handlers.forms import InviteChainForm
from models import Community, ReferralState, User

router = Router(name=__name__)

TOP = 10
CHAIN_UP = 5
CHAIN_DOWN = 5  # levels shown below the member
PER_LEVEL = 5  # people named per level
MESSAGE_LIMIT = 4096


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- the leaderboard and totals --------------------------------------------------------------------

async def top_view(session: AsyncSession, community: Community) -> tuple[str, InlineKeyboardMarkup]:
    cid = community.id
    standings = await invite_stats.top_inviters(session, community_id=cid, limit=TOP)
    lines = [_("<b>Top inviters · {title}</b>").format(title=escape(community.title)),
             _("Ranked by regular invites: those that counted. Left, fake (held or rejected), bonus (level 2) and "
               "pending beside them.")]
    for standing in standings:
        counts = await invite_stats.counts_for(session, community_id=cid, user_id=standing.user.id)
        lines.append(_("{rank}. {name} — {regular} regular · {left} left · {fake} fake · {bonus} bonus · {pending} "
                       "pending").format(rank=standing.rank, name=person(standing.user), regular=counts.regular,
                                         left=counts.left, fake=counts.fake, bonus=counts.bonus,
                                         pending=counts.pending))
    if not standings:
        lines.append(_("Nobody has a regular invite yet."))
    totals = await invite_stats.totals(session, community_id=cid)
    by_state = totals.by_state
    sources = ", ".join(f"{label(via)} {n}" for via, n in sorted(totals.by_via.items(), key=lambda kv: (-kv[1], kv[0])))
    lines += [
        "",
        _("<b>All invites: {total}</b>").format(total=sum(by_state.values())),
        _("Counted: {qualified} · waiting: {pending} · held: {held} · rejected: {rejected} · left before qualifying: "
          "{left}").format(qualified=totals.qualified, pending=by_state.get(ReferralState.PENDING, 0),
                           held=by_state.get(ReferralState.FLAGGED, 0),
                           rejected=by_state.get(ReferralState.REJECTED, 0),
                           left=by_state.get(ReferralState.LEFT, 0)),
        _("By source: {sources}").format(sources=sources or _("none")),
        _("Inviters: {inviters} · members now: {members} · K-factor: {k}").format(
            inviters=totals.inviters, members=totals.members, k=f"{totals.k_factor:.2f}"),
        _("The K-factor is invites that counted per member now."),
    ]
    rows = [[action(_("🔄 Refresh"), InviteOp.TOP, cid)], [back_button(cid, Section.INVITES)]]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


@router.callback_query(InviteAdmin.filter(F.op == InviteOp.TOP))
async def on_top(query: CallbackQuery, callback_data: InviteAdmin, session: AsyncSession, actor: Actor) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await query.answer()
    await edit_or_send(query.message, *await top_view(session, community))


# --- the chain view --------------------------------------------------------------------------------

def chain_prompt(step: str) -> tuple[str, InlineKeyboardMarkup]:
    text = _("Whose invite chain? Send the member's @username or numeric Telegram id, or forward me a message they "
             "wrote.")
    return text, InlineKeyboardMarkup(inline_keyboard=[form_nav_row(step)])


def _fit(lines: list[str]) -> str:
    """The lines that fit in one message, the first ones kept (downlines can be long)."""
    while len(text := "\n".join(lines)) > MESSAGE_LIMIT:
        lines = lines[:-2] + ["…"]
    return text


async def chain_view(session: AsyncSession, community: Community, user: User) -> tuple[str, InlineKeyboardMarkup]:
    cid = community.id
    up = await invite_chain.upline(session, community_id=cid, user_id=user.id, max_depth=CHAIN_UP)
    levels = await invite_stats.downline(session, community_id=cid, user_id=user.id, max_depth=CHAIN_DOWN,
                                         per_level=PER_LEVEL)
    lines = [_("<b>Invite chain · {person}</b>").format(person=person(user))]
    r = up.referral
    if r is None:
        lines.append(_("No invite is recorded for them: they were here before invites were tracked, or invites were "
                       "off."))
    else:
        lines.append(_("Joined {when} · source: {via} · {state} · depth {depth}").format(
            when=local_time(r.joined_at, community), via=label(r.via), state=label(r.state), depth=r.depth))
        if r.flags:
            lines.append(_("Held for: {reasons}").format(reasons=flags_text(r.flags)))
    if up.people:
        chain = " ← ".join([person(p.user, p.hidden) for p in up.people] + (["…"] if up.more else []))
        lines.append(_("Invited by: {chain}").format(chain=chain))
    else:
        lines.append(_("Invited by: nobody"))
    lines += ["", _("<b>Their invites by level</b>")]
    for level in levels:
        named = []
        for p in level.people:
            state = label(p.state) if not p.left or p.state == ReferralState.LEFT else _("{state}, left since").format(
                state=label(p.state))
            named.append(f"{person(p.user, p.hidden)} ({state})")
        if level.count > len(level.people):
            named.append(_("{n} more").format(n=level.count - len(level.people)))
        line = _("Level {level} ({count}): {people}").format(level=level.level, count=level.count,
                                                            people=", ".join(named))
        if level.level > MAX_REWARDED_LEVEL:
            line += " " + _("— recorded, never rewarded")
        lines.append(line)
    if not levels:
        lines.append(_("Nobody yet."))
    lines.append(_("Times in {tz}.").format(tz=community.timezone))
    rows = [[action(_("🔗 Another member"), InviteOp.CHAIN, cid)], [back_button(cid, Section.INVITES)]]
    return _fit(lines), InlineKeyboardMarkup(inline_keyboard=rows)


@router.callback_query(InviteAdmin.filter(F.op == InviteOp.CHAIN))
async def on_chain(query: CallbackQuery, callback_data: InviteAdmin, session: AsyncSession, actor: Actor,
                   state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    step = InviteChainForm.member.state
    await state.set_state(step)
    await state.set_data({"community_id": community.id})
    await query.answer()
    await edit_or_send(query.message, *chain_prompt(step))


@router.callback_query(InviteFormNav.filter(), StateFilter(InviteChainForm))
async def on_form_button(query: CallbackQuery, callback_data: InviteFormNav, session: AsyncSession, actor: Actor,
                         state: FSMContext) -> None:
    pressed = await form_press(query, callback_data, session, actor, state, InviteChainForm)
    if pressed is None:
        return
    community = pressed[2]
    if callback_data.op is not InviteFormOp.BACK:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, *await main_view(session, community))


@router.message(StateFilter(InviteChainForm), F.chat.type == "private", F.forward_origin)
async def on_forwarded_member(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    raw = await forwarded_sender(message, chain_prompt(await state.get_state()))
    if raw is not None:
        await _answer(message, session, actor, state, raw)


@router.message(StateFilter(InviteChainForm), F.chat.type == "private", ~F.text, SENT_BY_PERSON)
async def on_form_not_text(message: Message, state: FSMContext) -> None:
    await ask_again(message, _("Please answer with text."), chain_prompt(await state.get_state()))


@router.message(StateFilter(InviteChainForm), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_answer(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    await _answer(message, session, actor, state, message.text)


async def _answer(message: Message, session: AsyncSession, actor: Actor, state: FSMContext, raw: str) -> None:
    current = await state.get_state()
    community = await form_guard(message, session, actor, state)
    if community is None:
        return
    try:
        user = await invite_chain.find_person(session, community_id=community.id, raw=raw)
    except DomainError as err:
        await ask_again(message, error_text(err), chain_prompt(current))
        return
    await state.clear()
    text, markup = await chain_view(session, community, user)
    await message.answer(text, reply_markup=markup)


# --- the CSV export --------------------------------------------------------------------------------

@router.callback_query(InviteAdmin.filter(F.op == InviteOp.EXPORT))
async def on_export(query: CallbackQuery, callback_data: InviteAdmin, session: AsyncSession, actor: Actor) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    rows = [row async for row in invite_stats.export_rows(session, community_id=community.id)]
    if not rows:
        await query.answer(_("No invites yet."), show_alert=True)
        return
    await query.answer()
    payload = invite_stats.to_csv(rows, tz=community.timezone, header=csv_header(), erased_name=_("Erased member"),
                                  label=label)
    day = local_time(_now(), community, "%Y-%m-%d")
    caption = _("{count} invites · times in {tz}").format(count=len(rows), tz=community.timezone)
    document = BufferedInputFile(payload, filename=f"invites-{community.id}-{day}.csv")
    await query.bot.send_document(query.from_user.id, document, caption=caption)
