"""Alembic environment: runs on a connection handed over by bot.storage.db, or on the settings' URL."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_from_settings() -> None:
    from bot.settings import Settings

    engine = create_async_engine(Settings().sqlalchemy_url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
            await connection.commit()
    finally:
        await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _migrate(connection)
else:
    # Command-line use: `alembic -c bot/storage/alembic.ini upgrade head`.
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    if context.is_offline_mode():
        raise SystemExit("offline (--sql) migrations are not supported; run them against the database")
    asyncio.run(_migrate_from_settings())
