"""/admin → Products: the list, the new-product form, a product's view with one-step edits,
pause/resume/archive, and posting its card to the group now or at a community-local time.

Forms run on the FSM with Back and Cancel on every step; an invalid answer is asked again with
the reason. Each press and each answer re-checks that the actor still leads the community, and
buttons carry the form step they were shown for, so a button left on an old prompt does nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from html import escape
from math import ceil

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.localtime import local_time
from bot.services import posts, products
from bot.services.errors import DomainError
from bot.services.money import format_money, parse_money
from bot.telegram.context import BotContext
from bot.telegram.middlewares.actor import Actor
from bot.telegram.update_types import SENT_BY_PERSON
from bot.views.cards import card_text
from bot.views.errors_text import error_text
from bot.views.keyboards import (
    AdminNav,
    ProductAction,
    ProductField,
    ProductFieldKey,
    ProductFormNav,
    ProductFormOp,
    ProductList,
    ProductOp,
    Section,
)
from bot.views.product_posts import publish, reason_text
from bot.views.render import edit_or_send, reply_in_place
from handlers.admin.menu import back_button, form_guard, guard
from handlers.forms import PostForm, ProductEditForm, ProductForm
from models import Community
from models.shop import PostStatus, Product, ProductStatus

router = Router(name=__name__)

PAGE_SIZE = 10
# Missed posts stay in the product's view this long, so the leader sees what did not go out.
MISSED_SHOWN = timedelta(days=7)
POSTS_SHOWN = 10
CANCEL_BUTTONS = 5


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _at(message: Message) -> datetime:
    """When the leader wrote (the update's own date), in UTC."""
    return message.date if message.date.tzinfo else message.date.replace(tzinfo=timezone.utc)


# ----- views -------------------------------------------------------------------------------------

def _stock(product: Product) -> str:
    return "∞" if product.stock is None else str(product.stock)


def _status(product: Product) -> str:
    return {ProductStatus.PAUSED: _("paused"), ProductStatus.ARCHIVED: _("archived")}.get(product.status, "")


def list_line(product: Product, community: Community, locale: str) -> str:
    parts = [format_money(product.price, community.currency, locale), _("left {count}").format(count=_stock(product)),
             _("sold {count}").format(count=product.sold)]
    if product.status != ProductStatus.ACTIVE:
        parts.append(_status(product))
    return f"#{product.number} {escape(product.title)} — " + " · ".join(parts)


async def list_view(session: AsyncSession, community: Community, locale: str, *, page: int = 0,
                    archived: bool = False) -> tuple[str, InlineKeyboardMarkup]:
    page = max(page, 0)
    items, total = await products.page(session, community_id=community.id, archived=archived,
                                       offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    pages = max(1, ceil(total / PAGE_SIZE))
    if page >= pages:  # the list shrank since the button was drawn
        page = pages - 1
        items, total = await products.page(session, community_id=community.id, archived=archived,
                                           offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    title = escape(community.title)
    lines = [_("<b>Archived products · {title}</b>").format(title=title) if archived
             else _("<b>Products · {title}</b>").format(title=title)]
    if pages > 1:
        lines.append(_("Page {page} of {pages}").format(page=page + 1, pages=pages))
    lines += [list_line(p, community, locale) for p in items]
    if not items:
        lines.append(_("No archived products.") if archived else _("No products yet. Add the first one."))
    cid = community.id
    rows = [[InlineKeyboardButton(text=f"#{p.number} {p.title}",
                                  callback_data=ProductAction(community_id=cid, product_id=p.id, op=ProductOp.OPEN).pack())]
            for p in items]
    turn = []
    if page > 0:
        turn.append(InlineKeyboardButton(text="‹", callback_data=ProductList(community_id=cid, page=page - 1, archived=archived).pack()))
    if page < pages - 1:
        turn.append(InlineKeyboardButton(text="›", callback_data=ProductList(community_id=cid, page=page + 1, archived=archived).pack()))
    if turn:
        rows.append(turn)
    if archived:
        rows.append([InlineKeyboardButton(text=_("« Products"), callback_data=ProductList(community_id=cid).pack())])
    else:
        rows.append([InlineKeyboardButton(text=_("➕ New product"),
                                          callback_data=ProductAction(community_id=cid, product_id=0, op=ProductOp.NEW).pack())])
        rows.append([InlineKeyboardButton(text=_("🗄 Archived"), callback_data=ProductList(community_id=cid, archived=True).pack())])
        rows.append([back_button(cid)])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


async def product_view(session: AsyncSession, community: Community, product: Product, locale: str, *,
                       now: datetime) -> tuple[str, InlineKeyboardMarkup]:
    status = {ProductStatus.ACTIVE: _("on sale"), ProductStatus.PAUSED: _("paused"),
              ProductStatus.ARCHIVED: _("archived")}[ProductStatus(product.status)]
    lines = [
        f"<b>#{product.number} · {escape(product.title)}</b>",
        _("Status: {status}").format(status=status),
        _("Price: {price}").format(price=format_money(product.price, community.currency, locale)),
        _("Stock left: {stock} · Sold: {sold}").format(stock=_stock(product), sold=product.sold),
        _("Limit per member: {limit}").format(limit=product.per_member_limit or _("none")),
        _("Photo: {photo}").format(photo=_("yes") if product.photo_file_id else _("no")),
    ]
    if product.description:
        lines += ["", escape(product.description)]
    listed = await posts.upcoming(session, community_id=community.id, product_id=product.id, missed_since=now - MISSED_SHOWN)
    if listed:
        lines += ["", _("<b>Posts</b> (times in {tz})").format(tz=community.timezone)]
        for post in listed[:POSTS_SHOWN]:
            when = local_time(post.due_at, community)
            lines.append(_("🕒 {when} — scheduled").format(when=when) if post.status == PostStatus.SCHEDULED
                         else _("⚠️ {when} — missed: I was offline then").format(when=when))
    cid, pid = community.id, product.id

    def act(text: str, op: ProductOp, post_id: int = 0) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=ProductAction(community_id=cid, product_id=pid, op=op, post_id=post_id).pack())

    def edit(text: str, key: ProductFieldKey) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=ProductField(community_id=cid, product_id=pid, field=key).pack())

    if product.status == ProductStatus.ARCHIVED:
        rows = [[InlineKeyboardButton(text=_("« Archived"), callback_data=ProductList(community_id=cid, archived=True).pack())]]
        return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)
    rows = [
        [edit(_("✏️ Title"), ProductFieldKey.TITLE), edit(_("✏️ Description"), ProductFieldKey.DESCRIPTION)],
        [edit(_("✏️ Price"), ProductFieldKey.PRICE), edit(_("✏️ Stock"), ProductFieldKey.STOCK)],
        [edit(_("✏️ Limit"), ProductFieldKey.LIMIT), edit(_("🖼 Photo"), ProductFieldKey.PHOTO)],
    ]
    if product.status == ProductStatus.ACTIVE:
        rows.append([act(_("📣 Post now"), ProductOp.POST_NOW), act(_("🕒 Schedule post"), ProductOp.SCHEDULE)])
    scheduled = [p for p in listed if p.status == PostStatus.SCHEDULED][:CANCEL_BUTTONS]
    rows += [[act(_("✖ Cancel post {when}").format(when=local_time(p.due_at, community)), ProductOp.CANCEL_POST, p.id)]
             for p in scheduled]
    toggle = (act(_("⏸ Pause"), ProductOp.PAUSE) if product.status == ProductStatus.ACTIVE
              else act(_("▶️ Resume"), ProductOp.RESUME))
    rows.append([toggle, act(_("🗄 Archive"), ProductOp.ARCHIVE)])
    rows.append([InlineKeyboardButton(text=_("« Products"), callback_data=ProductList(community_id=cid).pack())])
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


