"""The bot's /healthz and compose's healthcheck on it: not ready while the start-up runs, ready after.

The real ``python -m bot`` against the fake Bot API, its database behind a
forwarder that is not listening at first: the bot is stuck in its database
check, as a replica whose database is not up yet (or that is migrating) is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from benchmarks.support.bot_processes import (
    StubModelServer,
    bot_env,
    bot_process,
    eventually,
    terminate,
    wait_ready,
)
from benchmarks.support.fake_bot_api import FakeBotAPI
from benchmarks.support.net import free_port
from tests.deploy.support import FILLED_IN, GPU_STACK, compose_config


@contextlib.asynccontextmanager
async def forwarder(port: int, target: URL) -> AsyncIterator[None]:
    """From now on, 127.0.0.1:``port`` leads to ``target``'s PostgreSQL."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target.host, target.port or 5432)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(connect, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


async def health(port: int) -> tuple[int, str] | None:
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except httpx.TransportError:
        return None
    return response.status_code, response.json()["status"]


async def answered(port: int, status: int) -> tuple[int, str] | None:
    """The health answer once it has ``status`` (for :func:`eventually`)."""
    answer = await health(port)
    return answer if answer is not None and answer[0] == status else None


def compose_healthcheck(port: int) -> int:
    """Exit status of the bot's healthcheck command in docker-compose.yaml, run as the container would."""
    kind, *command = compose_config(GPU_STACK, FILLED_IN)["services"]["bot"]["healthcheck"]["test"]
    assert kind == "CMD" and command[0] == "python"
    env = {**os.environ, "HEALTH_PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode


async def port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_ready_only_once_the_start_up_has_finished(
    mode: str, api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path
) -> None:
    db_port, health_port, webhook_port = free_port(), free_port(), free_port()
    webhook = {
        "BOT_MODE": "webhook",
        "WEBHOOK_BASE_URL": "https://bot.example.org",
        "WEBHOOK_SECRET": "hook-secret",
        "WEBHOOK_PORT": str(webhook_port),
    }
    env = bot_env(
        api,
        pg_database.set(host="127.0.0.1", port=db_port),
        model,
        HEALTH_PORT=str(health_port),
        WEBHOOK_HOST="127.0.0.1",
        DB_CONNECT_ATTEMPTS="30",
        **(webhook if mode == "webhook" else {}),
    )
    log = tmp_path / "bot.log"
    async with bot_process(env, log) as bot:
        assert await eventually(lambda: answered(health_port, 503), 30) == (503, "starting"), log.read_text()
        # A few database attempts later (0.5 s, 1 s, 2 s apart) it is still starting.
        await asyncio.sleep(3)
        assert await health(health_port) == (503, "starting")
        assert await asyncio.to_thread(compose_healthcheck, health_port) != 0
        assert not api.calls_of("getUpdates") and not api.calls_of("setWebhook")
        # Caddy sends no webhook request to a replica that is not ready: nothing listens yet.
        assert not await port_open(webhook_port)

        async with forwarder(db_port, pg_database):
            await wait_ready(api, bot, log)
            assert await eventually(lambda: answered(health_port, 200), 15) == (200, "ready"), log.read_text()
            assert await asyncio.to_thread(compose_healthcheck, health_port) == 0
            assert await port_open(webhook_port) == (mode == "webhook")
            assert await terminate(bot) == 0, log.read_text()[-3000:]
    assert await health(health_port) is None, "the health server stops with the bot"
