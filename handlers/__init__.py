"""Routers, in the order they are tried. The fallback comes last."""

from aiogram import Router


def routers() -> list[Router]:
    from handlers import admin, fallback, help, language, onboarding, privacy, settings, start

    return [
        onboarding.router,
        start.router,
        privacy.router,
        language.router,
        admin.router,
        settings.router,
        help.router,
        fallback.router,
    ]
