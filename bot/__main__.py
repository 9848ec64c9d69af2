"""``python -m bot``: check the token, the settings and the database, migrate, then take updates.

Configured by environment variables (or .env; the environment wins), not
flags; docs/configuration.md describes them. BOT_TOKEN is required;
MODEL_SERVER_URL names the model server; DATABASE_URL (or DB_USER,
DB_PASSWORD, DB_HOST, DB_PORT, DB_NAME) the database, an embedded SQLite file
when none is set; BOT_MODE=polling|webhook (webhook: WEBHOOK_BASE_URL,
WEBHOOK_SECRET). Invalid settings exit with status 2 and one line naming the
variable; a start-up failure (token, database, Bot API) with status 1.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING

from dialogue.service_cli import parse_service_args, settings_error_line

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.types import User
    from sqlalchemy.ext.asyncio import AsyncEngine

    from bot.core.speech import Recognizer
    from bot.settings import Settings

log = logging.getLogger("bot")


async def run(settings: Settings, token: str) -> None:
    from bot.core.model_client import ModelClient
    from bot.core.model_facts import adopt_server_context_size
    from bot.core.model_watch import ModelWatch
    from bot.intake.health import Health, start_health_server
    from bot.intake.serve import serve
    from bot.storage.context_store import ContextStore
    from bot.storage.db import create_engine
    from bot.storage.inbox import Inbox, forget_sender
    from bot.telegram.answerable import WouldAnswer
    from bot.telegram.app import build_bot, build_dispatcher

    engine = create_engine(settings)
    exchanges = create_engine(settings, synchronous_commit=False)  # the context store's exchange writes
    model = ModelClient.for_settings(settings)
    inbox = Inbox(engine, settings.db_timeout_s, flood_period_s=settings.rate_limit_period_s)
    recognizer: Recognizer | None = None
    watching: asyncio.Task[None] | None = None
    bot = build_bot(settings, token)
    health = Health()
    health_server = None
    if settings.health_port is not None:
        health_server = await start_health_server(health, settings.webhook_host, settings.health_port)
    try:
        await _ready_database(engine, settings)
        me = await _check_token(bot, settings)
        settings = await adopt_server_context_size(settings, model)
        recognizer = await _recognizer(settings)

        # Two attempts: a connection broken by a database restart fails at once and the
        # second one works; a hung database costs 2 x DB_TIMEOUT_S before the apology.
        store = ContextStore(
            engine, settings.context_size, attempts=2, forget_inbox=forget_sender, exchange_engine=exchanges
        )
        dp = build_dispatcher(settings, store, model, recognizer)
        if settings.model_watch_s > 0:  # a hot-swapped model may read another number of messages
            watching = asyncio.create_task(ModelWatch(settings, model, store).run(), name="model-watch")
        log.info(
            "bot @%s starting in %s mode (database %r, model server %s)",
            me.username,
            settings.bot_mode,
            engine.url,
            settings.model_server_url,
        )
        # The intake may not import bot.telegram: the routers' rules for its apology are handed in.
        await serve(settings, bot, dp, inbox, WouldAnswer(settings, bot), health)
    finally:
        if health_server is not None:
            await health_server.cleanup()
        if watching is not None:
            watching.cancel()
        # Only now: the handlers are done with every client.
        await bot.session.close()
        await model.aclose()
        if recognizer is not None:
            recognizer.close()
        await inbox.close()
        await engine.dispose()
        await exchanges.dispose()


async def _ready_database(engine: AsyncEngine, settings: Settings) -> None:
    from bot.startup import StartupError
    from bot.storage.db import DatabaseUnavailable, check_database, upgrade_database

    try:
        await check_database(engine, attempts=settings.db_connect_attempts)
    except DatabaseUnavailable as exc:
        raise StartupError(str(exc)) from exc
    await upgrade_database(engine)


async def _recognizer(settings: Settings) -> Recognizer | None:
    from bot.core.speech import build_recognizer

    try:
        return await asyncio.to_thread(build_recognizer, settings)
    except Exception as exc:  # text keeps working without voice
        log.error("speech recognition disabled: %s: %s", type(exc).__name__, exc)
        return None


async def _check_token(bot: Bot, settings: Settings) -> User:
    from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError

    from bot.startup import StartupError

    try:
        return await bot.me()  # cached by aiogram: the group filters read the username from it
    except TelegramUnauthorizedError as exc:
        raise StartupError("Telegram rejected BOT_TOKEN (401 Unauthorized)") from exc
    except TelegramAPIError as exc:
        raise StartupError(f"Bot API at {settings.telegram_api_url} unusable: {type(exc).__name__}") from exc


def main(argv: list[str] | None = None) -> int:
    parse_service_args("python -m bot", __doc__, argv)
    from bot.settings import Settings, get_settings

    try:
        settings = get_settings()
    except ValueError as exc:  # pydantic's ValidationError included
        print(settings_error_line("bot", exc, Settings), file=sys.stderr)
        return 2
    # Only now: aiogram takes seconds to import, too long for --help or a typo in a setting.
    from bot.log_redaction import configure_logging
    from bot.startup import StartupError
    from bot.telegram.app import token_problem

    token = settings.bot_token.get_secret_value() if settings.bot_token else ""
    configure_logging(settings.log_level, [token, *_secrets(settings)])
    # The token first: a typo should not wait for the database or the recogniser.
    problem = token_problem(token)
    if problem is not None:
        log.error("%s", problem)
        return 2
    try:
        asyncio.run(run(settings, token))
    except StartupError as exc:
        log.error("start-up failed: %s", exc)
        return 1
    return 0


def _secrets(settings: Settings) -> list[str]:
    password = settings.sqlalchemy_url.password
    secrets = [str(password)] if password else []
    if settings.webhook_secret is not None:
        secrets.append(settings.webhook_secret.get_secret_value())
    if settings.corpus_secret_value:
        secrets.append(settings.corpus_secret_value)
    return secrets


if __name__ == "__main__":
    sys.exit(main())
