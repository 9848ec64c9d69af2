"""Routers, one per feature; :func:`build_router` assembles them in priority order."""

from __future__ import annotations

from aiogram import Router

from bot.handlers import commands, other, text, voice


def build_router() -> Router:
    router = Router(name="bot")
    # Order matters: commands before free text, the catch-all hint last.
    router.include_routers(commands.router, text.router, voice.router, other.router)
    return router
