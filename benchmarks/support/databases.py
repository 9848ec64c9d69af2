"""Throwaway PostgreSQL databases on the machine's server (127.0.0.1:5432 unless TEST_PG_* say otherwise)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

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
