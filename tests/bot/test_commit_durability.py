"""What is acknowledged outward commits synchronously; only the context store's exchange does not.

A statement hook reads ``synchronous_commit`` on the very connection (and in the
very transaction) that just ran each statement, on a real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.support.bot_processes import TOKEN, text_update
from benchmarks.support.fake_bot_api import FakeBotAPI
from bot.storage.context_store import ContextStore
from bot.storage.db import create_engine, upgrade_database
from bot.storage.inbox import Inbox, entry_of, forget_sender
from bot.storage.scope import Scope

TELEGRAM = FakeBotAPI(TOKEN)
WATCHED = {
    "INSERT INTO telegram_inbox": "inbox insert",
    "WITH done AS (UPDATE telegram_inbox": "inbox done mark",
    "WITH asked AS": "exchange",
    "DELETE FROM user_context WHERE user_id": "forget",
}


@contextmanager
def commit_modes(engine: AsyncEngine) -> Iterator[dict[str, str]]:
    """``{statement: synchronous_commit in force when it ran}`` for the WATCHED statements."""
    seen: dict[str, str] = {}

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        name = next((n for prefix, n in WATCHED.items() if statement.lstrip().startswith(prefix)), None)
        if name is not None:
            probe = conn.connection.dbapi_connection.cursor()
            probe.execute("SELECT current_setting('synchronous_commit')")
            seen[name] = probe.fetchone()[0]
            probe.close()

    event.listen(engine.sync_engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", after)


async def test_the_inbox_and_forget_commit_synchronously_exchanges_do_not(pg_database: URL) -> None:
    engine = create_engine(pg_database)
    await upgrade_database(engine)
    try:
        store = ContextStore(engine, 3, forget_inbox=forget_sender)
        with commit_modes(engine) as seen:
            await one_message_and_forget(engine, store)
        assert seen == {"inbox insert": "on", "exchange": "off", "inbox done mark": "on", "forget": "on"}
    finally:
        await engine.dispose()


async def test_on_an_exchange_engine_of_its_own_the_same_without_a_set_per_write(pg_database: URL) -> None:
    """As ``python -m bot`` runs: the exchange is one statement, no BEGIN, SET LOCAL, COMMIT round trips."""
    engine = create_engine(pg_database)
    exchange_engine = create_engine(pg_database, synchronous_commit=False)
    await upgrade_database(engine)
    statements: list[str] = []

    def ran(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.split(None, 2)[0] + " " + statement.split(None, 2)[1])

    try:
        store = ContextStore(engine, 3, forget_inbox=forget_sender, exchange_engine=exchange_engine)
        event.listen(exchange_engine.sync_engine, "before_cursor_execute", ran)
        with commit_modes(engine) as seen, commit_modes(exchange_engine) as seen_on_exchange_engine:
            await one_message_and_forget(engine, store)
        assert seen == {"inbox insert": "on", "inbox done mark": "on", "forget": "on"}
        assert seen_on_exchange_engine == {"exchange": "off"}
        assert statements == ["WITH asked"]
    finally:
        await engine.dispose()
        await exchange_engine.dispose()


async def one_message_and_forget(engine: AsyncEngine, store: ContextStore) -> None:
    inbox = Inbox(engine, timeout_s=5)
    try:
        update = text_update(TELEGRAM, 71, "привет")
        await inbox.add([entry_of(update)])  # then Telegram is told it was received
        row = await inbox.next(71)
        assert row is not None
        await store.append_exchange(Scope(71, 71), "привет", "ответ", query_message_id=1)
        await inbox.next(71, done=row.update_id)
        await store.forget_sender(71)  # then the user is told it is gone
    finally:
        await inbox.close()
