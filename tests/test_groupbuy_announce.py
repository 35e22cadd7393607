"""The wording of group-buy closes for the closes the end-to-end tests do not reach cheaply: a
leader ending a campaign early, a threshold that missed its goal, a Stars refund still pending,
in both languages."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.core.i18n import get_i18n, translate
from bot.services.groupbuy_report import Settled, Summary
from bot.views.groupbuy_announce import member_text, summary_text
from models import Community, GroupBuy, GroupBuyTeam
from models.shop import Order, OrderStatus, PaymentMethod, Product

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def closed(*, team: GroupBuyTeam | None = None, **campaign: object) -> Settled:
    community = Community(id=1, chat_id=-1, title="G", currency="CNY", timezone="Asia/Shanghai", default_locale="zh_Hans")
    values = {"id": 7, "community_id": 1, "product_id": 3, "kind": "team", "price": 2400, "ends_at": NOW} | campaign
    return Settled(community=community, campaign=GroupBuy(**values),
                   product=Product(id=3, community_id=1, number=2, title="Honey <raw>", price=3000), team=team, orders=[])


def order(status: OrderStatus, method: PaymentMethod, **values: object) -> Order:
    return Order(id=11, community_id=1, product_id=3, user_id=5, quantity=1, unit_price=2400, total=2400, currency="CNY",
                 status=status, payment_method=method, checkout_key="k", **values)


def text(settled: Settled, orders: list[Order], locale: str) -> str:
    with get_i18n().use_locale(locale):
        return member_text(settled, orders, {}, locale, reopen=False)


def test_a_team_the_leader_ended_tells_card_payers_the_leader_refunds_them() -> None:
    team = GroupBuyTeam(id=4, group_buy_id=7, community_id=1, number=3, opener_id=5, size=3, price=2400, seats=1,
                        status="failed", close_reason="ended_by_leader", deadline_at=NOW)
    settled = closed(team=team, status="ended", close_reason="ended_by_leader")
    paid_by_card = order(OrderStatus.REFUND_DUE, PaymentMethod.PROVIDER, paid_at=NOW, cancel_reason="groupbuy_failed")
    assert text(settled, [paid_by_card], "en") == "\n\n".join([
        "The leader ended the group-buy for Honey &lt;raw&gt;: team #3 closes without filling.",
        "<b>Order #11 · Honey &lt;raw&gt; × 1 · CN¥24.00</b>\n❌ Cancelled. You paid by card: the leader will refund you."])
    assert text(settled, [paid_by_card], "zh_Hans") == "\n\n".join([
        translate("The leader ended the group-buy for {title}: team #{number} closes without filling.", "zh_Hans",
                  title="Honey &lt;raw&gt;", number=3),
        "<b>" + translate("Order #{id} · {title} × {qty} · {amount}", "zh_Hans", id=11, title="Honey &lt;raw&gt;", qty=1,
                          amount="¥24.00") + "</b>\n"
        + translate("❌ Cancelled. You paid by card: the leader will refund you.", "zh_Hans")])


def test_a_threshold_that_missed_its_goal_and_a_stars_refund_still_pending() -> None:
    settled = closed(kind="threshold", status="failed", close_reason="not_reached", units=4, min_units=10)
    pending = order(OrderStatus.REFUND_DUE, PaymentMethod.STARS, stars_total=48, paid_at=NOW, cancel_reason="groupbuy_failed")
    assert text(settled, [pending], "en").split("\n\n") == [
        "⌛ The group-buy for Honey &lt;raw&gt; closed with 4 of 10 units: it did not happen.",
        "<b>Order #11 · Honey &lt;raw&gt; × 1 · CN¥24.00 (48 ⭐)</b>\n❌ Cancelled. Your 48 ⭐ will be refunded automatically shortly."]
    ended = closed(kind="threshold", status="failed", close_reason="ended_by_leader", units=4, min_units=10)
    assert text(ended, [], "en") == "The leader ended the group-buy for Honey &lt;raw&gt; early: it did not happen."


def test_the_leaders_summary_of_a_threshold_ended_early() -> None:
    campaign = GroupBuy(id=7, community_id=1, product_id=3, kind="threshold", status="failed", close_reason="ended_by_leader",
                        price=2400, units=4, min_units=10, ends_at=NOW)
    figures = Summary(teams_succeeded=0, teams_failed=0, participants=3, units=0, confirmed_orders=0, confirmed_total=0,
                      paid_total=0, unpaid_orders=0, unpaid_total=0, cancelled_orders=1, refunded_orders=1,
                      refunded_total=4800, refund_due_orders=1, refund_due_total=2400, stars_due_orders=1, credited_total=0)
    with get_i18n().use_locale("en"):
        shown = summary_text(campaign, 2, "Honey <raw>", "CNY", figures, "en")
    assert shown.split("\n") == [
        "📊 <b>Threshold group-buy closed: #2 Honey &lt;raw&gt;</b>",
        "Ended early by a leader: nobody's order stands.",
        "Participants: 3 · units: 0",
        "Orders cancelled before payment: 1",
        "Orders refunded: 1 · CN¥48.00",
        "⚠️ Card payments for you to refund: 1 · CN¥24.00. Refund them, then mark them refunded in /admin → Orders.",
        "Stars refunds Telegram has not accepted yet: 1 (retried automatically)"]
