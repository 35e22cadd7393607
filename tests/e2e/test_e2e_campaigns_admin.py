"""/admin → 📣 Campaigns against the real bot and emulator: a leader creates a win-back, changes
settings with bad then good answers, sees the message preview, dry-runs it on a small community
whose members' rhythm is set, runs it (members get their coupon and a Stop offers button), and the
results say there is not enough data yet. Presses forged by a member change nothing."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from html import unescape

from e2e_harness import E2E, Group, en, zh
from sqlalchemy import func
from sqlmodel import col, select

from bot.sandbox import SimMessage, SimUser
from bot.services.campaign_config import winback_config
from bot.services.lift import lift
from bot.views.campaign_admin import SAMPLE_CODE, CampaignAdmin, CampaignOp, CampaignOption
from models import ActivityDay, Coupon, Member, User
from models.campaign import Arm, Campaign, CampaignRun, CampaignSend, RunStatus, SendStatus

_TAG = re.compile(r"<[^>]+>")
NOT_LEADER = "Only this community's leaders can do that."
PLACEHOLDERS = "{name} {product} {coupon} {expires}"


def see(msgid: str, **kwargs: object) -> str:
    """A message as the emulator shows it: tags stripped, entities decoded."""
    return unescape(_TAG.sub("", en(msgid, **kwargs)))


def message_with(e2e: E2E, user: SimUser, label: str) -> SimMessage:
    """The newest bot message in the user's chat with this button (a progress card may come after it)."""
    for msg in reversed(e2e.emu.bot_messages(user)):
        if any(label in row for row in msg.buttons):
            return msg
    raise AssertionError(f"no message with {label!r} for {user.first_name}")


async def refused(e2e: E2E, user: SimUser, text: str, reason: str, *, again: bool = False) -> None:
    """A refused answer: the reason above the same question, with the same buttons; the form stays open.
    `again`: the question on screen already has an earlier refusal above it."""
    before = e2e.last_msg(user)
    state = await e2e.fsm_state(user)
    await e2e.say(user, text)
    question = before.visible.split("\n\n", 1)[1] if again else before.visible
    assert e2e.last(user) == reason + "\n\n" + question
    assert e2e.last_msg(user).buttons == before.buttons
    assert await e2e.fsm_state(user) == state


async def drifting(e2e: E2E, group: Group, today: date) -> None:
    """Every member joined 200 days ago, was active on 20 days and last 40 days ago."""
    async with e2e.db() as s:
        for member in (await s.exec(select(Member).where(Member.community_id == group.community_id,
                                                         col(Member.user_id).in_([m.id for m in group.members])))):
            member.joined_at = datetime.now(timezone.utc) - timedelta(days=200)
            member.first_active_on, member.last_active_on = today - timedelta(days=200), today - timedelta(days=40)
            member.active_days = 20
            s.add(member)
        await s.commit()


def quiet_hours_away(now: datetime) -> tuple[str, str]:
    """An hour of quiet far from now and from the 10:00 run time."""
    start = (now.hour + 12) % 24
    if start == 10:
        start = (now.hour + 13) % 24
    return f"{start:02d}:00", f"{(start + 1) % 24:02d}:00"


