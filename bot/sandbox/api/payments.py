"""Payments: invoices, pre-checkout answers and Telegram Stars refunds.

Stars (`XTR`) invoices have their own rules on Telegram: no provider token
and exactly one price; any other currency needs a provider token.
"""

from __future__ import annotations

import re

from ..core import format_amount
from ..errors import QUERY_TOO_OLD, bad_request
from .messages import send, writable_chat
from .registry import method

CURRENCY = re.compile(r"^[A-Z]{3}$")


def invoice_prices(p) -> list[int]:
    prices = p.get_json("prices")
    if not isinstance(prices, list) or not prices:
        raise bad_request("can't parse prices JSON object")
    amounts = []
    for price in prices:
        if not (
            isinstance(price, dict) and isinstance(price.get("label"), str) and isinstance(price.get("amount"), int)
        ):
            raise bad_request("can't parse LabeledPrice")
        amounts.append(price["amount"])
    return amounts


@method("sendInvoice")
def send_invoice(emu, p):
    chat = writable_chat(emu, p)
    title = p.get_str("title", required=True)
    description = p.get_str("description", required=True)
    payload = p.get_str("payload", required=True)
    currency = p.get_str("currency", required=True)
    provider_token = p.get_str("provider_token") or ""
    amounts = invoice_prices(p)
    if not 1 <= len(title) <= 32:
        raise bad_request("TITLE_INVALID")
    if not 1 <= len(description) <= 255:
        raise bad_request("DESCRIPTION_INVALID")
    if not 1 <= len(payload.encode("utf-8")) <= 128:
        raise bad_request("INVOICE_PAYLOAD_INVALID")
    if not CURRENCY.match(currency):
        raise bad_request("CURRENCY_INVALID")
    if currency == "XTR":
        if provider_token:
            raise bad_request("PAYMENT_PROVIDER_INVALID")
        if len(amounts) != 1:
            raise bad_request("STARS_INVOICE_INVALID")
    elif not provider_token:
        raise bad_request("PAYMENT_PROVIDER_INVALID")
    if any(amount <= 0 for amount in amounts):
        raise bad_request("CURRENCY_TOTAL_AMOUNT_INVALID")
    invoice = {
        "title": title,
        "description": description,
        "start_parameter": p.get_str("start_parameter") or "",
        "currency": currency,
        "total_amount": sum(amounts),
    }
    return send(emu, chat, p, invoice=invoice, invoice_payload=payload)


@method("answerPreCheckoutQuery")
def answer_pre_checkout_query(emu, p):
    query = emu.pre_checkouts.get(p.get_str("pre_checkout_query_id", required=True))
    if query is None or query.ok is not None or emu.query_clock() - query.date > emu.pre_checkout_ttl:
        raise bad_request(QUERY_TOO_OLD)
    ok = p.get_bool("ok")
    error_message = p.get_str("error_message")
    if not ok and not error_message:
        raise bad_request("error_message is empty")
    query.ok, query.error_message = ok, error_message
    verdict = "approved the checkout" if ok else f"declined the checkout: {error_message}"
    emu.transcript.add("notice", query.message.chat.label, "bot", f"bot {verdict}")
    emu.touch()
    return True


@method("refundStarPayment")
def refund_star_payment(emu, p):
    user_id = p.get_int("user_id", required=True)
    payment = emu.payments.get(p.get_str("telegram_payment_charge_id", required=True))
    if payment is None or payment.user_id != user_id or payment.currency != "XTR":
        raise bad_request("CHARGE_ID_INVALID")
    if payment.refunded:
        raise bad_request("CHARGE_ALREADY_REFUNDED")
    payment.refunded = True
    user = emu.user(user_id)
    chat = emu.private_chat(user)
    emu.transcript.add(
        "notice",
        chat.label,
        "bot",
        f"bot refunded {format_amount(payment.total_amount, payment.currency)} to {user.full_name}",
    )
    # Telegram tells both sides with a service message in the buyer's private chat (RefundedPayment).
    refunded = {
        "currency": payment.currency,
        "total_amount": payment.total_amount,
        "invoice_payload": payment.invoice_payload,
        "telegram_payment_charge_id": payment.telegram_payment_charge_id,
    }
    if payment.provider_payment_charge_id:
        refunded["provider_payment_charge_id"] = payment.provider_payment_charge_id
    emu.service_message(chat, user, {"refunded_payment": refunded})
    emu.touch()
    return True
