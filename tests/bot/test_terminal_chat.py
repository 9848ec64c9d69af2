"""The terminal chat: the shared command table, the bot's exchange, on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import texts
from bot.core.commands import COMMANDS
from bot.core.i18n import build_i18n
from bot.local.terminal_chat import ANSWER_PREFIX, LOCAL_USER_ID, TerminalChat
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
