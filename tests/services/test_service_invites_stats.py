"""bot.services.invite_stats and invite_privacy on a real database: a member's counts (regular, left,
fake, bonus, pending), the leaderboard, the downline by level, totals and the K-factor, the CSV
export, /mydata, and /forgetme removing the person from every list while the counts stay."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from invite_builders import arrive, depart, link_of, make_group, referral_of, seat
from sqlmodel import select

from bot.services import invite_links, invite_privacy, invite_rewards, invite_stats, invites, users
from models import InviteCode, InviteLink, Via

A, B, C, D, E, F, G = 501, 502, 503, 504, 505, 506, 507
DAY = timedelta(days=1)


async def build(session, t0):
    """A invites B, C, D, E, F (C leaves early, D is a bot, F leaves after its reward); B invites G."""
    g = await make_group(session, now=t0, level2={"points": 3})
    await seat(session, g, A, now=t0)
    la = await link_of(session, g, A, now=t0)
    for uid in (B, C, E, F):
        await arrive(session, g, uid, now=t0, link=la)
    await arrive(session, g, D, now=t0, link=la, is_bot=True)
    await arrive(session, g, G, now=t0 + 5 * DAY, link=await link_of(session, g, B, now=t0))
    await depart(session, g, C, now=t0 + DAY)
    await invite_rewards.qualify_due(session, community=g, as_of=t0 + 3 * DAY)
    await depart(session, g, F, now=t0 + 4 * DAY)
    return g


async def test_counts_as_the_trackers_show_them(session, t0):
    g = await build(session, t0)
    counts = await invite_stats.counts_for(session, community_id=g.id, user_id=A)
    assert counts == invite_stats.InviteCounts(regular=3, left=2, fake=1, bonus=0, pending=0)
    assert counts.total == 3
    await invite_rewards.qualify_due(session, community=g, as_of=t0 + 8 * DAY)  # G qualifies: A's bonus
    assert await invite_stats.counts_for(session, community_id=g.id, user_id=A) == invite_stats.InviteCounts(
        regular=3, left=2, fake=1, bonus=1, pending=0)
    assert await invite_stats.counts_for(session, community_id=g.id, user_id=B) == invite_stats.InviteCounts(
        regular=1, left=0, fake=0, bonus=0, pending=0)
    assert await invite_stats.counts_for(session, community_id=g.id, user_id=G) == invite_stats.InviteCounts(
        0, 0, 0, 0, 0)


async def test_the_leaderboard_and_the_downline(session, t0):
    g = await build(session, t0)
    await invite_rewards.qualify_due(session, community=g, as_of=t0 + 8 * DAY)
    top = await invite_stats.top_inviters(session, community_id=g.id)
    assert [(s.rank, s.user.id, s.invites) for s in top] == [(1, A, 3), (2, B, 1)]
    recent = await invite_stats.top_inviters(session, community_id=g.id, since=t0 + DAY)
    assert [(s.user.id, s.invites) for s in recent] == [(B, 1)]
    levels = await invite_stats.downline(session, community_id=g.id, user_id=A, max_depth=5, per_level=3)
    assert [(lv.level, lv.count) for lv in levels] == [(1, 5), (2, 1)]
    assert len(levels[0].people) == 3
    assert [(p.user.id, p.state) for p in levels[1].people] == [(G, "rewarded")]
    assert {p.user.id: p.left for p in (await invite_stats.downline(
        session, community_id=g.id, user_id=A, per_level=10))[0].people} == {B: False, C: True, D: False, E: False,
                                                                                F: True}
    totals = await invite_stats.totals(session, community_id=g.id)
    assert totals.by_state == {"rewarded": 4, "left": 1, "flagged": 1}
    assert totals.by_via == {Via.MEMBER_LINK: 6}
    assert (totals.inviters, totals.members, totals.qualified) == (2, 4, 4)  # A, B, E, G are present
    assert totals.k_factor == 1.0


async def test_the_csv_export(session, t0):
    g = await build(session, t0)
    rows = [row async for row in invite_stats.export_rows(session, community_id=g.id, batch=2)]
    assert [(r.invitee_id, r.inviter_id, r.state) for r in rows] == [
        (B, A, "rewarded"), (C, A, "left"), (E, A, "rewarded"), (F, A, "rewarded"), (D, A, "flagged"), (G, B, "pending")]
    data = invite_stats.to_csv(rows, tz="Asia/Shanghai", header=["joined", "id", "who", "by id", "by", "via", "state",
                                                                 "depth", "flags", "qualified", "rewarded", "left"],
                               erased_name="(erased)", label=lambda value: value.upper())
    assert data.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[2] == ["2025-03-01 20:00", str(C), f"U{C}", str(A), f"U{A}", "MEMBER_LINK", "LEFT", "1",
                        "LEFT_WITHIN_72H", "", "", "2025-03-02 20:00"]


async def test_forgetme_removes_the_person_from_every_list_and_keeps_the_counts(session, fresh, t0):
    g = await build(session, t0)
    before = await invite_stats.totals(session, community_id=g.id)
    links = await invite_privacy.live_links_of(session, user_id=A)
    assert [url for _, url in links] == [f"https://t.me/+L{A}x{g.id}"] and links[0][0] == g.chat_id
    await invite_links.code_for(session, community_id=g.id, user_id=A, now=t0)
    await session.commit()
    mine = await users.export_data(session, user_id=B)
    assert mine["invites"][0]["joined_via"]["invited_by"] == A
    assert mine["invites"][0]["people_invited_by_state"] == {"pending": 1}
    assert mine["invites"][0]["invite_links"][0]["url"] == f"https://t.me/+L{B}x{g.id}"

    await users.forget(session, user_id=A, now=t0 + 6 * DAY)
    await users.forget(session, user_id=G, now=t0 + 6 * DAY)
    after = await invite_stats.totals(session, community_id=g.id)
    assert (after.by_state, after.by_via) == (before.by_state, before.by_via)
    assert [s.user.id for s in await invite_stats.top_inviters(session, community_id=g.id)] == []
    rows = [row async for row in invite_stats.export_rows(session, community_id=g.id)]
    assert [(r.invitee_id, r.inviter_id) for r in rows] == [(B, None), (C, None), (E, None), (F, None), (D, None),
                                                            (None, B)]
    assert {r.invitee_name for r in rows} == {f"U{B}", f"U{C}", f"U{E}", f"U{F}", f"U{D}", None}
    table = invite_stats.to_csv(rows, tz="UTC", header=[], erased_name="(erased)", label=str).decode("utf-8-sig")
    assert f"U{A}" not in table and str(A) not in table and str(G) not in table
    assert (await referral_of(fresh, g.id, B)).depth == 1  # the chain's shape stays, anonymous
    levels = await invite_stats.downline(session, community_id=g.id, user_id=B)
    assert [(p.user.id, p.hidden) for p in levels[0].people] == [(G, True)]
    async with fresh() as s:
        link = (await s.exec(select(InviteLink).where(InviteLink.owner_id == A))).one()
        assert (link.revoked_at, link.name) == (t0 + 6 * DAY, "")
        assert (await s.exec(select(InviteCode).where(InviteCode.user_id == A))).first() is None
    assert await invite_privacy.data_of(session, user_id=A) == [
        {"community": g.title, "chat_id": g.chat_id, "joined_via": None, "invite_code": None,
         "people_invited_by_state": {},
         "invite_links": [{"url": f"https://t.me/+L{A}x{g.id}", "name": "", "created_at": t0.isoformat(),
                           "revoked_at": (t0 + 6 * DAY).isoformat()}]}]
    # Erasure removed G's membership row: G's invite waits until the bot sees G in the group again.
    report = await invite_rewards.qualify_due(session, community=g, as_of=t0 + 9 * DAY)
    assert report.grants == []
    queue = await invites.review_queue(session, community_id=g.id)
    assert [(item.referral.invitee_id, item.inviter, item.inviter_hidden) for item in queue] == [(D, None, False)]
