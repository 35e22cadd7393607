"""What a win-back run says: the member's message with its coupon, and the leader's progress card."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from html import escape

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.core.i18n import translate
from bot.core.locales import normalize_locale, resolve_locale
from bot.core.localtime import local_time
from bot.services.campaign_config import WinbackConfig, fill
from bot.services.campaigns import Outgoing, Progress, Skip
from bot.services.money import format_money
from bot.telegram.campaign_runner import RunTexts
from bot.views.keyboards import Privacy, PrivacyAction
from models import Campaign, CampaignRun, Community, CouponKind


def offer_text(config: WinbackConfig, community: Community, locale: str) -> str:
    """"15% off (at most $5), on orders from $20" in the member's language."""
    offer = config.offer
    if offer.kind == CouponKind.PERCENT:
        text = translate("{percent}% off", locale, percent=offer.value)
        if offer.cap is not None:
            text += translate(" (at most {amount})", locale, amount=format_money(offer.cap, community.currency, locale))
    else:
        text = translate("{amount} off", locale, amount=format_money(offer.value, community.currency, locale))
    if offer.min_spend:
        text += translate(", on orders from {amount}", locale,
                          amount=format_money(offer.min_spend, community.currency, locale))
    return text


def message(outgoing: Outgoing, community: Community, config: WinbackConfig,
            default_locale: str) -> tuple[str, InlineKeyboardMarkup]:
    """The member's win-back message (HTML) and its "Stop offers" button, in their language."""
    # `outgoing.locale` may be Telegram's language code (zh-hans), not a catalog's name.
    locale = normalize_locale(outgoing.locale) or community.default_locale or default_locale
    expires = local_time(outgoing.expires_at, community, "%Y-%m-%d") if outgoing.expires_at else \
        translate("no end date", locale)
    product = outgoing.product or translate("our shop", locale)
    if config.message is not None:
        body = fill(config.message, name=outgoing.name, product=product, coupon=outgoing.coupon_code, expires=expires)
    else:
        body = translate("Hi {name}, we have missed you in {community}!", locale, name=escape(outgoing.name),
                         community=escape(community.title))
        if outgoing.product:
            body += "\n" + translate("{product} is waiting for you.", locale, product=escape(outgoing.product))
        body += "\n\n" + translate("Here is {offer}, just for you: {coupon}\nValid until {expires}. Use it at checkout.",
                                   locale, offer=escape(offer_text(config, community, locale)),
                                   coupon=f"<code>{escape(outgoing.coupon_code)}</code>", expires=escape(expires))
    return body, _stop_offers(locale)


@lru_cache(maxsize=8)
def _stop_offers(locale: str) -> InlineKeyboardMarkup:
    # The same for every member of a language: built once, not for each of a broadcast's messages.
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=translate("Stop offers", locale), callback_data=Privacy(action=PrivacyAction.STOP_OFFERS).pack())]])


def not_sent_lines(skipped: dict[str, int], config: WinbackConfig, locale: str) -> list[str]:
    # Spelled out for the catalog: the extractor reads only literal msgids.
    words = {Skip.CAPPED: translate("had a win-back within {days} days", locale, days=config.cap_days),
             Skip.UNREACHABLE: translate("cannot be messaged (never started the bot, or blocked it)", locale),
             Skip.OPTED_OUT: translate("turned promotions off", locale)}
    return [f"  · {words[reason]}: {count}" for reason, count in sorted(skipped.items()) if count and reason in words]


def progress(campaign: Campaign, run: CampaignRun, community: Community, state: Progress, locale: str, *,
             eta_seconds: float | None, paused_until: datetime | None, now: datetime) -> str:
    """The leader's card for a run, edited in place as it goes, and once more at the end."""
    config = WinbackConfig.model_validate(run.config)
    lines = [translate("<b>Win-back · {name}</b>", locale, name=escape(campaign.name)),
             translate("{drifting} drifting of {scanned} members looked at: {treatment} to message, {holdout} held "
                       "out to measure the effect.", locale, drifting=run.drifting, scanned=run.scanned,
                       treatment=state.treatment, holdout=state.holdout),
             translate("Sent: {sent} · failed: {failed} · remaining: {remaining}", locale, sent=state.sent,
                       failed=state.failed, remaining=state.remaining)]
    skipped = state.not_sent
    if skipped:
        lines.append(translate("Not sent:", locale))
        lines.extend(not_sent_lines(skipped, config, locale))
    if run.finished_at is not None or (state.remaining == 0 and paused_until is None):
        took = (run.finished_at or now) - run.started_at
        lines.append(translate("Done in {minutes} min. Results: /admin → Campaigns, once the {days}-day window has "
                               "passed.", locale, minutes=max(1, round(took.total_seconds() / 60)),
                               days=config.window_days))
    elif paused_until is not None:
        lines.append(translate("Paused for quiet hours; goes on at {time}.", locale,
                               time=local_time(paused_until, community, "%H:%M")))
    elif eta_seconds is not None:
        lines.append(translate("About {minutes} min to go.", locale, minutes=max(1, round(eta_seconds / 60))))
    return "\n".join(lines)


def run_texts(default_locale: str) -> RunTexts:
    """The words a campaign runner needs, for a bot whose fallback language is `default_locale`."""
    return RunTexts(message=lambda outgoing, community, config: message(outgoing, community, config, default_locale),
                    progress=progress,
                    locale_of=lambda user, community: resolve_locale(user, community, default_locale))
