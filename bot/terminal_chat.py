"""Chat with the model in a terminal: the bot's pipeline without Telegram.

The same context store (the embedded SQLite file unless a database is
configured), the same model server client and therefore the same dialogue
format, the same commands and replies as the Telegram bot. One fixed local
user id, so the conversation survives restarts of the chat.

Needs a running model server (``MODEL_SERVER_URL``); ``python -m bot.local_run``
starts one and then this chat. Replies go to stdout, one line each for
answers; status messages go to stderr.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

from bot import texts
from bot.context_store import ContextStore, ContextStoreUnavailable
from bot.conversation import converse
from bot.db import DatabaseUnavailable, check_database, create_engine, upgrade_database
from bot.model_client import ModelClient
from bot.settings import Settings, get_settings

# Telegram user ids are positive, so 0 never collides with a real user sharing the database.
LOCAL_USER_ID = 0
EXIT_COMMANDS = frozenset({"/exit", "/quit"})
ANSWER_PREFIX = "бот: "
PROMPT = "вы: "


class TerminalChat:
    """Turns one input line into the bot's reply, keeping the context like the bot does."""

    def __init__(self, store: ContextStore, client: ModelClient, user_id: int = LOCAL_USER_ID) -> None:
        self.store = store
        self.client = client
        self.user_id = user_id

    async def reply(self, line: str) -> str:
        command = _command(line)
        if command == "/start":
            return texts.START
        if command == "/help":
            return texts.HELP + "\n/exit — выйти (или Ctrl-D)"
        if command == "/clear_context":
            try:
                await self.store.clear(self.user_id)
            except ContextStoreUnavailable:
                return texts.DATABASE_UNAVAILABLE
            return texts.CONTEXT_CLEARED
        return await self._answer(line)

    async def _answer(self, line: str) -> str:
        lines: list[str] = []

        async def answer(text: str) -> None:
            lines.append(ANSWER_PREFIX + text)

        async def notice(text: str) -> None:
            lines.append(text)

        await converse(self.user_id, line, self.store, self.client, answer, notice)
        return "\n".join(lines)


def _command(line: str) -> str:
    """The command a line starts with ("/help" for "/help@my_bot"); "" for plain text."""
    if not line.startswith("/"):
        return ""
    return line.split(maxsplit=1)[0].split("@", 1)[0]


def input_lines(stdin: TextIO, prompt: str) -> Iterator[str]:
    """Non-empty input lines until EOF; a prompt only when a person is typing."""
    interactive = stdin.isatty()
    read: Callable[[], str] = (lambda: input(prompt)) if interactive else stdin.readline
    while True:
        try:
            line = read()
        except EOFError:
            return
        if not interactive and not line:
            return
        if line.strip():
            yield line.strip()


def run(settings: Settings, model_server_url: str | None = None, stdin: TextIO = sys.stdin) -> int:
    """Chat until EOF or /exit. Returns the process exit status."""
    # One loop for the whole session, driven line by line from the main thread:
    # input() stays interruptible by Ctrl-C, with no reader thread left behind.
    with asyncio.Runner() as runner:
        engine = create_engine(settings)
        client = ModelClient(model_server_url or settings.model_server_url, settings.answer_timeout_s)
        try:
            try:
                runner.run(check_database(engine, attempts=settings.db_connect_attempts))
                runner.run(upgrade_database(engine))
            except DatabaseUnavailable as exc:
                print(f"terminal chat: {exc}", file=sys.stderr)
                print(
                    "  DATABASE_URL or DB_* are set (the environment or .env) but that database is not "
                    "reachable. For the embedded SQLite file unset them, or set "
                    "DATABASE_URL=sqlite:///bot_context.sqlite3",
                    file=sys.stderr,
                )
                return 1
            print(
                f"Context store: {engine.url.render_as_string(hide_password=True)}. "
                "/help lists the commands; /exit or Ctrl-D quits.",
                file=sys.stderr,
            )
            chat = TerminalChat(ContextStore(engine, settings.context_size), client)
            for line in input_lines(stdin, PROMPT):
                if _command(line) in EXIT_COMMANDS:
                    break
                print(runner.run(chat.reply(line)), flush=True)
        finally:
            runner.run(client.aclose())
            runner.run(engine.dispose())
    return 0


def main() -> int:
    try:
        return run(get_settings())
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
