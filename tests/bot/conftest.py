"""Fixtures of the bot tests: real databases (PostgreSQL on 127.0.0.1:5432 and SQLite)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.support.bot_processes import TOKEN, StubModelServer
from benchmarks.support.databases import temporary_pg_database
from benchmarks.support.fake_bot_api import FakeBotAPI
from benchmarks.support.speech import assemble_whisper_base, speech_ogg
from bot.core.speech import FasterWhisperRecognizer
from bot.storage.db import create_engine, upgrade_database


@pytest.fixture
async def pg_database() -> AsyncIterator[URL]:
    async with temporary_pg_database() as url:
        yield url


@pytest.fixture(params=["postgresql", "sqlite"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[URL]:
    """An empty database of each supported kind."""
    if request.param == "postgresql":
        async with temporary_pg_database() as url:
            yield url
    else:
        yield URL.create("sqlite+aiosqlite", database=str(tmp_path / "context.sqlite3"))


@pytest.fixture
async def migrated_engine(database_url: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await upgrade_database(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


# --- speech -----------------------------------------------------------------


@pytest.fixture(scope="session")
def whisper_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return assemble_whisper_base(tmp_path_factory.mktemp("whisper-base"))


@pytest.fixture(scope="session")
def russian_voice_ogg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return speech_ogg("сегодня хорошая погода", tmp_path_factory.mktemp("voice"))


@pytest.fixture(scope="session")
def recognizer(whisper_model_dir: Path) -> Iterator[FasterWhisperRecognizer]:
    loaded = FasterWhisperRecognizer(str(whisper_model_dir), "ru", beam_size=1, max_seconds=60)
    yield loaded
    loaded.close()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    """A fake Bot API on loopback for the bot processes of the delivery and failure tests."""
    fake = await FakeBotAPI(TOKEN).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def model() -> AsyncIterator[StubModelServer]:
    """A stub model server whose answer times a test sets."""
    stub = await StubModelServer().start()
    yield stub
    await stub.stop()
