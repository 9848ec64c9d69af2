"""Table ``telegram_inbox``: every update is stored here before Telegram gets its acknowledgement.

The queries of the durable inbox; :mod:`bot.intake.workers` decides when to run them.
A row waits (``done_at IS NULL``) until its answer was sent and its exchange
stored. PostgreSQL serialises a chat across processes with a session-level
advisory lock per chat (keyed by chat id) on one connection of this process:
the lock goes away with the connection, so a crashed replica frees its chats
at once, and its unfinished rows are taken over as they are.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from bot.storage.chat_settings import StoredSettings
from bot.storage.db import CONNECTION_ERRORS
from bot.storage.scope import sender_id

log = logging.getLogger(__name__)
T = TypeVar("T")

# C0 controls and DEL, except tab and line breaks: PostgreSQL refuses NUL in text,
# and none of them means anything in a chat message.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A done row keeps only its ids: its payload (user texts, other people's too in
# reply_to_message) is dropped when it is marked done. Done rows stay this long:
# Telegram re-sends an unconfirmed update for up to 24 hours, and a re-sent one
# must still find its row to be dropped as a duplicate.
KEEP_DONE_S = 2 * 24 * 3600

# A whole getUpdates batch in one statement: a JSON array of rows, unpacked by the database.
_INSERT = {
    "postgresql": text(
        "INSERT INTO telegram_inbox (update_id, chat_id, sender_id, message_id, sent_at, payload) "
        "SELECT (r->>'update_id')::bigint, (r->>'chat_id')::bigint, (r->>'sender_id')::bigint, "
        "(r->>'message_id')::bigint, (r->>'sent_at')::bigint, r->'payload' "
        "FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r "
        "ON CONFLICT DO NOTHING RETURNING update_id"
    ),
    # WHERE true: SQLite's grammar needs it between a SELECT and ON CONFLICT.
    "sqlite": text(
        "INSERT INTO telegram_inbox (update_id, chat_id, sender_id, message_id, sent_at, payload) "
        "SELECT json_extract(value, '$.update_id'), json_extract(value, '$.chat_id'), "
        "json_extract(value, '$.sender_id'), json_extract(value, '$.message_id'), "
        "json_extract(value, '$.sent_at'), json_extract(value, '$.payload') "
        "FROM json_each(:rows) WHERE true "
        "ON CONFLICT DO NOTHING RETURNING update_id"
    ),
}
# The chat's next update, and how many messages its sender sent in this chat in the
# flood-control window up to it (from any replica: the count lives here, not in a
# process). Per chat: a busy group must not use up the sender's private chat. The
# index telegram_inbox_flood (migration 0004) serves the count. And the chat's row of
# chat_settings (NULLs without one), read in the statement that hands the update over:
# a change applies to the next message on every replica, at no round trip of its own.
_NEXT_COLUMNS = (
    "SELECT i.update_id, i.payload, (SELECT count(*) FROM telegram_inbox s "
    "WHERE s.chat_id = i.chat_id AND s.sender_id = i.sender_id AND s.sent_at > i.sent_at - :period "
    "AND s.update_id <= i.update_id) AS recent, c.reply_mode, c.language, c.learning "
    "FROM telegram_inbox i LEFT JOIN chat_settings c ON c.chat_id = i.chat_id "
    "WHERE i.chat_id = :chat_id AND i.done_at IS NULL AND i.update_id <> :after "
    "ORDER BY i.update_id LIMIT 1"
)
_NEXT = text(_NEXT_COLUMNS)
# PostgreSQL marks one row done and reads the chat's next in one round trip (the
# statement's snapshot predates its own update, hence ``update_id <> :after``).
_DONE_AND_NEXT = text(
    "WITH done AS (UPDATE telegram_inbox SET done_at = now(), payload = NULL WHERE update_id = :after) "
    + _NEXT_COLUMNS
)
_DONE_SQLITE = text(
    "UPDATE telegram_inbox SET done_at = CURRENT_TIMESTAMP, payload = NULL WHERE update_id = :after"
)
_PENDING_CHATS = text("SELECT DISTINCT chat_id FROM telegram_inbox WHERE done_at IS NULL LIMIT 1000")
_PURGE = {
    "postgresql": text("DELETE FROM telegram_inbox WHERE done_at < now() - make_interval(secs => :age)"),
    "sqlite": text("DELETE FROM telegram_inbox WHERE done_at < datetime('now', (-:age) || ' seconds')"),
}
_FORGET = text("DELETE FROM telegram_inbox WHERE sender_id = :sender_id")
_LOCK = text("SELECT pg_try_advisory_lock(:chat_id)")
_UNLOCK = text("SELECT pg_advisory_unlock(:chat_id)")


_FAILURES: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, DBAPIError)


class InboxUnavailable(RuntimeError):
    """The database did not take or give an inbox row in time."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One update as the inbox stores it; ``payload`` is Telegram's JSON, cleaned."""

    update_id: int
    chat_id: int
    sender_id: int | None
    message_id: int | None
    sent_at: int
    payload: dict[str, Any]

    def row(self) -> dict[str, Any]:
        # Not dataclasses.asdict: that deep-copies the payload.
        return {
            "update_id": self.update_id,
            "chat_id": self.chat_id,
            "sender_id": self.sender_id,
            "message_id": self.message_id,
            "sent_at": self.sent_at,
            "payload": self.payload,
        }


