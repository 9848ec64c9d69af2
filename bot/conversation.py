"""One turn of the conversation: context → model → reply → remember.

Shared by the text and voice handlers. The exchange is stored only after the
answer was delivered, so a failure anywhere leaves the stored context as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from functools import partial

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


async def converse(
    user_id: int,
    query: str,
    store: ContextStore,
    model: ModelClient,
    send_answer: Callable[[str], Awaitable[object]],
    send_notice: Callable[[str], Awaitable[object]],
    waiting: Callable[[], AbstractAsyncContextManager[object]] = nullcontext,
) -> None:
    """One exchange, whatever the front end: Telegram or the terminal chat.

    ``waiting`` wraps the model call (Telegram shows "typing" meanwhile).
    """
    query = normalize(query)
    if not query:
        await send_notice(texts.UNSUPPORTED_CONTENT)
        return
    try:
        context = await store.get(user_id)
    except ContextStoreUnavailable:
        await send_notice(texts.DATABASE_UNAVAILABLE)
        return
    try:
        async with waiting():
            answer = normalize(await model.answer(query, context)) or FALLBACK_ANSWER
    except ModelServerError as exc:
        log.warning("no answer for user %d: %s", user_id, exc)
        await send_notice(model_error_text(exc))
        return

    await send_answer(answer)
    try:
        await store.append_exchange(user_id, query, answer)
    except ContextStoreUnavailable:
        await send_notice(texts.CONTEXT_NOT_SAVED)


async def answer_and_remember(
    message: Message, user_id: int, query: str, store: ContextStore, model: ModelClient
) -> None:
    assert message.bot is not None
    bot, chat_id = message.bot, message.chat.id
    await converse(
        user_id,
        query,
        store,
        model,
        send_answer=partial(reply_in_pieces, message),
        send_notice=message.answer,
        waiting=lambda: ChatActionSender.typing(bot=bot, chat_id=chat_id, initial_sleep=TYPING_AFTER_S),
    )
