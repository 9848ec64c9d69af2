"""Database engine, migrations to head and the start-up connectivity check."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from bot.settings import Settings

log = logging.getLogger(__name__)

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
# Errors of an unreachable or restarting server (asyncpg raises a plain OSError on connect);
# not errors of the statement itself, which a retry would not fix.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, OSError, TimeoutError)


class DatabaseUnavailable(RuntimeError):
    """The database did not answer within the configured retries."""


def create_engine(settings: Settings | URL | str) -> AsyncEngine:
    url = make_url(settings.sqlalchemy_url if isinstance(settings, Settings) else settings)
    connect_args = {}
    if url.get_backend_name() == "postgresql":
        # A context write need not wait for its WAL flush (~5 ms on a plain disk,
        # more than the rest of a message's handling). A PostgreSQL crash may then
        # lose the last fraction of a second of context updates, never corrupt one.
        connect_args["server_settings"] = {"synchronous_commit": "off"}
    # No pool_pre_ping (a round trip per checkout): the context store retries
    # on a connection broken by a database restart, and the pool drops it.
    return create_async_engine(url, connect_args=connect_args)


def alembic_config() -> Config:
    return Config(str(ALEMBIC_INI))


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _downgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


async def upgrade_database(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply the alembic migrations up to ``revision`` (idempotent)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


async def downgrade_database(engine: AsyncEngine, revision: str = "base") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade, revision)


async def check_database(engine: AsyncEngine, attempts: int = 5, max_wait_s: float = 8.0) -> None:
    """``SELECT 1`` with bounded exponential backoff; raises :class:`DatabaseUnavailable`."""
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.5, max=max_wait_s),
            retry=retry_if_exception_type(CONNECTION_ERRORS),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        ):
            with attempt:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
    except CONNECTION_ERRORS as exc:
        # The URL is rendered with its password masked.
        raise DatabaseUnavailable(
            f"database {engine.url!r} unreachable after {attempts} attempts: {type(exc).__name__}"
        ) from exc