# ----- forms: steps, prompts, keyboards ----------------------------------------------------------

NEW_STEPS: list[State] = [ProductForm.title, ProductForm.description, ProductForm.price, ProductForm.stock,
                          ProductForm.limit, ProductForm.photo, ProductForm.preview]
EDIT_STEPS: dict[ProductFieldKey, State] = {
    ProductFieldKey.TITLE: ProductEditForm.title,
    ProductFieldKey.DESCRIPTION: ProductEditForm.description,
    ProductFieldKey.PRICE: ProductEditForm.price,
    ProductFieldKey.STOCK: ProductEditForm.stock,
    ProductFieldKey.LIMIT: ProductEditForm.limit,
    ProductFieldKey.PHOTO: ProductEditForm.photo,
}
# The product attribute each edit step changes.
EDIT_ATTR = {
    ProductEditForm.title.state: "title",
    ProductEditForm.description.state: "description",
    ProductEditForm.price.state: "price",
    ProductEditForm.stock.state: "stock",
    ProductEditForm.limit.state: "per_member_limit",
    ProductEditForm.photo.state: "photo_file_id",
}
PHOTO_STEPS = (ProductForm.photo.state, ProductEditForm.photo.state)
ALL_STEPS = (*NEW_STEPS, *EDIT_STEPS.values(), PostForm.time)
_FORM_CODES = {"ProductForm": "n", "ProductEditForm": "e", "PostForm": "p"}


