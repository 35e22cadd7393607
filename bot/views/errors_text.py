"""Domain error codes → the user's language. One table, so every handler words a refusal the same."""

from __future__ import annotations

from datetime import date
from html import escape

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from babel.dates import format_skeleton

from bot.services.errors import DomainError
from bot.services.money import format_money
from bot.views import invite_admin


def _iso_day(value: object) -> str:
    """A day a service names as YYYY-MM-DD, in the reader's words ("Tue, Nov 3")."""
    try:
        return format_skeleton("MMMEd", date.fromisoformat(str(value)), locale=I18n.get_current().current_locale)
    except ValueError:
        return escape(str(value))


def error_text(err: DomainError, *, currency: str | None = None) -> str:
    """The refusal in the current update's language; `currency` formats amounts in it."""
    p = err.params
    match err.code:
        case "timezone_unknown":
            return _("“{value}” is not a timezone I know. Send an IANA name such as Asia/Shanghai or Europe/Berlin.").format(value=escape(str(p.get("value", ""))))
        case "currency_format":
            return _("“{value}” is not a currency code. Send three letters such as CNY, USD or EUR.").format(value=escape(str(p.get("value", ""))))
        case "currency_unknown":
            return _("{value} is not an ISO 4217 currency. Send a code such as CNY, USD or EUR.").format(value=escape(str(p.get("value", ""))))
        case "pickup_name_empty":
            return _("The name is empty. Send the pickup point's name as text.")
        case "pickup_name_too_long":
            return _("That name has {length} characters; the limit is {max}. Send a shorter one.").format(length=p.get("length"), max=p.get("max"))
        case "pickup_duplicate":
            return _("There is already a pickup point called “{name}”. Send a different name.").format(name=escape(str(p.get("name", ""))))
        case "pickup_too_many":
            return _("A community can have at most {max} pickup points. Remove one first.").format(max=p.get("max"))
        case "pickup_unknown":
            return _("That pickup point no longer exists.")
        case "unknown_locale":
            return _("That language is not available.")
        case "community_unknown":
            return _("That community no longer exists.")
        case "money_format":
            return _("“{value}” is not an amount. Send a number such as 12.5 or 12,50.").format(value=escape(str(p.get("value", ""))))
        case "money_negative":
            return _("The amount cannot be negative.")
        case "money_precision":
            return _("{currency} has {digits} decimal places; send the amount with no more than that.").format(currency=p.get("currency"), digits=p.get("digits"))
        case "money_too_large":
            return _("That amount is too large.")
        case "product_title_empty":
            return _("The title is empty. Send the product's name as text.")
        case "product_title_too_long":
            return _("The title has {length} characters; the limit is {max}. Send a shorter one.").format(length=p.get("length"), max=p.get("max"))
        case "product_description_too_long":
            return _("The description has {length} characters; the limit is {max}. Send a shorter one.").format(length=p.get("length"), max=p.get("max"))
        case "product_price_zero":
            return _("The price must be more than zero.")
        case "product_stock_format" | "product_limit_format":
            return _("“{value}” is not a whole number.").format(value=escape(str(p.get("value", ""))))
        case "product_stock_range" | "product_limit_range":
            return _("Send a whole number from 1 to {max}.").format(max=p.get("max"))
        case "product_unknown":
            return _("That product does not exist in this community.")
        case "product_unknown_number":
            return _("There is no product #{number} here. The number is on the product's card.").format(number=p.get("number"))
        case "product_paused":
            return _("Product #{number} is paused for now.").format(number=p.get("number"))
        case "product_archived":
            return _("Product #{number} is no longer sold.").format(number=p.get("number", ""))
        case "product_sold_out":
            return _("Product #{number} is sold out.").format(number=p.get("number"))
        case "quantity_format":
            return _("“{value}” is not a quantity. Send a whole number such as 2.").format(value=escape(str(p.get("value", ""))))
        case "quantity_zero":
            return _("The quantity must be at least 1.")
        case "quantity_negative":
            return _("The quantity cannot be negative.")
        case "quantity_too_large":
            return _("At most {max} at a time.").format(max=p.get("max"))
        case "quantity_over_stock":
            return _("Only {available} left. Send a smaller quantity.").format(available=p.get("available"))
        case "quantity_over_limit":
            return _("Each member may buy at most {limit}; you can still buy {left}.").format(limit=p.get("limit"), left=p.get("left"))
        case "price_changed":
            return _("The price changed since you saw it. Please check the new summary.")
        case "pickup_required":
            return _("Choose a pickup point first.")
        case "delivery_disabled":
            return _("This community does not deliver; choose a pickup point.")
        case "address_empty":
            return _("The address is empty. Send the delivery address as text.")
        case "address_too_long":
            return _("The address is too long (at most {max} characters).").format(max=p.get("max"))
        case "payment_unavailable":
            return _("That way of paying is not available here.")
        case "coupon_unknown":
            return _("There is no coupon “{code}”. Check the code and send it again.").format(code=escape(str(p.get("code", ""))))
        case "coupon_other_community":
            return _("Coupon “{code}” belongs to another community.").format(code=escape(str(p.get("code", ""))))
        case "coupon_not_yours":
            return _("This coupon belongs to someone else.")
        case "coupon_expired":
            return _("This coupon has expired.")
        case "coupon_used":
            return _("This coupon has already been used.")
        case "coupon_below_minimum":
            amount = p.get("min_spend", 0)
            shown = format_money(amount, currency, I18n.get_current().current_locale) if currency else str(amount)
            return _("This coupon needs a minimum spend of {amount}.").format(amount=shown)
        case "coupon_percent_range":
            return _("A percentage must be from 1 to 100.")
        case "coupon_value_zero":
            return _("The amount must be more than zero.")
        case "coupon_expiry_past":
            return _("The expiry must be in the future.")
        case "coupon_code_format":
            return _("A code is 1 to {max} letters, digits, - or _.").format(max=p.get("max"))
        case "coupon_code_taken":
            return _("The code {code} is already taken in this community.").format(code=escape(str(p.get("code", ""))))
        case "order_unknown":
            return _("That order does not exist.")
        case "order_not_cancellable" | "order_not_payable":
            return _("This order can no longer be changed.")
        case "order_cancel_window":
            return _("Orders can only be cancelled within {hours} hours of ordering. Ask the leader.").format(hours=p.get("hours"))
        case "order_expired":
            return _("This order expired before it was paid. Please order again.")
        case "payment_amount_mismatch":
            return _("The amount does not match the order. Please order again.")
        case "post_time_format":
            return _("“{value}” is not a time. Send HH:MM (for example 18:30) or YYYY-MM-DD HH:MM.").format(value=escape(str(p.get("value", ""))))
        case "post_time_past":
            return _("That time has already passed.")
        case "post_time_far":
            return _("Posts can be scheduled up to 60 days ahead.")
        case "post_not_scheduled":
            return _("That post is no longer scheduled.")
        case "community_inactive":
            return _("I am not in that group any more. Add me back first.")
        case "shop_setting_invalid":
            return _("That value is not allowed.")
        case "coupon_owner_unknown":
            return _("“{value}” is not a member of this community. Send their @username or numeric Telegram id, or choose Anyone.").format(value=escape(str(p.get("value", ""))))
        case "coupon_expiry_format":
            return _("“{value}” is not an expiry. Send a number of days (for example 7) or a date as YYYY-MM-DD.").format(value=escape(str(p.get("value", ""))))
        case "shop_setting_number":
            return _("“{value}” is not allowed. Send a whole number from {min} to {max}.").format(value=escape(str(p.get("value", ""))), min=p.get("min"), max=p.get("max"))
        case "shop_setting_time":
            return _("“{value}” is not a time. Send HH:MM (for example 21:00), or off.").format(value=escape(str(p.get("value", ""))))
        case "product_already_saved":
            return _("This product is already saved.")
        case "duration_format":
            return _("“{value}” is not a duration. Send hours (24), or for example 24h, 1d 12h or 90m.").format(value=escape(str(p.get("value", ""))))
        case "duration_zero":
            return _("The time must be at least one minute.")
        case "duration_too_long":
            return _("At most {days} days.").format(days=p.get("days"))
        case "count_format":
            return _("“{value}” is not a whole number.").format(value=escape(str(p.get("value", ""))))
        case "count_range":
            return _("Send a whole number from {min} to {max}.").format(min=p.get("min"), max=p.get("max"))
        case "groupbuy_price_zero":
            return _("The group price must be more than zero.")
        case "groupbuy_end_past":
            return _("That time has already passed. Send a time in the future.")
        case "groupbuy_end_far":
            return _("A group-buy can end at most {days} days ahead.").format(days=p.get("days"))
        case "groupbuy_price_not_lower":
            amount = p.get("price", 0)
            shown = format_money(amount, currency, I18n.get_current().current_locale) if currency else str(amount)
            return _("The team price must be lower than the normal price, {price}.").format(price=shown)
        case "team_size_range":
            return _("A team is {min} to {max} people.").format(min=p.get("min"), max=p.get("max"))
        case "team_limits_zero":
            return _("Members must be allowed to open or to join at least one team.")
        case "tiers_too_many":
            return _("At most {max} price tiers.").format(max=p.get("max"))
        case "tier_units_order":
            return _("A tier at {units} units does not fit: the first tier starts at the minimum total or above, and each next tier needs more units than {after}.").format(units=p.get("units"), after=p.get("after"))
        case "tier_price_order":
            before = p.get("before", 0)
            locale = I18n.get_current().current_locale
            return _("A tier's price must be above zero and lower than the price before it, {before}.").format(
                before=format_money(before, currency, locale) if currency else str(before))
        case "tier_format":
            return _("“{value}” is not a tier. Send the units and the price, for example “30 8.80”.").format(value=escape(str(p.get("value", ""))))
        case "groupbuy_not_draft":
            return _("This group-buy is already published.")
        case "groupbuy_edit_worse":
            term = {
                "price": _("the price"), "ends_at": _("the end time"), "team_size": _("the team size"),
                "team_minutes": _("the team time limit"), "solo_allowed": _("buying alone at the normal price"),
                "min_units": _("the minimum units"), "tiers": _("the price tiers"),
            }.get(str(p.get("term")), escape(str(p.get("term", ""))))
            return _("That would make {term} worse for members already in. A live group-buy can only get better: a lower price, more time, smaller teams, a later end, better tiers.").format(term=term)
        case "groupbuy_unknown":
            return _("That group-buy does not exist in this community.")
        case "groupbuy_closed":
            return _("This group-buy is already closed.")
        case "groupbuy_already_saved":
            return _("This group-buy is already published.")
        case "groupbuy_choose":
            return _("Please choose with the buttons.")
        case "groupbuy_not_started":
            return _("This group-buy has not started yet.")
        case "team_unknown":
            return _("That team does not exist.")
        case "team_full":
            return _("Someone took the last seat of team #{number} a moment before you. Open a new team?").format(number=p.get("number"))
        case "team_closed":
            return _("Team #{number} is closed: it did not fill in time.").format(number=p.get("number"))
        case "team_expired":
            return _("Team #{number} ran out of time before it filled.").format(number=p.get("number"))
        case "team_already_in":
            return _("You are already in team #{number}.").format(number=p.get("number"))
        case "team_open_limit":
            return _("You can open at most {limit} team(s) in this group-buy.").format(limit=p.get("limit"))
        case "team_join_limit":
            return _("You can join at most {limit} team(s) opened by others in this group-buy.").format(limit=p.get("limit"))
        case "groupbuy_member_limit":
            return _("Each member may join with at most {limit} units; you can still add {left}.").format(limit=p.get("limit"), left=p.get("left"))
        case "checkin_setting_invalid":
            return _("That setting is not allowed: {detail}.").format(detail=escape(str(p.get("detail", ""))))
        case "checkin_setting_number":
            return _("“{value}” is not allowed. Send a whole number from {min} to {max}.").format(value=escape(str(p.get("value", ""))), min=p.get("min"), max=p.get("max"))
        case "checkin_setting_time":
            return _("“{value}” is not a time. Send HH:MM (for example 08:00), or off.").format(value=escape(str(p.get("value", ""))))
        case "checkin_milestones_format":
            return _("“{value}” is not a milestone. Send streak days and bonus points, for example 7:20, 30:100.").format(value=escape(str(p.get("value", ""))))
        case "checkin_milestone_day":
            return _("“{value}” is not a milestone day. A milestone is a streak of {min} to {max} days.").format(value=escape(str(p.get("value", ""))), min=p.get("min"), max=p.get("max"))
        case "checkin_milestone_points":
            return _("A milestone gives {min} to {max} bonus points, not {value}.").format(value=escape(str(p.get("value", ""))), min=p.get("min"), max=p.get("max"))
        case "checkin_milestones_too_many":
            return _("At most {max} milestones in all, coupon milestones included.").format(max=p.get("max"))
        case "checkin_quiet_hours_format":
            return _("“{value}” is not a range of hours. Send the start and the end, for example 22:00-08:00, or off.").format(value=escape(str(p.get("value", ""))))
        case "checkin_quiet_hours_same":
            return _("Quiet hours must start and end at different times.")
        case "points_adjust_format":
            return _("“{value}” is not a number of points. Send a whole number with + or -, for example +50 or -20.").format(value=escape(str(p.get("value", ""))))
        case "points_adjust_zero":
            return _("The change cannot be zero. Send for example +50 or -20.")
        case "points_adjust_too_large":
            return _("At most {max} points in one adjustment.").format(max=p.get("max"))
        case "points_adjust_below_zero":
            return _("That would take the balance below zero: the member has {balance} points.").format(balance=p.get("balance"))
        case "points_note_required":
            return _("A reason is required. Send a few words saying why.")
        case "points_note_too_long":
            return _("The reason is too long (at most {max} characters).").format(max=p.get("max"))
        case "points_member_unknown":
            if "value" not in p:
                return _("That person is not a member of this community.")
            return _("“{value}” is not a member of this community. Send their @username or numeric Telegram id, or forward a message they wrote.").format(value=escape(str(p.get("value", ""))))
        case "points_reward_title_empty":
            return _("The title is empty. Send the reward's name as text.")
        case "points_reward_title_too_long":
            return _("The title is too long (at most {max} characters).").format(max=p.get("max"))
        case "points_reward_cost_range":
            return _("The cost is a whole number of points from {min} to {max}.").format(min=p.get("min"), max=p.get("max"))
        case "points_reward_min_spend":
            return _("The minimum spend cannot be negative.")
        case "points_reward_valid_days":
            return _("Send the number of days as a whole number from {min} to {max}.").format(min=p.get("min"), max=p.get("max"))
        case "points_reward_too_many":
            return _("A community can offer at most {max} rewards. Delete one first.").format(max=p.get("max"))
        case "checkin_disabled":
            return _("Check-ins are off in this group.")
        case "checkin_not_member":
            return _("Only members of the group can check in or make up days there.")
        case "checkin_makeup_off":
            return _("Make-ups are off in this group.")
        case "checkin_makeup_today":
            return _("Today is not missed yet: check in with /checkin.")
        case "checkin_makeup_future":
            return _("That day has not come yet.")
        case "checkin_makeup_too_old":
            return _("Only days up to {days} day(s) back can be made up.").format(days=p.get("days"))
        case "checkin_makeup_already":
            return _("{day} already counts for your streak: nothing to make up.").format(day=_iso_day(p.get("day")))
        case "checkin_makeup_limit":
            return _("You have used all {limit} make-ups of this month.").format(limit=p.get("limit"))
        case "invites_disabled":
            return _("Invites are switched off in this group.")
        case "invite_not_member":
            return _("Only members of the group can invite people into it. Join it first.")
        case "invite_right_missing":
            right = _("Invite users via link") if p.get("right") == "can_invite_users" else escape(str(p.get("right", "")))
            return _("I cannot make invite links in this group: its admins have not given me the right “{right}”.").format(right=right)
        case "points_insufficient":
            return _("Not enough points: you have {balance}, this needs {needed}.").format(balance=p.get("balance"), needed=p.get("needed"))
        case "points_reward_unknown":
            return _("That reward does not exist.")
        case "points_reward_deleted":
            return _("“{title}” is no longer offered: the leader removed it.").format(title=escape(str(p.get("title", ""))))
        case "points_reward_changed":
            return _("The cost changed to {cost} points. Check it and confirm again.").format(cost=p.get("cost"))
        case "points_redeem_repeated":
            return _("This was already redeemed: your coupon is in /coupons.")
        case "invite_setting_invalid":
            return _("That invitation setting is not allowed: {detail}.").format(detail=escape(str(p.get("detail", ""))))
        case "invite_setting_number":
            return _("“{value}” is not allowed. Send a whole number from {min} to {max}.").format(value=escape(str(p.get("value", ""))), min=p.get("min"), max=p.get("max"))
        case "invite_review_unknown":
            return _("That invite does not exist in this community.")
        case "invite_review_done":
            return _("This invite is no longer held for review: another press or another leader decided it already (now: {state}).").format(state=invite_admin.label(str(p.get("state", ""))))
        case "invite_member_unknown":
            return _("“{value}” has never been a member of this community. Send their @username or numeric Telegram id, or forward a message they wrote.").format(value=escape(str(p.get("value", ""))))
        case _:
            return _("That did not work ({code}).").format(code=err.code)
