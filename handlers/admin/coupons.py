"""/admin → Coupons: the recent coupons, and a form that creates one by hand.

The form (`CouponForm`) asks kind → value → cap (percent only) → minimum spend → expiry → single
use → owner → code → preview, with Back and Cancel on every step; an answer that does not fit is
asked again with the reason. Every press and answer re-checks that the actor leads the
community. Saving goes through `coupons.issue`, the same door the reward features use.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.localtime import local_time
from bot.services import coupons, users
from bot.services.errors import DomainError
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views.errors_text import error_text
from bot.views.keyboards import AdminNav, CouponAdmin, CouponOp, Section
from bot.views.render import edit_or_send
from handlers.admin.coupon_terms import AMOUNT_STEPS, parse_amount, terms_prompt
from handlers.admin.form_nav import ask_again, not_text_hint, step_name, typed_answer_step
from handlers.admin.menu import back_button, guard
from handlers.forms import CouponForm
from handlers.member.coupons import expiry_text, min_spend_text, money, value_text
from models import Community, User
from models.shop import Coupon, CouponKind

router = Router(name=__name__)

LIST_LIMIT = 25
MESSAGE_LIMIT = 4096
STEPS = (CouponForm.kind, CouponForm.value, CouponForm.cap, CouponForm.min_spend, CouponForm.expiry,
         CouponForm.single_use, CouponForm.owner, CouponForm.code, CouponForm.preview)
# Steps answered with buttons only.
BUTTON_STEPS = {CouponForm.kind.state, CouponForm.single_use.state, CouponForm.preview.state}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _steps(data: dict) -> list[str]:
    """The form's steps for this coupon: a cap only makes sense for a percentage."""
    return [s.state for s in STEPS if s is not CouponForm.cap or data.get("kind") == CouponKind.PERCENT]


# --- the list -------------------------------------------------------------------------------------

def owner_text(user: User | None, issued_at: datetime) -> str:
    if user is None:
        return _("for anyone")
    if user.hidden_at(issued_at):
        return _("for an erased member")
    return _("for {name}").format(name="@" + escape(user.username) if user.username else escape(user.display_name))


def coupon_line(coupon: Coupon, owner: User | None, community: Community, now: datetime) -> str:
    parts = [f"<code>{escape(coupon.code)}</code>", value_text(coupon.kind, coupon.value, coupon.cap, community.currency)]
    if coupon.min_spend:
        parts.append(min_spend_text(coupon.min_spend, community.currency))
    parts += [owner_text(owner, coupon.created_at), _("used {count}×").format(count=coupon.uses),
              _("single use") if coupon.single_use else _("once per member"), expiry_text(coupon.expires_at, community.timezone)]
    if coupon.expires_at is not None and coupon.expires_at <= now:
        parts.append(_("expired"))
    return " · ".join(parts)


async def list_view(session: AsyncSession, community: Community) -> tuple[str, InlineKeyboardMarkup]:
    listed = await coupons.listing(session, community_id=community.id, limit=LIST_LIMIT)
    owner_ids = {c.owner_id for c in listed if c.owner_id}
    owners = await users.by_ids(session, owner_ids)
    lines = [_("<b>Coupons · {title}</b> (times in {tz})").format(title=escape(community.title), tz=community.timezone)]
    if not listed:
        lines.append(_("No coupons yet."))
    now = _now()
    for coupon in listed:
        line = coupon_line(coupon, owners.get(coupon.owner_id), community, now)
        if len("\n".join(lines)) + len(line) + 2 > MESSAGE_LIMIT:
            break
        lines.append(line)
    rows = [[InlineKeyboardButton(text=_("➕ New coupon"), callback_data=CouponAdmin(op=CouponOp.NEW, community_id=community.id).pack())],
            [back_button(community.id)]]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


# --- the form's prompts ---------------------------------------------------------------------------

def _button(text: str, op: CouponOp, step: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=CouponAdmin(op=op, step=step_name(step)).pack())


def preview_text(data: dict) -> str:
    currency, tz = data["currency"], data["tz"]
    expires = datetime.fromisoformat(data["expires_at"]) if data.get("expires_at") else None
    return "\n".join([
        _("<b>New coupon</b> — check and save"),
        _("Code: {code}").format(code=f"<code>{escape(data['code'])}</code>"),
        _("Takes off: {value}").format(value=value_text(data["kind"], data["value"], data.get("cap"), currency)),
        _("Minimum spend: {amount}").format(amount=money(data["min_spend"], currency) if data.get("min_spend") else _("none")),
        _("Expires: {when}").format(when=f"{local_time(expires, tz)} ({tz})" if expires else _("never")),
        _("Use: {use}").format(use=_("single use") if data["single_use"] else _("once per member")),
        _("Who: {owner}").format(owner=escape(data["owner_label"]) if data.get("owner_id") else _("anyone in the community")),
    ])


