"""Chat with the model in a terminal: the bot's pipeline without Telegram.

The same context store (the embedded SQLite file unless a database is
configured), the same model server client and therefore the same dialogue
format, the same commands and replies as the Telegram bot, which it also
follows in adopting the server's context size and purging per
CONTEXT_RETENTION_DAYS. One fixed local user id, so the conversation survives
restarts of the chat.

Needs a running model server (``MODEL_SERVER_URL``); ``python -m bot.local``
starts one and then this chat. Replies go to stdout, one line each for
answers; status messages go to stderr.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from typing import TextIO

from bot.core import texts
from bot.core.commands import COMMANDS, CommandCall
from bot.core.conversation import Ask, converse
from bot.core.i18n import build_i18n
from bot.core.i18n import gettext as _
from bot.core.model_client import ModelClient
from bot.core.model_facts import adopt_server_context_size
from bot.settings import Settings, get_settings
from bot.storage.context_store import ContextStore
from bot.storage.db import DatabaseUnavailable, check_database, create_engine, upgrade_database
from bot.storage.retention import RetentionPurge
from bot.storage.scope import Scope

# Telegram user ids are positive, so 0 never collides with a real user sharing the database.
LOCAL_USER_ID = 0
EXIT_COMMANDS = frozenset({"/exit", "/quit"})
ANSWER_PREFIX = "бот: "
PROMPT = "вы: "


class TerminalChat:
    """Turns one input line into the bot's reply, keeping the context like the bot does."""

    def __init__(
        self, store: ContextStore, client: ModelClient, retention_days: int, user_id: int = LOCAL_USER_ID
    ) -> None:
        self.store = store
        self.client = client
        self.retention_days = retention_days
        self.scope = Scope(user_id, user_id)

    async def reply(self, line: str) -> str:
        command = _command(line)
        if command[1:] in COMMANDS:
            call = CommandCall(self.scope, self.store, self.retention_days, front_end="terminal")
            return await COMMANDS[command[1:]].run(call)
        if command:
            return _(texts.UNKNOWN_COMMAND)
        return await self._answer(line)

    async def _answer(self, line: str) -> str:
        lines: list[str] = []

        async def answer(text: str) -> list[tuple[int, str]]:
            lines.append(ANSWER_PREFIX + text)
            return []

        async def notice(text: str) -> None:
            lines.append(text)

        await converse(Ask(self.scope, line), self.store, self.client, answer, notice)
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
    # The runner copies the context on its first run: the language is set before.
    i18n = build_i18n()
    language = settings.bot_language or i18n.default_locale
    with i18n.context(), i18n.use_locale(language), asyncio.Runner() as runner:
        engine = create_engine(settings)
        client = ModelClient.for_settings(settings, model_server_url)
        purge: RetentionPurge | None = None
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
            # As the Telegram bot does: the served model's context size, the retention purge.
            settings = runner.run(adopt_server_context_size(settings, client))
            store = ContextStore(engine, settings.context_size)
            purge = RetentionPurge(store, settings.context_retention_days)
            runner.run(purge.purge())  # before the first line, so nothing expired is read
            # Later purges run while the loop does (during replies); the loop idles at the prompt.
            runner.run(purge.start(first_after_s=purge.every_s))
            chat = TerminalChat(store, client, settings.context_retention_days)
            for line in input_lines(stdin, PROMPT):
                if _command(line) in EXIT_COMMANDS:
                    break
                print(runner.run(chat.reply(line)), flush=True)
        finally:
            if purge is not None:
                runner.run(purge.stop())
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
