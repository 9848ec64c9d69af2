"""Flood control counts in the inbox: two replicas (two engines, two dispatchers) share one limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiogram.types import Update
from sqlalchemy.engine import URL

from benchmarks.support.bot_processes import TOKEN, text_update
from benchmarks.support.fake_bot_api import FakeBotAPI
from bot.core import texts
from bot.intake.workers import Delivery
from bot.settings import Settings
from bot.storage.context_store import ContextStore
from bot.storage.db import create_engine, upgrade_database
from bot.storage.inbox import Inbox
from bot.telegram.app import build_dispatcher
from tests.bot.fake_model import FakeModelServer
from tests.bot.mocked_bot import MockedBot

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

        async def process(payload: dict[str, Any], recent: int, dp: Any = dp, bot: MockedBot = bot) -> None:
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
    assert sorted(got) == sorted(["ответ на: сообщение 0", "ответ на: сообщение 1", texts.TOO_MANY_MESSAGES])
    # Another user is not affected.
    await replicas[1].delivery.accept([text_update(TELEGRAM, 12, "привет")])
    assert await settle(replicas, 12, 1) == ["ответ на: привет"]
