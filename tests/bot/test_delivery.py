"""Delivery end to end: the real bot process(es), the fake Bot API, real databases, a stub model server.

Every message is answered once and in its chat's order, across SIGTERM, kill -9,
re-sent updates and two webhook replicas.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from benchmarks.support.bot_processes import (
    StubModelServer,
    bot_env,
    bot_process,
    eventually,
    expected_context,
    stored_contexts,
    terminate,
    text_update,
    wait_ready,
)
from benchmarks.support.fake_bot_api import FakeBotAPI
from benchmarks.support.net import free_port
from bot.core import texts
from tests.bot.private_postgres import private_postgres

pytestmark = pytest.mark.timeout(120)

ERROR_REPLIES = {
    texts.MODEL_UNAVAILABLE,
    texts.MODEL_TIMEOUT,
    texts.MODEL_FAILED,
    texts.INTERNAL_ERROR,
    texts.DATABASE_UNAVAILABLE,
    texts.CONTEXT_NOT_SAVED,
}


def queue_burst(api: FakeBotAPI, users: list[int], per_user: int) -> dict[int, list[str]]:
    """Each user sends ``per_user`` texts, interleaved as they would arrive; the texts per user."""
    sent: dict[int, list[str]] = {user: [] for user in users}
    for i in range(per_user):
        for user in users:
            query = f"сообщение {i} от {user}"
            api.queue(text_update(api, user, query))
            sent[user].append(query)
    return sent


def answers(queries: list[str]) -> list[str]:
    return [f"ответ на: {q}" for q in queries]


def without_repeats(replies: list[str]) -> list[str]:
    """A message being answered at a crash may be answered once more, right after itself."""
    return [r for i, r in enumerate(replies) if i == 0 or r != replies[i - 1]]


async def all_answered(api: FakeBotAPI, sent: dict[int, list[str]], timeout: float = 30) -> None:
    await api.wait_for(
        lambda: all(len(without_repeats(api.messages_to(u))) >= len(q) for u, q in sent.items()), timeout
    )


async def test_sigterm_mid_burst_answers_everything_without_errors(
    api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path
) -> None:
    model.delay_s = 1.0
    env = bot_env(api, pg_database, model)
    log = tmp_path / "bot.log"
    sent = queue_burst(api, list(range(2001, 2007)), per_user=3)
    async with bot_process(env, log) as first:
        await wait_ready(api, first, log)
        await eventually(lambda: _async(len(model.queries) >= 6))  # every chat has one in hand
        stopped_at = time.monotonic()
        assert await terminate(first) == 0, log.read_text()[-3000:]
        stop_s = time.monotonic() - stopped_at
    answered_by_first = sum(len(api.messages_to(u)) for u in sent)
    async with bot_process(env, log) as second:
        await all_answered(api, sent)
        last_answer_s = time.monotonic() - stopped_at
        assert await terminate(second) == 0
    for user, queries in sent.items():
        assert api.messages_to(user) == answers(queries)  # once each, in order, no error reply
    contexts = await stored_contexts(pg_database)
    assert {u: contexts[u] for u in sent} == {u: expected_context(q) for u, q in sent.items()}
    assert answered_by_first >= 6  # the messages in hand at SIGTERM were finished, not dropped
    print(f"deploy cost: stop took {stop_s:.1f} s, last answer {last_answer_s:.1f} s after SIGTERM")


async def test_kill_9_mid_burst_then_restart_stores_each_exchange_once(
    api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path
) -> None:
    model.delay_s = 0.7
    env = bot_env(api, pg_database, model)
    log = tmp_path / "bot.log"
    sent = queue_burst(api, list(range(3001, 3007)), per_user=3)
    async with bot_process(env, log) as first:
        await wait_ready(api, first, log)
        await eventually(lambda: _async(len(model.queries) >= 9))
        await terminate(first, signal.SIGKILL)
    async with bot_process(env, log) as second:
        await all_answered(api, sent)
        assert await terminate(second) == 0
    for user, queries in sent.items():
        replies = api.messages_to(user)
        assert without_repeats(replies) == answers(queries)
        assert not ERROR_REPLIES & set(replies)
    contexts = await stored_contexts(pg_database)
    assert {u: contexts[u] for u in sent} == {u: expected_context(q) for u, q in sent.items()}


async def test_resent_update_is_answered_and_stored_once(
    api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path
) -> None:
    env = bot_env(api, pg_database, model)
    log = tmp_path / "bot.log"
    update = text_update(api, 4001, "привет\x00 мир")  # NUL: PostgreSQL would refuse it
    async with bot_process(env, log) as bot:
        await wait_ready(api, bot, log)
        api.queue(update)
        api.queue(update)  # the same update twice in one batch
        await api.replies(4001, 0, 1)
        api.queue(update)  # re-sent later, as Telegram does when unconfirmed
        api.queue({**update, "update_id": update["update_id"] + 1})  # same message, new update id
        api.queue(text_update(api, 4001, "ещё"))
        await api.replies(4001, 1, 1)
        await asyncio.sleep(0.5)  # a second answer would have come by now
        assert await terminate(bot) == 0
    assert api.messages_to(4001) == answers(["привет мир", "ещё"])
    assert (await stored_contexts(pg_database))[4001] == expected_context(["привет мир", "ещё"])


async def test_answers_finishing_out_of_order_keep_the_chat_order(
    api: FakeBotAPI, model: StubModelServer, database_url: URL, tmp_path: Path
) -> None:
    model.delays = {"долгий": 1.5, "быстрый": 0.05, "другой чат": 0.05}
    env = bot_env(api, database_url, model)
    log = tmp_path / "bot.log"
    async with bot_process(env, log) as bot:
        await wait_ready(api, bot, log)
        api.queue(text_update(api, 5001, "долгий"))
        api.queue(text_update(api, 5001, "быстрый"))
        api.queue(text_update(api, 5002, "другой чат"))
        await api.replies(5001, 0, 2)
        assert await terminate(bot) == 0
    assert api.messages_to(5001) == answers(["долгий", "быстрый"])
    # Chats run side by side: the other chat did not wait for the slow answer.
    [other] = api.sent[5002]
    assert other.at < api.sent[5001][0].at
    contexts = await stored_contexts(database_url)
    assert contexts[5001] == expected_context(["долгий", "быстрый"])


async def test_two_webhook_replicas_share_the_chats(
    api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path
) -> None:
    secret = "webhook-secret_123"
    ports = [free_port(), free_port()]
    logs = [tmp_path / "bot1.log", tmp_path / "bot2.log"]
    envs = [
        bot_env(
            api,
            pg_database,
            model,
            BOT_MODE="webhook",
            WEBHOOK_BASE_URL="https://bot.example.org",
            WEBHOOK_SECRET=secret,
            WEBHOOK_HOST="127.0.0.1",
            WEBHOOK_PORT=str(port),
        )
        for port in ports
    ]
    model.delay_s = 0.05
    async with bot_process(envs[0], logs[0]) as one, bot_process(envs[1], logs[1]) as two:
        # Both started together: each may set its webhook before the other is waited for.
        await api.wait_for(
            lambda: len(api.calls_of("setWebhook")) >= 2 or one.poll() is not None or two.poll() is not None,
            60,
        )
        for process, log in ((one, logs[0]), (two, logs[1])):
            assert process.poll() is None, log.read_text()[-3000:]
        [registered, _] = api.calls_of("setWebhook")
        assert registered.params["url"] == "https://bot.example.org/telegram/webhook"
        assert registered.params["secret_token"] == secret
        urls = [f"http://127.0.0.1:{port}/telegram/webhook" for port in ports]
        async with httpx.AsyncClient() as client:
            # Without the secret, or with a wrong one: 401, nothing processed.
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                response = await client.post(urls[0], json=text_update(api, 6000, "чужой"), headers=headers)
                assert response.status_code == 401
            # Alternating replicas, first messages slow: order and once-only must hold anyway.
            sent: dict[int, list[str]] = {user: [] for user in range(6001, 6005)}
            n = 0
            for i in range(4):
                for user in sent:
                    query = f"вебхук {i} от {user}"
                    model.delays[query] = 0.8 if i == 0 else 0.05
                    good = {"X-Telegram-Bot-Api-Secret-Token": secret}
                    update = text_update(api, user, query)
                    response = await client.post(urls[n % 2], json=update, headers=good)
                    assert response.status_code == 200
                    if i == 1:  # Telegram re-sends one to the other replica
                        await client.post(urls[(n + 1) % 2], json=update, headers=good)
                    sent[user].append(query)
                    n += 1
        await all_answered(api, sent)
        await asyncio.sleep(0.5)
        assert await terminate(one) == 0 and await terminate(two) == 0
    for user, queries in sent.items():
        assert api.messages_to(user) == answers(queries)
    assert api.messages_to(6000) == [] and "чужой" not in model.queries
    contexts = await stored_contexts(pg_database)
    assert {u: contexts[u] for u in sent} == {u: expected_context(q) for u, q in sent.items()}
    handled = [log.read_text().count(" is handled") for log in logs]
    assert all(handled), handled  # both replicas did part of the work
    assert secret not in logs[0].read_text() + logs[1].read_text()


async def _async(value: bool) -> bool:
    return value


async def _stored(url: URL, chat_id: int, queries: list[str]) -> bool:
    return (await stored_contexts(url)).get(chat_id) == expected_context(queries)


async def test_frozen_database_gets_a_timely_apology_and_recovers_without_restart(
    api: FakeBotAPI, model: StubModelServer, tmp_path: Path
) -> None:
    timeout_s = 1.5
    log = tmp_path / "bot.log"
    with private_postgres() as (url, server):
        env = bot_env(api, url, model, DB_TIMEOUT_S=str(timeout_s))
        async with bot_process(env, log) as bot:
            await wait_ready(api, bot, log)
            api.queue(text_update(api, 7001, "до"))
            assert await api.replies(7001, 0, 1) == answers(["до"])
            # Its exchange is stored after the reply: freezing meanwhile would test the context
            # store's retry of a write that the frozen server still holds (groups' idempotent append).
            assert await eventually(lambda: _stored(url, 7001, ["до"]))

            server.freeze()
            api.queue(text_update(api, 7001, "во время"))
            asked = time.monotonic()
            assert await api.replies(7001, 1, 1, timeout=4 * timeout_s) == [texts.DATABASE_UNAVAILABLE]
            assert time.monotonic() - asked < 2 * timeout_s + 1.0

            server.thaw()
            api.queue(text_update(api, 7001, "после"))
            # The frozen-time message was kept (not confirmed to Telegram) and is answered too, in order.
            assert await api.replies(7001, 2, 2, timeout=20) == answers(["во время", "после"])
            assert bot.poll() is None
            assert await terminate(bot) == 0
        contexts = await stored_contexts(url)
    assert contexts[7001] == expected_context(["до", "во время", "после"])
