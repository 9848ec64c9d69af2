"""Fixtures of the bot tests: real databases (PostgreSQL on 127.0.0.1:5432 and SQLite)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.core.speech import FasterWhisperRecognizer
from bot.storage.db import create_engine, upgrade_database
from tests.bot.delivery_support import TOKEN, StubModelServer
from tests.bot.fake_bot_api import FakeBotAPI
from tests.support.speech import assemble_whisper_base, speech_ogg

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TEST_PG_USER", "postgres")


def pg_url(database: str) -> URL:
    return URL.create("postgresql+asyncpg", username=PG_USER, host=PG_HOST, port=PG_PORT, database=database)


@asynccontextmanager
async def temporary_pg_database() -> AsyncIterator[URL]:
    """A freshly created, uniquely named PostgreSQL database, dropped afterwards."""
    name = f"bot_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(pg_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield pg_url(name)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


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
