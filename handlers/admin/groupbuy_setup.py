"""/admin → Group-buys → New, or Edit terms: the setup forms of team and threshold campaigns.

Team: product → price → size → time limit → window → limits → buying alone; threshold: product →
price → minimum units → cut-off → tiers → member limit; both end in a preview of the terms as
members will read them, then Publish. Editing a campaign asks for one term the same way (the
service refuses a live edit that worsens a term).

Forms run on the FSM with Back and Cancel on every step; an invalid answer is asked again with
the reason. Every press and answer re-checks that the actor leads the community, every id from a
button is looked up within that community, and form buttons carry the step they were shown for.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.localtime import local_time
from bot.services import groupbuys, posts, products
from bot.services.errors import DomainError
from bot.services.groupbuys import Terms
from bot.services.money import parse_money
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views.errors_text import error_text
from bot.views.keyboards import (
    AdminNav,
    GroupBuyAdmin,
    GroupBuyEditTerm,
    GroupBuyFormNav,
    GroupBuyFormOp,
    GroupBuyOp,
    GroupBuyTerm,
    Section,
)
from bot.views.render import edit_or_send, reply_in_place
from handlers.admin.groupbuys import (
    KIND_TERMS,
    NAME_SHOWN,
    campaign_view,
    list_view,
    money,
    op_button,
    post_card_notice,
    show_campaign,
    term_now,
    terms_lines,
    tiers_text,
)
from handlers.admin.menu import form_guard, guard
from handlers.forms import GroupBuyEditForm, GroupBuyForm
from models import Community
from models.groupbuy import GroupBuyKind, GroupBuyStatus
from models.shop import Product, ProductStatus

router = Router(name=__name__)

PRODUCT_BUTTONS = 30
QUICK_DAYS = (1, 3, 7)
QUICK_COUNTS = (1, 2, 3)

TEAM_STEPS: list[State] = [GroupBuyForm.product, GroupBuyForm.price, GroupBuyForm.team_size, GroupBuyForm.team_minutes,
                           GroupBuyForm.ends_at, GroupBuyForm.open_limit, GroupBuyForm.join_limit, GroupBuyForm.solo,
                           GroupBuyForm.preview]
THRESHOLD_STEPS: list[State] = [GroupBuyForm.product, GroupBuyForm.price, GroupBuyForm.min_units, GroupBuyForm.ends_at,
                                GroupBuyForm.tiers, GroupBuyForm.member_limit, GroupBuyForm.preview]
# The term each setup step asks for.
STEP_TERM: dict[str, GroupBuyTerm] = {
    GroupBuyForm.price.state: GroupBuyTerm.PRICE,
    GroupBuyForm.team_size.state: GroupBuyTerm.TEAM_SIZE,
    GroupBuyForm.team_minutes.state: GroupBuyTerm.TEAM_TIME,
    GroupBuyForm.ends_at.state: GroupBuyTerm.ENDS_AT,
    GroupBuyForm.open_limit.state: GroupBuyTerm.OPEN_LIMIT,
    GroupBuyForm.join_limit.state: GroupBuyTerm.JOIN_LIMIT,
    GroupBuyForm.solo.state: GroupBuyTerm.SOLO,
    GroupBuyForm.min_units.state: GroupBuyTerm.MIN_UNITS,
    GroupBuyForm.tiers.state: GroupBuyTerm.TIERS,
    GroupBuyForm.member_limit.state: GroupBuyTerm.MEMBER_LIMIT,
}
ALL_STATES = (*{s.state for s in TEAM_STEPS + THRESHOLD_STEPS}, GroupBuyEditForm.value.state)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _at(message: Message) -> datetime:
    """When the leader wrote (the update's own date), in UTC."""
    return message.date if message.date.tzinfo else message.date.replace(tzinfo=timezone.utc)


# ----- the questions --------------------------------------------------------------------------------

def question(term: GroupBuyTerm, data: dict) -> str:
    """What a step (or a one-term edit) asks; `data` is the form's."""
    kind = GroupBuyKind(data["kind"])
    if term == GroupBuyTerm.PRICE:
        if kind == GroupBuyKind.TEAM:
            return _("The team price in {currency}: lower than the normal price of #{number}, {normal}.").format(
                currency=data["currency"], number=data["product_number"], normal=data["product_normal"])
        return _("The price members pay on joining, in {currency} (the normal price of #{number} is {normal}).").format(
            currency=data["currency"], number=data["product_number"], normal=data["product_normal"])
    if term == GroupBuyTerm.ENDS_AT:
        ask = (_("Until when may members open new teams?") if kind == GroupBuyKind.TEAM
               else _("The cut-off: when is the total counted?"))
        return ask + " " + _("Send a time in {tz}: HH:MM or YYYY-MM-DD HH:MM, or choose below. It is {now} there now.").format(
            tz=data["tz"], now=data["local_now"])
    if term == GroupBuyTerm.TIERS:
        text = _("Optional lower prices by total units: send a tier as the units and the price, for example “30 8.80” "
                 "(several, one per line). Everyone pays the tier reached at the cut-off.")
        if data.get("tiers"):
            text += "\n" + _("Tiers so far: {tiers}").format(tiers=escape(data["tiers_shown"]))
        return text
    return {
        GroupBuyTerm.TEAM_SIZE: lambda: _("How many people make a team? Send a number from 2 to {max}.").format(max=groupbuys.TEAM_SIZE_MAX),
        GroupBuyTerm.TEAM_TIME: lambda: _("How long does a team have to fill once it opens? For example 24 (hours), 24h, 1d 12h or 90m; at most {days} days.").format(
            days=groupbuys.TEAM_MINUTES_MAX // 1440),
        GroupBuyTerm.OPEN_LIMIT: lambda: _("How many teams may one member open? Choose, or send a number from 0 to {max}.").format(max=groupbuys.MEMBER_TEAMS_MAX),
        GroupBuyTerm.JOIN_LIMIT: lambda: _("How many teams opened by others may one member join? Choose, or send a number from 0 to {max}.").format(max=groupbuys.MEMBER_TEAMS_MAX),
        GroupBuyTerm.SOLO: lambda: _("May members still buy alone at the normal price while the group-buy runs?"),
        GroupBuyTerm.MIN_UNITS: lambda: _("The minimum total units the community must order for the group-buy to succeed. Send a number."),
        GroupBuyTerm.MEMBER_LIMIT: lambda: _("The most units one member may order: send a number, or press No limit."),
    }[term]()


def choice_rows(term: GroupBuyTerm, step: str, data: dict) -> list[list[InlineKeyboardButton]]:
    """The answer buttons a step offers besides typing."""
    def pick(text: str, value: int) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=GroupBuyFormNav(op=GroupBuyFormOp.PICK, step=step, value=value).pack())

    def op(text: str, kind: GroupBuyFormOp) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=GroupBuyFormNav(op=kind, step=step).pack())

    if term == GroupBuyTerm.ENDS_AT:
        return [[pick(_("in {count} d").format(count=days), days) for days in QUICK_DAYS]]
    if term in (GroupBuyTerm.OPEN_LIMIT, GroupBuyTerm.JOIN_LIMIT):
        return [[pick(str(n), n) for n in QUICK_COUNTS]]
    if term == GroupBuyTerm.SOLO:
        return [[pick(_("Yes"), 1), pick(_("No"), 0)]]
    if term == GroupBuyTerm.TIERS:
        rows = [[op(_("✅ Done") if data.get("tiers") else _("No tiers"), GroupBuyFormOp.NONE)]]
        if data.get("tiers"):
            rows.append([op(_("Clear the tiers"), GroupBuyFormOp.CLEAR)])
        return rows
    if term == GroupBuyTerm.MEMBER_LIMIT:
        return [[op(_("No limit"), GroupBuyFormOp.NONE)]]
    return []


