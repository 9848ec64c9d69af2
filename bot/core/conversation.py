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

from bot.core import texts
from bot.core.i18n import gettext as _
from bot.core.model_client import (
    ModelClient,
    ModelServerError,
    ModelServerRejected,
    ModelServerTimeout,
    ModelServerUnavailable,
)
from bot.core.reply_chain import Replied, chain_context
from bot.storage.context_store import ContextStore, ContextStoreUnavailable
from bot.storage.scope import Scope
from dialogue.format import Turn, normalize

log = logging.getLogger(__name__)

# Sends the answer; the id and text of each message it became.
SendAnswer = Callable[[str], Awaitable[Sequence[tuple[int, str]]]]


@dataclass(frozen=True, slots=True)
class Ask:
    """A message to answer. ``query`` is normalised here, once for the whole bot side."""

    scope: Scope
    query: str
    message_id: int | None = None  # None in the terminal chat
    replied: Replied | None = None  # the message this one replies to
    group: bool = False  # a group reply's context is always its chain


def model_error_text(exc: ModelServerError) -> str:
    if isinstance(exc, ModelServerUnavailable):
        return _(texts.MODEL_UNAVAILABLE)
    if isinstance(exc, ModelServerTimeout):
        return _(texts.MODEL_TIMEOUT)
    if isinstance(exc, ModelServerRejected):
        return _(texts.MODEL_REJECTED)
    return _(texts.MODEL_FAILED)


async def context_for(ask: Ask, store: ContextStore) -> list[Turn]:
    """A reply's chain in a group; in a private chat only for a reply to an older message."""
    replied, scope = ask.replied, ask.scope
    if replied is not None and (ask.group or await _replies_to_older(replied, ask, store)):
        return await chain_context(store, scope.chat_id, replied, scope.user_id, store.context_size)
    return await store.get(scope)


async def _replies_to_older(replied: Replied, ask: Ask, store: ContextStore) -> bool:
    """Older than the latest exchange: a reply to the bot's newest answer is the plain flow."""
    # Message ids grow within a chat: the latest answer comes after the latest query.
    latest = await store.latest_queries(ask.scope, 1, before=ask.message_id)
    return not latest or replied.message_id < latest[0].message_id


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
            answer = await model.answer(query, context) or None
    except ModelServerError as exc:
        log.warning("no answer in chat %d: %s", ask.scope.chat_id, exc)
        await send_notice(model_error_text(exc))
        return

    pieces = await send_answer(answer or _(texts.FALLBACK_ANSWER))
    try:
        # The fallback line is the bot's apology, not dialogue: the model never sees it again.
        await store.append_exchange(
            ask.scope,
            query,
            answer,
            query_message_id=ask.message_id,
            reply_to_message_id=ask.replied.message_id if ask.replied else None,
            answer_pieces=pieces if answer else (),
        )
    except ContextStoreUnavailable:
        await send_notice(_(texts.CONTEXT_NOT_SAVED))
