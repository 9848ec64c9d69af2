"""One turn of the conversation: context → model → reply → remember.

Shared by the text and voice handlers and the terminal chat. The exchange is
stored only after the answer was delivered, so a failure anywhere leaves the
stored context as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, nullcontext
from dataclasses import dataclass
from typing import Protocol

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
from bot.storage.context_edit import without_exchange
from bot.storage.context_store import ContextStore, ContextStoreUnavailable, StoredQuery
from bot.storage.scope import Scope
from dialogue.format import Turn, normalize

log = logging.getLogger(__name__)

# Sends the answer; the id and text of each message it became.
SendAnswer = Callable[[str], Awaitable[Sequence[tuple[int, str]]]]


class AnswerStream(Protocol):
    """An answer shown as it grows (bot/telegram/streaming.py): drafts, or a message edited."""

    async def show(self, text: str) -> None:
        """The answer so far; the sender may skip it (too soon after the last one, a 429)."""

    async def finish(self, text: str) -> Sequence[tuple[int, str]]:
        """The final text, never skipped; the id and text of each message it became."""


class _StreamBroken(Exception):
    def __init__(self, shown: str, error: ModelServerError) -> None:
        super().__init__(shown)
        self.shown = shown
        self.error = error


@dataclass(frozen=True, slots=True)
class Ask:
    """A message to answer. ``query`` is normalised here, once for the whole bot side."""

    scope: Scope
    query: str
    message_id: int | None = None  # None in the terminal chat
    replied: Replied | None = None  # the message this one replies to
    group: bool = False  # a group reply's context is always its chain
    edited: bool = False  # an edited message: see converse


def model_error_text(exc: ModelServerError) -> str:
    if isinstance(exc, ModelServerUnavailable):
        return _(texts.MODEL_UNAVAILABLE)
    if isinstance(exc, ModelServerTimeout):
        return _(texts.MODEL_TIMEOUT)
    if isinstance(exc, ModelServerRejected):
        return _(texts.MODEL_REJECTED)
    return _(texts.MODEL_FAILED)


async def context_for(ask: Ask, store: ContextStore, edited: StoredQuery | None = None) -> list[Turn]:
    """A reply's chain in a group; in a private chat only for a reply to an older message.

    For an ``edited`` query the plain context is what came before its exchange.
    """
    replied, scope = ask.replied, ask.scope
    if replied is not None and (ask.group or await _replies_to_older(replied, ask, store)):
        return await chain_context(store, scope.chat_id, replied, scope.user_id, store.context_size)
    stored = await store.get(scope)
    return stored if edited is None else without_exchange(stored, edited.text, edited.answered)


async def _replies_to_older(replied: Replied, ask: Ask, store: ContextStore) -> bool:
    """Older than the latest exchange: a reply to the bot's newest answer is the plain flow."""
    # Message ids grow within a chat: the latest answer comes after the latest query.
    latest = await store.latest_queries(ask.scope, 1, before=ask.message_id)
    return not latest or replied.message_id < latest[0].message_id


async def edited_query(ask: Ask, store: ContextStore) -> StoredQuery | None:
    """For an edit: the stored query it changes, when that is the conversation's latest."""
    latest = await store.latest_queries(ask.scope, 1)
    return latest[0] if latest and latest[0].message_id == ask.message_id else None


async def converse(
    ask: Ask,
    store: ContextStore,
    model: ModelClient,
    send_answer: SendAnswer,
    send_notice: Callable[[str], Awaitable[object]],
    waiting: Callable[[], AbstractAsyncContextManager[object]] = nullcontext,
    stream: Callable[[], AnswerStream] | None = None,
) -> None:
    """One exchange, whatever the front end: Telegram or the terminal chat.

    ``waiting`` wraps the model call (Telegram shows "typing" meanwhile). With
    ``stream`` the answer is streamed and shown as it grows; a break midway
    shows what arrived and the error line, and stores nothing. An
    edit (``ask.edited``) of the latest query is answered again and replaces
    that exchange; an edit of anything older, or one that leaves the query as
    it was, gets nothing.
    """
    query = normalize(ask.query)
    try:
        edited = await edited_query(ask, store) if ask.edited else None
        if ask.edited and (edited is None or edited.text == query):
            return
        if not query:
            await send_notice(_(texts.UNSUPPORTED_CONTENT))
            return
        context = await context_for(ask, store, edited)
    except ContextStoreUnavailable:
        await send_notice(_(texts.DATABASE_UNAVAILABLE))
        return
    growing = stream() if stream is not None else None
    try:
        if growing is None:
            async with waiting():
                # The server sends a normalised answer, or "" when the model produced nothing.
                answer = await model.answer(query, context) or None
        else:
            answer = await _streamed(model, query, context, growing, waiting) or None
    except _StreamBroken as broken:
        log.warning("answer broke off in chat %d: %s", ask.scope.chat_id, broken.error)
        assert growing is not None
        await growing.finish(f"{broken.shown}\n\n{model_error_text(broken.error)}")
        return
    except ModelServerError as exc:
        log.warning("no answer in chat %d: %s", ask.scope.chat_id, exc)
        await send_notice(model_error_text(exc))
        return

    finish = send_answer if growing is None else growing.finish
    pieces = await finish(answer or _(texts.FALLBACK_ANSWER))
    try:
        await _remember(ask, store, query, answer, pieces)
    except ContextStoreUnavailable:
        await send_notice(_(texts.CONTEXT_NOT_SAVED))


async def _streamed(
    model: ModelClient,
    query: str,
    context: Sequence[Turn],
    growing: AnswerStream,
    waiting: Callable[[], AbstractAsyncContextManager[object]],
) -> str:
    """The whole answer, normalised as ``/answer``'s is, shown as it grows."""
    joined = ""
    try:
        async with AsyncExitStack() as until_first_piece:
            await until_first_piece.enter_async_context(waiting())
            async for piece in model.stream(query, context):
                if not joined:
                    await until_first_piece.aclose()  # from here on the answer shows itself
                joined += piece
                await growing.show(normalize(joined))
    except ModelServerError as exc:
        if normalize(joined):
            raise _StreamBroken(normalize(joined), exc) from exc
        raise
    return normalize(joined)


async def _remember(
    ask: Ask, store: ContextStore, query: str, answer: str | None, pieces: Sequence[tuple[int, str]]
) -> None:
    # The fallback line (answer None) is the bot's apology, not dialogue: the model never sees it again.
    answer_pieces = pieces if answer else ()
    if ask.edited and ask.message_id is not None:
        await store.replace_exchange(ask.scope, ask.message_id, query, answer, answer_pieces)
        return
    await store.append_exchange(
        ask.scope,
        query,
        answer,
        query_message_id=ask.message_id,
        reply_to_message_id=ask.replied.message_id if ask.replied else None,
        answer_pieces=answer_pieces,
    )
