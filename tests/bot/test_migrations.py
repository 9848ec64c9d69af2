from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.context_store import ContextStore
from bot.storage.db import alembic_config, create_engine, downgrade_database, upgrade_database
from bot.storage.scope import Scope
from dialogue.format import Turn

REPO = Path(__file__).resolve().parents[2]


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))


async def test_upgrade_downgrade_upgrade(database_url: URL) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_database(engine)
        await upgrade_database(engine)  # idempotent: start-up runs it every time
        assert "user_context" in await tables(engine)
        async with engine.connect() as connection:
            version = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert "telegram_inbox" in await tables(engine)

        await downgrade_database(engine, "base")
        assert not {"user_context", "telegram_inbox"} & await tables(engine)
        await upgrade_database(engine)
        assert "user_context" in await tables(engine)
    finally:
        await engine.dispose()


async def test_replicas_that_start_together_on_an_empty_database_all_migrate(pg_database: URL) -> None:
    """Every replica migrates at start-up; on a fresh database they race to
    create alembic_version and the first tables, and a loser crashed."""
    engines = [create_engine(pg_database) for _ in range(4)]
    try:
        await asyncio.gather(*(upgrade_database(engine) for engine in engines))
        async with engines[0].connect() as connection:
            versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert versions == [(ScriptDirectory.from_config(alembic_config()).get_current_head(),)]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_postgres_column_is_jsonb(pg_database: URL) -> None:
    engine = create_engine(pg_database)
    try:
        await upgrade_database(engine)
        async with engine.connect() as connection:
            types = dict(
                (
                    await connection.execute(
                        text(
                            "SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_name = 'user_context'"
                        )
                    )
                ).all()
            )
        assert types == {
            "chat_id": "bigint",
            "user_id": "bigint",
            "context": "jsonb",
            "updated_at": "timestamp with time zone",
        }
    finally:
        await engine.dispose()


async def test_conversation_scope_moves_rows_up_and_back_down(database_url: URL) -> None:
    """Rows written under 0001 survive 0002 as private conversations, and survive the way back."""
    engine = create_engine(database_url)
    try:
        await upgrade_database(engine, "0001")
        async with engine.begin() as connection:
            for user_id, message in ((5, "привет"), (2**40, "как дела")):
                turns = json.dumps([{"role": "user", "text": message}], ensure_ascii=False)
                await connection.execute(
                    text("INSERT INTO user_context (user_id, context) VALUES (:u, :c)"),
                    {"u": user_id, "c": turns},
                )
        await upgrade_database(engine, "0002_conversation_scope")
        store = ContextStore(engine, 3)
        assert await store.get(Scope(5, 5)) == [Turn("user", "привет")]
        assert await store.get(Scope(2**40, 2**40)) == [Turn("user", "как дела")]
        # The new key: one user, two chats.
        await store.append_exchange(Scope(-100, 5), "в группе", "ок", query_message_id=1)
        assert await store.get(Scope(5, 5)) == [Turn("user", "привет")]
        assert "chain_message" in await tables(engine)

        await downgrade_database(engine, "0001")
        assert "chain_message" not in await tables(engine)
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT user_id, context FROM user_context"))).all()
        contexts = {u: json.loads(c) if isinstance(c, str) else c for u, c in rows}
        # The group conversation has no place in the old schema; the private ones are kept.
        assert contexts == {
            5: [{"role": "user", "text": "привет"}],
            2**40: [{"role": "user", "text": "как дела"}],
        }
        await upgrade_database(engine)
        assert await ContextStore(engine, 3).get(Scope(5, 5)) == [Turn("user", "привет")]
    finally:
        await engine.dispose()


async def test_alembic_command_line_uses_bot_settings(pg_database: URL) -> None:
    """The documented manual command: `alembic -c bot/storage/alembic.ini upgrade head`."""
    env = {**os.environ, "DATABASE_URL": pg_database.render_as_string(hide_password=False)}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "bot/storage/alembic.ini", "upgrade", "head"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    engine = create_engine(pg_database)
    try:
        assert "user_context" in await tables(engine)
    finally:
        await engine.dispose()
