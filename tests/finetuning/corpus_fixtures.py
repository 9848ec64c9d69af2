"""The bot's learning corpus in a real database, written by the tests.

The table comes from the bot's own migrations (bot.storage.db), so a change
of its schema breaks these tests rather than passing them unnoticed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from bot.storage.db import create_engine, upgrade_database

# Written as the bot's SQLAlchemy code writes it (SQLite keeps the UTC wall time as text).
_CORPUS = sa.Table(
    "corpus_message",
    sa.MetaData(),
    sa.Column("chat_id", sa.BigInteger),
    sa.Column("message_id", sa.BigInteger),
    sa.Column("reply_to_message_id", sa.BigInteger),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("author_key", sa.Text),
    sa.Column("text", sa.Text),
)
START = 1_700_000_000  # unix time of minute 0: 2023-11-14 22:13:20 UTC


@dataclass(frozen=True)
class Stored:
    """A corpus_message row; ``minute`` counts from START."""

    chat_id: int
    message_id: int
    author: str
    text: str
    minute: float
    reply_to: int | None = None

    def row(self) -> dict[str, Any]:
        return {
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "reply_to_message_id": self.reply_to,
            "sent_at": datetime.fromtimestamp(START + 60 * self.minute, UTC),
            "author_key": self.author,
            "text": self.text,
        }


async def store_corpus(url: URL, messages: Sequence[Stored]) -> None:
    """The bot's tables at head, and ``messages`` in corpus_message."""
    engine = create_engine(url)
    try:
        await upgrade_database(engine)
        async with engine.begin() as connection:
            if messages:
                await connection.execute(sa.insert(_CORPUS), [m.row() for m in messages])
    finally:
        await engine.dispose()


def plain_url(url: URL) -> str:
    """The URL as a user writes DATABASE_URL: no driver name (postgresql://…, sqlite:///…)."""
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=False)


def sqlite_url(path: Path) -> URL:
    return URL.create("sqlite+aiosqlite", database=str(path))


def as_export(messages: Sequence[Stored]) -> dict[str, Any]:
    """The same messages as a Telegram Desktop account export (one chat per chat_id)."""
    chats: dict[int, list[dict[str, Any]]] = {}
    for m in sorted(messages, key=lambda m: (m.chat_id, m.message_id)):
        message: dict[str, Any] = {
            "id": m.message_id,
            "type": "message",
            "date_unixtime": str(int(START + 60 * m.minute)),
            "from": m.author,
            "from_id": f"user{m.author}",
            "text": m.text,
            "text_entities": [],
        }
        if m.reply_to is not None:
            message["reply_to_message_id"] = m.reply_to
        chats.setdefault(m.chat_id, []).append(message)
    listed = [
        {"name": f"chat {chat_id}", "type": "private_supergroup", "id": chat_id, "messages": chat}
        for chat_id, chat in chats.items()
    ]
    return {"chats": {"about": "", "list": listed}}
