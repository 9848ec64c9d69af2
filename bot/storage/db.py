"""Database engine, migrations to head and the start-up connectivity check."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from bot.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
# Errors of an unreachable or restarting server (asyncpg raises a plain OSError on connect);
# not errors of the statement itself, which a retry would not fix.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, OSError, TimeoutError)


# The advisory lock of migrations, in PostgreSQL's two-key form ("bot", "mig"):
# the inbox locks chats by the one-key form, a separate space of keys.
MIGRATION_LOCK = (0x626F74, 0x6D6967)


class ContextStoreUnavailable(RuntimeError):
    """The database did not answer after a few retries (the stores' error; their callers apologise)."""


class DatabaseUnavailable(RuntimeError):
    """The database did not answer within the configured retries."""


def create_engine(
    settings: Settings | URL | str, timeout_s: float | None = None, *, synchronous_commit: bool = True
) -> AsyncEngine:
    """The async engine; every wait on the database is bounded by ``timeout_s`` (DB_TIMEOUT_S).

    ``synchronous_commit=False`` (PostgreSQL): its commits do not wait for their WAL
    flush, for the context store's exchange writes only (context_sql.ASYNC_COMMIT says why).
    """
    if isinstance(settings, Settings):
        url, timeout_s = make_url(settings.sqlalchemy_url), settings.db_timeout_s
    else:
        url, timeout_s = make_url(settings), timeout_s or 5.0
    connect_args: dict[str, object] = {}
    if url.get_backend_name() == "postgresql":
        # Commits wait for their WAL flush (PostgreSQL's default): an inbox row is
        # acknowledged to Telegram once committed, and a /forget to the user. Only
        # the context store's exchange writes opt out, on an engine of their own: set
        # when connecting, it costs no round trips per write (a SET LOCAL costs three).
        if not synchronous_commit:
            connect_args["server_settings"] = {"synchronous_commit": "off"}
        # Client side: a frozen server accepts TCP and then answers nothing.
        connect_args["timeout"] = timeout_s  # connecting
        connect_args["command_timeout"] = timeout_s  # each statement
    else:
        connect_args["timeout"] = timeout_s  # SQLite's wait for a locked database
    # No pool_pre_ping (a round trip per checkout): the context store retries
    # on a connection broken by a database restart, and the pool drops it.
    # Larger than the default 5 + 10: each chat in progress may hold one briefly.
    return create_async_engine(
        url, connect_args=connect_args, pool_timeout=timeout_s, pool_size=10, max_overflow=20
    )


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
    """Apply the alembic migrations up to ``revision`` (idempotent).

    Every replica migrates at start-up. On PostgreSQL they take turns under a
    transaction-level advisory lock (released at commit, or with a crashed
    replica's connection): on a fresh database they raced to create the same
    tables, and the losers crashed.
    """
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            key1, key2 = MIGRATION_LOCK
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key1, :key2)"), {"key1": key1, "key2": key2}
            )
        await connection.run_sync(_upgrade, revision)


async def downgrade_database(engine: AsyncEngine, revision: str = "base") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade, revision)


async def check_database(
    engine: AsyncEngine, attempts: int = 5, max_wait_s: float = 8.0, give_up_after_s: float = 60.0
) -> None:
    """``SELECT 1`` with bounded exponential backoff; raises :class:`DatabaseUnavailable`.

    Each attempt is bounded by the engine's timeouts; the whole check gives up
    after ``give_up_after_s``. A refusal (wrong password, no such database) is
    not retried: waiting does not fix it.
    """
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(attempts) | stop_after_delay(give_up_after_s),
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
    except DBAPIError as exc:
        # asyncpg's own words, e.g. 'password authentication failed for user "bot"' or
        # 'database "x" does not exist'; they never contain the password.
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise DatabaseUnavailable(f"database {engine.url!r} refused the connection: {reason}") from exc


async def with_retries(operation: Callable[[], Awaitable[T]], attempts: int) -> T:
    """``operation`` again on a broken connection; :class:`ContextStoreUnavailable` after ``attempts``."""
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.2, max=2.0),
            retry=retry_if_exception_type(CONNECTION_ERRORS),
            reraise=True,
        ):
            with attempt:
                return await operation()
    except CONNECTION_ERRORS as exc:
        log.warning("context store unavailable: %s", type(exc).__name__)
        raise ContextStoreUnavailable(str(type(exc).__name__)) from exc
    raise AssertionError("unreachable")
