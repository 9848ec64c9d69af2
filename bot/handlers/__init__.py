"""Routers, one per feature; :func:`build_router` assembles fresh ones in priority order.

Fresh routers per call: aiogram attaches a router to one parent only, and tests
build many dispatchers.
"""

from __future__ import annotations

from aiogram import Router

from bot.handlers import commands, other, text, voice


def build_router() -> Router:
    router = Router(name="bot")
    # Order matters: commands before free text, the catch-all hint last.
    router.include_routers(
        commands.build_router(), text.build_router(), voice.build_router(), other.build_router()
    )
    return router
