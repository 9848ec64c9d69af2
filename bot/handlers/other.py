"""Stickers, photos, documents, video and anything else: say what the bot understands.

In a group only when the message was addressed to the bot; people's stickers
to each other get no hint.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.types import Message

from bot import texts
from bot.conversation import reply
from bot.filters import Addressed
from bot.i18n import gettext as _


async def unsupported(message: Message) -> None:
    await reply(message, _(texts.UNSUPPORTED_CONTENT))


def build_router() -> Router:
    router = Router(name="other")
    router.message.register(unsupported, Addressed())
    return router
