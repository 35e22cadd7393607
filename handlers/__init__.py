"""Routers, in the order they are tried. The fallback comes last."""

from aiogram import Router


def routers() -> list[Router]:
    from handlers import admin, fallback, help, language, onboarding, privacy, settings, start
    from handlers import checkout, member_orders, payments, shop_group
    from handlers import groupbuy_group
    from handlers import groupbuy_admin, groupbuy_setup, products_admin
    from handlers import coupons_admin, member_coupons, orders_admin, shop_settings

    return [
        onboarding.router,
        start.router,
        payments.router,
        privacy.router,
        language.router,
        admin.router,
        checkout.router,
        settings.router,
        shop_group.router,
        member_orders.router,
        products_admin.router,
        orders_admin.router,
        coupons_admin.router,
        member_coupons.router,
        shop_settings.router,
        groupbuy_admin.router,
        groupbuy_setup.router,
        groupbuy_group.router,
        help.router,
        fallback.router,
    ]
