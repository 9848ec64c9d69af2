"""An edited text: the conversation's latest query is answered again; older edits get nothing.

The rule lives in :func:`bot.core.conversation.converse` (docs/groups.md, edits).
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message, User

from bot.core.model_client import ModelClient
from bot.settings import Settings
from bot.storage.context_store import ContextStore
from bot.telegram.addressing import command_target, without_bot_mentions
from bot.telegram.filters import Allowed
from bot.telegram.sending import answer_and_remember


async def edited_text(
    message: Message, store: ContextStore, model: ModelClient, me: User, settings: Settings
) -> None:
    query = without_bot_mentions(message, me)
    await answer_and_remember(message, query, store, model, me, edited=True, stream=settings.stream_answers)


def build_router(settings: Settings) -> Router:
    router = Router(name="edits")
    if settings.allowed_user_ids or settings.allowed_chat_ids:
        # No notice: a refused sender heard it with the message itself.
        router.edited_message.filter(Allowed(settings.allowed_user_ids, settings.allowed_chat_ids))
    # A message edited into a command is not run: commands act when they are sent.
    router.edited_message.register(edited_text, F.text, F.func(lambda m: command_target(m) is None))
    return router
