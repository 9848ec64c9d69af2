"""The real ``python -m bot`` against a fake Bot API, the real model server (tiny model) and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from benchmarks.support.fake_bot_api import BOT_USER, FakeBotAPI, reply_target
from benchmarks.support.net import free_port
from benchmarks.support.processes import model_server_env, start_module, stop, wait_healthy
from bot.core import texts

TOKEN = "123456789:E2E-very-secret-token_xyz"


async def stored_context(url: URL, user_id: int, chat_id: int | None = None) -> list[dict[str, str]]:
    """The stored context of (chat, sender); the sender's private chat unless ``chat_id`` is given."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text("SELECT context FROM user_context WHERE chat_id = :c AND user_id = :u"),
                    {"c": user_id if chat_id is None else chat_id, "u": user_id},
                )
            ).scalar_one_or_none()
    finally:
        await engine.dispose()
    return [] if row is None else (json.loads(row) if isinstance(row, str) else row)


async def eventual_context(url: URL, user_id: int, expected: list[dict[str, str]]) -> list[dict[str, str]]:
    """The stored context once it equals ``expected`` (the bot stores after replying), or after 10 s."""
    for _ in range(50):
        stored = await stored_context(url, user_id)
        if stored == expected:
            break
        await asyncio.sleep(0.2)
    return stored


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotAPI]:
    api = await FakeBotAPI(TOKEN).start()
    yield api
    await api.stop()


def bot_env(
    api: FakeBotAPI, database: URL, model_url: str, whisper_dir: Path | None = None
) -> dict[str, str]:
    env = {
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api.base_url,
        "MODEL_SERVER_URL": model_url,
        "DATABASE_URL": database.render_as_string(hide_password=False),
        "ANSWER_TIMEOUT_S": "20",
        "LOG_LEVEL": "DEBUG",  # the token must stay out of even the most talkative logs
        "DB_CONNECT_ATTEMPTS": "2",
        "RATE_LIMIT_MESSAGES": "100",  # flood control has its own test
    }
    if whisper_dir is not None:
        env |= {"ASR_MODEL": str(whisper_dir), "ASR_BEAM_SIZE": "1", "VOICE_MAX_SECONDS": "30"}
    return env