async def test_a_leader_sets_up_dry_runs_and_runs_a_winback(e2e: E2E) -> None:
    group = await e2e.make_group(members=4)
    alice, cid = group.leader, group.community_id
    bob, carol, dan, eve = group.members
    for person in (bob, carol, dan):  # Eve never starts the bot: she cannot be messaged
        await e2e.say(person, "/start")
    now = datetime.now(timezone.utc)
    await drifting(e2e, group, now.date())

    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("📣 Campaigns"))
    assert e2e.last(alice).endswith(en("No campaigns yet."))
    await e2e.press(alice, en("➕ New win-back"))
    async with e2e.db() as s:
        [campaign] = (await s.exec(select(Campaign).where(Campaign.community_id == cid))).all()
    kid = campaign.id
    assert (campaign.name, campaign.enabled) == (en("Win-back {n}", n=1), False)
    screen = e2e.last(alice)
    assert screen.startswith(see("<b>📣 {name}</b>", name="Win-back 1") + "\n" + en("Status: {state}", state="off"))
    assert en("Audience: {audience}", audience=en("members who bought before")) in screen
    assert en("Risk rule: {rule}", rule=en("personal: each member against their own rhythm")) in screen
    assert see("Preview for {name}:", name=en("Anna")) in screen
    assert en("Offer: {terms}", terms="15% off · no minimum spend · valid 7 days") in screen

    # The audience toggles at a press; a double tap on the same button sets it once.
    label = en("👥 Audience: {value}", value=en("buyers"))
    assert e2e.answer(await e2e.press(alice, label)).text == en("Saved.")
    assert [en("👥 Audience: {value}", value=en("any active")), en("🎯 Risk rule: {value}", value=en("personal"))] \
        in e2e.last_msg(alice).buttons
    await e2e.press_data(alice, CampaignAdmin(community_id=cid, op=CampaignOp.SET, campaign_id=kid,
                                              option=CampaignOption.AUDIENCE, item=1).pack())
    assert winback_config((await campaign_row(e2e, kid)).config).audience == "active"
    assert len(await e2e.audit(cid, "campaign.audience")) == 1

    # The risk rule: a number of days out of range, then a good one.
    await e2e.press(alice, en("🎯 Risk rule: {value}", value=en("personal")))
    assert await e2e.fsm_state(alice) == "CampaignForm:fixed_days"
    await refused(e2e, alice, "2", en("“{value}” is not allowed. Send a whole number from {min} to {max}.",
                                      value="2", min=3, max=365))
    await e2e.say(alice, "30")
    assert e2e.last(alice).startswith(en("Saved."))
    config = winback_config((await campaign_row(e2e, kid)).config)
    assert (config.rule, config.fixed_days) == ("fixed", 30)

    # Holdout: over the limit, then none (four members are too few to hold anyone out here).
    await e2e.press(alice, en("⚖️ Holdout: {percent}%", percent=10))
    await refused(e2e, alice, "60", en("“{value}” is not allowed. Send a whole number from {min} to {max}.",
                                       value="60", min=0, max=50))
    await e2e.say(alice, "0")

    # Quiet hours: not a range; a range that would swallow the 10:00 run; then one far from now.
    await e2e.press(alice, en("🌙 Quiet {start}–{end}", start="21:00", end="09:00"))
    await refused(e2e, alice, "25:00-08:00", en(
        "“{value}” is not a range of hours. Send the start and the end, for example 21:00-09:00.", value="25:00-08:00"))
    await refused(e2e, alice, "09:00-11:00", en(
        "The run time {time} would fall in the quiet hours {start}–{end}: nothing could be sent. Choose a time "
        "outside them.", time="10:00", start="09:00", end="11:00"), again=True)
    start, end = quiet_hours_away(now)
    await e2e.say(alice, f"{start}-{end}")
    config = winback_config((await campaign_row(e2e, kid)).config)
    assert (config.quiet_start, config.quiet_end) == (start, end)

    # The message: an unknown placeholder, then a good text; the preview shows it for a sample member.
    await e2e.press(alice, en("✉️ Message"))
    await refused(e2e, alice, "Hi {nam}!", en("{placeholder} is not a placeholder I know. Use only {placeholders}.",
                                                placeholder="{nam}", placeholders=PLACEHOLDERS))
    await e2e.say(alice, "Hi {name}! Your code {coupon} is good until {expires}.")
    expires = (datetime.now(timezone.utc) + timedelta(days=7)).strftime("%Y-%m-%d")
    assert (see("Preview for {name}:", name=en("Anna")) + f"\nHi {en('Anna')}! Your code {SAMPLE_CODE} is good until "
            f"{expires}.") in e2e.last(alice)

    # The dry run: three to message, Eve unreachable, the risk bands and three samples.
    await e2e.press(alice, en("🔍 Dry run"))
    dry = e2e.last(alice)
    assert en("If it ran now: {treatment} members get a message, {holdout} are held out to measure the effect.",
              treatment=3, holdout=0) in dry
    assert en("cannot be messaged (never started the bot, or blocked it)") + ": 1" in dry
    assert "0.9–1.0 ██████████ 4" in dry
    samples = [line for line in dry.splitlines() if line.startswith("• ")]
    assert len(samples) == 3
    assert "• " + en("{name}: silent {days} days, the rule is {gap} (risk {risk})", name="Bob", days=40, gap=30,
                     risk="1.00") + ", " + en("orders: {n}", n=0) in samples
    assert "Hi Bob! Your code" in dry  # the preview is for the first sample

    # Run now: a confirmation that says how many, then the runner sends.
    await e2e.press(alice, en("🚀 Run now"))
    assert e2e.last(alice).startswith(en(
        "Send “{name}” now? {treatment} members get a message with a personal coupon; {holdout} are held out to "
        "measure the effect.", name="Win-back 1", treatment=3, holdout=0))
    assert e2e.answer(await e2e.press(alice, en("✅ Yes, send now"))).text == en("Started.")
    async with e2e.db() as s:
        [run] = (await s.exec(select(CampaignRun).where(CampaignRun.campaign_id == kid))).all()
    await e2e.app.campaigns.wait(run.id)
    await e2e.settle()
    # A second tap on the confirmation starts nothing.
    again = CampaignAdmin(community_id=cid, op=CampaignOp.RUN_GO, campaign_id=kid, item=0).pack()
    assert e2e.answer(await e2e.press_data(alice, again)).text == en("This run has already started.")
    async with e2e.db() as s:
        assert (await s.exec(select(func.count()).select_from(CampaignRun))).one() == 1
        codes = {c.owner_id: c.code for c in (await s.exec(select(Coupon).where(Coupon.source == "winback")))}
    assert set(codes) == {bob.id, carol.id, dan.id}
    for person in (bob, carol, dan):
        msg = e2e.last_msg(person)
        assert msg.visible.startswith(f"Hi {person.first_name}! Your code {codes[person.id]} is good until ")
        assert msg.buttons == [[en("Stop offers")]]
    assert e2e.last_msg(eve) is None
    # The runner's progress card, edited in place, ends with everything sent.
    assert any(en("Sent: {sent} · failed: {failed} · remaining: {remaining}", sent=3, failed=0, remaining=0) in text
               for text in e2e.bot_texts(alice))

    # Results: the window is still open.
    await e2e.press(alice, en("« Back"), message=message_with(e2e, alice, en("« Back")))
    await e2e.press(alice, en("📈 Results"), message=message_with(e2e, alice, en("📈 Results")))
    async with e2e.db() as s:
        window_ends = (await s.exec(select(func.max(CampaignSend.window_ends_at)))).one()
    results = message_with(e2e, alice, en("« Back")).visible
    assert results.startswith(see("<b>📈 Results · {name}</b>", name="Win-back 1"))
    assert en("Messaged: {n} members, {returned} came back ({rate})", n=3, returned=0, rate="0.0%") in results
    assert en("Not enough data yet: the attribution window closes on {date}.",
              date=window_ends.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")) in results
    assert en("Messages sent: {sent} · coupons redeemed: {redeemed}", sent=3, redeemed=0) in results


async def campaign_row(e2e: E2E, campaign_id: int) -> Campaign:
    async with e2e.db() as s:
        return await s.get(Campaign, campaign_id)


async def test_forged_presses_by_a_member_change_nothing(e2e: E2E, group: Group) -> None:
    alice, bob, cid = group.leader, group.members[0], group.community_id
    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("📣 Campaigns"))
    await e2e.press(alice, en("➕ New win-back"))
    async with e2e.db() as s:
        [campaign] = (await s.exec(select(Campaign).where(Campaign.community_id == cid))).all()
    before, audit_before = campaign.model_dump(), [a.id for a in await e2e.audit(cid)]
    await e2e.say(bob, "/start")
    forged = [CampaignAdmin(community_id=cid, op=op, campaign_id=campaign.id, option=option, item=item).pack()
              for op, option, item in ((CampaignOp.LIST, None, 0), (CampaignOp.NEW, None, 1),
                                       (CampaignOp.OPEN, None, 0), (CampaignOp.SET, CampaignOption.ENABLED, 1),
                                       (CampaignOp.SET, CampaignOption.AUDIENCE, 1),
                                       (CampaignOp.SET, CampaignOption.MESSAGE, 0), (CampaignOp.DRY_RUN, None, 0),
                                       (CampaignOp.RUN, None, 0), (CampaignOp.RUN_GO, None, 0),
                                       (CampaignOp.RESULTS, None, 0))]
    for data in [f"an:{cid}:cmp", *forged]:
        answer = e2e.answer(await e2e.press_data(bob, data))
        assert (answer.text, answer.show_alert) == (en(NOT_LEADER), True), data
        assert await e2e.fsm_state(bob) is None, data
    answer = e2e.answer(await e2e.press_data(bob, "cmf:d:message"))
    assert answer.text == en("This form is no longer open.")
    assert (await campaign_row(e2e, campaign.id)).model_dump() == before
    assert [a.id for a in await e2e.audit(cid)] == audit_before
    async with e2e.db() as s:
        assert (await s.exec(select(func.count()).select_from(CampaignRun))).one() == 0


