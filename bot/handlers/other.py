"""Stickers, photos, documents, video and anything else: say what the bot understands."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import Message

from bot import texts


async def unsupported(message: Message) -> None:
    await message.answer(texts.UNSUPPORTED_CONTENT)


def build_router() -> Router:
    router = Router(name="other")
    router.message.register(unsupported)
    return router
