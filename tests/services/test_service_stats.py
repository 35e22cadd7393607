"""The leaders' statistics (bot/services/stats.py) against a hand-built community whose answers are
worked out below by hand: a group in Asia/Shanghai (UTC+8), so a UTC day and a local day differ
for everything between 16:00 and 24:00 UTC; members who left and came back; a redelivered join.

Joins and leaves go through members.on_member_status (as the handlers call it), chatter, orders'
and check-ins' activity through the activity tracker and its flush, funnel steps through the
tracker's counters; the rest (orders, posts, check-ins, streaks, referrals, group-buys) are rows.

Today is Wednesday 2026-03-11 local (now = 03:00 UTC = 11:00 local). Weeks start on Monday; March
2 and 9 are Mondays, February 16 and 23 too.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from shop_builders import make_users
from sqlmodel import select

from bot.services import members, stats
from bot.services.activity import ActivityTracker
from bot.services.users import Profile
from models import (
    CheckIn,
    CommunityHour,
    FunnelStep,
    GroupBuy,
    GroupBuyTeam,
    MembershipEvent,
    Order,
    PointsAccount,
    Product,
    ProductPost,
    Referral,
    Via,
)

TZ = ZoneInfo("Asia/Shanghai")
CHAT = -500
NOW = datetime(2026, 3, 11, 3, 0, tzinfo=timezone.utc)
TODAY = date(2026, 3, 11)
A, B, C, D, E, F, G, H = 101, 102, 103, 104, 105, 106, 107, 108


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """A local time of 2026 in Shanghai, as UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=TZ).astimezone(timezone.utc)


def person(uid: int) -> Profile:
    return Profile(id=uid, first_name=f"P{uid}")


# (who, local time, via): first joins, a rejoin; leaves (who, local time, kicked).
JOINS = [
    (H, at(1, 20, 10), Via.MEMBER_LINK),
    (A, at(2, 16, 9), Via.MEMBER_LINK),
    (B, at(2, 17, 7, 30), Via.DEEP_LINK),  # 2-16 23:30 UTC: the 17th here
    (C, at(2, 22, 23, 30), Via.JOIN_REQUEST),  # the last day of the week of the 16th
    (D, at(2, 23, 0, 10), Via.ADMIN_LINK),  # 2-22 16:10 UTC: the week of the 23rd here
    (F, at(3, 4, 23, 59), Via.ADDED_BY_ADMIN),  # the week before this one
    (E, at(3, 5, 0, 30), Via.PRIMARY_LINK),  # 3-4 16:30 UTC: this week here
    (A, at(3, 8, 12), Via.UNKNOWN),  # A came back
]
LEAVES = [(A, at(3, 6, 10), False), (F, at(3, 10, 9), True)]
# Group messages: (who, local time, how many).
CHATTER = [
    (H, at(1, 27, 9), 1), (G, at(2, 9, 9), 1),
    (A, at(2, 17, 10), 2), (B, at(2, 18, 12), 1), (H, at(2, 19, 9), 1), (A, at(2, 23, 20), 1),
    (D, at(2, 24, 10), 1), (D, at(3, 2, 10), 1), (E, at(3, 5, 0, 20), 1), (E, at(3, 6, 13), 2),
    (G, at(3, 9, 18), 1), (G, at(3, 10, 0, 5), 1), (A, at(3, 10, 23, 30), 4), (G, at(3, 11, 8), 1),
]
TEA, CAKE = 1, 2


