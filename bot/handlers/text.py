"""Any text that is not a command: answer it with the model, remembering the exchange."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message

from bot.context_store import ContextStore
from bot.conversation import answer_and_remember
from bot.model_client import ModelClient


async def text_message(message: Message, store: ContextStore, model: ModelClient) -> None:
    assert message.from_user is not None and message.text is not None
    await answer_and_remember(message, message.from_user.id, message.text, store, model)


def build_router() -> Router:
    router = Router(name="text")
    router.message.register(text_message, F.from_user, F.text)
    return router
