"""Flood control: the inbox counts per chat and sender, two replicas share one limit, and only
messages the bot would answer are refused (with one honest notice per window)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiogram.types import Update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.support.bot_processes import TOKEN, text_update
from benchmarks.support.fake_bot_api import FakeBotAPI
from bot.core import texts
from bot.intake.workers import Delivery
from bot.settings import Settings
from bot.storage.context_store import ContextStore
from bot.storage.db import create_engine, upgrade_database
from bot.storage.inbox import Inbox, entry_of
from bot.telegram.app import build_dispatcher
from tests.bot.fake_model import FakeModelServer
from tests.bot.group_updates import GROUP, mention, message, person, update
from tests.bot.mocked_bot import MockedBot
from tests.bot.test_handlers import Harness, make_harness

# Numbers the test messages as Telegram would; never started, no bot talks to it here.
TELEGRAM = FakeBotAPI(TOKEN)


@dataclass
class Replica:
    delivery: Delivery
    bot: MockedBot


@pytest.fixture
async def replicas(pg_database: URL) -> AsyncIterator[list[Replica]]:
    settings = Settings(rate_limit_messages=2, rate_limit_period_s=60, context_size=3)
    made, cleanup = [], []
    for _ in range(2):
        engine = create_engine(pg_database)
        await upgrade_database(engine)
        model = FakeModelServer().client()
        dp = build_dispatcher(settings, ContextStore(engine, 3), model, None)
        bot = MockedBot()

        async def process(
            payload: dict[str, Any], recent: int, _: Any, dp: Any = dp, bot: MockedBot = bot
        ) -> None:
            update = Update.model_validate(payload, context={"bot": bot})
            await dp.feed_update(bot, update, recent_messages=recent)

        inbox = Inbox(engine, timeout_s=5, flood_period_s=settings.rate_limit_period_s)
        made.append(Replica(Delivery(inbox, process, linger_s=0.05), bot))
        cleanup.append((inbox, model, engine))
    yield made
    for replica in made:
        await replica.delivery.drain(1)
    for inbox, model, engine in cleanup:
        await inbox.close()
        await model.aclose()
        await engine.dispose()


def replies(replicas: list[Replica], chat_id: int) -> list[str]:
    return [t for r in replicas for t in r.bot.mocked.sent_texts(chat_id)]


async def settle(replicas: list[Replica], chat_id: int, count: int) -> list[str]:
    for _ in range(100):
        if len(replies(replicas, chat_id)) >= count:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # anything more would have come by now
    return replies(replicas, chat_id)


async def test_the_limit_holds_across_replicas_and_warns_once(replicas: list[Replica]) -> None:
    # Five messages within the window, taken in turn by the two replicas.
    for i in range(5):
        await replicas[i % 2].delivery.accept([text_update(TELEGRAM, 11, f"сообщение {i}")])
    got = await settle(replicas, 11, 3)
    notice = texts.TOO_MANY_MESSAGES.format(seconds=60)
    assert sorted(got) == sorted(["ответ на: сообщение 0", "ответ на: сообщение 1", notice])
    # Another user is not affected.
    await replicas[1].delivery.accept([text_update(TELEGRAM, 12, "привет")])
    assert await settle(replicas, 12, 1) == ["ответ на: привет"]


def raw(content: dict[str, Any]) -> dict[str, Any]:
    """The update as Telegram's JSON, the inbox's input."""
    return {"update_id": update(content).update_id, "message": content}


async def test_a_busy_group_does_not_use_up_the_private_chat(migrated_engine: AsyncEngine) -> None:
    inbox = Inbox(migrated_engine, timeout_s=5, flood_period_s=60)
    sender = person(21)
    await inbox.add([entry_of(raw(message(GROUP, sender, f"в группе {i}"))) for i in range(5)])
    await inbox.add([entry_of(raw(message(21, sender, "лично")))])
    private = await inbox.next(21)
    assert private is not None and private.recent == 1  # not the sixth of five group messages
    group = await inbox.next(GROUP)
    assert group is not None and group.recent == 1
    await inbox.close()


# --- which messages hear of it: dispatcher level, the inbox's count given -------------------

LIMIT = 2


@pytest.fixture
async def limited(pg_database: URL) -> AsyncIterator[Harness]:
    async for h in make_harness(pg_database, rate_limit_messages=LIMIT, rate_limit_period_s=30):
        yield h


async def feed(h: Harness, content: dict[str, Any], recent: int) -> list[Any]:
    """Feed one message as the inbox would, with its sender's count; the sendMessage calls it caused."""
    before = len(h.bot.mocked.sent())
    await h.dp.feed_update(h.bot, update(content), recent_messages=recent)
    return h.bot.mocked.sent()[before:]


async def test_group_chatter_over_the_limit_hears_nothing_an_address_gets_one_notice(
    limited: Harness,
) -> None:
    alice = person(31)
    # Over the limit, but talking to people: not the bot's business.
    assert await feed(limited, message(GROUP, alice, "болтаем"), recent=LIMIT + 1) == []
    # Then she calls the bot, still over the limit (the chatter counted): one notice, as a
    # reply in her topic, and the message itself is not answered.
    text, entities = mention("ответь")
    asked = message(GROUP, alice, text, entities=entities, message_thread_id=77, is_topic_message=True)
    [notice] = await feed(limited, asked, recent=LIMIT + 2)
    assert notice.text == texts.TOO_MANY_MESSAGES.format(seconds=30)
    assert notice.reply_parameters.message_id == asked["message_id"]
    assert notice.message_thread_id == 77
    assert limited.model.requests == []
    # Once per window: the next one in it is dropped silently.
    again = message(GROUP, alice, text, entities=entities)
    assert await feed(limited, again, recent=LIMIT + 3) == []
    # Under the limit she is answered as usual.
    [answer] = await feed(limited, message(GROUP, alice, text, entities=entities), recent=LIMIT)
    assert answer.text == "ответ на: ответь"


async def test_a_stranger_over_the_limit_gets_only_the_access_notice(pg_database: URL) -> None:
    async for h in make_harness(pg_database, rate_limit_messages=LIMIT, allowed_user_ids=[1]):
        sent = await feed(h, message(41, person(41), "привет"), recent=LIMIT + 1)
        assert [m.text for m in sent] == [texts.NOT_ALLOWED]


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_the_notice_says_the_message_was_skipped_and_how_long_to_wait(
    limited: Harness, language: str
) -> None:
    [notice] = await feed(limited, message(51, person(51, language), "раз"), recent=LIMIT + 1)
    assert "30" in notice.text  # the period, which the sliding window needs to forget the flood
    assert ("пропуска" if language == "ru" else "skipping") in notice.text
    # And skipped it is: the model never saw it, and nothing answers it later.
    assert limited.model.requests == []
