"""The group-buy card as the group sees it: prices, progress and the tier reached, the time left,
one line and one Join button per open team, the closed states without buttons, escaping, the
length limit, and both languages."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from bot.core.i18n import translate
from bot.sandbox.formatting import parse_text
from bot.services.groupbuy_board import CardTeam
from bot.views.cards import TEXT_LIMIT, fingerprint, visible_length
from bot.views.groupbuy_cards import render_card, time_left
from models import Community
from models.groupbuy import GroupBuy, GroupBuyKind, GroupBuyStatus, TeamStatus
from models.shop import Product, ProductStatus

BOT = "shop_bot"
NOW = datetime(2026, 5, 1, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai


def en(msgid: str, **kw: object) -> str:
    return translate(msgid, "en", **kw)


def community(**kw) -> Community:
    return Community(**({"id": 3, "chat_id": -100123, "title": "Green Valley", "currency": "CNY",
                         "default_locale": "en", "timezone": "Asia/Shanghai"} | kw))


def product(**kw) -> Product:
    return Product(**({"id": 41, "community_id": 3, "number": 7, "title": "Fresh <b>eggs</b> & milk", "description": "",
                       "price": 1250, "stock": 50, "sold": 0, "per_member_limit": None, "photo_file_id": None,
                       "status": ProductStatus.ACTIVE} | kw))


def team_campaign(**kw) -> GroupBuy:
    return GroupBuy(**({"id": 9, "community_id": 3, "product_id": 41, "kind": GroupBuyKind.TEAM, "status": GroupBuyStatus.LIVE,
                        "price": 990, "team_size": 3, "team_minutes": 24 * 60, "open_limit": 1, "join_limit": 1,
                        "solo_allowed": True, "starts_at": NOW - timedelta(hours=1),
                        "ends_at": NOW + timedelta(days=1, hours=5, minutes=17)} | kw))


def threshold(**kw) -> GroupBuy:
    return GroupBuy(**({"id": 12, "community_id": 3, "product_id": 41, "kind": GroupBuyKind.THRESHOLD,
                        "status": GroupBuyStatus.LIVE, "price": 1000, "min_units": 10,
                        "tiers": json.dumps([[10, 950], [30, 880]]), "units": 12, "member_limit": 5,
                        "starts_at": NOW - timedelta(hours=1), "ends_at": NOW + timedelta(hours=4, minutes=37)} | kw))


def team(number: int, seats: int, *, name: str = "Bob", tid: int | None = None, size: int = 3,
         status: str = TeamStatus.OPEN) -> CardTeam:
    return CardTeam(tid or 100 + number, number, name, seats, size, NOW + timedelta(hours=8), status)


def shown(html: str) -> list[str]:
    """What a reader sees (the emulator's HTML parser refuses what Telegram refuses)."""
    return parse_text(html, "HTML").text.splitlines()


def buttons(markup) -> list[list[tuple[str, str]]]:
    return [[(b.text, b.url) for b in row] for row in markup.inline_keyboard] if markup else []


def link(payload: str) -> str:
    return f"https://t.me/{BOT}?start={payload}"


def test_team_card_lists_open_teams_with_a_join_button_each() -> None:
    teams = [team(2, 2, name="<Bob>"), team(1, 1, name="Carol")]
    text, markup = render_card(team_campaign(), product(), teams, community(), "en", NOW, bot_username=BOT, open_count=2)
    assert shown(text) == [
        "🤝 Team group-buy: #7 · Fresh <b>eggs</b> & milk",
        "Normal price CN¥12.50 · team price CN¥9.90",
        en("Teams of {size}; a team has {limit} to fill once it is opened.", size=3, limit="1 d"),
        en("New teams until {when} ({tz}), {left} left.", when="2026-05-02 15:17", tz="Asia/Shanghai", left="1 d 5 h"),
        "",
        "Open teams",
        en("• Team #{number} · {name} · open seats: {open} of {size} · until {when}", number=2, name="<Bob>", open=1, size=3,
           when="05-01 18:00"),
        en("• Team #{number} · {name} · open seats: {open} of {size} · until {when}", number=1, name="Carol", open=2, size=3,
           when="05-01 18:00"),
        "",
        en("Join a team below, or open your own and share it with friends."),
    ]
    assert "&lt;Bob&gt;" in text and "&lt;b&gt;eggs" in text
    assert buttons(markup) == [
        [(en("Join team #{number}", number=2), link("gbt-102")), (en("Join team #{number}", number=1), link("gbt-101"))],
        [(en("🤝 Open a team"), link("gbo-9"))],
        [(en("Buy alone at {price}", price="CN¥12.50"), link("buy-41"))],
    ]


def test_team_card_without_solo_and_with_more_teams_than_shown_and_filled_teams() -> None:
    teams = [team(n, 2) for n in range(1, 7)]
    filled = [team(8, 3, name="Dan", status=TeamStatus.SUCCEEDED)]
    text, markup = render_card(team_campaign(solo_allowed=False), product(), teams, community(), "en", NOW, bot_username=BOT,
                               open_count=9, filled=filled, filled_count=4, participants=12)
    lines = shown(text)
    assert en("…and {count} more open teams.", count=3) in lines
    assert en("✅ Team #{number} · {name} · done, {size} of {size}", number=8, name="Dan", size=3) in lines
    assert en("✅ …and {count} more teams done.", count=3) in lines
    labels = [b for row in buttons(markup) for b, _ in row]
    assert labels.count(en("Join team #{number}", number=1)) == 1 and len(labels) == 7
    assert en("Buy alone at {price}", price="CN¥12.50") not in labels


def test_team_card_after_the_window_keeps_join_buttons_and_closed_cards_have_none() -> None:
    window_over = team_campaign(status=GroupBuyStatus.ENDED, close_reason="window_over", ends_at=NOW - timedelta(minutes=1))
    text, markup = render_card(window_over, product(), [team(1, 2)], community(), "en", NOW, bot_username=BOT)
    assert en("No new teams; open teams can still fill until their deadline.") in shown(text)
    assert buttons(markup) == [[(en("Join team #{number}", number=1), link("gbt-101"))]]
    done = team_campaign(status=GroupBuyStatus.ENDED, close_reason="window_over", closed_at=NOW)
    text, markup = render_card(done, product(), [], community(), "en", NOW, bot_username=BOT, filled_count=2, participants=6)
    assert shown(text)[-1] == en("✅ Done: {teams} team(s) filled, {members} member(s) joined.", teams=2, members=6)
    assert markup is None
    text, markup = render_card(done, product(), [], community(), "en", NOW, bot_username=BOT)
    assert shown(text)[-1] == en("❌ Ended: no team filled.") and markup is None
    early = team_campaign(status=GroupBuyStatus.ENDED, close_reason="ended_by_leader")
    text, markup = render_card(early, product(), [team(1, 2)], community(), "en", NOW, bot_username=BOT)
    assert shown(text)[-1] == en("❌ Ended early by the leader.") and markup is None


def test_threshold_card_shows_tiers_the_tier_reached_progress_and_time_left() -> None:
    text, markup = render_card(threshold(), product(), [], community(), "en", NOW, bot_username=BOT)
    assert shown(text) == [
        "🛒 Community group-buy: #7 · Fresh <b>eggs</b> & milk",
        en("Normal price {normal}", normal="CN¥12.50"),
        "• from 10 units: CN¥9.50 ✅",
        "• from 30 units: CN¥8.80",
        "Units so far: 12 of 10 ▓▓▓▓▓▓▓▓▓▓",
        "Price reached: CN¥9.50",
        en("{count} more units for {price}.", count=18, price="CN¥8.80"),
        en("Closes {when} ({tz}), {left} left.", when="2026-05-01 14:37", tz="Asia/Shanghai", left="4 h 30 min"),
        en("Up to {count} units per member.", count=5),
        "",
        en("Everyone pays the price reached at the cut-off; if the minimum is not reached, nobody pays."),
    ]
    assert buttons(markup) == [[(en("🛒 Join at {price}", price="CN¥10.00"), link("gbj-12"))]]
    # Below the minimum: no tier is marked, and the bar shows how far it is.
    text, _ = render_card(threshold(units=4, tiers="[]", member_limit=None), product(), [], community(), "en", NOW,
                          bot_username=BOT)
    lines = shown(text)
    assert "• from 10 units: CN¥10.00" in lines and "Units so far: 4 of 10 ▓▓▓▓░░░░░░" in lines
    assert en("{count} more units for {price}.", count=6, price="CN¥10.00") in lines
    assert not any(line.startswith("Price reached") for line in lines)


def test_threshold_closed_states_have_no_buttons() -> None:
    done = threshold(status=GroupBuyStatus.SUCCEEDED, units=31, final_price=880, closed_at=NOW)
    text, markup = render_card(done, product(), [], community(), "en", NOW, bot_username=BOT, participants=9)
    assert shown(text)[-1] == en("✅ Done: {units} units by {members} member(s); final price {price}.", units=31, members=9,
                                 price="CN¥8.80")
    assert "• from 30 units: CN¥8.80 ✅" in shown(text) and markup is None
    failed = threshold(status=GroupBuyStatus.FAILED, units=4, close_reason="not_reached", closed_at=NOW)
    text, markup = render_card(failed, product(), [], community(), "en", NOW, bot_username=BOT)
    assert shown(text)[-1] == en("❌ Ended: {units} of {min} units, the minimum was not reached.", units=4, min=10)
    assert markup is None
    # Past the cut-off but not closed yet (the sweep has not run): no Join button either.
    late = threshold(ends_at=NOW - timedelta(seconds=5))
    assert render_card(late, product(), [], community(), "en", NOW, bot_username=BOT)[1] is None


def test_time_left_is_rounded_so_the_card_changes_rarely() -> None:
    assert time_left(NOW + timedelta(days=2, hours=3, minutes=59), NOW, "en") == "2 d 3 h"
    assert time_left(NOW + timedelta(hours=5, minutes=19), NOW, "en") == "5 h 10 min"
    assert time_left(NOW + timedelta(hours=5, minutes=11), NOW, "en") == time_left(NOW + timedelta(hours=5, minutes=19), NOW, "en")
    assert time_left(NOW + timedelta(minutes=7, seconds=30), NOW, "en") == "7 min"
    assert time_left(NOW + timedelta(seconds=20), NOW, "en") == en("less than a minute")
    campaign = threshold(ends_at=NOW + timedelta(hours=5, minutes=15))
    first = render_card(campaign, product(), [], community(), "en", NOW, bot_username=BOT)
    later = render_card(campaign, product(), [], community(), "en", NOW + timedelta(minutes=4), bot_username=BOT)
    much_later = render_card(campaign, product(), [], community(), "en", NOW + timedelta(minutes=6), bot_username=BOT)
    assert fingerprint(*first) == fingerprint(*later) != fingerprint(*much_later)


def test_card_in_chinese_and_within_telegrams_limit() -> None:
    text, markup = render_card(team_campaign(), product(), [team(1, 1)], community(default_locale="zh_Hans"), "zh_Hans", NOW,
                               bot_username=BOT)
    assert translate("🤝 Open a team", "zh_Hans") in [b for row in buttons(markup) for b, _ in row]
    assert translate("Open teams", "zh_Hans") in shown(text)
    assert translate("🤝 Open a team", "zh_Hans") != "🤝 Open a team"
    # Names and titles at their longest still leave a card Telegram accepts.
    long_title = product(title="长" * 300)
    teams = [team(n, 1, name="名" * 64) for n in range(1, 7)]
    text, markup = render_card(team_campaign(), long_title, teams, community(), "en", NOW, bot_username=BOT, open_count=500)
    assert visible_length(text) <= TEXT_LIMIT
    assert "长" * 119 + "…" in text and "长" * 120 not in text
    assert all(len(b.url.rsplit("=", 1)[1]) <= 64 for row in markup.inline_keyboard for b in row)