async def build(session, add_community):
    community = await add_community(CHAT, title="Tea club")
    community.timezone, community.currency = "Asia/Shanghai", "CNY"
    await session.commit()
    cid = community.id
    await make_users(session, [G], now=at(1, 1))

    changes = [(when, uid, "left", "member", via) for uid, when, via in JOINS]
    changes += [(when, uid, "member", "kicked" if kicked else "left", Via.UNKNOWN) for uid, when, kicked in LEAVES]
    changes.insert(2, changes[1])  # A's first join delivered again at once: nothing new
    for when, uid, old, new, via in sorted(changes, key=lambda c: c[0]):
        await members.on_member_status(session, community=community, profile=person(uid), old_status=old,
                                       new_status=new, now=when, via=via)
    # A promotion is no join.
    await members.on_member_status(session, community=community, profile=person(B), old_status="member",
                                   new_status="administrator", now=at(3, 1), via=Via.UNKNOWN)

    session.add_all([Product(id=TEA, community_id=cid, number=1, title="Tea", price=1000),
                     Product(id=CAKE, community_id=cid, number=2, title="Cake", price=500)])
    await session.flush()
    orders = [  # (who, product, units, total, local time placed, status, paid, fulfilled, picked up)
        (E, TEA, 2, 2000, at(3, 6, 14), "fulfilled", True, True, False),
        (G, CAKE, 1, 500, at(3, 10, 0, 30), "pending_payment", False, False, False),
        (A, TEA, 1, 1000, at(3, 5, 0, 10), "cancelled", False, False, False),
        (D, CAKE, 3, 1500, at(3, 2, 10), "picked_up", True, False, True),
        (B, TEA, 1, 1000, at(2, 20, 9), "paid", True, False, False),
        (H, CAKE, 1, 500, at(2, 1, 9), "paid", True, False, False),
    ]
    for i, (uid, pid, units, total, when, status, paid, fulfilled, picked) in enumerate(orders):
        session.add(Order(community_id=cid, product_id=pid, user_id=uid, quantity=units, unit_price=total // units,
                          total=total, currency="CNY", status=status, checkout_key=f"k{i}", created_at=when,
                          paid_at=when + timedelta(minutes=5) if paid else None,
                          fulfilled_at=when + timedelta(hours=1) if fulfilled else None,
                          picked_up_at=when + timedelta(hours=2) if picked else None))
    session.add_all([
        ProductPost(community_id=cid, product_id=TEA, status="posted", due_at=at(2, 15), posted_at=at(2, 15)),
        ProductPost(community_id=cid, product_id=TEA, status="posted", due_at=at(2, 1), posted_at=at(2, 1)),
        ProductPost(community_id=cid, product_id=CAKE, status="scheduled", due_at=at(3, 20)),
        CheckIn(community_id=cid, user_id=G, day=date(2026, 3, 11), at=at(3, 11, 8)),
        CheckIn(community_id=cid, user_id=E, day=date(2026, 3, 6), at=at(3, 6, 13)),
        CheckIn(community_id=cid, user_id=E, day=date(2026, 3, 7), kind="makeup", at=at(3, 9, 13)),
        CheckIn(community_id=cid, user_id=A, day=date(2026, 3, 1), at=at(3, 1, 9)),
        PointsAccount(community_id=cid, user_id=G, streak=12, best_streak=12, last_day=date(2026, 3, 11)),
        PointsAccount(community_id=cid, user_id=E, streak=2, best_streak=2, last_day=date(2026, 3, 10)),
        PointsAccount(community_id=cid, user_id=A, streak=5, best_streak=5, last_day=date(2026, 3, 1)),
        PointsAccount(community_id=cid, user_id=B, streak=1, best_streak=3, last_day=date(2026, 3, 11)),
        PointsAccount(community_id=cid, user_id=D, streak=30, best_streak=30, last_day=date(2026, 3, 10)),
    ])
    referrals = [  # (invitee, inviter, state, qualified)
        (A, G, "rewarded", at(3, 1)), (B, G, "qualified", at(2, 20)), (C, G, "pending", None),
        (D, H, "qualified", at(1, 30)), (E, None, "qualified", at(3, 8)),
    ]
    for invitee, inviter, state, qualified in referrals:
        session.add(Referral(community_id=cid, invitee_id=invitee, inviter_id=inviter, via="member_link", depth=1,
                             state=state, flags=[], joined_at=at(1, 20), qualified_at=qualified))
    team_buy = GroupBuy(community_id=cid, product_id=TEA, kind="team", status="live", price=800, team_size=3,
                        ends_at=at(3, 30))
    threshold = GroupBuy(community_id=cid, product_id=CAKE, kind="threshold", status="succeeded", price=400,
                         min_units=5, ends_at=at(3, 9), closed_at=at(3, 9))
    session.add_all([team_buy, threshold])
    await session.flush()
    for number, status, closed in ((1, "succeeded", at(3, 1)), (2, "failed", at(3, 3)), (3, "failed", at(2, 1)),
                                   (4, "open", None)):
        session.add(GroupBuyTeam(group_buy_id=team_buy.id, community_id=cid, number=number, opener_id=G, size=3,
                                 price=800, status=status, deadline_at=at(3, 30), closed_at=closed))
    await session.commit()

    tracker = ActivityTracker(default_locale="en", default_timezone="UTC")
    for uid, when, n in CHATTER:
        for _ in range(n):
            tracker.record(chat_id=CHAT, chat_title="Tea club", profile=person(uid), at=when)
    for uid, when in ((E, at(3, 6, 14)), (G, at(3, 10, 0, 30)), (A, at(3, 5, 0, 10)), (D, at(3, 2, 10)),
                      (B, at(2, 20, 9))):
        tracker.record_deed(chat_id=CHAT, chat_title="Tea club", profile=person(uid), at=when, orders=1)
    for when in (at(2, 12, 0, 30), at(2, 20), at(3, 6), at(3, 11, 10), at(2, 11, 23, 30)):  # the last one: too early
        tracker.count_step(community_id=cid, tz_name=community.timezone, product_id=TEA,
                           step=FunnelStep.BUY_PRESSED, at=when)
    for when in (at(2, 20), at(3, 6), at(3, 6, 1)):
        tracker.count_step(community_id=cid, tz_name=community.timezone, product_id=TEA,
                           step=FunnelStep.CHECKOUT_STARTED, at=when)
    await tracker.flush(session)
    return community


