"""Handlers through a real Dispatcher (feed_update); the Bot's HTTP session is the mocked boundary."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.types import Update
from sqlalchemy.engine import URL

from benchmarks.support.speech import silence_ogg
from bot.core import texts
from bot.core.speech import FasterWhisperRecognizer, Recognizer
from bot.settings import Settings
from bot.storage.context_store import ContextStore
from bot.storage.db import create_engine, upgrade_database
from bot.storage.scope import Scope
from bot.telegram.app import build_dispatcher
from bot.telegram.retry import RetryRequestMiddleware
from dialogue.format import Turn
from tests.bot.fake_model import FakeModelServer
from tests.bot.mocked_bot import MockedBot

_update_ids = itertools.count(1)


def message_update(user_id: int, **content: Any) -> Update:
    return Update.model_validate(
        {
            "update_id": next(_update_ids),
            "message": {
                "message_id": next(_update_ids),
                "date": int(time.time()),
                "chat": {"id": user_id, "type": "private"},
                "from": {"id": user_id, "is_bot": False, "first_name": "Тест"},
                **content,
            },
        }
    )


def text_update(user_id: int, text: str) -> Update:
    entities = (
        [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}] if text.startswith("/") else []
    )
    return message_update(user_id, text=text, entities=entities)


def voice_update(user_id: int, file_id: str, duration: int, size: int) -> Update:
    voice = {"file_id": file_id, "file_unique_id": file_id, "duration": duration, "file_size": size}
    return message_update(user_id, voice=voice)


@dataclass
class Harness:
    dp: Dispatcher
    bot: MockedBot
    store: ContextStore
    model: FakeModelServer

    async def send(self, update: Update) -> list[str]:
        """Feed one update; the texts the bot sent in reply."""
        before = len(self.bot.mocked.sent())
        await self.dp.feed_update(self.bot, update)
        return [m.text for m in self.bot.mocked.sent()[before:]]


async def make_harness(
    url: URL, recognizer: Recognizer | None = None, **settings: Any
) -> AsyncIterator[Harness]:
    engine = create_engine(url)
    await upgrade_database(engine)
    config = Settings(context_size=3, **settings)
    store = ContextStore(engine, config.context_size)
    model = FakeModelServer()
    client = model.client()
    bot = MockedBot()
    bot.session.middleware(RetryRequestMiddleware(backoff_s=0.01))
    try:
        yield Harness(build_dispatcher(config, store, client, recognizer), bot, store, model)
    finally:
        await client.aclose()
        await engine.dispose()


@pytest.fixture
async def harness(pg_database: URL) -> AsyncIterator[Harness]:
    async for h in make_harness(pg_database):
        yield h


@pytest.fixture
async def voice_harness(pg_database: URL, recognizer: FasterWhisperRecognizer) -> AsyncIterator[Harness]:
    async for h in make_harness(pg_database, recognizer, voice_max_seconds=30, voice_max_bytes=100_000):
        yield h


async def test_start_and_help_list_the_commands(harness: Harness) -> None:
    assert await harness.send(text_update(1, "/start")) == [texts.START]
    [help_text] = await harness.send(text_update(1, "/help"))
    for command in ("/start", "/help", "/clear_context", "/settings", "/optout", "/optin"):
        assert command in help_text
    assert f"/settings — {texts.CMD_SETTINGS}" in help_text


async def test_help_lists_the_settings_and_consent_commands_in_english(harness: Harness) -> None:
    from tests.bot.group_updates import message, person, update

    [help_text] = await harness.send(update(message(2, person(2, language="en"), "/help")))
    assert "/settings — this chat's settings" in help_text
    assert "/optout — don't learn from my messages" in help_text


async def test_text_is_answered_with_context_and_remembered(harness: Harness) -> None:
    harness.model.delay_s = 0.6  # long enough for the "typing" action to go out
    assert await harness.send(text_update(5, "привет")) == ["ответ на: привет"]
    assert harness.model.requests[-1] == {"query": "привет", "context": []}
    assert harness.bot.mocked.sent("sendChatAction")[-1].action == "typing"
    harness.model.delay_s = 0.0

    assert await harness.send(text_update(5, "как  дела?\nчто нового")) == ["ответ на: как дела? что нового"]
    assert harness.model.requests[-1]["context"] == [
        {"role": "user", "text": "привет"},
        {"role": "bot", "text": "ответ на: привет"},
    ]
    assert await harness.store.get(Scope(5, 5)) == [
        Turn("bot", "ответ на: привет"),
        Turn("user", "как дела? что нового"),
        Turn("bot", "ответ на: как дела? что нового"),
    ]


async def test_clear_context_for_known_and_new_user(harness: Harness) -> None:
    await harness.send(text_update(6, "запомни"))
    assert await harness.send(text_update(6, "/clear_context")) == [texts.CONTEXT_CLEARED]
    assert await harness.store.get(Scope(6, 6)) == []
    assert await harness.send(text_update(777, "/clear_context")) == [texts.CONTEXT_CLEARED]


@pytest.mark.parametrize(
    ("mode", "reply"),
    [
        ("down", texts.MODEL_UNAVAILABLE),
        ("503", texts.MODEL_UNAVAILABLE),
        ("timeout", texts.MODEL_TIMEOUT),
        ("504", texts.MODEL_TIMEOUT),
        ("500", texts.MODEL_FAILED),
        ("422", texts.MODEL_REJECTED),
    ],
)
async def test_model_failure_gets_clear_reply_and_leaves_context(
    harness: Harness, mode: str, reply: str
) -> None:
    await harness.send(text_update(8, "первое"))
    before = await harness.store.get(Scope(8, 8))
    harness.model.mode = mode
    assert await harness.send(text_update(8, "второе")) == [reply]
    assert await harness.store.get(Scope(8, 8)) == before
    harness.model.mode = "ok"
    assert await harness.send(text_update(8, "третье")) == ["ответ на: третье"]


async def test_long_answer_is_split_under_telegram_limit(harness: Harness) -> None:
    harness.model.mode = "long"
    pieces = await harness.send(text_update(9, "расскажи длинно"))
    assert len(pieces) == 3 and all(len(p) <= 4096 for p in pieces)
    assert " ".join(pieces) == ("слово " * 2000).strip()
    assert (await harness.store.get(Scope(9, 9)))[-1].text == ("слово " * 2000).strip()


@pytest.mark.parametrize(
    "content",
    [
        {
            "sticker": {
                "file_id": "s",
                "file_unique_id": "s",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        },
        {"photo": [{"file_id": "p", "file_unique_id": "p", "width": 10, "height": 10}]},
        {"document": {"file_id": "d", "file_unique_id": "d", "file_name": "a.pdf"}},
        {"video": {"file_id": "v", "file_unique_id": "v", "width": 1, "height": 1, "duration": 1}},
    ],
    ids=["sticker", "photo", "document", "video"],
)
async def test_other_content_gets_hint(harness: Harness, content: dict[str, Any]) -> None:
    assert await harness.send(message_update(10, **content)) == [texts.UNSUPPORTED_CONTENT]
    assert harness.model.requests == []


async def test_telegram_429_and_5xx_are_retried(harness: Harness) -> None:
    harness.bot.mocked.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    harness.bot.mocked.fail_next("sendMessage", 502, "Bad Gateway")
    started = time.monotonic()
    assert await harness.send(text_update(13, "привет")) == ["ответ на: привет"] * 3  # two failed + delivered
    assert time.monotonic() - started >= 1.0  # waited retry_after
    assert await harness.store.get(Scope(13, 13)) == [Turn("user", "привет"), Turn("bot", "ответ на: привет")]


async def test_undeliverable_answer_is_not_remembered(harness: Harness) -> None:
    for _ in range(5):  # every retry of the answer fails; the apology goes through
        harness.bot.mocked.fail_next("sendMessage", 500, "Internal Server Error")
    assert await harness.send(text_update(14, "привет")) == ["ответ на: привет"] * 5 + [texts.INTERNAL_ERROR]
    assert await harness.store.get(Scope(14, 14)) == []


class BrokenRecognizer:
    async def transcribe(self, data: bytes) -> str:
        raise RuntimeError("CTranslate2 ran out of memory")

    def close(self) -> None:
        pass


async def test_unexpected_failure_gets_apology_not_silence(
    pg_database: URL, russian_voice_ogg: bytes
) -> None:
    async for h in make_harness(pg_database, BrokenRecognizer()):
        h.bot.mocked.files["voice/v2"] = russian_voice_ogg
        assert await h.send(voice_update(24, "v2", 2, len(russian_voice_ogg))) == [texts.INTERNAL_ERROR]
        assert await h.store.get(Scope(24, 24)) == []
        assert await h.send(text_update(24, "а текст?")) == ["ответ на: а текст?"]  # the bot carries on


async def test_voice_is_recognised_answered_and_stored(
    voice_harness: Harness, russian_voice_ogg: bytes
) -> None:
    voice_harness.bot.mocked.files["voice/v1"] = russian_voice_ogg
    replies = await voice_harness.send(voice_update(20, "v1", duration=2, size=len(russian_voice_ogg)))
    assert len(replies) == 2
    assert replies[0].startswith("Распознано: ") and "сегодня" in replies[0].lower()
    transcript = replies[0].removeprefix("Распознано: ")
    assert replies[1] == f"ответ на: {transcript}"
    assert await voice_harness.store.get(Scope(20, 20)) == [Turn("user", transcript), Turn("bot", replies[1])]


@pytest.mark.parametrize(
    ("duration", "size", "reply"),
    [
        (31, 1000, texts.VOICE_TOO_LONG.format(seconds=30)),
        (5, 200_000, texts.VOICE_TOO_BIG.format(megabytes=100_000 / 2**20)),
    ],
)
async def test_voice_over_limits_is_refused_before_download(
    voice_harness: Harness, duration: int, size: int, reply: str
) -> None:
    assert await voice_harness.send(voice_update(21, "big", duration, size)) == [reply]
    assert voice_harness.bot.mocked.sent("getFile") == []


async def test_broken_voice_gets_clear_reply(voice_harness: Harness) -> None:
    voice_harness.bot.mocked.files["voice/broken"] = b"OggS" + bytes(range(256)) * 8
    assert await voice_harness.send(voice_update(22, "broken", 2, 2052)) == [texts.VOICE_UNREADABLE]
    assert await voice_harness.store.get(Scope(22, 22)) == []


async def test_missing_voice_file_gets_clear_reply(voice_harness: Harness) -> None:
    assert await voice_harness.send(voice_update(23, "gone", 2, 100)) == [texts.VOICE_DOWNLOAD_FAILED]


async def test_database_down_gets_apology(tmp_path: Any) -> None:
    # A PostgreSQL URL where nothing listens: every attempt is refused.
    from benchmarks.support.net import free_port

    down = URL.create("postgresql+asyncpg", "postgres", None, "127.0.0.1", free_port(), "nothing")
    engine = create_engine(down)
    model = FakeModelServer()
    client = model.client()
    bot = MockedBot()
    dp = build_dispatcher(Settings(), ContextStore(engine, 3, attempts=2), client, None)
    h = Harness(dp, bot, ContextStore(engine, 3), model)
    try:
        assert await h.send(text_update(30, "привет")) == [texts.DATABASE_UNAVAILABLE]
        assert await h.send(text_update(30, "/clear_context")) == [texts.DATABASE_UNAVAILABLE]
        assert model.requests == []
    finally:
        await client.aclose()
        await engine.dispose()


async def test_slow_answer_for_one_user_does_not_hold_up_another(harness: Harness) -> None:
    slow_done: list[float] = []
    fast_done: list[float] = []
    # Waiting behind the slow answer would take the fast one 2.5 s; 1.5 s
    # leaves room for a loaded CI machine (0.63 s measured there).
    harness.model.delay_for["slow"] = 2.5

    async def timed(update: Update, done: list[float]) -> None:
        await harness.dp.feed_update(harness.bot, update)
        done.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(timed(text_update(40, "slow"), slow_done), timed(text_update(41, "fast"), fast_done))
    assert fast_done[0] - started < 1.5 < 2.5 <= slow_done[0] - started
    assert harness.bot.mocked.sent_texts(41) == ["ответ на: fast"]


async def test_silent_voice_asks_to_record_again(voice_harness: Harness, tmp_path: Any) -> None:
    silent = silence_ogg(tmp_path)
    voice_harness.bot.mocked.files["voice/silent"] = silent
    assert await voice_harness.send(voice_update(25, "silent", 2, 900)) == [texts.VOICE_EMPTY]
    assert voice_harness.model.requests == []