# ----- the setup form ------------------------------------------------------------------------------

def _steps(data: dict) -> list[str]:
    return [s.state for s in (TEAM_STEPS if data["kind"] == GroupBuyKind.TEAM else THRESHOLD_STEPS)]


def step_code(state: str, data: dict) -> str:
    """A short name of the step a button belongs to: "n.price" (setup) or "e.price" (one-term edit)."""
    if state == GroupBuyEditForm.value.state:
        return f"e.{data['term']}"
    return "n." + state.split(":", 1)[1]


def _form_nav(text: str, op: GroupBuyFormOp, step: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=GroupBuyFormNav(op=op, step=step).pack())


async def _on_sale(session: AsyncSession, community_id: int) -> list[Product]:
    return [p for p in await products.listing(session, community_id=community_id) if p.status == ProductStatus.ACTIVE]


async def _products_step(session: AsyncSession, data: dict) -> tuple[str, list[list[InlineKeyboardButton]]]:
    listed = await _on_sale(session, data["community_id"])
    step = "n.product"
    title = _("<b>New team group-buy</b>") if data["kind"] == GroupBuyKind.TEAM else _("<b>New threshold group-buy</b>")
    if not listed:
        text = title + "\n" + _("There is no product on sale yet. Add one in 📦 Products first, then come back.")
        return text, [[InlineKeyboardButton(text=_("📦 Products"), callback_data=AdminNav(
            community_id=data["community_id"], section=Section.PRODUCTS).pack())]]
    text = title + " · " + _("Step {n} of {total}").format(n=1, total=len(_steps(data)) - 1) + "\n" + _("Which product? Choose one on sale.")
    rows = [[InlineKeyboardButton(text=f"#{p.number} {p.title[:NAME_SHOWN]}", callback_data=GroupBuyFormNav(
        op=GroupBuyFormOp.PICK, step=step, value=p.id).pack())] for p in listed[:PRODUCT_BUTTONS]]
    return text, rows