@pytest.fixture
async def club(session, add_community):
    return await build(session, add_community)


async def test_joins_and_leaves_are_recorded_once_with_their_source(club, fresh):
    async with fresh() as s:
        rows = list(await s.exec(select(MembershipEvent).where(MembershipEvent.community_id == club.id)
                                 .order_by(MembershipEvent.at)))
    assert [(e.user_id, e.change, e.via, e.at) for e in rows] == sorted(
        [(uid, "join", via.value, when) for uid, when, via in JOINS]
        + [(uid, "leave", "kicked" if kicked else "left", when) for uid, when, kicked in LEAVES], key=lambda r: r[3])


async def test_overview(session, club):
    o = await stats.overview(session, community=club, now=NOW)
    assert (o.today, o.week_start, o.currency) == (TODAY, date(2026, 3, 5), "CNY")
    # Present: A (back), B, C, D, E, G (chatter), H; F was removed. A week ago: 7 - 2 joins + 2 leaves.
    assert o.members == stats.Figure(7, 7)
    assert o.joins == stats.Figure(2, 1)  # E (3-5 local), A's return / F (3-4 23:59 local)
    assert o.leaves == stats.Figure(2, 0)
    assert o.dau == stats.Figure(2, 1)  # 3-10: A, G (00:05 local) / 3-9: G
    assert o.wau == stats.Figure(3, 1)  # A, E, G / D
    assert o.mau == stats.Figure(6, 2)  # A, B, D, E, G, H / H, G
    assert o.stickiness == stats.Figure(2 / 6, 1 / 2)
    assert o.messages == stats.Figure(10, 1)
    assert o.orders == stats.Figure(2, 1)  # E's and G's (3-10 00:30 local; A's was cancelled) / D's
    assert o.revenue == stats.Figure(2500, 1500)
    assert o.checkins == stats.Figure(2, 1)  # G, E (a make-up is not a check-in) / A
    assert o.checkin_participation == stats.Figure(2 / 7, 1 / 7)
    assert o.dau.change == 1 and o.dau.change_ratio == 1.0 and o.leaves.change_ratio is None


async def test_growth(session, club):
    g = await stats.growth(session, community=club, now=NOW)
    assert g.days[0] == date(2026, 2, 12) and g.days[-1] == TODAY and len(g.days) == 28
    assert g.sources == tuple(v.value for v in Via)

    def series(**by_index: int) -> tuple[int, ...]:
        values = [0] * 28
        for i, n in by_index.items():
            values[int(i[1:])] = n
        return tuple(values)

    assert g.joins == {
        "member_link": series(i4=1), "deep_link": series(i5=1), "join_request": series(i10=1),
        "admin_link": series(i11=1), "added_by_admin": series(i20=1), "primary_link": series(i21=1),
        "unknown": series(i24=1), "group_buy_link": series(),
    }
    assert g.leaves == series(i22=1, i26=1)
    assert (g.total_joins, g.total_leaves, g.net) == (7, 2, 5)
    rows = g.csv_rows()
    assert rows[0][0] == "day" and rows[0][-2:] == ["joins", "leaves"]
    assert rows[5][0] == "2026-02-16" and rows[5][-2:] == [1, 0]