async def test_a_leader_cannot_reach_another_communitys_campaign(e2e: E2E, group: Group) -> None:
    campaign = await new_campaign(e2e, group)
    zoe = e2e.emu.add_user("Zoe", username="zoe_elsewhere")
    other = await e2e.make_group("Hill Side", leader=zoe, members=[])
    await e2e.say(zoe, "/admin")
    # Her own community's id with the other community's campaign: not found there, nothing changes.
    for op, option, item in ((CampaignOp.OPEN, None, 0), (CampaignOp.SET, CampaignOption.ENABLED, 1),
                             (CampaignOp.RUN_GO, None, 0), (CampaignOp.RESULTS, None, 0)):
        data = CampaignAdmin(community_id=other.community_id, op=op, campaign_id=campaign.id, option=option,
                             item=item).pack()
        answer = e2e.answer(await e2e.press_data(zoe, data))
        assert (answer.text, answer.show_alert) == (en("That campaign no longer exists."), True), op
    assert not (await campaign_row(e2e, campaign.id)).enabled
    async with e2e.db() as s:
        assert (await s.exec(select(func.count()).select_from(CampaignRun))).one() == 0


async def new_campaign(e2e: E2E, group: Group) -> Campaign:
    await e2e.say(group.leader, "/admin")
    await e2e.press(group.leader, en("📣 Campaigns"))
    await e2e.press(group.leader, en("➕ New win-back"))
    async with e2e.db() as s:
        [campaign] = (await s.exec(select(Campaign).where(Campaign.community_id == group.community_id))).all()
    return campaign


