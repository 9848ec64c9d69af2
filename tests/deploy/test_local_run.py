"""The one-command local run: ``python -m bot.local`` without BOT_TOKEN is a terminal chat.

Driven through standard input with the tiny model, greedy decoding. The
expected answers come from a separate model server asked directly with the
context the chat should have sent, so an answer only matches if the chat kept
and sent the right context.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import psutil
import pytest

from benchmarks.support.fake_bot_api import FakeBotAPI
from bot.core import texts
from bot.local.terminal_chat import ANSWER_PREFIX, LOCAL_USER_ID
from dialogue.format import CONTEXT_SIZE
from tests.deploy.support import READY_TIMEOUT_S, expected_answer

Q1, Q2 = "как прошёл день?", "расскажи анекдот"


def stored_context(workdir: Path) -> list[dict[str, str]] | None:
    """What the embedded SQLite file in the working directory holds for the local user."""
    with sqlite3.connect(workdir / "bot_context.sqlite3") as db:
        row = db.execute("SELECT context FROM user_context WHERE user_id = ?", (LOCAL_USER_ID,)).fetchone()
    return None if row is None else json.loads(row[0])


def answers(stdout: str) -> list[str]:
    return [
        line.removeprefix(ANSWER_PREFIX) for line in stdout.splitlines() if line.startswith(ANSWER_PREFIX)
    ]


def user(text: str) -> dict[str, str]:
    return {"role": "user", "text": text}


def bot(text: str) -> dict[str, str]:
    return {"role": "bot", "text": text}


def test_chat_answers_with_the_context_and_stores_it(
    run_env: dict[str, str], reference_server: str, tmp_path: Path
) -> None:
    a1 = expected_answer(reference_server, Q1, [])
    a2 = expected_answer(reference_server, Q2, [user(Q1), bot(a1)])
    assert a2 != expected_answer(reference_server, Q2, []), "pick queries whose answer depends on the context"

    run = subprocess.run(
        [sys.executable, "-m", "bot.local"],
        input=f"/start\n{Q1}\n\n{Q2}\n",
        env=run_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT_S + 60,
    )

    assert run.returncode == 0, run.stderr
    assert texts.START_TERMINAL in run.stdout  # the terminal's /start: no voice messages offered
    assert answers(run.stdout) == [a1, a2]
    assert "terminal" in run.stderr and "Model server ready" in run.stderr
    assert stored_context(tmp_path) == [user(Q1), bot(a1), user(Q2), bot(a2)][-CONTEXT_SIZE:]


class Chat:
    """``python -m bot.local`` with a pipe for stdin and a reader thread on stdout."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self._stderr: IO[bytes] = (cwd / "local_run.stderr").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.local"],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()
        self.stderr_path = cwd / "local_run.stderr"

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))

    def say(self, text: str) -> str:
        """Send a line; the first line of the reply."""
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        try:
            return self._lines.get(timeout=READY_TIMEOUT_S)
        except queue.Empty:
            raise AssertionError(f"no reply to {text!r}: {self.stderr_path.read_text()}") from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


async def test_context_survives_a_restart_then_clear_context_forgets_and_ctrl_c_stops_all(
    run_env: dict[str, str], reference_server: str, tmp_path: Path
) -> None:
    # An earlier session left a conversation in the default SQLite file of this directory.
    from bot.storage.context_store import ContextStore
    from bot.storage.db import create_engine, upgrade_database
    from bot.storage.scope import Scope

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot_context.sqlite3'}")
    await upgrade_database(engine)
    await ContextStore(engine, CONTEXT_SIZE).append_exchange(
        Scope(LOCAL_USER_ID, LOCAL_USER_ID), Q1, "и тебе привет"
    )
    await engine.dispose()
    earlier = [user(Q1), bot("и тебе привет")]

    chat = Chat(run_env, tmp_path)
    try:
        assert chat.say(Q2) == ANSWER_PREFIX + expected_answer(reference_server, Q2, earlier)
        assert chat.say("/clear_context") == texts.CONTEXT_CLEARED
        assert stored_context(tmp_path) is None
        assert chat.say(Q2) == ANSWER_PREFIX + expected_answer(reference_server, Q2, [])

        started: list[Any] = psutil.Process(chat.process.pid).children(recursive=True)
        assert any("model_server" in " ".join(p.cmdline()) for p in started)
        chat.process.send_signal(signal.SIGINT)
        assert chat.process.wait(30) == 130
        alive = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not alive, f"still running after Ctrl-C: {alive}"
    finally:
        chat.close()


