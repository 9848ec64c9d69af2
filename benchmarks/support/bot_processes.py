"""Pieces of the delivery tests: a model server with settable answer times, bot processes, updates."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from benchmarks.support.fake_bot_api import FakeBotAPI
from benchmarks.support.net import free_port
from benchmarks.support.processes import start_module

TOKEN = "123456789:delivery-test-token_abc"
CONTEXT_SIZE = 20  # every exchange of a test stays visible in the stored context


class StubModelServer:
    """``POST /answer`` answers "ответ на: <query>" after ``delays[query]`` (or ``delay_s``) seconds.

    ``POST /v1/chat/completions`` streams the same answer, after the same delay:
    ``chunks`` pieces (1: whole), ``chunk_delay_s`` apart; with ``break_after``
    the connection drops after that many pieces, before the end.
    """

    def __init__(self) -> None:
        self.delay_s = 0.0
        self.delays: dict[str, float] = {}
        self.queries: list[str] = []
        self.chunks = 1
        self.chunk_delay_s = 0.0
        self.break_after: int | None = None
        self.streamed = 0  # requests of /v1/chat/completions
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> StubModelServer:
        app = web.Application()
        app.router.add_post("/answer", self._answer)
        app.router.add_post("/v1/chat/completions", self._stream)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.Response:
        query = (await request.json())["query"]
        self.queries.append(query)
        await asyncio.sleep(self.delays.get(query, self.delay_s))
        return web.json_response({"answer": f"ответ на: {query}"})

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        query = (await request.json())["messages"][-1]["content"]
        self.queries.append(query)
        self.streamed += 1
        await asyncio.sleep(self.delays.get(query, self.delay_s))
        words = f"ответ на: {query}".split(" ")
        size = -(-len(words) // self.chunks)
        pieces = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for index, piece in enumerate(pieces):
            if index == self.break_after:
                assert request.transport is not None
                request.transport.abort()  # as a crashed server: no [DONE], no end of the chunked body
                return response
            delta = {"content": piece if index == 0 else " " + piece}
            await response.write(f"data: {json.dumps({'choices': [{'delta': delta}]})}\n\n".encode())
            await asyncio.sleep(self.chunk_delay_s)
        await response.write(b"data: [DONE]\n\n")
        return response

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "context_size": CONTEXT_SIZE})


def text_update(api: FakeBotAPI, chat_id: int, text_: str, update_id: int | None = None) -> dict[str, Any]:
    """A private-chat text message as Telegram sends it (numbered by ``api``, not yet handed out)."""
    return api.message_update(chat_id, {"text": text_}, update_id=update_id)


def bot_env(api: FakeBotAPI, database: URL, model: StubModelServer, **extra: str) -> dict[str, str]:
    return {
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api.base_url,
        "MODEL_SERVER_URL": model.url,
        "DATABASE_URL": database.render_as_string(hide_password=False),
        "CONTEXT_SIZE": str(CONTEXT_SIZE),
        "ASR_MODEL": "/nonexistent",  # voice is not what these tests are about
        "HF_HUB_OFFLINE": "1",
        "RATE_LIMIT_MESSAGES": "1000",
        "DB_CONNECT_ATTEMPTS": "3",
        "LOG_LEVEL": "INFO",
        **extra,
    }


@asynccontextmanager
async def bot_process(env: dict[str, str], log_path: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    """``python -m bot``; killed at the end if the test did not stop it."""
    process = start_module("bot", env, log_path)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def wait_ready(api: FakeBotAPI, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until the bot polls (or, in webhook mode, has set its webhook)."""
    calls = len(api.calls_of("getUpdates")) + len(api.calls_of("setWebhook"))

    def ready() -> bool:
        now = len(api.calls_of("getUpdates")) + len(api.calls_of("setWebhook"))
        return now > calls or process.poll() is not None

    await api.wait_for(ready, 60)
    assert process.poll() is None, log_path.read_text()[-3000:]


async def terminate(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 40) -> int:
    process.send_signal(sig)
    return await asyncio.to_thread(process.wait, timeout)


async def stored_contexts(url: URL) -> dict[int, list[dict[str, str]]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT user_id, context FROM user_context"))).all()
    finally:
        await engine.dispose()
    return {int(u): json.loads(c) if isinstance(c, str) else c for u, c in rows}


def expected_context(queries: list[str]) -> list[dict[str, str]]:
    turns = []
    for query in queries:
        turns += [{"role": "user", "text": query}, {"role": "bot", "text": f"ответ на: {query}"}]
    return turns[-CONTEXT_SIZE:]


async def eventually(check: Any, timeout: float = 15.0) -> Any:
    """``check()`` once it is truthy (polled), else its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)