async def prompt(session: AsyncSession, state: str, data: dict, community: Community, locale: str,
                 reason: str | None = None) -> tuple[str, InlineKeyboardMarkup]:
    step = step_code(state, data)
    if state == GroupBuyForm.product.state:
        text, rows = await _products_step(session, data)
    elif state == GroupBuyForm.preview.state:
        product = await session.get(Product, data["product_id"])
        text = "\n".join([_("<b>Preview</b> — the terms as members will see them:"), "",
                          *terms_lines(terms_from(data), product, community, locale), "",
                          _("Publish it? Its card is posted in the group at once.")])
        rows = [[_form_nav(_("📣 Publish"), GroupBuyFormOp.PUBLISH, step)]]
    elif state == GroupBuyEditForm.value.state:
        term = GroupBuyTerm(data["term"])
        text = question(term, data) + "\n" + _("Now: {value}").format(value=data["current"])
        rows = choice_rows(term, step, data)
    else:
        steps = _steps(data)
        term = STEP_TERM[state]
        text = _("Step {n} of {total}").format(n=steps.index(state) + 1, total=len(steps) - 1) + " · " + question(term, data)
        rows = choice_rows(term, step, data)
    rows = [*rows, [_form_nav(_("« Back"), GroupBuyFormOp.BACK, step), _form_nav(_("✖ Cancel"), GroupBuyFormOp.CANCEL, step)]]
    return (reason + "\n\n" + text if reason else text), InlineKeyboardMarkup(inline_keyboard=rows)


async def _ask(target: Message | CallbackQuery, session: AsyncSession, state: FSMContext, step: str,
               community: Community, locale: str, reason: str | None = None) -> None:
    """Move the form to `step` and ask it: in place under a pressed button, else as a reply."""
    await state.set_state(step)
    data = await state.get_data()
    data["local_now"] = local_time(_now(), community)
    await state.update_data(local_now=data["local_now"])
    text, markup = await prompt(session, step, data, community, locale, reason)
    await reply_in_place(target, text, markup)


