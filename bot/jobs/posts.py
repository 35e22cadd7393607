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
from datetime import datetime
from html import escape

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.i18n import translate
from bot.core.locales import resolve_locale
from bot.core.localtime import local_time
from bot.jobs.registry import job
from bot.services import posts
from bot.telegram.context import BotContext
from bot.views.card_edits import edit_card
from bot.views.cards import render_card
from bot.views.product_posts import publish, reason_text
from models import Community, User
from models.shop import Product, ProductPost


async def _tell_scheduler(ctx: BotContext, post: ProductPost, community: Community, compose) -> None:
    """A private message to the leader who scheduled the post, in their language, if they can get one."""
    if post.created_by is None:
        return
    async with ctx.sessions() as session:
        user = await session.get(User, post.created_by)
    if user is None or not user.can_dm:
        return
    locale = resolve_locale(user, community, ctx.settings.DEFAULT_LOCALE)
    await ctx.sender.send_message(user.id, compose(locale))


async def _handle_claim(ctx: BotContext, claim: posts.Claim, now: datetime) -> str:
    post, product, community = claim.post, claim.product, claim.community
    when = local_time(post.due_at, community)
    if claim.missed:
        await _tell_scheduler(ctx, post, community, lambda locale: translate(
            "⚠️ The post of #{number} {title} scheduled for {when} ({tz}) was missed: I was offline then and came "
            "back more than {grace} minutes late, so it was not sent. Post it now or schedule it again in /admin.",
            locale, number=product.number, title=escape(product.title), when=when, tz=community.timezone,
            grace=post.grace_minutes))
        return "missed"
    outcome = await publish(ctx, claim, now=now)
    if outcome.ok:
        return "sent"
    await _tell_scheduler(ctx, post, community, lambda locale: translate(
        "⚠️ The post of #{number} {title} scheduled for {when} ({tz}) did not go out: {reason}",
        locale, number=product.number, title=escape(product.title), when=when, tz=community.timezone,
        reason=reason_text(outcome, locale)))
    return "failed"


@job("send_due_posts", "Send product posts that are due; report those found past their grace period as missed",
     trigger="interval", seconds=15)
async def send_due_posts(ctx: BotContext, now: datetime) -> str:
    async with ctx.sessions() as session:
        claims = await posts.claim_due(session, now=now)
    results = await asyncio.gather(*(_handle_claim(ctx, claim, now) for claim in claims))
    return ", ".join(f"{results.count(kind)} {kind}" for kind in ("sent", "missed", "failed"))


async def _refresh(ctx: BotContext, post: ProductPost, product: Product, community: Community) -> str:
    if not community.active:
        return "skipped"
    text, markup, with_photo = render_card(product, community, community.default_locale, ctx.bot_username,
                                           with_photo=post.with_photo)

    async def record(session: AsyncSession, drawn: str | None) -> None:
        if drawn is None:
            await posts.mark_stale(session, post_id=post.id)
        else:
            await posts.set_rendered(session, post_id=post.id, rendered=drawn)

    return await edit_card(ctx, chat_id=post.chat_id, message_id=post.message_id, text=text, markup=markup,
                           shown=post.rendered, record=record, label=f"card of post {post.id}", caption=with_photo)


@job("refresh_cards", "Edit product cards in the group whose stock or state changed, at most once per card per run",
     trigger="interval", seconds=3)
async def refresh_cards(ctx: BotContext, now: datetime) -> str:
    async with ctx.sessions() as session:
        stale = await posts.claim_stale_cards(session)
    results = await asyncio.gather(*(_refresh(ctx, post, product, community) for post, product, community in stale))
    return ", ".join(f"{results.count(kind)} {kind}" for kind in ("edited", "unchanged", "failed", "skipped"))