async def test_retention(session, club):
    r = await stats.retention(session, community=club, now=NOW)
    assert [c.start for c in r.cohorts] == [date(2026, 1, 19) + timedelta(weeks=k) for k in range(8)]
    assert [c.size for c in r.cohorts] == [1, 0, 0, 0, 3, 1, 2, 0]
    none = (None,) * 8
    # H (joined 1-20): active 1-27 (day 7, week 1) and 2-19 (day 30, week 5); weeks 7 and 8 not over.
    assert r.cohorts[0].active == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, None, None)
    assert r.cohorts[1].active == r.cohorts[2].active == r.cohorts[3].active == none
    # A (2-16), B (2-17 local), C (2-22): A and B active the next day; A's days 17 and 22 fall in
    # weeks 3 and 4, not over for C yet.
    assert r.cohorts[4].active == (2 / 3, 0.0, None, None, None, None, None, None)
    assert r.cohorts[5].active == (1.0, None, None, None, None, None, None, None)  # D (2-23 local)
    assert r.cohorts[6].active == none and r.cohorts[7].active == none
    # D1 over H, A, B, C, D, E, F: A, B, D, E. D7 over H, A, B, C, D: H, A, D. D30: H.
    assert (r.d1, r.d7, r.d30) == (stats.Rate(4, 7), stats.Rate(3, 5), stats.Rate(1, 1))
    assert r.d1.share == 4 / 7
    rows = r.csv_rows()
    assert rows[0] == ["cohort_week", "size", *(f"week_{k}" for k in range(1, 9))]
    assert rows[5] == ["2026-02-16", 3, 0.6667, 0.0, "", "", "", "", "", ""]
    assert rows[-1] == ["d30", 1, 1, 1.0]


async def test_activity_heat_map_is_in_local_time(session, club):
    a = await stats.activity(session, community=club, now=NOW)
    assert (a.start, a.end) == (date(2026, 2, 12), TODAY)
    expected = {(1, 10): 3, (2, 12): 1, (3, 9): 1, (0, 20): 1, (0, 10): 1, (3, 0): 1, (4, 13): 2, (0, 18): 1,
                (1, 0): 1, (1, 23): 4, (2, 8): 1}
    assert {(wd, h): n for wd in range(7) for h in range(24) if (n := a.messages[wd][h])} == expected
    assert {(wd, h): n for wd in range(7) for h in range(24) if (n := a.orders[wd][h])} == {
        (4, 14): 1, (1, 0): 1, (3, 0): 1, (0, 10): 1, (4, 9): 1}
    assert (a.total_messages, a.total_orders, a.peak) == (17, 5, (1, 23))
    assert len(a.csv_rows()) == 1 + 7 * 24


async def test_hours_are_written_per_local_day_and_hour(club, fresh):
    async with fresh() as s:
        rows = {(h.day, h.hour): (h.messages, h.orders)
                for h in await s.exec(select(CommunityHour).where(CommunityHour.community_id == club.id))}
    assert rows[(date(2026, 3, 5), 0)] == (1, 1)  # 3-4 16:20 and 16:10 UTC
    assert rows[(date(2026, 3, 10), 0)] == (1, 1)  # 3-9 16:05 and 16:30 UTC
    assert rows[(date(2026, 3, 10), 23)] == (4, 0)
    assert sum(m for m, _ in rows.values()) == 19  # two messages before the 28 days


async def test_sales(session, club):
    s = await stats.sales(session, community=club, now=NOW)
    assert s.currency == "CNY" and s.days[0] == date(2026, 2, 12)
    revenue = [0] * 28
    revenue[8], revenue[18], revenue[22], revenue[26] = 1000, 1500, 2000, 500
    assert s.revenue == tuple(revenue)
    assert s.orders == tuple(1 if r else 0 for r in revenue)
    assert s.total_revenue == stats.Figure(5000, 500)
    assert s.total_orders == stats.Figure(4, 1)
    assert s.average_order == stats.Figure(1250, 500)
    assert s.top_products == (stats.TopProduct(TEA, "Tea", 3, 3000), stats.TopProduct(CAKE, "Cake", 4, 2000))
    # Teams 1 (won) and 2 (lost) and the threshold campaign closed in the 28 days.
    assert (s.group_buys_succeeded, s.group_buys_failed, s.group_buy_success_rate) == (2, 1, 2 / 3)
    rows = s.csv_rows()
    assert rows[0] == ["day", "orders", "revenue_minor_units", "currency"]
    assert rows[9] == ["2026-02-20", 1, 1000, "CNY"]
    assert rows[-2:] == [[TEA, "Tea", 3, 3000], [CAKE, "Cake", 4, 2000]]


