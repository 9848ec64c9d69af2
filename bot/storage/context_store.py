"""Conversations (table ``user_context``) and reply-chain messages (table ``chain_message``).

See docs/architecture.md, the bot. A conversation is (chat, sender): the
last messages, oldest first, at most ``context_size``. Every change computes
the new list inside the database, so concurrent messages of one user neither
lose an exchange nor leave a malformed list; there is no read-modify-write in
Python. Storing an exchange is idempotent per query message
``(chat_id, message_id)``: the delivery may answer a message twice after a
crash, it is never stored twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.storage import context_sql as sql
from bot.storage import corpus
from bot.storage.context_edit import replace_latest, stored_turns, turns_json
from bot.storage.db import ContextStoreUnavailable, with_retries
from bot.storage.scope import Scope
from dialogue.format import Role, Turn

log = logging.getLogger(__name__)
__all__ = ["ContextStore", "ContextStoreUnavailable"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ChainMessage:
    """A stored message of a reply chain: ``role`` "user" (a message the bot answered) or "bot"."""

    role: Role
    text: str
    sender_id: int


@dataclass(frozen=True, slots=True)
class StoredQuery:
    """A message the bot answered: ``answered`` is False when it got the fallback line."""

    message_id: int
    text: str
    answered: bool


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What /forget deleted: conversations, and messages (chain messages and raw updates)."""

    conversations: int
    messages: int


# The inbox's ``forget_sender(connection, sender_id) -> int`` (bot/storage/inbox.py) deletes the
# sender's stored raw updates; /forget runs it in the same transaction as the rest.
InboxForget = Callable[[AsyncConnection, int], Awaitable[int]]


