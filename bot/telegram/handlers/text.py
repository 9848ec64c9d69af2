"""Any text that is not a command: answer it with the model, remembering the exchange."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message, User

from bot.core.model_client import ModelClient
from bot.settings import Settings
from bot.storage.context_store import ContextStore
from bot.telegram.addressing import without_bot_mentions
from bot.telegram.sending import answer_and_remember


async def text_message(
    message: Message, store: ContextStore, model: ModelClient, me: User, settings: Settings
) -> None:
    # The bot's own "@name" is how it was called, not part of what it is asked.
    query = without_bot_mentions(message, me)
    await answer_and_remember(message, query, store, model, me, stream=settings.stream_answers)


def build_router() -> Router:
    router = Router(name="text")
    router.message.register(text_message, F.text)
    return router
