"""Stickers, photos, documents, video and anything else: say what the bot understands.

In a group only when the message was addressed to the bot; people's stickers
to each other get no hint.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.types import Message

from bot.core import texts
from bot.core.i18n import gettext as _
from bot.telegram.filters import Addressed
from bot.telegram.sending import reply


async def unsupported(message: Message) -> None:
    await reply(message, _(texts.UNSUPPORTED_CONTENT))


def build_router() -> Router:
    router = Router(name="other")
    router.message.register(unsupported, Addressed())
    return router