def step_code(state: str) -> str:
    """A short name of a form step for callback data ("ProductEditForm:stock" → "e.stock")."""
    group, _sep, name = state.partition(":")
    return f"{_FORM_CODES[group]}.{name}"


# What each step asks, from the form data. Edit prompts show the value the product has now.
PROMPTS: dict[str, Callable[[dict], str]] = {
    ProductForm.title.state: lambda d: _("<b>New product</b> · step 1 of 6\nSend the title (up to {max} characters).").format(max=products.TITLE_MAX),
    ProductForm.description.state: lambda d: _("Step 2 of 6 · Send a description (up to {max} characters), or press Skip.").format(max=products.DESCRIPTION_MAX),
    ProductForm.price.state: lambda d: _("Step 3 of 6 · Send the price in {currency}, for example 12.5 or 12,50.").format(currency=d["currency"]),
    ProductForm.stock.state: lambda d: _("Step 4 of 6 · How many are in stock? Send a number, or press Unlimited."),
    ProductForm.limit.state: lambda d: _("Step 5 of 6 · The most one member may buy. Send a number, or press No limit."),
    ProductForm.photo.state: lambda d: _("Step 6 of 6 · Send a photo of the product, or press No photo."),
    ProductForm.preview.state: lambda d: _("Above is the card as the group will see it, with the buttons Buy and Share under it. Save the product?"),
    ProductEditForm.title.state: lambda d: _("Send the new title of #{number} (up to {max} characters).\nNow: {value}").format(
        number=d["number"], max=products.TITLE_MAX, value=escape(d["current"])),
    ProductEditForm.description.state: lambda d: _("Send the new description of #{number} (up to {max} characters), or remove it.\nNow: {value}").format(
        number=d["number"], max=products.DESCRIPTION_MAX, value=escape(d["current"]) or _("none")),
    ProductEditForm.price.state: lambda d: _("Send the new price of #{number} in {currency}.\nNow: {value}").format(
        number=d["number"], currency=d["currency"], value=d["current"]),
    ProductEditForm.stock.state: lambda d: _("How many of #{number} are left to sell? Send a number (0 means sold out), or press Unlimited.\nNow: {value}").format(
        number=d["number"], value=d["current"]),
    ProductEditForm.limit.state: lambda d: _("The most one member may buy of #{number}: send a number, or press No limit.\nNow: {value}").format(
        number=d["number"], value=d["current"]),
    ProductEditForm.photo.state: lambda d: _("Send the new photo of #{number}, or remove the photo. Cards already in the group keep their picture.").format(
        number=d["number"]),
    PostForm.time.state: lambda d: _("When should #{number} be posted? Send a time in {tz}: HH:MM (the next time it comes) or YYYY-MM-DD HH:MM. It is {now} there now.").format(
        number=d["number"], tz=d["tz"], now=d["local_now"]),
}
# The label of the step's "no value" button (ProductFormOp.SKIP), where it has one.
SKIP_LABELS: dict[str, Callable[[], str]] = {
    ProductForm.description.state: lambda: _("Skip"),
    ProductForm.stock.state: lambda: _("♾ Unlimited"),
    ProductForm.limit.state: lambda: _("No limit"),
    ProductForm.photo.state: lambda: _("No photo"),
    ProductEditForm.description.state: lambda: _("Remove the description"),
    ProductEditForm.stock.state: lambda: _("♾ Unlimited"),
    ProductEditForm.limit.state: lambda: _("No limit"),
    ProductEditForm.photo.state: lambda: _("Remove the photo"),
}


