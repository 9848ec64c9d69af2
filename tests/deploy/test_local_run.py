"""The one-command local run: ``python -m bot.local_run`` without BOT_TOKEN is a terminal chat.

Driven through standard input with the tiny model, greedy decoding. The
expected answers come from a separate model server asked directly with the
context the chat should have sent, so an answer only matches if the chat kept
and sent the right context.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import psutil
import pytest

from bot import texts
from bot.terminal_chat import ANSWER_PREFIX, LOCAL_USER_ID
from dialogue.format import CONTEXT_SIZE
from tests.deploy.support import ROOT, settings_env

READY_TIMEOUT_S = 120
GREEDY = {"GEN_DO_SAMPLE": "false", "GEN_NUM_BEAMS": "1", "GEN_MAX_NEW_TOKENS": "20"}
Q1, Q2 = "привет, как дела?", "а что ты делаешь вечером?"


def _setting_names() -> set[str]:
    from bot.settings import Settings as BotSettings
    from model_server.settings import Settings as ServerSettings

    return {*settings_env(BotSettings).names, *settings_env(ServerSettings).names}


@pytest.fixture(scope="module")
def run_env(tiny_model_dir: Path) -> dict[str, str]:
    """The environment of a person trying a local model: nothing of the caller's configuration leaks in."""
    names = _setting_names()
    env = {k: v for k, v in os.environ.items() if k.upper() not in names and not k.upper().startswith("GEN_")}
    return {
        **env,
        **GREEDY,
        "MODEL_NAME_OR_PATH": str(tiny_model_dir),
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }


@pytest.fixture(scope="module")
def reference_server(run_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A model server of its own, asked directly for the answers the chat must print."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("reference") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "model_server"],
            env={**run_env, "HOST": "127.0.0.1", "PORT": str(port)},
            cwd=tmp_path_factory.mktemp("reference-cwd"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not _healthy(url):
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "reference model server did not start"
                time.sleep(0.3)
            yield url
        finally:
            server.terminate()
            server.wait(30)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def expected_answer(url: str, query: str, context: list[dict[str, str]]) -> str:
    response = httpx.post(f"{url}/answer", json={"query": query, "context": context}, timeout=60)
    response.raise_for_status()
    answer: str = response.json()["answer"]
    return answer


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
        [sys.executable, "-m", "bot.local_run"],
        input=f"/start\n{Q1}\n\n{Q2}\n",
        env=run_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT_S + 60,
    )

    assert run.returncode == 0, run.stderr
    assert texts.START in run.stdout
    assert answers(run.stdout) == [a1, a2]
    assert "terminal" in run.stderr and "Model server ready" in run.stderr
    assert stored_context(tmp_path) == [user(Q1), bot(a1), user(Q2), bot(a2)][-CONTEXT_SIZE:]


class Chat:
    """``python -m bot.local_run`` with a pipe for stdin and a reader thread on stdout."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self._stderr: IO[bytes] = (cwd / "local_run.stderr").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.local_run"],
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
    from bot.context_store import ContextStore
    from bot.db import create_engine, upgrade_database

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot_context.sqlite3'}")
    await upgrade_database(engine)
    await ContextStore(engine, CONTEXT_SIZE).append_exchange(LOCAL_USER_ID, Q1, "и тебе привет")
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


def test_a_model_that_cannot_load_ends_the_run_with_the_reason(
    run_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-model"
    run = subprocess.run(
        [sys.executable, "-m", "bot.local_run"],
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
