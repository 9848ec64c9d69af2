"""One turn of the conversation: context → model → reply → remember.

Shared by the text and voice handlers and the terminal chat. The exchange is
stored only after the answer was delivered, so a failure anywhere leaves the
stored context as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass

from aiogram.types import Message, ReplyParameters, User
from aiogram.utils.chat_action import ChatActionSender

from bot import addressing, texts
from bot.context_store import ContextStore, ContextStoreUnavailable
from bot.i18n import gettext as _
from bot.model_client import (
    ModelClient,
    ModelServerError,
    ModelServerRejected,
    ModelServerTimeout,
    ModelServerUnavailable,
)
from bot.reply_chain import Replied, chain_context
from bot.scope import Scope, scope_of
from dialogue.format import Turn, normalize

log = logging.getLogger(__name__)

TELEGRAM_MESSAGE_LIMIT = 4096
# "typing" goes out only when the answer takes longer than this: a quick answer
# needs no indicator, and each action is a Bot API call counted in its limits.
TYPING_AFTER_S = 0.3

# Sends the answer; the id and text of each message it became.
SendAnswer = Callable[[str], Awaitable[Sequence[tuple[int, str]]]]


@dataclass(frozen=True, slots=True)
class Ask:
    """A message to answer. ``query`` is normalised here, once for the whole bot side."""

    scope: Scope
    query: str
    message_id: int | None = None  # None in the terminal chat
    replied: Replied | None = None  # set for a reply in a group: its context is the reply chain


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
        return _(texts.MODEL_UNAVAILABLE)
    if isinstance(exc, ModelServerTimeout):
        return _(texts.MODEL_TIMEOUT)
    if isinstance(exc, ModelServerRejected):
        return _(texts.MODEL_REJECTED)
    return _(texts.MODEL_FAILED)


async def context_for(ask: Ask, store: ContextStore) -> list[Turn]:
    if ask.replied is None:
        return await store.get(ask.scope)
    return await chain_context(store, ask.scope.chat_id, ask.replied, ask.scope.user_id, store.context_size)


async def converse(
    ask: Ask,
    store: ContextStore,
    model: ModelClient,
    send_answer: SendAnswer,
    send_notice: Callable[[str], Awaitable[object]],
    waiting: Callable[[], AbstractAsyncContextManager[object]] = nullcontext,
) -> None:
    """One exchange, whatever the front end: Telegram or the terminal chat.

    ``waiting`` wraps the model call (Telegram shows "typing" meanwhile).
    """
    query = normalize(ask.query)
    if not query:
        await send_notice(_(texts.UNSUPPORTED_CONTENT))
        return
    try:
        context = await context_for(ask, store)
    except ContextStoreUnavailable:
        await send_notice(_(texts.DATABASE_UNAVAILABLE))
        return
    try:
        async with waiting():
            # The server sends a normalised answer, or "" when the model produced nothing.
            answer = await model.answer(query, context) or _(texts.FALLBACK_ANSWER)
    except ModelServerError as exc:
        log.warning("no answer in chat %d: %s", ask.scope.chat_id, exc)
        await send_notice(model_error_text(exc))
        return

    pieces = await send_answer(answer)
    try:
        await store.append_exchange(
            ask.scope,
            query,
            answer,
            query_message_id=ask.message_id,
            reply_to_message_id=ask.replied.message_id if ask.replied else None,
            answer_pieces=pieces,
        )
    except ContextStoreUnavailable:
        await send_notice(_(texts.CONTEXT_NOT_SAVED))


def reply_parameters(message: Message) -> ReplyParameters | None:
    """In a group the bot answers as a reply, so that the next reply continues the chain."""
    if not addressing.in_group(message):
        return None
    return ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)


async def reply(message: Message, text: str, plain: bool = False) -> Message:
    """A reply in the chat (and forum topic) of ``message``; ``plain``: no HTML/Markdown parsing."""
    if plain:
        return await message.answer(text, parse_mode=None, reply_parameters=reply_parameters(message))
    return await message.answer(text, reply_parameters=reply_parameters(message))


def telegram_ask(message: Message, query: str, me: User) -> Ask:
    replied = addressing.replied_message(message) if addressing.in_group(message) else None
    chain_start = None
    if replied is not None:
        is_bot = replied.from_user is not None and replied.from_user.id == me.id
        chain_start = Replied(
            message_id=replied.message_id,
            role="bot" if is_bot else "user",
            text=normalize(addressing.without_bot_mentions(replied, me)),
            sender_id=addressing.author_id(replied) or 0,
        )
    return Ask(scope_of(message), query, message.message_id, chain_start)


async def answer_and_remember(
    message: Message, query: str, store: ContextStore, model: ModelClient, me: User
) -> None:
    assert message.bot is not None
    bot, chat_id, thread_id = message.bot, message.chat.id, message.message_thread_id

    async def send_answer(answer: str) -> list[tuple[int, str]]:
        # Model output is plain text: no HTML/Markdown parsing of what it wrote.
        pieces = split_message(answer)
        return [((await reply(message, piece, plain=True)).message_id, piece) for piece in pieces]

    await converse(
        telegram_ask(message, query, me),
        store,
        model,
        send_answer=send_answer,
        send_notice=lambda text: reply(message, text),
        waiting=lambda: ChatActionSender.typing(
            bot=bot,
            chat_id=chat_id,
            message_thread_id=thread_id if message.is_topic_message else None,
            initial_sleep=TYPING_AFTER_S,
        ),
    )