class ContextStore:
    def __init__(
        self,
        engine: AsyncEngine,
        context_size: int,
        attempts: int = 3,
        forget_inbox: InboxForget | None = None,
        exchange_engine: AsyncEngine | None = None,
    ) -> None:
        """``exchange_engine``: one made with ``create_engine(..., synchronous_commit=False)``
        for the exchange writes; without it, each exchange opts out in its own transaction."""
        if context_size < 1:
            raise ValueError("context_size must be at least 1")
        self.context_size = context_size
        self.forget_inbox = forget_inbox
        self._attempts = attempts
        self._postgres = engine.dialect.name == "postgresql"
        # Single statements run in autocommit (no BEGIN/COMMIT round trips); the
        # SQLite exchange and /forget need a transaction of several statements.
        self._transactional = self.transactional_engine = engine
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._exchange = (
            None
            if exchange_engine is None
            else exchange_engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    async def get(self, scope: Scope) -> list[Turn]:
        """The stored conversation, oldest first; [] for a new one."""

        async def run() -> Any:
            async with self.engine.connect() as connection:
                result = await connection.execute(sql.SELECT_CONTEXT, _scope(scope))
                return result.scalar_one_or_none()

        return stored_turns(await self._retry(run))

    async def chain(self, chat_id: int, message_id: int, limit: int) -> list[tuple[int, ChainMessage]]:
        """The stored chain from ``message_id`` backwards: (message id, message), newest first."""

        async def run() -> Any:
            async with self.engine.connect() as connection:
                params = {"chat_id": chat_id, "message_id": message_id, "limit": limit}
                return (await connection.execute(sql.SELECT_CHAIN, params)).all()

        rows = await self._retry(run)
        return [(row.message_id, ChainMessage(row.role, row.text, row.sender_id)) for row in rows]

    async def latest_queries(self, scope: Scope, limit: int, before: int | None = None) -> list[StoredQuery]:
        """The conversation's newest stored queries (older than message ``before``), newest first."""

        async def run() -> Any:
            async with self.engine.connect() as connection:
                params = {**_scope(scope), "limit": limit, "before": before}
                return (await connection.execute(sql.SELECT_LATEST_QUERIES, params)).all()

        rows = await self._retry(run)
        return [StoredQuery(row.message_id, row.text, bool(row.answered)) for row in rows]

    async def append_exchange(
        self,
        scope: Scope,
        query: str,
        answer: str | None,
        *,
        query_message_id: int | None = None,
        reply_to_message_id: int | None = None,
        answer_pieces: Sequence[tuple[int, str]] = (),
    ) -> bool:
        """Remember the query and the answer; False when this query message was stored before.

        ``answer`` None: the model had nothing to say (the user got the fallback
        line, which is no dialogue), so only the query is kept; the next query
        follows it as the same speaker, and the format merges the two.
        With ``query_message_id`` the query and the answer's messages
        (``answer_pieces``: message id and text of each sent piece) also go to
        the reply chains. Without it (the terminal chat) only the conversation
        changes, and nothing makes the call idempotent.
        """
        params = {
            **_scope(scope),
            "turns": turns_json([], query, answer, self.context_size),
            "size": self.context_size,
            "message_id": query_message_id,
            "reply_to": reply_to_message_id,
            "query": query,
            "answers": _answers_json(answer_pieces),
        }
        if self._postgres:
            statement = sql.APPEND_POSTGRES if query_message_id is None else sql.EXCHANGE_POSTGRES

            async def run() -> bool:
                return await self._write_async(statement, params, always=query_message_id is None)

        elif query_message_id is None:

            async def run() -> bool:
                async with self.engine.connect() as connection:
                    await connection.execute(sql.APPEND_SQLITE, params)
                return True

        else:

            async def run() -> bool:
                async with self._transactional.begin() as connection:
                    if (await connection.execute(sql.INSERT_QUERY_SQLITE, params)).rowcount == 0:
                        return False
                    await connection.execute(sql.INSERT_ANSWERS_SQLITE, params)
                    await connection.execute(sql.APPEND_SQLITE, params)
                return True

        return await self._retry(run)

    async def _write_async(self, statement: Any, params: dict[str, Any], always: bool) -> bool:
        """One exchange statement, not waiting for its WAL flush (sql.ASYNC_COMMIT says why).

        True if it stored something (``always``: it always does).
        """
        connecting: AbstractAsyncContextManager[AsyncConnection]
        if self._exchange is not None:  # connections set up for it: no round trips of its own
            connecting = self._exchange.connect()
        else:
            connecting = self._transactional.begin()  # opts out in this transaction only
        async with connecting as connection:
            if self._exchange is None:
                await connection.execute(sql.ASYNC_COMMIT)
            stored = await connection.execute(statement, params)
            return always or stored.first() is not None

    async def replace_exchange(
        self,
        scope: Scope,
        query_message_id: int,
        query: str,
        answer: str | None,
        answer_pieces: Sequence[tuple[int, str]] = (),
    ) -> bool:
        """The latest exchange, whose query message was edited, becomes this one.

        False (and nothing changes) when ``query_message_id`` is not the
        conversation's newest stored query. See :mod:`bot.storage.context_edit`.
        """
        params = {
            **_scope(scope),
            "message_id": query_message_id,
            "query": query,
            "answer": answer,
            "answers": _answers_json(answer_pieces),
        }

        async def run() -> bool:
            async with self._transactional.begin() as connection:
                return await replace_latest(connection, params, self.context_size)

        return await self._retry(run)

    async def clear(self, scope: Scope) -> None:
        """Forget this conversation and its chain messages (nothing happens for an unknown one)."""

        async def run() -> None:
            async with self._transactional.begin() as connection:
                await connection.execute(sql.CLEAR, _scope(scope))
                await connection.execute(sql.CLEAR_CHAIN, _scope(scope))

        await self._retry(run)

    async def forget_sender(self, sender_id: int, author_key: str | None = None) -> Forgotten:
        """Delete everything stored about ``sender_id`` in every chat, in one transaction.

        ``author_key`` (bot/storage/corpus.py) also deletes the sender's learning corpus.
        """

        async def run() -> Forgotten:
            async with self._transactional.begin() as connection:
                params = {"sender_id": sender_id}
                conversations = (await connection.execute(sql.FORGET_CONTEXT, params)).rowcount
                messages = (await connection.execute(sql.FORGET_CHAIN, params)).rowcount
                if self.forget_inbox is not None:
                    messages += await self.forget_inbox(connection, sender_id)
                if author_key is not None:
                    messages += await corpus.forget_author(connection, author_key)
            return Forgotten(conversations, messages)

        return await self._retry(run)

    async def purge_older_than(self, days: int) -> int:
        """Delete conversations and chain messages untouched for ``days`` days; rows deleted."""
        statements = sql.PURGE_POSTGRES if self._postgres else sql.PURGE_SQLITE

        async def run() -> int:
            async with self._transactional.begin() as connection:
                return sum([(await connection.execute(s, {"days": days})).rowcount for s in statements])

        return await self._retry(run)

    async def _retry(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await with_retries(operation, self._attempts)


def _answers_json(pieces: Sequence[tuple[int, str]]) -> str:
    return json.dumps([{"message_id": i, "text": t} for i, t in pieces], ensure_ascii=False)


def _scope(scope: Scope) -> dict[str, int]:
    return {"chat_id": scope.chat_id, "user_id": scope.user_id}
