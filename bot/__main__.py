"""``python -m bot``: check the settings and the database, migrate, then poll Telegram."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError
from aiogram.utils.token import TokenValidationError, validate_token
from pydantic import ValidationError

from bot.app import build_bot, build_dispatcher
from bot.context_store import ContextStore
from bot.db import DatabaseUnavailable, check_database, create_engine, upgrade_database
from bot.log_redaction import configure_logging
from bot.model_client import ModelClient
from bot.settings import Settings, get_settings
from bot.speech import Recognizer, build_recognizer

log = logging.getLogger("bot")


class StartupError(RuntimeError):
    """A problem an operator must fix; its message says what."""


async def run(settings: Settings, token: str) -> None:
    engine = create_engine(settings)
    model = ModelClient(
        settings.model_server_url, settings.answer_timeout_s, max_concurrency=settings.model_max_concurrency
    )
    recognizer: Recognizer | None = None
    bot = build_bot(settings, token)
    try:
        try:
            await check_database(engine, attempts=settings.db_connect_attempts)
        except DatabaseUnavailable as exc:
            raise StartupError(str(exc)) from exc
        await upgrade_database(engine)
        try:
            me = await bot.me()  # cached by aiogram: the group filters read the username from it
        except TelegramUnauthorizedError as exc:
            raise StartupError("Telegram rejected BOT_TOKEN (401 Unauthorized)") from exc
        except TelegramAPIError as exc:
            raise StartupError(
                f"Bot API at {settings.telegram_api_url} unusable: {type(exc).__name__}"
            ) from exc
        try:
            recognizer = await asyncio.to_thread(build_recognizer, settings)
        except Exception as exc:  # noqa: BLE001 - text keeps working without voice
            log.error("speech recognition disabled: %s: %s", type(exc).__name__, exc)

        store = ContextStore(engine, settings.context_size)
        dp = build_dispatcher(settings, store, model, recognizer)
        log.info(
            "bot @%s starting (database %r, model server %s)",
            me.username,
            engine.url,
            settings.model_server_url,
        )
        await dp.start_polling(bot, handle_as_tasks=True)
    finally:
        await bot.session.close()
        await model.aclose()
        if recognizer is not None:
            recognizer.close()
        await engine.dispose()


def main() -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"bot: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    token = settings.bot_token.get_secret_value() if settings.bot_token else ""
    configure_logging(settings.log_level, [token, *_db_secrets(settings)])
    if not token:
        log.error("BOT_TOKEN is not set: get a token from @BotFather and export BOT_TOKEN")
        return 2
    try:
        validate_token(token)
    except TokenValidationError:
        log.error("BOT_TOKEN is malformed: expected '<digits>:<secret>' as issued by @BotFather")
        return 2
    try:
        asyncio.run(run(settings, token))
    except StartupError as exc:
        log.error("start-up failed: %s", exc)
        return 1
    return 0


def _db_secrets(settings: Settings) -> list[str]:
    password = settings.sqlalchemy_url.password
    return [str(password)] if password else []


if __name__ == "__main__":
    sys.exit(main())
