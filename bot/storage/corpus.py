"""The learning corpus (tables ``corpus_message``, ``corpus_optout``; migration 0005).

Rows hold no user id: ``author_key`` is HMAC-SHA256 of the sender id with
CORPUS_SECRET, so one person's rows can be found and deleted (/optout,
/forget) but not traced back without the secret. The text is anonymised
before it arrives here (bot/core/learning.py); this module only stores.
``finetuning.prepare --from-database`` reads the same table.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.storage.db import with_retries

# Nothing of an opted-out author goes in; a redelivered message changes nothing.
_INSERT = text(
    """
    INSERT INTO corpus_message (chat_id, message_id, reply_to_message_id, sent_at, author_key, text)
    SELECT :chat_id, :message_id, :reply_to, :sent_at, :author_key, :text
    WHERE NOT EXISTS (SELECT 1 FROM corpus_optout WHERE author_key = :author_key)
    ON CONFLICT (chat_id, message_id) DO NOTHING
    """
)
_DELETE_AUTHOR = text("DELETE FROM corpus_message WHERE author_key = :author_key")
_DELETE_CHAT = text("DELETE FROM corpus_message WHERE chat_id = :chat_id")
_OPT_OUT = text("INSERT INTO corpus_optout (author_key) VALUES (:author_key) ON CONFLICT DO NOTHING")
_OPT_IN = text("DELETE FROM corpus_optout WHERE author_key = :author_key")
_PURGE = text("DELETE FROM corpus_message WHERE sent_at < :cutoff")


def author_key(secret: str, sender_id: int) -> str:
    """The corpus's name for a sender: HMAC-SHA256 of the id, hex."""
    return hmac.new(secret.encode(), str(sender_id).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class CorpusMessage:
    chat_id: int
    message_id: int
    reply_to_message_id: int | None
    sent_at: datetime
    author_key: str
    text: str  # anonymised


async def forget_author(connection: AsyncConnection, key: str) -> int:
    """Delete the author's rows in the caller's transaction (/forget's); rows deleted."""
    return (await connection.execute(_DELETE_AUTHOR, {"author_key": key})).rowcount


class Corpus:
    def __init__(self, engine: AsyncEngine, attempts: int = 2) -> None:
        self.engine = engine  # /optout's two statements: one transaction
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._attempts = attempts

    async def add(self, row: CorpusMessage) -> bool:
        """Store one message; False when its author opted out or it was stored before."""
        params = {
            "chat_id": row.chat_id,
            "message_id": row.message_id,
            "reply_to": row.reply_to_message_id,
            "sent_at": row.sent_at,
            "author_key": row.author_key,
            "text": row.text,
        }

        async def run() -> bool:
            async with self._autocommit.connect() as connection:
                return (await connection.execute(_INSERT, params)).rowcount > 0

        return await with_retries(run, self._attempts)

    async def opt_out(self, key: str) -> int:
        """Stop collecting this author everywhere and delete what was collected; rows deleted."""

        async def run() -> int:
            async with self.engine.begin() as connection:
                await connection.execute(_OPT_OUT, {"author_key": key})
                return await forget_author(connection, key)

        return await with_retries(run, self._attempts)

    async def opt_in(self, key: str) -> None:
        await self._execute(_OPT_IN, {"author_key": key})

    async def delete_chat(self, chat_id: int) -> int:
        return await self._execute(_DELETE_CHAT, {"chat_id": chat_id})

    async def purge_before(self, cutoff: datetime) -> int:
        """CORPUS_RETENTION_DAYS: delete the rows sent before ``cutoff``."""
        return await self._execute(_PURGE, {"cutoff": cutoff})

    async def _execute(self, statement: object, params: dict[str, object]) -> int:
        async def run() -> int:
            async with self._autocommit.connect() as connection:
                return (await connection.execute(statement, params)).rowcount  # type: ignore[call-overload]

        return await with_retries(run, self._attempts)