async def test_funnel(session, club):
    f = await stats.funnel(session, community=club, now=NOW)
    assert (f.start, f.end) == (date(2026, 2, 12), TODAY)
    assert f.steps == ("posted", "buy_pressed", "checkout_started", "confirmed", "paid", "fulfilled")
    # One card posted in the 28 days; 4 presses (one fell on 2-11 local); 3 checkouts; 5 orders
    # placed (the cancelled one too, not H's of 2-1), 3 of them paid, 2 fulfilled or picked up.
    assert f.counts == (1, 4, 3, 5, 3, 2)
    assert f.csv_rows() == [["step", "count"], ["posted", 1], ["buy_pressed", 4], ["checkout_started", 3],
                            ["confirmed", 5], ["paid", 3], ["fulfilled", 2]]


async def test_engagement(session, club):
    e = await stats.engagement(session, community=club, now=NOW)
    assert [(b.label, b.members) for b in e.streaks] == [("1", 1), ("2-3", 1), ("4-6", 0), ("7-13", 1),
                                                         ("14-29", 0), ("30+", 1)]
    assert e.members_with_streak == 4
    # G's two qualified invites in 30 days (C's is pending, D's too old, E's names nobody).
    assert (e.invites, e.inviters, e.members, e.k_factor, e.invites_per_inviter) == (2, 1, 7, 2 / 7, 2.0)
    assert e.winback is None


async def test_every_screen_has_a_csv(session, club):
    for name, screen in stats.SCREENS.items():
        data = await screen(session, community=club, now=NOW)
        rows = stats.to_csv_rows(data)
        out = io.StringIO()
        csv.writer(out).writerows(rows)
        assert len(rows) > 1 and out.getvalue(), name


async def test_an_empty_community_has_zeros(session, add_community):
    community = await add_community(-600)
    o = await stats.overview(session, community=community, now=NOW)
    assert o.mau == stats.Figure(0, 0) and o.stickiness == stats.Figure(0.0, 0.0) and o.members.value == 0
    r = await stats.retention(session, community=community, now=NOW)
    assert all(c.size == 0 for c in r.cohorts) and r.d1.share is None
    a = await stats.activity(session, community=community, now=NOW)
    assert a.peak is None and a.total_messages == 0
    s = await stats.sales(session, community=community, now=NOW)
    assert s.average_order == stats.Figure(0, 0) and s.group_buy_success_rate is None
    assert (await stats.funnel(session, community=community, now=NOW)).counts == (0,) * 6
    e = await stats.engagement(session, community=community, now=NOW)
    assert e.k_factor == 0.0 and e.invites_per_inviter is None


async def test_a_change_redelivered_is_recorded_once_and_a_quick_rejoin_twice(session, add_community, fresh):
    community = await add_community(-700)
    when = at(3, 1, 9)
    moves = [("left", "member", when), ("left", "member", when), ("member", "left", when), ("left", "member", when),
             ("member", "left", when), ("member", "left", when), ("left", "member", when + timedelta(days=1))]
    for old, new, moment in moves:
        await members.on_member_status(session, community=community, profile=person(A), old_status=old,
                                       new_status=new, now=moment, via=Via.UNKNOWN)
    # Asked of Telegram rather than reported: no event.
    await members.on_member_status(session, community=community, profile=person(B), old_status="left",
                                   new_status="member", now=when)
    async with fresh() as s:
        rows = list(await s.exec(select(MembershipEvent).where(MembershipEvent.community_id == community.id)
                                 .order_by(MembershipEvent.id)))
    assert [(e.user_id, e.change, e.at) for e in rows] == [
        (A, "join", when), (A, "leave", when), (A, "join", when), (A, "leave", when),
        (A, "join", when + timedelta(days=1))]
