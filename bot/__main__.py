"""``python -m bot``: check the token, the settings and the database, migrate, then take updates."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError
from aiogram.types import User
from pydantic import ValidationError

from bot.core.model_client import ModelClient
from bot.core.model_facts import adopt_server_context_size
from bot.core.speech import Recognizer, build_recognizer
from bot.intake.serve import serve
from bot.log_redaction import configure_logging
from bot.settings import Settings, get_settings
from bot.startup import StartupError
from bot.storage.context_store import ContextStore
from bot.storage.db import DatabaseUnavailable, check_database, create_engine, upgrade_database
from bot.storage.inbox import Inbox, forget_sender
from bot.telegram.answerable import WouldAnswer
from bot.telegram.app import build_bot, build_dispatcher, token_problem

log = logging.getLogger("bot")


async def run(settings: Settings, token: str) -> None:
    engine = create_engine(settings)
    model = ModelClient(
        settings.model_server_url, settings.answer_timeout_s, max_concurrency=settings.model_max_concurrency
    )
    inbox = Inbox(engine, settings.db_timeout_s, flood_period_s=settings.rate_limit_period_s)
    recognizer: Recognizer | None = None
    bot = build_bot(settings, token)
    try:
        try:
            await check_database(engine, attempts=settings.db_connect_attempts)
        except DatabaseUnavailable as exc:
            raise StartupError(str(exc)) from exc
        await upgrade_database(engine)
        me = await _check_token(bot, settings)
        settings = await adopt_server_context_size(settings, model)
        try:
            recognizer = await asyncio.to_thread(build_recognizer, settings)
        except Exception as exc:  # text keeps working without voice
            log.error("speech recognition disabled: %s: %s", type(exc).__name__, exc)

        # Two attempts: a connection broken by a database restart fails at once and the
        # second one works; a hung database costs 2 x DB_TIMEOUT_S before the apology.
        store = ContextStore(engine, settings.context_size, attempts=2, forget_inbox=forget_sender)
        dp = build_dispatcher(settings, store, model, recognizer)
        log.info(
            "bot @%s starting in %s mode (database %r, model server %s)",
            me.username,
            settings.bot_mode,
            engine.url,
            settings.model_server_url,
        )
        # The intake may not import bot.telegram: the routers' rules for its apology are handed in.
        await serve(settings, bot, dp, inbox, WouldAnswer(settings, bot))
    finally:
        # Only now: the handlers are done with every client.
        await bot.session.close()
        await model.aclose()
        if recognizer is not None:
            recognizer.close()
        await inbox.close()
        await engine.dispose()


async def _check_token(bot: Bot, settings: Settings) -> User:
    try:
        return await bot.me()  # cached by aiogram: the group filters read the username from it
    except TelegramUnauthorizedError as exc:
        raise StartupError("Telegram rejected BOT_TOKEN (401 Unauthorized)") from exc
    except TelegramAPIError as exc:
        raise StartupError(f"Bot API at {settings.telegram_api_url} unusable: {type(exc).__name__}") from exc


def main() -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"bot: invalid settings:\n{_errors(exc)}", file=sys.stderr)
        return 2
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


def _errors(exc: ValidationError) -> str:
    """One line per problem, without the input values (they may hold secrets)."""
    return "\n".join(
        f"  {'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}" for error in exc.errors()
    )


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