def terms_from(data: dict) -> Terms:
    return Terms(
        kind=GroupBuyKind(data["kind"]), product_id=data["product_id"], price=data["price"],
        ends_at=datetime.fromisoformat(data["ends_at"]), team_size=data.get("team_size"),
        team_minutes=data.get("team_minutes"), open_limit=data.get("open_limit", 1), join_limit=data.get("join_limit", 1),
        solo_allowed=data.get("solo", True), min_units=data.get("min_units"),
        tiers=tuple(tuple(t) for t in data.get("tiers", [])), member_limit=data.get("member_limit"))


def _form_data(community: Community, kind: GroupBuyKind) -> dict:
    return {"community_id": community.id, "kind": kind.value, "currency": community.currency, "tz": community.timezone,
            "form": secrets.token_hex(6)}


@router.callback_query(GroupBuyAdmin.filter(F.op.in_({GroupBuyOp.NEW_TEAM, GroupBuyOp.NEW_THRESHOLD})))
async def on_new(query: CallbackQuery, callback_data: GroupBuyAdmin, session: AsyncSession, actor: Actor,
                 state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    kind = GroupBuyKind.TEAM if callback_data.op == GroupBuyOp.NEW_TEAM else GroupBuyKind.THRESHOLD
    await query.answer()
    data = _form_data(community, kind)
    if not await _on_sale(session, community.id):  # nothing to set up a group-buy for: no form to leave
        await state.clear()
        text, rows = await _products_step(session, data)
        rows.append([op_button(_("« Group-buys"), community.id, GroupBuyOp.LIST)])
        await edit_or_send(query.message, text, InlineKeyboardMarkup(inline_keyboard=rows))
        return
    await state.set_data(data)
    await _ask(query, session, state, GroupBuyForm.product.state, community, actor.locale)


@router.callback_query(GroupBuyEditTerm.filter())
async def on_edit_term(query: CallbackQuery, callback_data: GroupBuyEditTerm, session: AsyncSession, actor: Actor,
                       state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    try:
        campaign = await groupbuys.get_editable(session, community_id=community.id, group_buy_id=callback_data.group_buy_id)
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        return
    kind, term = GroupBuyKind(campaign.kind), callback_data.term
    if term not in KIND_TERMS[kind]:
        await query.answer(_("This button is no longer valid."), show_alert=True)
        return
    product = await session.get(Product, campaign.product_id)
    terms = groupbuys.terms_of(campaign)
    data = {**_form_data(community, kind), "group_buy_id": campaign.id, "term": term.value, "product_id": product.id,
            "product_number": product.number, "product_normal": money(product.price, community, actor.locale),
            "current": term_now(term, terms, community, actor.locale)}
    await state.set_data(data)
    await query.answer()
    await _ask(query, session, state, GroupBuyEditForm.value.state, community, actor.locale)


async def _leave(target: Message | CallbackQuery, session: AsyncSession, actor: Actor, community: Community, data: dict,
                 notice: str) -> None:
    """Close the form and show where it started: the campaign for an edit, else the list."""
    campaign = None
    if "group_buy_id" in data:
        try:
            campaign = await groupbuys.get(session, community_id=community.id, group_buy_id=data["group_buy_id"])
        except DomainError:
            campaign = None
    if campaign is not None:
        text, markup = await campaign_view(session, community, campaign, actor.locale, now=_now())
    else:
        text, markup = await list_view(session, community)
    text = notice + "\n\n" + text
    await reply_in_place(target, text, markup)


@router.callback_query(GroupBuyFormNav.filter())
async def on_form_button(query: CallbackQuery, callback_data: GroupBuyFormNav, session: AsyncSession, actor: Actor,
                         state: FSMContext, bot: Bot) -> None:
    current, data = await state.get_state(), await state.get_data()
    if current not in ALL_STATES or "community_id" not in data:
        # Not redrawn: this may be the second tap of a Publish whose first one is redrawing it now.
        await query.answer(_("This form is no longer open."))
        return
    if callback_data.step != step_code(current, data):
        await query.answer(_("That step is already behind you. Use the buttons under the latest message."), show_alert=True)
        return
    community = await guard(query, session, actor, data["community_id"])
    if community is None:
        await state.clear()
        return
    op = callback_data.op
    if op is GroupBuyFormOp.CANCEL:
        await state.clear()
        await query.answer()
        await _leave(query, session, actor, community, data, _("Cancelled. Nothing was changed."))
        return
    if op is GroupBuyFormOp.BACK:
        await query.answer()
        steps = [] if current == GroupBuyEditForm.value.state else _steps(data)
        if current in steps[1:]:
            await _ask(query, session, state, steps[steps.index(current) - 1], community, actor.locale)
        else:
            await state.clear()
            await _leave(query, session, actor, community, data, _("Nothing was changed."))
        return
    if op is GroupBuyFormOp.PUBLISH and current == GroupBuyForm.preview.state:
        await _publish(query, session, actor, state, community, data, bot)
        return
    if op is GroupBuyFormOp.CLEAR and current in (GroupBuyForm.tiers.state, GroupBuyEditForm.value.state):
        await state.update_data(tiers=[], tiers_shown="")
        await query.answer()
        await _ask(query, session, state, current, community, actor.locale)
        return
    if op in (GroupBuyFormOp.PICK, GroupBuyFormOp.NONE):
        await query.answer()
        await _answer(query, session, actor, state, community, current, data, None, pick=callback_data.value,
                      none=op is GroupBuyFormOp.NONE, now=_now())
        return
    await query.answer()


async def _publish(query: CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext, community: Community,
                   data: dict, bot: Bot) -> None:
    now = _now()
    try:
        campaign = await groupbuys.create(session, community_id=community.id, actor_id=actor.user.id, terms=terms_from(data),
                                          now=now, once_key=f"{community.id}:{actor.user.id}:{data['form']}")
    except DomainError as err:
        if err.code == "groupbuy_already_saved":
            await query.answer(error_text(err), show_alert=True)
            return
        # The terms stopped fitting while the preview was open (the end time passed, the product
        # was archived or repriced): back to the step that needs a new answer.
        await query.answer()
        back_to = {"groupbuy_end_past": GroupBuyForm.ends_at.state,
                   "groupbuy_price_not_lower": GroupBuyForm.price.state}.get(err.code)
        if back_to is None:
            await state.clear()
            await _leave(query, session, actor, community, data, error_text(err, currency=community.currency))
            return
        await _ask(query, session, state, back_to, community, actor.locale, error_text(err, currency=community.currency))
        return
    await state.clear()
    try:
        campaign = await groupbuys.publish(session, community_id=community.id, group_buy_id=campaign.id,
                                           actor_id=actor.user.id, now=now)
    except DomainError as err:  # it stays a draft: the leader sees why and may publish or delete it
        await query.answer()
        await show_campaign(query, session, community, campaign, actor, error_text(err, currency=community.currency))
        return
    await query.answer(_("Published."))
    await show_campaign(query, session, community, campaign, actor, await post_card_notice(bot, session, campaign))


# ----- answers -------------------------------------------------------------------------------------

def _count(raw: str | None, pick: int | None, *, minimum: int, maximum: int) -> int:
    return pick if raw is None and pick is not None and minimum <= pick <= maximum else groupbuys.parse_count(
        raw or "", minimum=minimum, maximum=maximum)


def parse_tiers(raw: str, currency: str) -> list[list[int]]:
    """Tiers typed one per line: units and a price ("30 8.80")."""
    tiers = []
    for line in raw.splitlines():
        if line.strip():
            units, price = groupbuys.parse_tier(line)
            tiers.append([units, parse_money(price, currency)])
    if not tiers:
        raise DomainError("tier_format", value=raw.strip()[:24])
    return tiers


def parse_term(term: GroupBuyTerm, raw: str | None, *, pick: int | None, none: bool, data: dict, community: Community,
               now: datetime, base: Terms | None = None) -> dict:
    """An answer for one term → the form data it sets. Buttons come as `pick` (their value) or
    `none`; typed answers as `raw`. `base`: the campaign's terms, when editing one."""
    kind = GroupBuyKind(data["kind"])
    if term == GroupBuyTerm.PRICE:
        if raw is None:
            raise DomainError("money_format", value="")
        return {"price": groupbuys.check_price(kind, parse_money(raw, community.currency), normal_price=data["product_price"])}
    if term == GroupBuyTerm.TEAM_SIZE:
        return {"team_size": _count(raw, None, minimum=2, maximum=groupbuys.TEAM_SIZE_MAX)}
    if term == GroupBuyTerm.TEAM_TIME:
        return {"team_minutes": groupbuys.parse_duration(raw or "")}
    if term == GroupBuyTerm.ENDS_AT:
        if raw is None and pick in QUICK_DAYS:
            return {"ends_at": (now + timedelta(days=pick)).isoformat()}
        try:
            when = posts.parse_local_time(raw or "", tz=community.timezone, now=now)
        except DomainError as err:
            if err.code == "post_time_past":
                raise DomainError("groupbuy_end_past") from None
            if err.code == "post_time_far":
                raise DomainError("groupbuy_end_far", days=60) from None
            raise
        return {"ends_at": when.isoformat()}
    if term in (GroupBuyTerm.OPEN_LIMIT, GroupBuyTerm.JOIN_LIMIT):
        value = _count(raw, pick, minimum=0, maximum=groupbuys.MEMBER_TEAMS_MAX)
        other = data.get("join_limit" if term == GroupBuyTerm.OPEN_LIMIT else "open_limit",
                         None if base is None else (base.join_limit if term == GroupBuyTerm.OPEN_LIMIT else base.open_limit))
        if value == 0 and other == 0:
            raise DomainError("team_limits_zero")
        return {"open_limit" if term == GroupBuyTerm.OPEN_LIMIT else "join_limit": value}
    if term == GroupBuyTerm.SOLO:
        if raw is not None or pick not in (0, 1):
            raise DomainError("groupbuy_choose")
        return {"solo": bool(pick)}
    if term == GroupBuyTerm.MIN_UNITS:
        return {"min_units": _count(raw, None, minimum=1, maximum=groupbuys.UNITS_MAX)}
    if term == GroupBuyTerm.TIERS:
        tiers = [] if none else parse_tiers(raw or "", community.currency)
        if base is None:  # the setup form adds each message's tiers to those typed before
            tiers = sorted([*data.get("tiers", []), *tiers])
        groupbuys.check_tiers(tuple(tuple(t) for t in tiers), base_price=data["price"] if base is None else base.price,
                              min_units=data["min_units"] if base is None else base.min_units)
        return {"tiers": tiers}
    if term == GroupBuyTerm.MEMBER_LIMIT:
        return {"member_limit": None if none else _count(raw, None, minimum=1, maximum=groupbuys.UNITS_MAX)}
    raise DomainError("groupbuy_choose")


TERM_FIELD = {
    "price": "price", "team_size": "team_size", "team_minutes": "team_minutes", "open_limit": "open_limit",
    "join_limit": "join_limit", "solo": "solo_allowed", "min_units": "min_units", "member_limit": "member_limit",
}


async def _answer(target: Message | CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext,
                  community: Community, current: str, data: dict, raw: str | None, *, pick: int | None = None,
                  none: bool = False, now: datetime) -> None:
    """Apply an answer (typed `raw`, or a button's `pick` / `none`) and move on, or ask again with the reason."""
    if current == GroupBuyForm.product.state:
        await _pick_product(target, session, actor, state, community, data, raw, pick)
        return
    if current == GroupBuyForm.preview.state:
        reason = _("Press Publish to put it live, or Back to change it.")
        await _ask(target, session, state, current, community, actor.locale, reason)
        return
    editing = current == GroupBuyEditForm.value.state
    term = GroupBuyTerm(data["term"]) if editing else STEP_TERM[current]
    try:
        if editing:
            await _apply_edit(target, session, actor, state, community, data, term, raw, pick=pick, none=none, now=now)
            return
        changes = parse_term(term, raw, pick=pick, none=none, data=data, community=community, now=now)
    except DomainError as err:
        if err.code in ("groupbuy_unknown", "groupbuy_closed", "product_archived", "product_unknown"):
            await state.clear()
            await _leave(target, session, actor, community, data, error_text(err, currency=community.currency))
            return
        await _ask(target, session, state, current, community, actor.locale, error_text(err, currency=community.currency))
        return
    if "tiers" in changes:
        changes["tiers_shown"] = tiers_text(changes["tiers"], community, actor.locale)
    await state.update_data(**changes)
    if term == GroupBuyTerm.TIERS and not none:  # more tiers may follow; Done moves on
        await _ask(target, session, state, current, community, actor.locale,
                   _("Tier added.") if changes["tiers"] else None)
        return
    steps = _steps(data)
    await _ask(target, session, state, steps[steps.index(current) + 1], community, actor.locale)


async def _pick_product(target: Message | CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext,
                        community: Community, data: dict, raw: str | None, pick: int | None) -> None:
    product = None
    if raw is None and pick:
        try:
            product = await products.get(session, community_id=community.id, product_id=pick)
        except DomainError:
            product = None
    if product is None or product.status != ProductStatus.ACTIVE:
        reason = (_("Choose the product with the buttons.") if raw is not None
                  else error_text(DomainError("product_unknown") if product is None else
                                  DomainError("product_paused" if product.status == ProductStatus.PAUSED else "product_archived",
                                              number=product.number)))
        await _ask(target, session, state, GroupBuyForm.product.state, community, actor.locale, reason)
        return
    await state.update_data(product_id=product.id, product_number=product.number, product_price=product.price,
                            product_normal=money(product.price, community, actor.locale))
    await _ask(target, session, state, GroupBuyForm.price.state, community, actor.locale)


async def _apply_edit(target: Message | CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext,
                      community: Community, data: dict, term: GroupBuyTerm, raw: str | None, *, pick: int | None,
                      none: bool, now: datetime) -> None:
    campaign = await groupbuys.get(session, community_id=community.id, group_buy_id=data["group_buy_id"])
    product = await session.get(Product, campaign.product_id)
    base = groupbuys.terms_of(campaign)
    changes = parse_term(term, raw, pick=pick, none=none, data={**data, "product_price": product.price}, community=community,
                         now=now, base=base)
    fields = {TERM_FIELD[k]: v for k, v in changes.items() if k in TERM_FIELD}
    if "ends_at" in changes:
        fields["ends_at"] = datetime.fromisoformat(changes["ends_at"])
    if "tiers" in changes:
        fields["tiers"] = tuple(tuple(t) for t in changes["tiers"])
    await groupbuys.edit(session, community_id=community.id, group_buy_id=campaign.id, actor_id=actor.user.id,
                         terms=replace(base, **fields), now=now)
    await state.clear()
    notice = _("✅ Saved. The card in the group shows the new terms.") if campaign.status == GroupBuyStatus.LIVE else _("✅ Saved.")
    await _leave(target, session, actor, community, data, notice)


@router.message(StateFilter(*ALL_STATES), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_text(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    community = await form_guard(message, session, actor, state)
    if community is None:
        return
    await _answer(message, session, actor, state, community, await state.get_state(), await state.get_data(),
                  message.text, now=_at(message))


@router.message(StateFilter(*ALL_STATES), F.chat.type == "private", ~F.text, SENT_BY_PERSON)
async def on_form_other(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    community = await form_guard(message, session, actor, state)
    if community is None:
        return
    await _ask(message, session, state, await state.get_state(), community, actor.locale, _("Please answer with text."))