class Waiting(NamedTuple):
    """A chat's next update: its payload (JSON text or decoded), its sender's recent count, its chat's row."""

    update_id: int
    payload: str | dict[str, Any]
    recent: int
    # None for chat 0 (an update other than a message: its chat is not the inbox's to know).
    settings: StoredSettings | None


def strip_control(value: Any) -> Any:
    """``value`` with control characters removed from every string in it (the one place for this)."""
    if isinstance(value, str):
        return _CONTROL.sub("", value) if _CONTROL.search(value) else value
    if isinstance(value, dict):
        return {key: strip_control(item) for key, item in value.items()}
    if isinstance(value, list):
        return [strip_control(item) for item in value]
    return value


def entry_of(update: dict[str, Any]) -> Entry:
    payload = strip_control(update)
    message = payload.get("message") or payload.get("edited_message") or {}
    return Entry(
        update_id=int(payload["update_id"]),
        chat_id=int((message.get("chat") or {}).get("id", 0)),
        sender_id=sender_id(message),
        # An edit repeats its message's id: (chat_id, message_id) is unique, to drop re-sent messages.
        message_id=message.get("message_id") if "message" in payload else None,
        sent_at=int(message.get("date", 0)),
        payload=payload,
    )


async def forget_sender(conn_or_session: AsyncConnection | AsyncSession, sender_id: int) -> int:
    """Delete every inbox row of ``sender_id`` (for /forget); the number of rows deleted."""
    result = await conn_or_session.execute(_FORGET, {"sender_id": sender_id})
    return int(result.rowcount)  # type: ignore[attr-defined]


class Inbox:
    """The inbox queries, each bounded by ``timeout_s`` (waiting for a connection included)."""

    def __init__(self, engine: AsyncEngine, timeout_s: float, flood_period_s: float = 10.0) -> None:
        self.flood_period_s = flood_period_s
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.dialect = engine.dialect.name
        self.locks_chats = self.dialect == "postgresql"
        self.timeout_s = timeout_s
        self._lock_connection: AsyncConnection | None = None
        self._lock_mutex = asyncio.Lock()

    async def add(self, entries: list[Entry]) -> set[int]:
        """Store ``entries``; the update ids that were new (duplicates are dropped)."""

        rows = json.dumps([entry.row() for entry in entries], ensure_ascii=False)

        async def run(connection: AsyncConnection) -> set[int]:
            inserted = await connection.execute(_INSERT[self.dialect], {"rows": rows})
            return {int(update_id) for update_id in inserted.scalars()}

        return await self._pooled(run)

    async def next(self, chat_id: int, done: int | None = None) -> Waiting | None:
        """Mark ``done`` finished (if given), then the chat's oldest waiting update."""
        params = {"chat_id": chat_id, "after": -1 if done is None else done, "period": self.flood_period_s}

        async def run(connection: AsyncConnection) -> Waiting | None:
            if done is not None and self.dialect == "postgresql":
                row = (await connection.execute(_DONE_AND_NEXT, params)).first()
            else:
                if done is not None:
                    await connection.execute(_DONE_SQLITE, params)
                row = (await connection.execute(_NEXT, params)).first()
            if row is None:
                return None
            settings = StoredSettings(row[3], row[4], row[5]) if chat_id else None
            return Waiting(int(row[0]), row[1], int(row[2]), settings)

        return await self._pooled(run)

    async def pending_chats(self) -> list[int]:
        async def run(connection: AsyncConnection) -> list[int]:
            return [int(c) for c in (await connection.execute(_PENDING_CHATS)).scalars()]

        return await self._pooled(run)

    async def purge(self, age_s: int = KEEP_DONE_S) -> int:
        async def run(connection: AsyncConnection) -> int:
            return int((await connection.execute(_PURGE[self.dialect], {"age": age_s})).rowcount)

        return await self._pooled(run)

    async def lock_chat(self, chat_id: int) -> bool:
        """Take the chat for this process (PostgreSQL); False while another process has it."""
        if not self.locks_chats:
            return True
        return bool(await self._on_lock_connection(_LOCK, chat_id))

    async def unlock_chat(self, chat_id: int) -> None:
        if self.locks_chats:
            await self._on_lock_connection(_UNLOCK, chat_id)

    async def close(self) -> None:
        """End the lock session (not back to the pool: its advisory locks would go with it)."""
        connection, self._lock_connection = self._lock_connection, None
        if connection is not None:
            await connection.invalidate()
            await connection.close()

    @property
    def _bound_s(self) -> float:
        # The driver's own timeouts (connect, statement, pool checkout) fire first and
        # clean up after themselves; this one is the backstop for a wait between them.
        return self.timeout_s + 0.5

    async def _pooled(self, operation: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self._bound_s), self.engine.connect() as connection:
                return await operation(connection)
        except _FAILURES as exc:
            raise InboxUnavailable(type(exc).__name__) from exc

    async def _on_lock_connection(self, statement: Any, chat_id: int) -> Any:
        """Advisory locks live in one session; if it breaks, its locks are gone with it."""
        try:
            async with asyncio.timeout(self._bound_s), self._lock_mutex:
                if self._lock_connection is None:
                    self._lock_connection = await self.engine.connect()
                return (await self._lock_connection.execute(statement, {"chat_id": chat_id})).scalar()
        except _FAILURES as exc:
            await self._drop_lock_connection()
            raise InboxUnavailable(type(exc).__name__) from exc

    async def _drop_lock_connection(self) -> None:
        if self._lock_connection is not None:
            log.warning("inbox lock connection lost; chats in progress keep going")
            # Invalidating terminates the socket at once (no goodbye to a server that may be frozen).
            await self.close()
