"""/admin → Campaigns → a campaign: 🔍 Dry run, 🚀 Run now (after a confirmation that says how many
will be messaged) and 📈 Results, per campaign and per run, with a chart once there is a lift.

The moments these screens judge by (who is drifting, quiet hours, whether the attribution window
has closed) are the dispatcher's `clock` when tests or the demo set one, or the real time.

Run now hands the campaign to the runner (`ctx.campaigns`), which sends and keeps the leader's
progress card up to date itself. The confirmation carries the id of the newest run it saw, so a
second tap on it, or an old confirmation, starts nothing.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InaccessibleMessage,
    InlineKeyboardMarkup,
    InputMediaPhoto,
)
from aiogram.utils.i18n import gettext as _
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import campaign_history, campaigns
from bot.services.campaign_config import winback_config
from bot.telegram.context import BotContext
from bot.telegram.middlewares.actor import Actor
from bot.views.campaign_admin import CampaignAdmin, CampaignOp, dry_run_text, results_text, run_label
from bot.views.campaign_charts import draw_arms
from bot.views.stats_charts import render_async
from handlers.admin.campaigns import action, campaign_of, show, to_campaign
from handlers.group.checkin import Clock, received_at
from models import Community

router = Router(name=__name__)

CAPTION_MAX = 1024


async def _newest_run(session: AsyncSession, campaign_id: int) -> int:
    runs = await campaign_history.runs_of(session, campaign_id=campaign_id, limit=1)
    return runs[0].run_id if runs else 0


@router.callback_query(CampaignAdmin.filter(F.op == CampaignOp.DRY_RUN))
async def on_dry_run(query: CallbackQuery, callback_data: CampaignAdmin, session: AsyncSession, actor: Actor,
                     clock: Clock | None = None) -> None:
    found = await campaign_of(query, session, actor, callback_data)
    if found is None:
        return
    community, campaign = found
    await query.answer()
    now = received_at(clock)
    dry = await campaigns.dry_run(session, campaign=campaign, community=community, now=now)
    text = dry_run_text(campaign.name, dry, winback_config(campaign.config), community, actor.locale, now)
    cid, kid = community.id, campaign.id
    rows = [[action(cid, kid, _("🚀 Run now"), CampaignOp.RUN), action(cid, kid, _("🔄 Again"), CampaignOp.DRY_RUN)],
            [to_campaign(cid, kid)]]
    await show(query, text, InlineKeyboardMarkup(inline_keyboard=rows))


@router.callback_query(CampaignAdmin.filter(F.op == CampaignOp.RUN))
async def on_run(query: CallbackQuery, callback_data: CampaignAdmin, session: AsyncSession, actor: Actor,
                 clock: Clock | None = None) -> None:
    found = await campaign_of(query, session, actor, callback_data)
    if found is None:
        return
    community, campaign = found
    await query.answer()
    cid, kid = community.id, campaign.id
    if await campaign_history.sending_run(session, campaign_id=kid) is not None:
        await show(query, _("A run of this campaign is still going; its progress card shows how far it is."),
                   InlineKeyboardMarkup(inline_keyboard=[[to_campaign(cid, kid)]]))
        return
    now = received_at(clock)
    dry = await campaigns.dry_run(session, campaign=campaign, community=community, now=now)
    if not dry.plan.chosen:
        await show(query, _("Nobody would be messaged now: no member who can be reached is drifting away."),
                   InlineKeyboardMarkup(inline_keyboard=[[to_campaign(cid, kid)]]))
        return
    config = winback_config(campaign.config)
    lines = [_("Send “{name}” now? {treatment} members get a message with a personal coupon; {holdout} are held out "
               "to measure the effect.").format(name=campaign.name, treatment=dry.plan.treatment,
                                                holdout=dry.plan.holdout)]
    if dry.quiet_now:
        lines.append(_("It is quiet hours now ({start}–{end}): the messages go out when they end.").format(
            start=config.quiet_start, end=config.quiet_end))
    go = action(cid, kid, _("✅ Yes, send now"), CampaignOp.RUN_GO, item=await _newest_run(session, kid))
    await show(query, "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=[[go], [to_campaign(cid, kid)]]))


@router.callback_query(CampaignAdmin.filter(F.op == CampaignOp.RUN_GO))
async def on_run_go(query: CallbackQuery, callback_data: CampaignAdmin, session: AsyncSession, actor: Actor,
                    ctx: BotContext, clock: Clock | None = None) -> None:
    found = await campaign_of(query, session, actor, callback_data)
    if found is None:
        return
    community, campaign = found
    cid, kid = community.id, campaign.id
    back = InlineKeyboardMarkup(inline_keyboard=[[to_campaign(cid, kid)]])
    if (await _newest_run(session, kid) != callback_data.item
            or await campaign_history.sending_run(session, campaign_id=kid) is not None):
        await query.answer(_("This run has already started."))
        return
    run = await ctx.campaigns.start(campaign=campaign, community=community, now=received_at(clock),
                                    started_by=actor.user.id, clock=clock)
    if run is None:
        await query.answer(_("This run has already started."))
        return
    await query.answer(_("Started."))
    await show(query, _("Started: I am sending the messages now and keep a progress card up to date in a message of "
                        "its own. Results: 📈 Results on the campaign, once the attribution window has passed."), back)


def _results_markup(cid: int, kid: int, runs: list[campaign_history.RunSummary], community: Community,
                    run_id: int) -> InlineKeyboardMarkup:
    rows = [[action(cid, kid, run_label(r, community), CampaignOp.RESULTS, item=r.run_id)]
            for r in runs if r.run_id != run_id]
    if run_id:
        rows.append([action(cid, kid, _("📈 All runs"), CampaignOp.RESULTS)])
    rows.append([to_campaign(cid, kid)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


@router.callback_query(CampaignAdmin.filter(F.op == CampaignOp.RESULTS))
async def on_results(query: CallbackQuery, callback_data: CampaignAdmin, session: AsyncSession, actor: Actor,
                     clock: Clock | None = None) -> None:
    found = await campaign_of(query, session, actor, callback_data)
    if found is None:
        return
    community, campaign = found
    cid, kid, run_id = community.id, campaign.id, callback_data.item
    runs = await campaign_history.runs_of(session, campaign_id=kid)
    run = next((r for r in runs if r.run_id == run_id), None)
    if run_id and run is None:
        await query.answer(_("That run is not among this campaign's latest."), show_alert=True)
        return
    await query.answer()
    result = await campaigns.outcome(session, campaign=campaign, now=received_at(clock), run_id=run_id or None)
    markup = _results_markup(cid, kid, runs, community, run_id)
    if result.lift is None:
        await show(query, results_text(campaign.name, result, community, actor.locale, run=run), markup)
        return
    caption = results_text(campaign.name, result, community, actor.locale, run=run, legend=True)
    photo = BufferedInputFile(await render_async(draw_arms, result), filename=f"campaign-{kid}-{run_id}.png")
    message = query.message
    if len(caption) > CAPTION_MAX:
        await query.bot.send_photo(query.from_user.id, photo)
        await show(query, caption, markup)
        return
    if message is not None and not isinstance(message, InaccessibleMessage) and message.photo:
        try:
            await message.edit_media(InputMediaPhoto(media=photo, caption=caption), reply_markup=markup)
            return
        except TelegramBadRequest as exc:
            if "message is not modified" in exc.message:
                return
            if "message to edit not found" not in exc.message and "message can't be edited" not in exc.message:
                raise
    await query.bot.send_photo(query.from_user.id, photo, caption=caption, reply_markup=markup)