@pytest.mark.timeout(300)
async def test_bot_process_end_to_end(
    fake_api: FakeBotAPI,
    pg_database: URL,
    tiny_model_dir: Path,
    whisper_model_dir: Path,
    russian_voice_ogg: bytes,
    tmp_path: Path,
) -> None:
    model_port = free_port()
    model_url = f"http://127.0.0.1:{model_port}"
    model_log, bot_log = tmp_path / "model_server.log", tmp_path / "bot.log"
    model = start_module("model_server", model_server_env(tiny_model_dir, model_port), model_log)
    bot = start_module("bot", bot_env(fake_api, pg_database, model_url, whisper_model_dir), bot_log)
    try:
        await wait_healthy(model_url, model, model_log)
        # Start-up: webhook removed, commands registered, then long polling.
        await fake_api.wait_for(lambda: bool(fake_api.calls_of("getUpdates")) or bot.poll() is not None, 90)
        assert bot.poll() is None, bot_log.read_text()
        assert fake_api.calls_of("deleteWebhook")
        # The menu in Russian (default) and in English (language_code "en").
        default, english = fake_api.calls_of("setMyCommands")
        assert "language_code" not in default.params and english.params["language_code"] == "en"
        menus = [
            {c["command"]: c["description"] for c in json.loads(m.params["commands"])}
            for m in (default, english)
        ]
        for menu in menus:
            assert set(menu) == {"start", "help", "clear_context", "forget", "settings", "optout", "optin"}
        assert menus[0]["settings"] == texts.CMD_SETTINGS and menus[1]["settings"] == "this chat's settings"
        assert menus[1]["optout"] == "don't learn from my messages"

        user = 1001
        sent = 0
        history: list[dict[str, str]] = []

        def exchange(query: str, answer: str) -> list[dict[str, str]]:
            """The stored context after this exchange; the fallback line (no answer) is never stored."""
            history.append({"role": "user", "text": query})
            if answer != texts.FALLBACK_ANSWER:
                history.append({"role": "bot", "text": answer})
            return history[-3:]

        async def say(update_id: int, count: int = 1) -> list[str]:
            nonlocal sent
            got = await fake_api.replies(user, sent, count, timeout=60)
            sent += count
            return got

        # Commands, also /clear_context for a user who never wrote.
        assert await say(fake_api.send_text(user, "/clear_context")) == [texts.CONTEXT_CLEARED]
        assert await say(fake_api.send_text(user, "/start")) == [texts.START]
        assert "/clear_context" in (await say(fake_api.send_text(user, "/help")))[0]

        # Text with context: the DB row holds the exchanges, oldest first, trimmed to 3.
        # The tiny model's random weights may say nothing, and the fallback line is never stored.
        # Telegram hiccups on the way (429 with retry_after, then a 500) are retried.
        fake_api.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
        fake_api.fail_next("sendMessage", 500, "Internal Server Error")
        [first] = await say(fake_api.send_text(user, "привет"))
        assert first and first not in (texts.MODEL_UNAVAILABLE, texts.MODEL_FAILED, texts.MODEL_TIMEOUT)
        # Streamed (STREAM_ANSWERS defaults to true): any draft shown was a beginning of the answer.
        assert all(first.startswith(d.params["text"]) for d in fake_api.calls_of("sendMessageDraft"))
        assert [c.failed for c in fake_api.calls_of("sendMessage")][-3:] == [True, True, False]
        expected = exchange("привет", first)
        assert await eventual_context(pg_database, user, expected) == expected
        [second] = await say(fake_api.send_text(user, "как дела?"))
        expected = exchange("как дела?", second)
        assert await eventual_context(pg_database, user, expected) == expected

        # A sticker gets the hint, the context stays.
        assert await say(fake_api.send_sticker(user)) == [texts.UNSUPPORTED_CONTENT]

        # Russian voice: transcript shown, then the answer; the transcript is the user's message.
        recognised, answer = await say(fake_api.send_voice(user, russian_voice_ogg, duration=2), 2)
        assert recognised.startswith("Распознано: ") and "сегодня" in recognised.lower()
        transcript = recognised.removeprefix("Распознано: ")
        expected = exchange(transcript, answer)
        assert await eventual_context(pg_database, user, expected) == expected

        # A broken voice file: a clear reply, nothing stored.
        before = await stored_context(pg_database, user)
        assert await say(fake_api.send_voice(user, b"OggS" + bytes(1000), duration=1)) == [
            texts.VOICE_UNREADABLE
        ]

        # The model server goes away mid-session: a clear reply, the context unchanged.
        stop(model)
        assert await say(fake_api.send_text(user, "ты тут?")) == [texts.MODEL_UNAVAILABLE]
        await asyncio.sleep(0.5)  # a wrongful write would have happened by now
        assert await stored_context(pg_database, user) == before

        # ...and comes back: answers again.
        model = start_module("model_server", model_server_env(tiny_model_dir, model_port), model_log)
        await wait_healthy(model_url, model, model_log)
        [again] = await say(fake_api.send_text(user, "а теперь?"))
        assert again != texts.MODEL_UNAVAILABLE
        expected = exchange("а теперь?", again)
        assert await eventual_context(pg_database, user, expected) == expected
        assert bot.poll() is None
    finally:
        bot_code = stop(bot)
        stop(model)
    log = bot_log.read_text()
    assert bot_code == 0, log[-3000:]
    assert TOKEN not in log and TOKEN.split(":")[1] not in log
    assert "getUpdates" in log or "polling" in log.lower()  # the log did capture aiogram's output


async def test_bot_without_token_fails_fast(tmp_path: Path) -> None:
    env = {"BOT_TOKEN": "", "DATABASE_URL": "sqlite:///" + str(tmp_path / "x.sqlite3")}
    log = tmp_path / "bot.log"
    code = await asyncio.to_thread(start_module("bot", env, log).wait, 60)
    assert code == 2
    assert "BOT_TOKEN is not set" in log.read_text()


async def test_bot_with_unreachable_database_fails_fast(fake_api: FakeBotAPI, tmp_path: Path) -> None:
    secret = "db-password-must-not-leak"
    env = bot_env(
        fake_api, URL.create("postgresql", "postgres", secret, "127.0.0.1", free_port(), "x"), "http://x"
    )
    log = tmp_path / "bot.log"
    code = await asyncio.to_thread(start_module("bot", env, log).wait, 60)
    output = log.read_text()
    assert code == 1, output
    assert "unreachable after 2 attempts" in output
    assert secret not in output and TOKEN not in output
    assert not fake_api.calls_of("getUpdates")


async def test_bot_with_rejected_token_fails_fast(fake_api: FakeBotAPI, tmp_path: Path) -> None:
    env = bot_env(fake_api, URL.create("sqlite+aiosqlite", database=str(tmp_path / "c.sqlite3")), "http://x")
    env["BOT_TOKEN"] = "987654321:wrong-token-also-secret"
    log = tmp_path / "bot.log"
    code = await asyncio.to_thread(start_module("bot", env, log).wait, 60)
    output = log.read_text()
    assert code == 1, output
    assert "rejected BOT_TOKEN" in output and "wrong-token-also-secret" not in output


