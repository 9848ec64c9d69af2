"""The terminal chat: the shared command table, the bot's exchange, on SQLite."""

from __future__ import annotations

import asyncio
import http.server
import io
import json
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import texts
from bot.core.commands import COMMANDS
from bot.core.i18n import build_i18n
from bot.local.terminal_chat import ANSWER_PREFIX, LOCAL_USER_ID, TerminalChat, run
from bot.settings import Settings
from bot.storage.context_store import ContextStore
from bot.storage.db import create_engine, upgrade_database
from bot.storage.scope import Scope
from dialogue.format import Turn
from tests.bot.fake_model import FakeModelServer


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'chat.sqlite3'}")
    await upgrade_database(engine)
    yield engine
    await engine.dispose()


async def test_terminal_commands_are_the_bots_and_start_offers_no_voice(engine: AsyncEngine) -> None:
    model = FakeModelServer()
    client = model.client()
    store = ContextStore(engine, 3)
    chat = TerminalChat(store, client, retention_days=0)
    i18n = build_i18n()
    try:
        with i18n.context(), i18n.use_locale("ru"):
            start = await chat.reply("/start")
            assert start == texts.START_TERMINAL and "голосов" not in start
            help_text = await chat.reply("/help")
            for name, command in COMMANDS.items():  # /settings, /optout, /optin: Telegram's own
                assert (f"/{name} " in help_text) is not command.telegram_only, name
            assert "/exit" in help_text
            assert texts.RETENTION_FOREVER in help_text
            assert await chat.reply("/settings") == texts.SETTINGS_TELEGRAM_ONLY
            assert await chat.reply("/nosuchcommand") == texts.UNKNOWN_COMMAND
            assert await chat.reply("привет") == ANSWER_PREFIX + "ответ на: привет"
            me = Scope(LOCAL_USER_ID, LOCAL_USER_ID)
            assert await store.get(me) == [Turn("user", "привет"), Turn("bot", "ответ на: привет")]
            assert await chat.reply("/forget") == texts.FORGOTTEN.format(conversations=1, messages=0)
            assert await store.get(me) == []
            assert [r["query"] for r in model.requests] == ["привет"]  # commands never reach the model
    finally:
        await client.aclose()


SERVED_CONTEXT_SIZE = 5  # not dialogue.format's default 3: adopted only if the chat asks the server


class _ModelServer(http.server.BaseHTTPRequestHandler):
    """A model server over HTTP whose model was trained with ``SERVED_CONTEXT_SIZE``."""

    requests: list[dict[str, Any]] = []

    def do_GET(self) -> None:  # the http.server API
        self._json({"status": "ok", "context_size": SERVED_CONTEXT_SIZE})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        self._json({"answer": f"ответ на: {body['query']}"})

    def _json(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def model_server() -> Iterator[str]:
    _ModelServer.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ModelServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def stored(path: Path, user_id: int) -> list[dict[str, str]] | None:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT context FROM user_context WHERE user_id = ?", (user_id,)).fetchone()
    return None if row is None else json.loads(row[0])


async def _seed(path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade_database(engine)
    store = ContextStore(engine, 3)
    await store.append_exchange(Scope(LOCAL_USER_ID, LOCAL_USER_ID), "давнее", "давний ответ")
    await store.append_exchange(Scope(7, 7), "вчерашнее", "свежий ответ")
    await engine.dispose()


def test_terminal_chat_adopts_the_servers_context_size_and_purges_expired_context(
    model_server: str, tmp_path: Path
) -> None:
    path = tmp_path / "chat.sqlite3"
    asyncio.run(_seed(path))
    with sqlite3.connect(path) as db:  # the local conversation was last touched 40 days ago
        db.execute("UPDATE user_context SET updated_at = datetime('now', '-40 days') WHERE user_id = 0")
    settings = Settings(database_url=f"sqlite:///{path}", context_retention_days=30, bot_language="ru")
    assert "context_size" not in settings.model_fields_set

    assert run(settings, model_server, stdin=io.StringIO("раз\nдва\nтри\n")) == 0

    contexts = [r["context"] for r in _ModelServer.requests]
    assert contexts[0] == [], "the expired conversation was purged at start"
    assert len(contexts[2]) == 4  # more than 3: the server's size, not the default
    turns = [("раз", "ответ на: раз"), ("два", "ответ на: два"), ("три", "ответ на: три")]
    everything = [t for q, a in turns for t in ({"role": "user", "text": q}, {"role": "bot", "text": a})]
    assert stored(path, LOCAL_USER_ID) == everything[-SERVED_CONTEXT_SIZE:]
    assert stored(path, 7) is not None, "a conversation within the retention stays"
