"""Routers, in the order they are tried: the one place that order is written. The fallback comes last.

handlers/group/ answers in the group, handlers/member/ in a member's private chat, handlers/admin/
in a leader's. The order matters where two routers could take the same update: onboarding sees
membership changes first, commands sent on behalf of a chat are answered (or ignored) before a
handler that needs a person sees them, payments answer pre-checkout queries before anything else,
forms come before the commands they could swallow, and help and the fallback catch what is left.
"""

from aiogram import Router


def routers() -> list[Router]:
    from handlers import fallback
    from handlers.admin import campaign_runs, campaigns, groupbuy_setup, menu, products, settings, shop_settings
    from handlers.admin import checkin as admin_checkin
    from handlers.admin import checkin_adjust as admin_checkin_adjust
    from handlers.admin import checkin_rewards as admin_checkin_rewards
    from handlers.admin import coupons as admin_coupons
    from handlers.admin import groupbuys as admin_groupbuys
    from handlers.admin import invites as admin_invites
    from handlers.admin import invites_coupon as admin_invites_coupon
    from handlers.admin import invites_reports as admin_invites_reports
    from handlers.admin import invites_review as admin_invites_review
    from handlers.admin import orders as admin_orders
    from handlers.admin import stats as admin_stats
    from handlers.group import chat_senders, onboarding, shop
    from handlers.group import checkin as group_checkin
    from handlers.group import groupbuys as group_groupbuys
    from handlers.group import invites as group_invites
    from handlers.member import checkin as member_checkin
    from handlers.member import checkout, help, language, payments, privacy, start
    from handlers.member import coupons as member_coupons
    from handlers.member import invites as member_invites
    from handlers.member import orders as member_orders
    from handlers.member import points as member_points

    return [
        onboarding.router,
        chat_senders.router,
        # Before check-ins' /top, which would take `/top invites` too; it has no button to slow a rush of presses.
        group_invites.router,
        # Early: a morning rush of card presses should not walk every router before its own.
        group_checkin.router,
        start.router,
        payments.router,
        privacy.router,
        language.router,
        menu.router,
        checkout.router,
        settings.router,
        shop.router,
        member_orders.router,
        products.router,
        admin_orders.router,
        admin_coupons.router,
        member_coupons.router,
        shop_settings.router,
        admin_checkin.router,
        admin_checkin_rewards.router,
        admin_checkin_adjust.router,
        admin_invites.router,
        admin_invites_coupon.router,
        admin_invites_review.router,
        admin_invites_reports.router,
        admin_groupbuys.router,
        groupbuy_setup.router,
        campaigns.router,
        campaign_runs.router,
        admin_stats.router,
        group_groupbuys.router,
        member_checkin.router,
        member_points.router,
        member_invites.router,
        help.router,
        fallback.router,
    ]
