"""Everything on one machine, one command: ``python -m bot.local`` (``make run``).

1. Starts the model server (``python -m model_server``) as a child process on
   127.0.0.1, unless ``MODEL_SERVER_URL`` names one already running, and waits
   until its ``/health`` says the model is loaded (the first start downloads it).
2. With ``BOT_TOKEN`` set: runs the Telegram bot (``python -m bot``) against it.
   Without: opens the terminal chat (:mod:`bot.local.terminal_chat`) in this process.

Context goes to the embedded SQLite file unless ``DATABASE_URL`` / ``DB_*``
name a database. ``MODEL_NAME_OR_PATH`` may be a local model directory.
Ctrl-C (or SIGTERM) stops everything this command started. Settings are
checked, BOT_TOKEN's form included, before the model starts loading.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from bot.local.net import free_port
from bot.startup import StartupError
from dialogue.service_cli import parse_service_args, settings_error_line

# The settings, the clients and aiogram are imported where used: together they take
# seconds, which --help and a mistyped setting should not wait for.
if TYPE_CHECKING:
    from bot.core.model_client import ModelClient
    from bot.settings import Settings
    from model_server.settings import Settings as ServerSettings

POLL_S = 0.5
FIRST_NOTE_AFTER_S = 10.0
NOTE_EVERY_S = 30.0
# An external MODEL_SERVER_URL that nobody answers on is a typo, not a slow download.
EXTERNAL_CONNECT_LIMIT_S = 30.0
STOP_GRACE_S = 15.0


def checked_token(settings: Settings) -> str:
    """BOT_TOKEN, or "" for the terminal chat; a malformed one is a ValueError naming the form."""
    if settings.bot_token is None:
        return ""
    from bot.telegram.app import token_problem

    token = settings.bot_token.get_secret_value()
    if token and (problem := token_problem(token)) is not None:
        raise ValueError(problem)  # names the form, never the token: even a mistyped one is mostly secret
    return token


def _stop(process: subprocess.Popen[bytes], name: str) -> None:
    """SIGTERM, a grace period for a clean shutdown, then SIGKILL."""
    if process.poll() is not None:
        return
    print(f"Stopping the {name} ...", file=sys.stderr)
    process.terminate()
    try:
        process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def _child(
    args: list[str], name: str, env: dict[str, str], log: IO[bytes] | None
) -> Iterator[subprocess.Popen[bytes]]:
    # Own session: Ctrl-C reaches only this process, which then stops the children
    # in order (each one exactly once) instead of all of them racing on the signal.
    process = subprocess.Popen(
        args,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        _stop(process, name)


def _log_tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return ""
    tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return "\n".join(["", f"--- last lines of {path} ---", *tail])


def _loading_note(model: str) -> str:
    if not model:
        return "the model server named by MODEL_SERVER_URL is loading its model"
    if Path(model).is_dir():
        return f"loading {model} from disk"
    cache = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    return (
        f"the first start downloads {model} (~1.5 GB for a ruDialoGPT-medium) into {cache}; "
        "later starts only load it"
    )


def wait_until_healthy(
    url: str, process: subprocess.Popen[bytes] | None, model: str, log: Path | None
) -> None:
    """Poll ``/health`` until 200; fail when the server process exits or nothing ever answers."""
    from bot.core.model_client import ModelClient

    asyncio.run(_wait_until_healthy(ModelClient(url, timeout_s=5.0), process, model, log))


async def _wait_until_healthy(
    client: ModelClient, process: subprocess.Popen[bytes] | None, model: str, log: Path | None
) -> None:
    from bot.core.model_client import ModelServerError

    started = time.monotonic()
    next_note = started + FIRST_NOTE_AFTER_S
    answered = False
    try:
        while True:
            if process is not None and process.poll() is not None:
                raise StartupError(
                    f"the model server exited with status {process.returncode} before it was ready"
                    + _log_tail(log)
                )
            try:
                health = await client.health()
                answered = True
                if health.ready:
                    return
            except ModelServerError:
                pass
            elapsed = time.monotonic() - started
            if process is None and not answered and elapsed > EXTERNAL_CONNECT_LIMIT_S:
                raise StartupError(f"nothing answers at MODEL_SERVER_URL={client.base_url}")
            if time.monotonic() >= next_note:
                print(f"  ... still loading after {elapsed:.0f} s: {_loading_note(model)}", file=sys.stderr)
                next_note += NOTE_EVERY_S
            await asyncio.sleep(POLL_S)
    finally:
        await client.aclose()


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(settings: Settings, server_settings: ServerSettings | None, token: str) -> int:
    """Chat or bot against the model server; ``server_settings`` is None when one runs elsewhere."""
    env = dict(os.environ)
    # In chat mode the server's log would interleave with the conversation: it goes to a file.
    log_path = None if token else Path(tempfile.gettempdir()) / "rudialogpt-model-server.log"
    model = server_settings.model_name_or_path if server_settings else ""

    with _model_server(settings, server_settings, env, log_path) as (url, server):
        if server is not None:
            where = f" (log: {log_path})" if log_path else ""
            print(f"Starting the model server with {model} at {url}{where} ...", file=sys.stderr)
        wait_until_healthy(url, server, model, log_path)
        print(f"Model server ready at {url}.", file=sys.stderr)

        if not token:
            from bot.local import terminal_chat

            print("BOT_TOKEN is not set: chatting in the terminal instead of Telegram.", file=sys.stderr)
            return terminal_chat.run(settings, url)

        bot_env = {**env, "MODEL_SERVER_URL": url}
        with _child([sys.executable, "-m", "bot"], "bot", bot_env, None) as bot:
            print("Telegram bot started; Ctrl-C stops the bot and the model server.", file=sys.stderr)
            while bot.poll() is None:
                if server is not None and server.poll() is not None:
                    print(f"The model server exited with status {server.returncode}.", file=sys.stderr)
                    return 1
                time.sleep(POLL_S)
            return bot.returncode


@contextmanager
def _model_server(
    settings: Settings, server_settings: ServerSettings | None, env: dict[str, str], log_path: Path | None
) -> Iterator[tuple[str, subprocess.Popen[bytes] | None]]:
    """The URL of the model server to use and the process, when this command started it."""
    if server_settings is None:
        print(f"Using the model server at MODEL_SERVER_URL={settings.model_server_url}.", file=sys.stderr)
        yield settings.model_server_url.rstrip("/"), None
        return
    # The server's own default port may be taken; a PORT the user chose is kept.
    port = server_settings.port if "port" in server_settings.model_fields_set else free_port()
    server_env = {**env, "HOST": "127.0.0.1", "PORT": str(port)}
    log = open(log_path, "wb") if log_path else None
    try:
        with _child([sys.executable, "-m", "model_server"], "model server", server_env, log) as server:
            yield f"http://127.0.0.1:{port}", server
    finally:
        if log:
            log.close()


def main(argv: list[str] | None = None) -> int:
    parse_service_args("python -m bot.local", __doc__, argv)
    # Like Ctrl-C: a kill or a closed terminal also stops the children, which run in
    # sessions of their own and would otherwise outlive this process.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    from bot.settings import Settings, get_settings
    from model_server.settings import GenerationSettings
    from model_server.settings import Settings as ServerSettings

    # Every setting is checked before the model loads, which can take minutes.
    try:
        settings = get_settings()
        token = checked_token(settings)
        external = "model_server_url" in settings.model_fields_set
        server_settings = None if external else ServerSettings()
    except ValueError as exc:  # pydantic's ValidationError included
        print(
            settings_error_line("bot.local", exc, Settings, ServerSettings, GenerationSettings),
            file=sys.stderr,
        )
        return 2
    try:
        return run(settings, server_settings, token)
    except StartupError as exc:
        print(f"bot.local: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