def prompt(step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    extra: list[list[InlineKeyboardButton]] = []
    if step == CouponForm.kind.state:
        text = _("New coupon: a fixed amount off, or a percentage?")
        extra = [[_button(_("Fixed amount"), CouponOp.FIXED, step), _button(_("Percent"), CouponOp.PERCENT, step)]]
    elif (terms := terms_prompt(step_name(step), data, lambda text, op: _button(text, op, step), CouponOp)) is not None:
        text, extra = terms
    elif step == CouponForm.expiry.state:
        text = _("When does it expire? Send a number of days (for example 7) or a date as YYYY-MM-DD; it works until the end "
                 "of that day, {tz} time. Skip: it never expires.").format(tz=data.get("tz", ""))
        extra = [[_button(_("Skip"), CouponOp.SKIP, step)]]
    elif step == CouponForm.single_use.state:
        text = _("Single use (one redemption in all), or once per member?")
        extra = [[_button(_("Single use"), CouponOp.SINGLE_YES, step), _button(_("Once per member"), CouponOp.SINGLE_NO, step)]]
    elif step == CouponForm.owner.state:
        text = _("Who may use it? Send a member's @username or numeric Telegram id, or choose Anyone.")
        extra = [[_button(_("Anyone in the community"), CouponOp.ANYONE, step)]]
    elif step == CouponForm.code.state:
        text = _("The code members type at checkout: send one (letters, digits, - or _), or let me generate one.")
        extra = [[_button(_("Generate a code"), CouponOp.GENERATE, step)]]
    else:
        text = preview_text(data)
        extra = [[_button(_("💾 Save"), CouponOp.SAVE, step)]]
    nav = [_button(_("« Back"), CouponOp.BACK, step), _button(_("✖ Cancel"), CouponOp.CANCEL, step)]
    return text, InlineKeyboardMarkup(inline_keyboard=[*extra, nav])


async def _go(state: FSMContext, step: str, data: dict) -> tuple[str, InlineKeyboardMarkup]:
    await state.set_state(step)
    await state.set_data(data)
    return prompt(step, data)


def _after(step: str, data: dict) -> str:
    steps = _steps(data)
    return steps[steps.index(step) + 1]


# --- entry and list -------------------------------------------------------------------------------

@router.callback_query(AdminNav.filter(F.section == Section.COUPONS))
async def on_coupons(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, *await list_view(session, community))


@router.callback_query(CouponAdmin.filter(F.op == CouponOp.NEW))
async def on_new_coupon(query: CallbackQuery, callback_data: CouponAdmin, session: AsyncSession, actor: Actor,
                        state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await query.answer()
    data = {"community_id": community.id, "currency": community.currency, "tz": community.timezone}
    await edit_or_send(query.message, *await _go(state, CouponForm.kind.state, data))


# --- form buttons ---------------------------------------------------------------------------------

@router.callback_query(CouponAdmin.filter())
async def on_form_button(query: CallbackQuery, callback_data: CouponAdmin, session: AsyncSession, actor: Actor,
                         state: FSMContext) -> None:
    current, data = await state.get_state(), await state.get_data()
    if current is None or not current.startswith("CouponForm:") or "community_id" not in data:
        await query.answer(_("This form is no longer open."))
        await edit_or_send(query.message, _("This form is no longer open. Send /admin to start again."))
        return
    if step_name(current) != callback_data.step:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    community = await guard(query, session, actor, data["community_id"])
    if community is None:
        await state.clear()
        return
    op = callback_data.op
    if op is CouponOp.CANCEL:
        await state.clear()
        await query.answer()
        await edit_or_send(query.message, _("Cancelled. Nothing was changed. Send /admin to open the menu again."))
        return
    if op is CouponOp.BACK:
        steps = _steps(data)
        await query.answer()
        if current == steps[0]:
            await state.clear()
            await edit_or_send(query.message, *await list_view(session, community))
        else:
            await edit_or_send(query.message, *await _go(state, steps[steps.index(current) - 1], data))
        return
    if op is CouponOp.SAVE and current == CouponForm.preview.state:
        await _save(query, session, actor, state, community, data)
        return
    changes = _button_answer(op, current)
    if changes is None:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    data.update(changes)
    await query.answer()
    await edit_or_send(query.message, *await _go(state, _after(current, data), data))


def _button_answer(op: CouponOp, step: str) -> dict | None:
    """What a button answers at this step, or None when the button does not belong to it."""
    answers = {
        (CouponForm.kind.state, CouponOp.FIXED): {"kind": CouponKind.FIXED.value, "cap": None},
        (CouponForm.kind.state, CouponOp.PERCENT): {"kind": CouponKind.PERCENT.value},
        (CouponForm.cap.state, CouponOp.SKIP): {"cap": None},
        (CouponForm.min_spend.state, CouponOp.SKIP): {"min_spend": 0},
        (CouponForm.expiry.state, CouponOp.SKIP): {"expires_at": None},
        (CouponForm.single_use.state, CouponOp.SINGLE_YES): {"single_use": True},
        (CouponForm.single_use.state, CouponOp.SINGLE_NO): {"single_use": False},
        (CouponForm.owner.state, CouponOp.ANYONE): {"owner_id": None, "owner_label": None},
        (CouponForm.code.state, CouponOp.GENERATE): {"code": coupons.new_code()},
    }
    return answers.get((step, op))


async def _save(query: CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext, community: Community,
                data: dict) -> None:
    spec = coupons.CouponSpec(
        kind=CouponKind(data["kind"]), value=data["value"], cap=data.get("cap"), min_spend=data.get("min_spend") or 0,
        expires_at=datetime.fromisoformat(data["expires_at"]) if data.get("expires_at") else None,
        single_use=data["single_use"], owner_id=data.get("owner_id"), code=data["code"],
    )
    try:
        coupon = await coupons.issue(session, community_id=community.id, spec=spec, actor_id=actor.user.id, now=_now())
    except DomainError as err:
        # Taken meanwhile, or expired while the leader looked at the preview: ask that step again.
        back_to = {"coupon_code_taken": CouponForm.code.state, "coupon_expiry_past": CouponForm.expiry.state}.get(err.code)
        await query.answer()
        if back_to is None:
            text, markup = prompt(CouponForm.preview.state, data)
        else:
            text, markup = await _go(state, back_to, data)
        await edit_or_send(query.message, error_text(err, currency=community.currency) + "\n\n" + text, markup)
        return
    await state.clear()
    await query.answer(_("Saved."))
    text, markup = await list_view(session, community)
    await edit_or_send(query.message, _("Coupon {code} saved.").format(code=f"<code>{escape(coupon.code)}</code>") + "\n\n" + text, markup)


# --- typed answers --------------------------------------------------------------------------------

@router.message(StateFilter(CouponForm), F.chat.type == "private", ~F.text, SENT_BY_PERSON)
async def on_form_not_text(message: Message, state: FSMContext) -> None:
    current = await state.get_state()
    await ask_again(message, not_text_hint(current in BUTTON_STEPS), prompt(current, await state.get_data()))


@router.message(StateFilter(CouponForm), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_answer(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    answered = await typed_answer_step(message, session, actor, state, BUTTON_STEPS, prompt)
    if answered is None:
        return
    current, data, community = answered
    try:
        changes = await _typed_answer(session, community, current, data, message.text, message.date)
    except DomainError as err:
        await ask_again(message, error_text(err, currency=community.currency), prompt(current, data))
        return
    data.update(changes)
    text, markup = await _go(state, _after(current, data), data)
    await message.answer(text, reply_markup=markup)


async def _typed_answer(session: AsyncSession, community: Community, step: str, data: dict, raw: str, now: datetime) -> dict:
    """Parse one typed answer into form data, or raise the DomainError that says what is wrong."""
    if step_name(step) in AMOUNT_STEPS:
        return parse_amount(step_name(step), raw, kind=data.get("kind"), currency=community.currency)
    if step == CouponForm.expiry.state:
        return {"expires_at": coupons.parse_expiry(raw, tz=community.timezone, now=now).isoformat()}
    if step == CouponForm.owner.state:
        user = await coupons.resolve_owner(session, community_id=community.id, raw=raw)
        return {"owner_id": user.id, "owner_label": "@" + user.username if user.username else user.display_name}
    return {"code": await coupons.check_new_code(session, community_id=community.id, raw=raw)}
