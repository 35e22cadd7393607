"""Jobs that put product cards into the group and keep them current.

`send_due_posts` sends what is due. A post is claimed in the database before it is sent, so a
second run, a second worker or a restart never sends it again; one found past its grace period
is reported to the leader who scheduled it instead of surprising the group hours late.

`refresh_cards` edits cards whose product changed. It runs every few seconds and edits each card
at most once per run, whatever happened in between: that is the coalescing. It compares with
what the card shows and only edits when that differs, so Telegram never answers "message is not
modified".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.card_edits import edit_card
from bot.cards import fingerprint, render_card
from bot.i18n import translate
from bot.jobs import job
from bot.middlewares.actor import resolve_locale
from bot.services import posts
from models import Community, User
from models.shop import Product, ProductPost, ProductStatus

if TYPE_CHECKING:
    from bot.app import App


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a post ended. `reason`: 'paused', 'archived', 'inactive', or Telegram's description."""

    ok: bool
    reason: str | None = None


def reason_text(outcome: Outcome, locale: str) -> str:
    """Why a post did not go out, for the leader."""
    match outcome.reason:
        case "paused":
            return translate("the product is paused.", locale)
        case "archived":
            return translate("the product is archived.", locale)
        case "inactive":
            return translate("I am not in the group any more.", locale)
        case _:
            return translate("Telegram refused it ({detail}).", locale, detail=escape(outcome.reason or "?"))


def local_time(moment: datetime, community: Community) -> str:
    return moment.astimezone(ZoneInfo(community.timezone)).strftime("%Y-%m-%d %H:%M")


async def publish(app: App, claim: posts.Claim, *, now: datetime) -> Outcome:
    """Send a claimed post's card to the group and record how it went."""
    post, product, community = claim.post, claim.product, claim.community
    refusal = ("archived" if product.status == ProductStatus.ARCHIVED else "paused" if product.status == ProductStatus.PAUSED
               else "inactive" if not community.active else None)
    if refusal is None:
        text, markup, with_photo = render_card(product, community, community.default_locale, app.bot_username)
        if with_photo:
            delivery = await app.sender.send_photo(community.chat_id, product.photo_file_id, caption=text, reply_markup=markup)
        else:
            delivery = await app.sender.send_message(community.chat_id, text, reply_markup=markup)
        if delivery.ok and delivery.message is not None:
            shown = fingerprint(text, markup)
            async with app.sessions() as session:
                await posts.mark_posted(session, post=post, chat_id=delivery.message.chat.id,
                                        message_id=delivery.message.message_id, with_photo=with_photo,
                                        rendered=shown, now=now)
                # Stock may have moved while the card was on its way (a card being sent is not marked
                # stale by the change): hand it to the card updater if it shows old numbers already.
                current = await session.get(Product, product.id)
                if fingerprint(*render_card(current, community, community.default_locale, app.bot_username,
                                            with_photo=with_photo)[:2]) != shown:
                    await posts.mark_stale(session, post_id=post.id)
            return Outcome(ok=True)
        refusal = delivery.description or delivery.error
    async with app.sessions() as session:
        await posts.mark_failed(session, post=post)
    return Outcome(ok=False, reason=refusal)


async def _tell_scheduler(app: App, post: ProductPost, community: Community, compose) -> None:
    """A private message to the leader who scheduled the post, in their language, if they can get one."""
    if post.created_by is None:
        return
    async with app.sessions() as session:
        user = await session.get(User, post.created_by)
    if user is None or not user.can_dm:
        return
    locale = resolve_locale(user, community, app.settings.DEFAULT_LOCALE)
    await app.sender.send_message(user.id, compose(locale))


async def _handle_claim(app: App, claim: posts.Claim, now: datetime) -> str:
    post, product, community = claim.post, claim.product, claim.community
    when = local_time(post.due_at, community)
    if claim.missed:
        await _tell_scheduler(app, post, community, lambda locale: translate(
            "⚠️ The post of #{number} {title} scheduled for {when} ({tz}) was missed: I was offline then and came "
            "back more than {grace} minutes late, so it was not sent. Post it now or schedule it again in /admin.",
            locale, number=product.number, title=escape(product.title), when=when, tz=community.timezone,
            grace=post.grace_minutes))
        return "missed"
    outcome = await publish(app, claim, now=now)
    if outcome.ok:
        return "sent"
    await _tell_scheduler(app, post, community, lambda locale: translate(
        "⚠️ The post of #{number} {title} scheduled for {when} ({tz}) did not go out: {reason}",
        locale, number=product.number, title=escape(product.title), when=when, tz=community.timezone,
        reason=reason_text(outcome, locale)))
    return "failed"


@job("send_due_posts", "Send product posts that are due; report those found past their grace period as missed",
     trigger="interval", seconds=15)
async def send_due_posts(app: App, now: datetime) -> str:
    async with app.sessions() as session:
        claims = await posts.claim_due(session, now=now)
    results = await asyncio.gather(*(_handle_claim(app, claim, now) for claim in claims))
    return ", ".join(f"{results.count(kind)} {kind}" for kind in ("sent", "missed", "failed"))


async def _refresh(app: App, post: ProductPost, product: Product, community: Community) -> str:
    if not community.active:
        return "skipped"
    text, markup, with_photo = render_card(product, community, community.default_locale, app.bot_username,
                                           with_photo=post.with_photo)

    async def record(session: AsyncSession, drawn: str | None) -> None:
        if drawn is None:
            await posts.mark_stale(session, post_id=post.id)
        else:
            await posts.set_rendered(session, post_id=post.id, rendered=drawn)

    return await edit_card(app, chat_id=post.chat_id, message_id=post.message_id, text=text, markup=markup,
                           shown=post.rendered, record=record, label=f"card of post {post.id}", caption=with_photo)


@job("refresh_cards", "Edit product cards in the group whose stock or state changed, at most once per card per run",
     trigger="interval", seconds=3)
async def refresh_cards(app: App, now: datetime) -> str:
    async with app.sessions() as session:
        stale = await posts.claim_stale_cards(session)
    results = await asyncio.gather(*(_refresh(app, post, product, community) for post, product, community in stale))
    return ", ".join(f"{results.count(kind)} {kind}" for kind in ("edited", "unchanged", "failed", "skipped"))