def form_keyboard(state: str) -> InlineKeyboardMarkup:
    def nav(text: str, op: ProductFormOp) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=ProductFormNav(op=op, step=step_code(state)).pack())

    rows = []
    if state == ProductForm.preview.state:
        rows.append([nav(_("✅ Save"), ProductFormOp.SAVE)])
    elif state in SKIP_LABELS:
        rows.append([nav(SKIP_LABELS[state](), ProductFormOp.SKIP)])
    rows.append([nav(_("« Back"), ProductFormOp.BACK), nav(_("✖ Cancel"), ProductFormOp.CANCEL)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def prompt(state: str, data: dict, reason: str | None = None) -> tuple[str, InlineKeyboardMarkup]:
    text = PROMPTS[state](data)
    return (reason + "\n\n" + text if reason else text), form_keyboard(state)


async def _show_step(target: Message | CallbackQuery, state: FSMContext, step: State, reason: str | None = None) -> None:
    """Move the form to `step` and ask for it: in place under a pressed button, else as a reply."""
    await state.set_state(step)
    text, markup = prompt(step.state, await state.get_data(), reason)
    await reply_in_place(target, text, markup)


async def _show_preview(target: Message | CallbackQuery, session: AsyncSession, state: FSMContext,
                        community: Community) -> None:
    """The real card (photo and caption, or text, in the community's language) as new messages,
    then Save / Back / Cancel under it."""
    await state.set_state(ProductForm.preview)
    data = await state.get_data()
    draft = Product(community_id=community.id, number=await products.next_number(session, community_id=community.id),
                    title=data["title"], description=data["description"], price=data["price"], stock=data["stock"],
                    per_member_limit=data["limit"], photo_file_id=data["photo"])
    text = card_text(draft, community, community.default_locale, with_photo=bool(draft.photo_file_id))
    chat_id = target.message.chat.id if isinstance(target, CallbackQuery) else target.chat.id
    if draft.photo_file_id:
        await target.bot.send_photo(chat_id, draft.photo_file_id, caption=text)
    else:
        await target.bot.send_message(chat_id, text)
    text, markup = prompt(ProductForm.preview.state, data)
    await target.bot.send_message(chat_id, text, reply_markup=markup)


# ----- list, view and actions --------------------------------------------------------------------

@router.callback_query(AdminNav.filter(F.section == Section.PRODUCTS))
async def on_products(query: CallbackQuery, callback_data: AdminNav, session: AsyncSession, actor: Actor,
                      state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, *await list_view(session, community, actor.locale))


@router.callback_query(ProductList.filter())
async def on_list(query: CallbackQuery, callback_data: ProductList, session: AsyncSession, actor: Actor,
                  state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    await state.clear()
    await query.answer()
    await edit_or_send(query.message, *await list_view(session, community, actor.locale, page=callback_data.page,
                                                       archived=callback_data.archived))


async def _product(query: CallbackQuery, callback_data: ProductAction, session: AsyncSession,
                   actor: Actor) -> tuple[Community, Product] | None:
    """The community (if the actor leads it) and its product the button names; else an alert and None."""
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return None
    try:
        return community, await products.get(session, community_id=community.id, product_id=callback_data.product_id)
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        await edit_or_send(query.message, *await list_view(session, community, actor.locale))
        return None


async def _show_product(query: CallbackQuery, session: AsyncSession, community: Community, product: Product,
                        actor: Actor, notice: str | None = None) -> None:
    await session.refresh(product)
    text, markup = await product_view(session, community, product, actor.locale, now=_now())
    await edit_or_send(query.message, notice + "\n\n" + text if notice else text, markup)


async def _refused(query: CallbackQuery, session: AsyncSession, community: Community, product: Product, actor: Actor,
                   err: DomainError) -> None:
    """Say why, and redraw the product: the buttons on screen were out of date."""
    await query.answer(error_text(err, currency=community.currency), show_alert=True)
    await _show_product(query, session, community, product, actor)


@router.callback_query(ProductAction.filter(F.op == ProductOp.NEW))
async def on_new(query: CallbackQuery, callback_data: ProductAction, session: AsyncSession, actor: Actor,
                 state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    # The form's key makes Save work once, however often it is pressed.
    await state.set_data({"community_id": community.id, "currency": community.currency, "form": secrets.token_hex(8)})
    await query.answer()
    await _show_step(query, state, ProductForm.title)


@router.callback_query(ProductAction.filter(F.op == ProductOp.OPEN))
async def on_open(query: CallbackQuery, callback_data: ProductAction, session: AsyncSession, actor: Actor,
                  state: FSMContext) -> None:
    if (found := await _product(query, callback_data, session, actor)) is None:
        return
    await state.clear()
    await query.answer()
    await _show_product(query, session, *found, actor)


@router.callback_query(ProductAction.filter(F.op.in_({ProductOp.PAUSE, ProductOp.RESUME})))
async def on_pause_resume(query: CallbackQuery, callback_data: ProductAction, session: AsyncSession, actor: Actor) -> None:
    if (found := await _product(query, callback_data, session, actor)) is None:
        return
    community, product = found
    pause = callback_data.op is ProductOp.PAUSE
    try:
        await products.set_status(session, community_id=community.id, product_id=product.id, actor_id=actor.user.id,
                                  status=ProductStatus.PAUSED if pause else ProductStatus.ACTIVE, now=_now())
    except DomainError as err:
        await _refused(query, session, community, product, actor, err)
        return
    await query.answer(_("Paused.") if pause else _("On sale again."))
    await _show_product(query, session, community, product, actor)


@router.callback_query(ProductAction.filter(F.op == ProductOp.ARCHIVE))
async def on_archive(query: CallbackQuery, callback_data: ProductAction, session: AsyncSession, actor: Actor) -> None:
    if (found := await _product(query, callback_data, session, actor)) is None:
        return
    community, product = found
    await query.answer()
    if product.status == ProductStatus.ARCHIVED:
        await _show_product(query, session, community, product, actor)
    else:
        await edit_or_send(query.message, *_archive_confirmation(community, product))


@router.callback_query(ProductAction.filter(F.op == ProductOp.ARCHIVE_CONFIRM))
async def on_archive_confirmed(query: CallbackQuery, callback_data: ProductAction, session: AsyncSession,
                               actor: Actor) -> None:
    if (found := await _product(query, callback_data, session, actor)) is None:
        return
    community, product = found
    await products.set_status(session, community_id=community.id, product_id=product.id, actor_id=actor.user.id,
                              status=ProductStatus.ARCHIVED, now=_now())
    await query.answer(_("Archived."))
    await edit_or_send(query.message, *await list_view(session, community, actor.locale))


@router.callback_query(ProductAction.filter(F.op == ProductOp.POST_NOW))
async def on_post_now(query: CallbackQuery, callback_data: ProductAction, session: AsyncSession, actor: Actor,
                      ctx: BotContext) -> None:
    """Schedule the post for now and send it at once rather than on the job's next run."""
    if (found := await _product(query, callback_data, session, actor)) is None:
        return
    community, product = found
    now = _now()
    try:
        post = await posts.schedule(session, community=community, product=product, actor_id=actor.user.id, due_at=now, now=now)
    except DomainError as err:
        await _refused(query, session, community, product, actor, err)
        return
    # Answered before sending: the group's lane may have to wait for Telegram's limits.
    await query.answer()
    claims = await posts.claim_due(session, now=now, post_id=post.id)
    if not claims:  # the job claimed it first and sends it
        notice = _("✅ The card is on its way to the group.")
    elif (outcome := await publish(ctx, claims[0], now=now)).ok:
        notice = _("✅ Posted to the group.")
    else:
        notice = _("⚠️ Not posted: {reason}").format(reason=reason_text(outcome, actor.locale))
    await _show_product(query, session, community, product, actor, notice)


@router.callback_query(ProductAction.filter(F.op == ProductOp.SCHEDULE))
async def on_schedule(query: CallbackQuery, callback_data: ProductAction, session: AsyncSession, actor: Actor,
                      state: FSMContext) -> None:
    if (found := await _product(query, callback_data, session, actor)) is None:
        return
    community, product = found
    if product.status != ProductStatus.ACTIVE:
        code = "product_paused" if product.status == ProductStatus.PAUSED else "product_archived"
        await _refused(query, session, community, product, actor, DomainError(code, number=product.number))
        return
    await state.set_data({"community_id": community.id, "product_id": product.id, "number": product.number,
                          "tz": community.timezone, "local_now": local_time(_now(), community)})
    await query.answer()
    await _show_step(query, state, PostForm.time)


@router.callback_query(ProductAction.filter(F.op == ProductOp.CANCEL_POST))
async def on_cancel_post(query: CallbackQuery, callback_data: ProductAction, session: AsyncSession, actor: Actor) -> None:
    if (found := await _product(query, callback_data, session, actor)) is None:
        return
    community, product = found
    try:
        await posts.cancel(session, community_id=community.id, post_id=callback_data.post_id, actor_id=actor.user.id,
                           now=_now())
    except DomainError as err:
        await _refused(query, session, community, product, actor, err)
        return
    await query.answer(_("The post is cancelled."))
    await _show_product(query, session, community, product, actor)


def _archive_confirmation(community: Community, product: Product) -> tuple[str, InlineKeyboardMarkup]:
    cid, pid = community.id, product.id
    text = _("Archive #{number} {title}? It can no longer be bought, its cards in the group say so, and its scheduled posts are cancelled. This cannot be undone.").format(
        number=product.number, title=escape(product.title))
    rows = [[InlineKeyboardButton(text=_("Yes, archive it"),
                                  callback_data=ProductAction(community_id=cid, product_id=pid, op=ProductOp.ARCHIVE_CONFIRM).pack())],
            [InlineKeyboardButton(text=_("« Back"),
                                  callback_data=ProductAction(community_id=cid, product_id=pid, op=ProductOp.OPEN).pack())]]
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


@router.callback_query(ProductField.filter())
async def on_field(query: CallbackQuery, callback_data: ProductField, session: AsyncSession, actor: Actor,
                   state: FSMContext) -> None:
    community = await guard(query, session, actor, callback_data.community_id)
    if community is None:
        return
    try:
        product = await products.get_editable(session, community_id=community.id, product_id=callback_data.product_id)
    except DomainError as err:
        await query.answer(error_text(err), show_alert=True)
        return
    key = callback_data.field
    current = {
        ProductFieldKey.TITLE: product.title,
        ProductFieldKey.DESCRIPTION: product.description,
        ProductFieldKey.PRICE: format_money(product.price, community.currency, actor.locale),
        ProductFieldKey.STOCK: _stock(product),
        ProductFieldKey.LIMIT: str(product.per_member_limit) if product.per_member_limit else _("none"),
        ProductFieldKey.PHOTO: "",
    }[key]
    await state.set_data({"community_id": community.id, "product_id": product.id, "number": product.number,
                          "currency": community.currency, "current": current})
    await query.answer()
    await _show_step(query, state, EDIT_STEPS[key])


# ----- form buttons ------------------------------------------------------------------------------

async def _leave_form(target: Message | CallbackQuery, session: AsyncSession, actor: Actor, community: Community,
                      data: dict, notice: str, *, now: datetime) -> None:
    """Close the form and show where it started: the product, or the list for a new product."""
    product = None
    if "product_id" in data:
        try:
            product = await products.get(session, community_id=community.id, product_id=data["product_id"])
        except DomainError:
            product = None
    if product is not None:
        text, markup = await product_view(session, community, product, actor.locale, now=now)
    else:
        text, markup = await list_view(session, community, actor.locale)
    text = notice + "\n\n" + text
    await reply_in_place(target, text, markup)


@router.callback_query(ProductFormNav.filter())
async def on_form_button(query: CallbackQuery, callback_data: ProductFormNav, session: AsyncSession, actor: Actor,
                         state: FSMContext) -> None:
    current, data = await state.get_state(), await state.get_data()
    if current not in {s.state for s in ALL_STEPS} or "community_id" not in data:
        # Not redrawn: this may be the second tap of a Save whose first one is redrawing it now.
        await query.answer(_("This form is no longer open."))
        return
    if callback_data.step != step_code(current):
        await query.answer(_("That step is already behind you. Use the buttons under the latest message."), show_alert=True)
        return
    community = await guard(query, session, actor, data["community_id"])
    if community is None:
        await state.clear()
        return
    op, now = callback_data.op, _now()
    if op is ProductFormOp.CANCEL:
        await state.clear()
        await query.answer()
        await _leave_form(query, session, actor, community, data, _("Cancelled. Nothing was saved."), now=now)
    elif op is ProductFormOp.BACK:
        await query.answer()
        if current in (s.state for s in NEW_STEPS[1:]):
            previous = NEW_STEPS[[s.state for s in NEW_STEPS].index(current) - 1]
            await _show_step(query, state, previous)
        else:
            await state.clear()
            await _leave_form(query, session, actor, community, data, _("Nothing was changed."), now=now)
    elif op is ProductFormOp.SAVE and current == ProductForm.preview.state:
        await state.clear()
        draft = products.ProductDraft(title=data["title"], description=data["description"], price=data["price"],
                                      stock=data["stock"], per_member_limit=data["limit"], photo_file_id=data["photo"])
        try:
            product = await products.create(session, community=community, actor_id=actor.user.id, draft=draft, now=now,
                                            once_key=f"{community.id}:{actor.user.id}:{data['form']}")
        except DomainError as err:  # a second Save handled at the same time as the first
            await query.answer(error_text(err), show_alert=True)
            return
        await query.answer(_("Saved."))
        text, markup = await product_view(session, community, product, actor.locale, now=now)
        await edit_or_send(query.message, _("✅ Product #{number} is saved.").format(number=product.number) + "\n\n" + text, markup)
    elif op is ProductFormOp.SKIP and current in SKIP_LABELS:
        await query.answer()
        await _answer_step(query, session, actor, state, community, current, data, None, now=now)
    else:
        await query.answer()


# ----- form answers ------------------------------------------------------------------------------

async def _answer_step(target: Message | CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext,
                       community: Community, current: str, data: dict, raw: str | None, *, now: datetime) -> None:
    """Apply an answer (`raw` None: the step's Skip button; for photo steps, a file_id) and move on."""
    try:
        if current in EDIT_ATTR:
            await _apply_edit(target, session, actor, state, community, current, data, raw, now=now)
        elif current == PostForm.time.state:
            await _apply_schedule(target, session, actor, state, community, data, raw, now=now)
        else:
            await _apply_new_step(target, session, state, community, current, raw)
    except DomainError as err:
        if err.code in ("product_unknown", "product_archived", "community_inactive"):
            await state.clear()
            await _leave_form(target, session, actor, community, data, error_text(err), now=now)
            return
        await _show_step(target, state, _state_of(current), error_text(err, currency=community.currency))


def _state_of(state: str) -> State:
    return next(s for s in ALL_STEPS if s.state == state)


async def _apply_new_step(target: Message | CallbackQuery, session: AsyncSession, state: FSMContext,
                          community: Community, current: str, raw: str | None) -> None:
    if current == ProductForm.title.state:
        await state.update_data(title=products.clean_title(raw or ""))
    elif current == ProductForm.description.state:
        await state.update_data(description=products.clean_description(raw) if raw is not None else "")
    elif current == ProductForm.price.state:
        price = products.check_price(parse_money(raw or "", community.currency))
        await state.update_data(price=price, currency=community.currency)
    elif current == ProductForm.stock.state:
        await state.update_data(stock=products.parse_stock(raw) if raw is not None else None)
    elif current == ProductForm.limit.state:
        await state.update_data(limit=products.parse_limit(raw) if raw is not None else None)
    elif current == ProductForm.photo.state:
        await state.update_data(photo=raw)
        await _show_preview(target, session, state, community)
        return
    following = NEW_STEPS[[s.state for s in NEW_STEPS].index(current) + 1]
    await _show_step(target, state, following)


async def _apply_edit(target: Message | CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext,
                      community: Community, current: str, data: dict, raw: str | None, *, now: datetime) -> None:
    attr = EDIT_ATTR[current]
    if attr == "price":
        value: object = parse_money(raw or "", community.currency)
    elif attr == "stock":
        value = products.parse_stock(raw) if raw is not None else None
    elif attr == "per_member_limit":
        value = products.parse_limit(raw) if raw is not None else None
    elif attr == "photo_file_id":
        value = raw  # None (the button) removes it
    else:  # title, description: cleaned by the service; the button removes a description
        value = raw or ""
    await products.edit(session, community_id=community.id, product_id=data["product_id"], actor_id=actor.user.id,
                        now=now, **{attr: value})
    await state.clear()
    await _leave_form(target, session, actor, community, data, _("Saved."), now=now)


async def _apply_schedule(target: Message | CallbackQuery, session: AsyncSession, actor: Actor, state: FSMContext,
                          community: Community, data: dict, raw: str | None, *, now: datetime) -> None:
    due_at = posts.parse_local_time(raw or "", tz=community.timezone, now=now)
    product = await products.get(session, community_id=community.id, product_id=data["product_id"])
    post = await posts.schedule(session, community=community, product=product, actor_id=actor.user.id, due_at=due_at, now=now)
    await state.clear()
    notice = _("🕒 #{number} will be posted on {when} ({tz}). If I am offline then, it goes out when I am back, up to {grace} minutes late; later than that it is not sent and I tell you it was missed.").format(
        number=product.number, when=local_time(due_at, community), tz=community.timezone, grace=post.grace_minutes)
    await _leave_form(target, session, actor, community, data, notice, now=now)


@router.message(StateFilter(*PHOTO_STEPS), F.chat.type == "private", F.photo)
async def on_form_photo(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    community = await form_guard(message, session, actor, state)
    if community is None:
        return
    # Telegram sends every size it made; the last is the largest.
    await _answer_step(message, session, actor, state, community, await state.get_state(), await state.get_data(),
                       message.photo[-1].file_id, now=_at(message))


@router.message(StateFilter(*ALL_STEPS), F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def on_form_text(message: Message, session: AsyncSession, actor: Actor, state: FSMContext) -> None:
    current, data = await state.get_state(), await state.get_data()
    if current in PHOTO_STEPS or current == ProductForm.preview.state:
        await _ask_again(message, current, data)
        return
    community = await form_guard(message, session, actor, state)
    if community is None:
        return
    await _answer_step(message, session, actor, state, community, current, data, message.text, now=_at(message))


@router.message(StateFilter(*ALL_STEPS), F.chat.type == "private", ~F.text, SENT_BY_PERSON)
async def on_form_other(message: Message, state: FSMContext) -> None:
    await _ask_again(message, await state.get_state(), await state.get_data())


async def _ask_again(message: Message, current: str, data: dict) -> None:
    if current == ProductForm.preview.state:
        reason = _("Press Save to add the product, or Back to change it.")
    elif current in PHOTO_STEPS:
        reason = _("That is not a photo. Send the picture as a photo (not as a file).")
    else:
        reason = _("Please answer with text.")
    text, markup = prompt(current, data, reason)
    await message.answer(text, reply_markup=markup)