def test_a_running_model_server_named_by_model_server_url_is_used_not_started(
    run_env: dict[str, str], reference_server: str, tmp_path: Path
) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bot.local"],
        input=f"{Q1}\n/exit\n{Q2}\n",
        env={**run_env, "MODEL_SERVER_URL": reference_server, "MODEL_NAME_OR_PATH": str(tmp_path / "unused")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT_S,
    )
    assert run.returncode == 0, run.stderr
    assert answers(run.stdout) == [expected_answer(reference_server, Q1, [])], "/exit ends the chat"
    assert "Starting the model server" not in run.stderr


def test_a_model_that_cannot_load_ends_the_run_with_the_reason(
    run_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-model"
    run = subprocess.run(
        [sys.executable, "-m", "bot.local"],
        input="привет\n",
        env={**run_env, "MODEL_NAME_OR_PATH": str(missing)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT_S,
    )
    assert run.returncode == 1
    assert "model server exited" in run.stderr and str(missing) in run.stderr
    assert not (tmp_path / "bot_context.sqlite3").exists(), "no chat without a model"


def test_a_malformed_bot_token_is_reported_in_one_line_before_the_model_loads(
    run_env: dict[str, str], tmp_path: Path
) -> None:
    # A model that cannot load: were the token checked after the server start, this would
    # end with "the model server exited" instead.
    run = subprocess.run(
        [sys.executable, "-m", "bot.local"],
        env={
            **run_env,
            "BOT_TOKEN": "123456 :TYPO-secret-part",
            "MODEL_NAME_OR_PATH": str(tmp_path / "none"),
        },
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT_S,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "bot.local: invalid settings: BOT_TOKEN is malformed: "
        "expected '<digits>:<secret>' as issued by @BotFather"
    ]
    assert "TYPO-secret-part" not in run.stdout + run.stderr


def processes_started_by(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def still_running(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.timeout(300)
async def test_with_bot_token_the_telegram_bot_answers_and_ctrl_c_stops_both(
    run_env: dict[str, str], reference_server: str, tmp_path: Path
) -> None:
    token = "123456:TEST-local-run-token"
    api = await FakeBotAPI(token).start()
    log = (tmp_path / "local_run.log").open("wb")
    env = {
        **run_env,
        "BOT_TOKEN": token,
        "TELEGRAM_API_URL": api.base_url,
        "ASR_MODEL": str(tmp_path / "none"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.local"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        user_id = 777
        api.send_text(user_id, Q1)
        try:
            [reply] = await api.replies(user_id, after=0, count=1, timeout=READY_TIMEOUT_S)
        except TimeoutError:
            raise AssertionError((tmp_path / "local_run.log").read_text()) from None
        assert reply == expected_answer(reference_server, Q1, [])

        started = processes_started_by(process.pid)
        commands = [" ".join(p.cmdline()) for p in started]
        assert any("-m model_server" in c for c in commands) and any(c.endswith("-m bot") for c in commands)
        process.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(process.wait, 60) == 130
        assert not still_running(started), "Ctrl-C left processes behind"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
        await api.stop()


class _Loading(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the http.server API
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_model_server_healthcheck_of_compose_is_healthy_only_when_the_model_answers(
    reference_server: str, compose: dict
) -> None:
    """The compose healthcheck command, run as Docker runs it, against a real server."""
    test = compose["services"]["model_server"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    command = [sys.executable, *test[2:]]  # the image's python is the one on its PATH

    def check(port: int | str) -> int:
        env = {**os.environ, "PORT": str(port)}
        return subprocess.run(command, env=env, capture_output=True, timeout=30).returncode

    assert check(reference_server.rsplit(":", 1)[1]) == 0
    with socket.socket() as idle:  # bound, not listening: nothing answers there
        idle.bind(("127.0.0.1", 0))
        assert check(idle.getsockname()[1]) != 0
    loading = http.server.HTTPServer(("127.0.0.1", 0), _Loading)
    threading.Thread(target=loading.serve_forever, daemon=True).start()
    try:
        assert check(loading.server_address[1]) != 0, "503 (model still loading) must count as unhealthy"
    finally:
        loading.shutdown()
