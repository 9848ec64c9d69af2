"""The bot process facing a bad database, a user who blocked it, and the model server's context size."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from benchmarks.support.bot_processes import (
    CONTEXT_SIZE,
    StubModelServer,
    bot_env,
    bot_process,
    eventually,
    stored_contexts,
    terminate,
    text_update,
    wait_ready,
)
from benchmarks.support.fake_bot_api import FakeBotAPI
from benchmarks.support.processes import start_module
from bot.core import texts

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never says a word, like a frozen database."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


async def run_to_exit(env: dict[str, str], log: Path) -> tuple[int, str, float]:
    started = time.monotonic()
    code = await asyncio.to_thread(start_module("bot", env, log).wait, 90)
    return code, log.read_text(), time.monotonic() - started


@pytest.mark.parametrize("problem", ["wrong password", "no such database"])
async def test_refused_database_is_one_clear_line(
    api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path, problem: str
) -> None:
    if problem == "wrong password":
        # Trust authentication accepts any password; a role that does not exist is refused the same way.
        url = pg_database.set(username="no_such_role", password="pw-must-not-leak")
        expected = 'role "no_such_role" does not exist'
    else:
        url = pg_database.set(database="no_such_database")
        expected = 'database "no_such_database" does not exist'
    code, output, _ = await run_to_exit(bot_env(api, url, model), tmp_path / "bot.log")
    assert code == 1
    [line] = [line for line in output.splitlines() if "start-up failed" in line]
    assert expected in line
    assert "Traceback" not in output and "pw-must-not-leak" not in output


async def test_database_that_never_answers_gives_up_in_bounded_time(
    api: FakeBotAPI, model: StubModelServer, silent_server: int, tmp_path: Path
) -> None:
    url = URL.create("postgresql+asyncpg", "postgres", host="127.0.0.1", port=silent_server, database="x")
    env = bot_env(api, url, model, DB_TIMEOUT_S="1", DB_CONNECT_ATTEMPTS="3")
    code, output, took = await run_to_exit(env, tmp_path / "bot.log")
    assert code == 1
    assert "unreachable after 3 attempts: TimeoutError" in output
    assert "Traceback" not in output
    # 3 attempts of 1 s plus 1.5 s of backoff; the rest is the interpreter's start on a busy machine.
    assert took < 60


async def test_blocked_by_the_user_is_logged_once_and_not_retried(
    api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    async with bot_process(bot_env(api, pg_database, model), log) as bot:
        await wait_ready(api, bot, log)
        api.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
        api.queue(text_update(api, 8001, "ты тут?"))
        await api.wait_for(lambda: any(c.failed for c in api.calls_of("sendMessage")))
        api.queue(text_update(api, 8002, "а я не блокировал"))
        await api.replies(8002, 0, 1)
        await asyncio.sleep(1.0)  # a retry or an apology would have gone out by now
        assert await terminate(bot) == 0
    to_blocked = [c for c in api.calls_of("sendMessage") if int(c.params["chat_id"]) == 8001]
    assert len(to_blocked) == 1
    output = log.read_text()
    assert [line for line in output.splitlines() if "8001" in line and "403" in line]
    assert "Traceback" not in output


async def test_context_size_comes_from_the_model_server_unless_set(
    api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path
) -> None:
    env = bot_env(api, pg_database, model)
    del env["CONTEXT_SIZE"]  # the server's model was trained with CONTEXT_SIZE (20) messages
    log = tmp_path / "bot.log"
    async with bot_process(env, log) as bot:
        await wait_ready(api, bot, log)
        for i in range(3):
            api.queue(text_update(api, 9001, f"сообщение {i}"))
        await api.replies(9001, 0, 3)
        assert await terminate(bot) == 0
    # Three exchanges, six turns: more than the bot's own default of 3.
    contexts = await eventually(lambda: stored_contexts(pg_database))
    assert len(contexts[9001]) == 6 <= CONTEXT_SIZE


async def test_explicit_context_size_wins_with_a_warning(
    api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path
) -> None:
    log = tmp_path / "bot.log"
    async with bot_process(bot_env(api, pg_database, model, CONTEXT_SIZE="2"), log) as bot:
        await wait_ready(api, bot, log)
        api.queue(text_update(api, 9101, "раз"))
        api.queue(text_update(api, 9101, "два"))
        assert len(await api.replies(9101, 0, 2)) == 2
        assert await terminate(bot) == 0
    assert len((await stored_contexts(pg_database))[9101]) == 2
    assert "CONTEXT_SIZE=2 differs from the model server's 20" in log.read_text()
    assert texts.MODEL_UNAVAILABLE not in api.messages_to(9101)