async def recording_model_server(port: int, contexts: list[dict[str, object]]) -> web.AppRunner:
    """Answers "ответ N" and records each request (query and context) it gets, streamed or not."""

    async def answer(request: web.Request) -> web.Response:
        contexts.append(await request.json())
        return web.json_response({"answer": f"ответ {len(contexts)}"})

    async def stream(request: web.Request) -> web.Response:
        *turns, query = (await request.json())["messages"]
        context = [{"role": "user" if t["role"] == "user" else "bot", "text": t["content"]} for t in turns]
        contexts.append({"query": query["content"], "context": context})
        delta = {"content": f"ответ {len(contexts)}"}
        piece = json.dumps({"choices": [{"delta": delta}]}, ensure_ascii=False)
        return web.Response(text=f"data: {piece}\n\ndata: [DONE]\n\n", content_type="text/event-stream")

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "recording"}]})

    app = web.Application()
    app.router.add_post("/answer", answer)
    app.router.add_post("/v1/chat/completions", stream)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.mark.timeout(180)
async def test_group_scenario_context_is_the_reply_chain(
    fake_api: FakeBotAPI, pg_database: URL, tmp_path: Path
) -> None:
    """Two people and the bot in a group, and one of them in private: what context the model gets."""
    requests: list[dict[str, object]] = []
    model_port = free_port()
    model = await recording_model_server(model_port, requests)
    env = bot_env(fake_api, pg_database, f"http://127.0.0.1:{model_port}") | {"ASR_MODEL": "/nonexistent"}
    bot = start_module("bot", env, tmp_path / "bot.log")
    group, alice, bob = -100777, 2001, 2002
    mention = f"@{BOT_USER['username']}"
    try:
        await fake_api.wait_for(lambda: bool(fake_api.calls_of("getUpdates")) or bot.poll() is not None, 90)
        assert bot.poll() is None, (tmp_path / "bot.log").read_text()

        async def answered(update_id: int) -> tuple[str, int]:
            """The bot's answer to this update in the group: its text and message id; it is a reply."""
            asked = fake_api.pushed[update_id]
            chat = asked["chat"]["id"]
            await fake_api.wait_for(
                lambda: any(reply_target(c) == asked["message_id"] for c in fake_api.sent[chat])
            )
            call = next(c for c in fake_api.sent[chat] if reply_target(c) == asked["message_id"])
            return call.params["text"], call.result["message_id"]

        # Alice calls the bot: the mention is not part of the query.
        first, first_id = await answered(fake_api.send_text(alice, f"{mention} привет всем", group))
        assert requests[-1] == {"query": "привет всем", "context": []}
        # People talking among themselves, and a command for another bot: nothing reaches the model.
        talk = fake_api.send_text(bob, "Алиса, привет", group)
        fake_api.send_text(alice, "привет, Боб", group, reply_to=fake_api.pushed[talk]["message_id"])
        fake_api.send_text(bob, "/start@other_bot", group)
        # Bob replies to the bot: his context is the reply chain, Alice's message included.
        second, second_id = await answered(fake_api.send_text(bob, "а ты кто?", group, reply_to=first_id))
        assert len(requests) == 2 and requests[-1] == {
            "query": "а ты кто?",
            "context": [{"role": "user", "text": "привет всем"}, {"role": "bot", "text": first}],
        }
        # Alice replies to the bot's answer to Bob: the chain goes on through Bob's message.
        await answered(fake_api.send_text(alice, "а я Алиса", group, reply_to=second_id))
        assert requests[-1]["context"] == [
            {"role": "bot", "text": first},
            # Bob, two messages back: roles alternate backwards from the query (user, bot, user, ...).
            {"role": "user", "text": "а ты кто?"},
            {"role": "bot", "text": second},
        ]
        # In private, Alice's conversation is her own; nothing of the group reaches it.
        fake_api.send_text(alice, "это личное")
        await fake_api.replies(alice, 0, 1)
        assert requests[-1] == {"query": "это личное", "context": []}
        # A new, non-reply mention in the group: her recent conversation there, not the private one.
        await answered(fake_api.send_text(alice, f"{mention} ещё вопрос", group))
        assert requests[-1]["context"] == [
            {"role": "bot", "text": first},
            {"role": "user", "text": "а я Алиса"},
            {"role": "bot", "text": "ответ 3"},
        ]
        assert len(requests) == 5
    finally:
        bot_code = stop(bot)
        await model.cleanup()
    assert bot_code == 0
