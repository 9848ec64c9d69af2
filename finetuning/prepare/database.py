"""The bot's learning corpus (table ``corpus_message``) as message records, like an export's.

Each stored message becomes the same raw :class:`Message` the export reader
decodes (the author key as the sender, ``reply_to_message_id`` as the reply,
``sent_at`` as the date) and goes through :func:`records.message_records`,
so the drop rules, the normalisation and the sampler are the ones of
exports. The bot anonymised the texts before storing them: they are not
anonymised again (``SampleOptions.anonymize`` is off for this input).

Rows are read a page at a time in primary-key order (chat, then message
id: Telegram numbers a chat's messages in the order they were sent), so
memory stays small on a large corpus. The drivers are the bot's own
(asyncpg, aiosqlite), so any ``DATABASE_URL`` the bot accepts works here.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from finetuning.prepare.desktop_decoder import Message
from finetuning.prepare.records import NEW_CHAT, RecordBatch, SampleOptions, message_records

PAGE = 5000
TIMEOUT_S = 10.0
_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}

_metadata = sa.MetaData()
# The columns read of bot/storage/migrations/versions/0005_chat_settings_and_corpus.py's table.
corpus_message = sa.Table(
    "corpus_message",
    _metadata,
    sa.Column("chat_id", sa.BigInteger, primary_key=True),
    sa.Column("message_id", sa.BigInteger, primary_key=True),
    sa.Column("reply_to_message_id", sa.BigInteger),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("author_key", sa.Text),
    sa.Column("text", sa.Text),
)


class DatabaseError(Exception):
    """The database cannot be read: one line naming it (password hidden) and the problem."""


@dataclass(frozen=True)
class CorpusQuery:
    """Which stored messages to read: some chats (all when empty), sent in [since, until)."""

    url: str
    chat_ids: tuple[int, ...] = ()
    since: datetime | None = None
    until: datetime | None = None

    def shown(self) -> str:
        """The URL as given, with the password hidden."""
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except ArgumentError:
            return "the database URL"


def _url(text: str) -> URL:
    try:
        url = make_url(text)
    except ArgumentError:
        raise DatabaseError("not a database URL (postgresql://user@host/db or sqlite:///path.db)") from None
    drivername = _DRIVERS.get(url.get_backend_name())
    if drivername is None:
        raise DatabaseError(f"unsupported database {url.get_backend_name()!r}: use PostgreSQL or SQLite")
    if drivername.startswith("sqlite") and not (url.database and Path(url.database).is_file()):
        # SQLite would create an empty file and report an empty corpus.
        raise DatabaseError(f"{url.database or 'an in-memory database'}: no such SQLite database file")
    return url.set(drivername=drivername)


def _where(query: CorpusQuery) -> list[Any]:
    t = corpus_message.c
    conditions: list[Any] = []
    if query.chat_ids:
        conditions.append(t.chat_id.in_(query.chat_ids))
    if query.since is not None:
        conditions.append(t.sent_at >= query.since)
    if query.until is not None:
        conditions.append(t.sent_at < query.until)
    return conditions


class _Reader:
    """One engine on one event loop for a whole read; every call is a bounded wait."""

    def __init__(self, query: CorpusQuery) -> None:
        self.query = query
        url = _url(query.url)
        self.runner = asyncio.Runner()
        self.engine: AsyncEngine = create_async_engine(url, connect_args={"timeout": TIMEOUT_S})

    def run(self, statement: Any) -> list[Any]:
        async def fetch() -> list[Any]:
            async with self.engine.connect() as connection:
                return list((await connection.execute(statement)).all())

        try:
            return self.runner.run(asyncio.wait_for(fetch(), TIMEOUT_S * 3))
        except (SQLAlchemyError, OSError, TimeoutError) as error:
            raise DatabaseError(f"{self.query.shown()}: {_reason(error)}") from None

    def close(self) -> None:
        self.runner.run(self.engine.dispose())
        self.runner.close()


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer in {TIMEOUT_S * 3:.0f} s"
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines() or [type(cause).__name__]
    return lines[0]


def _rows(reader: _Reader) -> Iterator[Any]:
    t = corpus_message.c
    columns = (t.chat_id, t.message_id, t.reply_to_message_id, t.sent_at, t.author_key, t.text)
    after: tuple[int, int] | None = None
    while True:
        statement = sa.select(*columns).where(*_where(reader.query))
        if after is not None:
            chat, message = after
            statement = statement.where(
                sa.or_(t.chat_id > chat, sa.and_(t.chat_id == chat, t.message_id > message))
            )
        page = reader.run(statement.order_by(t.chat_id, t.message_id).limit(PAGE))
        yield from page
        if len(page) < PAGE:
            return
        after = (page[-1].chat_id, page[-1].message_id)


def _message(row: Any) -> Message:
    sent_at: datetime = row.sent_at
    if sent_at.tzinfo is None:  # SQLite keeps no zone; the bot writes UTC
        sent_at = sent_at.replace(tzinfo=UTC)
    return Message(
        id=row.message_id,
        type="message",
        # "user…": the export's form of a person, which the record stage keeps as the speaker.
        from_id=f"user{row.author_key}",
        text=row.text,
        date_unixtime=sent_at.timestamp(),
        reply_to_message_id=row.reply_to_message_id,
    )


def database_records(
    query: CorpusQuery, options: SampleOptions, stats: Counter[str]
) -> Iterator[RecordBatch]:
    """The records of every chat of the query in batches, each chat opened by NEW_CHAT."""
    options = replace(options, anonymize=False)  # anonymised before it was stored
    reader = _Reader(query)
    try:
        for _, rows in itertools.groupby(_rows(reader), key=lambda row: row.chat_id):
            stats["chats"] += 1
            yield from message_records(map(_message, rows), options, stats, NEW_CHAT)
    finally:
        reader.close()


def newest_cutoff(query: CorpusQuery, fraction: float, minimum: int) -> tuple[datetime | None, int, int]:
    """The send time from which the newest messages are held out, the messages in all and held out.

    The newest ``fraction`` of the query's messages, and at least ``minimum``
    where the corpus has twice as many; None where the query finds nothing.
    """
    t = corpus_message.c
    count = sa.select(sa.func.count()).select_from(corpus_message).where(*_where(query))
    reader = _Reader(query)
    try:
        total = reader.run(count)[0][0]
        # At least ``minimum`` while that leaves half the corpus to train on.
        held = max(round(total * fraction), min(minimum, total // 2), min(total, 1))
        if held == 0:
            return None, total, 0
        statement = sa.select(t.sent_at).where(*_where(query)).order_by(t.sent_at.desc())
        cutoff: datetime = reader.run(statement.offset(held - 1).limit(1))[0][0]
        # Messages sent at the cutoff's very time are held out too.
        held = reader.run(count.where(t.sent_at >= cutoff))[0][0]
    finally:
        reader.close()
    return (cutoff if cutoff.tzinfo else cutoff.replace(tzinfo=UTC)), total, held
