"""Access lists, /forget (checked against a dump of the whole database), unknown commands, languages."""

from __future__ import annotations

import asyncio
import subprocess

from sqlalchemy import text
from sqlalchemy.engine import URL

from benchmarks.support.databases import PG_HOST, PG_PORT, PG_USER
from bot.core import texts
from bot.storage.scope import Scope
from dialogue.format import Turn
from tests.bot.group_updates import GROUP, bot_message, mention, message, person, update
from tests.bot.test_handlers import make_harness


def database_dump(url: URL) -> str:
    """Every row of every table, as ``pg_dump --data-only`` writes them."""
    command = ["pg_dump", "--data-only", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, str(url.database)]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout


async def test_others_get_one_polite_line_and_reach_neither_model_nor_database(pg_database: URL) -> None:
    async for h in make_harness(pg_database, allowed_user_ids=[501], allowed_chat_ids=[501, GROUP]):
        assert await h.send(update(message(501, person(501), "привет"))) == ["ответ на: привет"]
        stranger = person(666)
        assert await h.send(update(message(666, stranger, "пусти"))) == [texts.NOT_ALLOWED]
        assert await h.send(update(message(666, stranger, "ну пусти"))) == []  # at most once an hour
        assert await h.send(update(message(666, stranger, "/forget"))) == []
        text_, entities = mention("а в группе?")
        assert await h.send(update(message(GROUP, stranger, text_, entities=entities))) == []
        # An allowed user in a chat that is not allowed.
        assert await h.send(update(message(-100999, person(501), "/start"))) == [texts.NOT_ALLOWED]
        assert len(h.model.requests) == 1
        async with h.store.engine.connect() as connection:
            stored = (await connection.execute(text("SELECT user_id FROM user_context"))).scalars().all()
        assert stored == [501]


async def test_forget_deletes_the_sender_everywhere_and_nothing_else(pg_database: URL) -> None:
    alice, bob = person(501), person(502)
    async for h in make_harness(pg_database):
        await h.send(update(message(501, alice, "секрет в личке")))
        ask, entities = mention("секрет в группе")
        await h.send(update(message(GROUP, alice, ask, entities=entities)))
        answer = bot_message(GROUP, h.bot.mocked.sent_message_ids[-1], "ответ на: секрет в группе")
        await h.send(update(message(GROUP, bob, "мнение боба", reply_to=answer)))
        before = database_dump(pg_database)
        assert "секрет в личке" in before and "секрет в группе" in before

        [confirmation] = await h.send(update(message(501, alice, "/forget")))
        # Two conversations (private, group); four chain messages (two questions, two answers).
        assert confirmation == texts.FORGOTTEN.format(conversations=2, messages=4)
        after = database_dump(pg_database)
        for secret in ("секрет в личке", "секрет в группе"):
            assert secret not in after
        assert "мнение боба" in after  # Bob's conversation is his
        assert await h.store.get(Scope(GROUP, 502)) == [
            Turn("user", "мнение боба"),
            Turn("bot", "ответ на: мнение боба"),
        ]


async def test_unknown_command_gets_the_hint_and_is_not_stored(pg_database: URL) -> None:
    async for h in make_harness(pg_database):
        assert await h.send(update(message(501, person(501), "/nosuchcommand"))) == [texts.UNKNOWN_COMMAND]
        assert h.model.requests == []
        assert await h.store.get(Scope(501, 501)) == []


async def test_language_code_picks_english_and_bot_language_forces_one(pg_database: URL) -> None:
    english = person(501, language="en")
    async for h in make_harness(pg_database):
        [start] = await h.send(update(message(501, english, "/start")))
        assert start.startswith("Hi! I am a chat bot.")
        [hint] = await h.send(update(message(501, english, "/nope")))
        assert hint == "I do not know that command. /help lists the commands."
        assert await h.send(update(message(502, person(502, language="ru"), "/start"))) == [texts.START]
        # A language without a catalogue gets the default, Russian.
        assert await h.send(update(message(503, person(503, language="de"), "/start"))) == [texts.START]
        # The model's answer is whatever the model says, in any language.
        assert await h.send(update(message(501, english, "hello"))) == ["ответ на: hello"]
    async for h in make_harness(pg_database, bot_language="en"):
        [start] = await h.send(update(message(504, person(504, language="ru"), "/start")))
        assert start.startswith("Hi! I am a chat bot.")


async def test_empty_model_answer_becomes_the_localised_fallback(pg_database: URL) -> None:
    async for h in make_harness(pg_database):
        h.model.mode = "empty"
        assert await h.send(update(message(501, person(501), "ммм"))) == [texts.FALLBACK_ANSWER]
        assert await h.send(update(message(502, person(502, language="en"), "hmm"))) == [
            "Hm, I don't know what to say to that."
        ]


async def test_the_same_update_twice_is_stored_once(pg_database: URL) -> None:
    """Delivery may hand a message over again after a crash: answered maybe twice, stored once."""
    async for h in make_harness(pg_database):
        again = update(message(501, person(501), "один раз"))
        await asyncio.gather(h.send(again), h.send(again))
        assert await h.store.get(Scope(501, 501)) == [
            Turn("user", "один раз"),
            Turn("bot", "ответ на: один раз"),
        ]
