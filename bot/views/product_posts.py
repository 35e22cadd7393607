"""Sending a product's card into its group: for a post that fell due (the posts job) and for a
leader's "post now" (the products menu) alike, and telling the leader why one did not go out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

from bot.core.i18n import translate
from bot.services import posts
from bot.telegram.context import BotContext
from bot.views.cards import fingerprint, render_card
from models.shop import Product, ProductStatus


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


async def publish(ctx: BotContext, claim: posts.Claim, *, now: datetime) -> Outcome:
    """Send a claimed post's card to the group and record how it went."""
    post, product, community = claim.post, claim.product, claim.community
    refusal = ("archived" if product.status == ProductStatus.ARCHIVED else "paused" if product.status == ProductStatus.PAUSED
               else "inactive" if not community.active else None)
    if refusal is None:
        text, markup, with_photo = render_card(product, community, community.default_locale, ctx.bot_username)
        # Not durable (bot/telegram/outbox.py): the card's message id must be recorded from this
        # Delivery, which a replay from the outbox could not do (a card nobody keeps current); a post
        # cut off mid-send is found stuck by the job and never sent twice.
        if with_photo:
            delivery = await ctx.sender.send_photo(community.chat_id, product.photo_file_id, caption=text, reply_markup=markup)
        else:
            delivery = await ctx.sender.send_message(community.chat_id, text, reply_markup=markup)
        if delivery.ok and delivery.message is not None:
            shown = fingerprint(text, markup)
            async with ctx.sessions() as session:
                await posts.mark_posted(session, post=post, chat_id=delivery.message.chat.id,
                                        message_id=delivery.message.message_id, with_photo=with_photo,
                                        rendered=shown, now=now)
                # Stock may have moved while the card was on its way (a card being sent is not marked
                # stale by the change): hand it to the card updater if it shows old numbers already.
                current = await session.get(Product, product.id)
                if fingerprint(*render_card(current, community, community.default_locale, ctx.bot_username,
                                            with_photo=with_photo)[:2]) != shown:
                    await posts.mark_stale(session, post_id=post.id)
            return Outcome(ok=True)
        refusal = delivery.description or delivery.error
    async with ctx.sessions() as session:
        await posts.mark_failed(session, post=post)
    return Outcome(ok=False, reason=refusal)