async def test_offer_name_and_switches(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    kid = (await new_campaign(e2e, group)).id
    nav = [en("« Back"), en("✖ Cancel")]

    # The offer: the coupon-terms steps; a fixed amount skips the cap.
    await e2e.press(alice, en("🎟 Offer"))
    assert e2e.last_msg(alice).buttons == [[en("Fixed amount"), en("Percent")], nav]
    await e2e.press(alice, en("Fixed amount"))
    await refused(e2e, alice, "abc", en("“{value}” is not an amount. Send a number such as 12.5 or 12,50.", value="abc"))
    await e2e.say(alice, "5")
    assert await e2e.fsm_state(alice) == "CampaignForm:min_spend"
    await e2e.press(alice, en("Skip"))
    await refused(e2e, alice, "0", en("“{value}” is not allowed. Send a whole number from {min} to {max}.",
                                      value="0", min=1, max=3650))
    await e2e.say(alice, "10")
    assert e2e.last_msg(alice).buttons == [[en("💾 Save")], nav]
    await e2e.press(alice, en("💾 Save"))
    offer = winback_config((await campaign_row(e2e, kid)).config).offer
    assert (offer.kind, offer.value, offer.cap, offer.min_spend, offer.valid_days) == ("fixed", 500, None, 0, 10)
    assert e2e.last(alice).startswith(en("Saved."))
    assert "$5.00 off" in e2e.last(alice)  # the preview's default text names the new offer

    # Rename: too long, then a good name.
    await e2e.press(alice, en("✏️ Rename"))
    await refused(e2e, alice, "x" * 65, en("The name must be 1 to {max} characters.", max=64))
    await e2e.say(alice, "  Spring   back ")
    assert (await campaign_row(e2e, kid)).name == "Spring back"
    assert e2e.last(alice).startswith(en("Saved.") + "\n\n" + see("<b>📣 {name}</b>", name="Spring back"))

    # Back from a form changes nothing; Cancel closes it.
    await e2e.press(alice, en("🕙 Daily at {time}", time="10:00"))
    await refused(e2e, alice, "25:61", en("“{value}” is not a time. Send HH:MM, for example 10:00.", value="25:61"))
    await e2e.press(alice, en("« Back"))
    assert await e2e.fsm_state(alice) is None
    assert winback_config((await campaign_row(e2e, kid)).config).send_time == "10:00"

    # On and off, and renewed activity, at a press.
    await e2e.press(alice, en("🟢 Turn on"))
    assert (await campaign_row(e2e, kid)).enabled
    assert [en("✏️ Rename"), en("⏸ Turn off")] in e2e.last_msg(alice).buttons
    await e2e.press(alice, en("💬 Activity counts: {state}", state=en("off")))
    assert winback_config((await campaign_row(e2e, kid)).config).count_activity
    assert [a.action for a in await e2e.audit(cid)][-2:] == ["campaign.enable", "campaign.count_activity"]
    await e2e.press(alice, en("« Back"))
    assert see("• {name}: {state} · last run: {when}", name="Spring back", state=en("on"), when=en("not yet")) in \
        e2e.last(alice)


async def test_results_show_the_lift_with_a_chart(e2e: E2E, group: Group) -> None:
    """A run whose window has closed, 40 messaged (16 came back) and 30 held out (3 came back)."""
    alice, cid = group.leader, group.community_id
    campaign = await new_campaign(e2e, group)
    started = datetime.now(timezone.utc) - timedelta(days=20)
    config = winback_config(campaign.config).model_copy(update={"count_activity": True}).model_dump(mode="json")
    async with e2e.db() as s:
        run = CampaignRun(campaign_id=campaign.id, community_id=cid, status=RunStatus.DONE, started_by=alice.id,
                          config=config, started_at=started, finished_at=started)
        s.add(run)
        await s.flush()
        for i in range(70):
            arm = Arm.TREATMENT if i < 40 else Arm.HOLDOUT
            s.add(User(id=5_000_000 + i, first_name=f"M{i}", can_dm=True))
            await s.flush()
            s.add(CampaignSend(run_id=run.id, campaign_id=campaign.id, community_id=cid, user_id=5_000_000 + i,
                               arm=arm, risk=0.95, status=SendStatus.SENT if arm is Arm.TREATMENT else SendStatus.HELD,
                               assigned_at=started, window_ends_at=started + timedelta(days=14)))
            if i < 16 or 40 <= i < 43:
                back = started + timedelta(days=3)
                s.add(ActivityDay(community_id=cid, user_id=5_000_000 + i, day=back.date(), messages=1,
                                  first_at=back, last_at=back))
        await s.commit()
    await e2e.press(alice, en("📈 Results"))
    photo = e2e.last_msg(alice)
    assert photo.photo
    caption = photo.visible
    assert caption.startswith(see("<b>📈 Results · {name}</b>", name="Win-back 1"))
    assert en("Messaged: {n} members, {returned} came back ({rate})", n=40, returned=16, rate="40.0%") in caption
    assert en("Held out: {n} members, {returned} came back ({rate})", n=30, returned=3, rate="10.0%") in caption
    interval = lift(16, 40, 3, 30).interval
    assert en("Lift: {absolute} percentage points (95% interval {low} to {high})", absolute="+30.0",
              low=f"{interval.low * 100:+.1f}", high=f"{interval.high * 100:+.1f}") in caption
    assert en("Relative lift: {relative}", relative="+300%") in caption
    assert photo.buttons[-1] == [en("« Back")]
    # The run's own results replace the picture in place.
    day = started.strftime("%Y-%m-%d")
    assert photo.buttons[0] == [en("{date}: {sent} sent, {holdout} held out", date=day, sent=40, holdout=30)]
    await e2e.press(alice, photo.buttons[0][0])
    assert e2e.last_msg(alice).message_id == photo.message_id
    assert e2e.last(alice).startswith(see("<b>📈 Results · {name} · run of {date}</b>", name="Win-back 1", date=day))
    assert e2e.last_msg(alice).buttons == [[en("📈 All runs")], [en("« Back")]]
    # Back to the campaign: a text screen of its own under the chart.
    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice).startswith(see("<b>📣 {name}</b>", name="Win-back 1"))


