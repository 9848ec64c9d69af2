"""Routers, one per feature; :func:`build_router` assembles fresh ones in priority order.

Fresh routers per call: aiogram attaches a router to one parent only, and tests
build many dispatchers.
"""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.utils.i18n import I18n

from bot.settings import Settings
from bot.storage.context_store import ContextStore
from bot.storage.corpus import Corpus
from bot.storage.retention import RetentionPurge
from bot.telegram.filters import SpeaksHere
from bot.telegram.flood_control import FloodControlMiddleware
from bot.telegram.handlers import access, commands, edits, other, text, voice
from bot.telegram.handlers import settings as chat_settings
from bot.telegram.menu import register_commands


def build_router(settings: Settings, store: ContextStore, i18n: I18n, corpus: Corpus) -> Router:
    router = Router(name="bot")
    # Where the bot speaks, for every message in every chat (bot/telegram/filters.py has the rules).
    # GROUP_REPLY_MODE is the default of chats whose admins have not chosen (/settings).
    speaks_here = SpeaksHere(settings.group_reply_mode)
    router.message.filter(speaks_here)
    router.edited_message.filter(speaks_here)
    # What answers an allowed message: commands before free text, the catch-all hint last.
    answering = Router(name="answering")
    answering.include_routers(
        chat_settings.build_router(),
        commands.build_router(),
        text.build_router(),
        voice.build_router(),
        other.build_router(),
    )
    # Inner: it runs only for a message one of these handlers takes, after every filter above.
    answering.message.middleware(
        FloodControlMiddleware(settings.rate_limit_messages, settings.rate_limit_period_s)
    )
    # The access check first: a stranger gets its notice, never the flood notice.
    # An edit of the latest query is answered again (handlers/edits.py says which).
    router.include_routers(access.build_router(settings), answering, edits.build_router(settings))

    purge = RetentionPurge(
        store, settings.context_retention_days, corpus=corpus, corpus_days=settings.corpus_retention_days
    )
    router.startup.register(purge.start)
    router.shutdown.register(purge.stop)

    async def on_startup(bot: Bot) -> None:
        await register_commands(bot, i18n, settings.bot_language)

    router.startup.register(on_startup)
    return router
