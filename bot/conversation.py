"""One turn of the conversation: context → model → reply → remember.

Shared by the text and voice handlers. The exchange is stored only after the
answer was delivered, so a failure anywhere leaves the stored context as it was.
"""

from __future__ import annotations

import logging

from aiogram.types import Message
from aiogram.utils.chat_action import ChatActionSender

from bot import texts
from bot.context_store import ContextStore, ContextStoreUnavailable
from bot.model_client import (
    ModelClient,
    ModelServerError,
    ModelServerRejected,
    ModelServerTimeout,
    ModelServerUnavailable,
)
from dialogue.format import FALLBACK_ANSWER, normalize

log = logging.getLogger(__name__)

TELEGRAM_MESSAGE_LIMIT = 4096
# "typing" goes out only when the answer takes longer than this: a quick answer
# needs no indicator, and each action is a Bot API call counted in its limits.
TYPING_AFTER_S = 0.3


def split_message(text: str, limit: int = TELEGRAM_MESSAGE_LIMIT) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at a line break or space where there is one."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= limit // 2:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut <= limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def model_error_text(exc: ModelServerError) -> str:
    if isinstance(exc, ModelServerUnavailable):
        return texts.MODEL_UNAVAILABLE
    if isinstance(exc, ModelServerTimeout):
        return texts.MODEL_TIMEOUT
    if isinstance(exc, ModelServerRejected):
        return texts.MODEL_REJECTED
    return texts.MODEL_FAILED


async def reply_in_pieces(message: Message, text: str) -> None:
    for piece in split_message(text):
        # Model output is plain text: no HTML/Markdown parsing of what it wrote.
        await message.answer(piece, parse_mode=None)


async def answer_and_remember(
    message: Message, user_id: int, query: str, store: ContextStore, model: ModelClient
) -> None:
    query = normalize(query)
    if not query:
        await message.answer(texts.UNSUPPORTED_CONTENT)
        return
    try:
        context = await store.get(user_id)
    except ContextStoreUnavailable:
        await message.answer(texts.DATABASE_UNAVAILABLE)
        return

    assert message.bot is not None
    try:
        async with ChatActionSender.typing(
            bot=message.bot, chat_id=message.chat.id, initial_sleep=TYPING_AFTER_S
        ):
            answer = normalize(await model.answer(query, context))
    except ModelServerError as exc:
        log.warning("no answer for user %d: %s", user_id, exc)
        await message.answer(model_error_text(exc))
        return

    await reply_in_pieces(message, answer or FALLBACK_ANSWER)
    try:
        await store.append_exchange(user_id, query, answer or FALLBACK_ANSWER)
    except ContextStoreUnavailable:
        await message.answer(texts.CONTEXT_NOT_SAVED)