async def test_a_chinese_leader_reads_the_campaign_screens_in_chinese(e2e: E2E) -> None:
    mei = e2e.emu.add_user("梅", username="mei_leads", language_code="zh-hans")
    await e2e.make_group("青山", leader=mei)
    await e2e.say(mei, "/admin")
    await e2e.press(mei, zh("📣 Campaigns"))
    await e2e.press(mei, zh("➕ New win-back"))
    screen = e2e.last(mei)
    assert screen.startswith(unescape(_TAG.sub("", zh("<b>📣 {name}</b>", name=zh("Win-back {n}", n=1)))))
    assert zh("Audience: {audience}", audience=zh("members who bought before")) in screen
    assert zh("Preview for {name}:", name=zh("Anna")) in screen
    await e2e.press(mei, zh("⚖️ Holdout: {percent}%", percent=10))
    await refused(e2e, mei, "九十", zh("“{value}” is not allowed. Send a whole number from {min} to {max}.",
                                      value="九十", min=0, max=50))
    await e2e.press(mei, zh("« Back"))
    await e2e.press(mei, zh("🔍 Dry run"))
    assert e2e.last(mei).startswith(unescape(_TAG.sub("", zh("<b>🔍 Dry run · {name}</b>",
                                                             name=zh("Win-back {n}", n=1)))))
    assert zh("If it ran now: {treatment} members get a message, {holdout} are held out to measure the effect.",
              treatment=0, holdout=0) in e2e.last(mei)
