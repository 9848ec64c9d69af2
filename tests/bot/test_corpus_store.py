"""The corpus and chat-settings tables on both databases (PostgreSQL and SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.chat_settings import ChatSettings, ChatSettingsStore
from bot.storage.corpus import Corpus, CorpusMessage, author_key

NOW = datetime.now(UTC)
ANNA, BORIS = author_key("s", 1), author_key("s", 2)


def row(chat: int, message_id: int, key: str, sent_at: datetime = NOW) -> CorpusMessage:
    return CorpusMessage(chat, message_id, message_id - 1, sent_at, key, f"текст {message_id}")


async def test_corpus_keeps_deletes_and_respects_optout(migrated_engine: AsyncEngine) -> None:
    corpus = Corpus(migrated_engine)
    assert await corpus.add(row(-1, 1, ANNA)) and await corpus.add(row(-1, 2, BORIS))
    assert not await corpus.add(row(-1, 1, ANNA))  # redelivered: stored once
    assert await corpus.add(row(-2, 3, ANNA, NOW - timedelta(days=400)))
    assert await corpus.opt_out(BORIS) == 1
    assert not await corpus.add(row(-1, 4, BORIS))
    await corpus.opt_in(BORIS)
    assert await corpus.add(row(-1, 5, BORIS))
    assert await corpus.purge_before(NOW - timedelta(days=365)) == 1
    assert await corpus.delete_chat(-1) == 2
    assert await corpus.delete_chat(-2) == 0


async def test_chat_settings_fall_back_to_the_defaults(migrated_engine: AsyncEngine) -> None:
    defaults = ChatSettings("mention", None, learning=False)
    store = ChatSettingsStore(migrated_engine, defaults)
    assert await store.get(-1) == defaults
    await store.set(-1, "learning", True)
    await store.set(-1, "reply_mode", "all")
    assert await store.get(-1) == ChatSettings("all", None, learning=True)
    await store.set(-1, "language", "en")
    await store.set(-1, "language", None)  # "auto"
    assert (await store.get(-1)).language is None and await store.get(-2) == defaults
    assert author_key("s", 1) != author_key("t", 1) and len(ANNA) == 64
