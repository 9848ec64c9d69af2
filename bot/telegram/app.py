"""Assembly of the bot: Bot with its API server and retries, Dispatcher with routers and middlewares."""

from __future__ import annotations

import logging
from contextlib import suppress

from aiogram import Bot, Dispatcher
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import ErrorEvent
from aiogram.utils.token import TokenValidationError, validate_token
from aiohttp import ClientError

from bot.core import texts
from bot.core.i18n import build_i18n, i18n_middleware
from bot.core.i18n import gettext as _
from bot.core.learning import Learning
from bot.core.model_client import ModelClient
from bot.core.speech import Recognizer
from bot.settings import Settings
from bot.storage.chat_settings import ChatSettings, ChatSettingsStore
from bot.storage.context_store import ContextStore
from bot.storage.corpus import Corpus
from bot.telegram.admins import Admins
from bot.telegram.chat_settings import ChatSettingsMiddleware, CollectMiddleware
from bot.telegram.handlers import build_router
from bot.telegram.response_types import KeepingSession
from bot.telegram.retry import RetryRequestMiddleware

log = logging.getLogger(__name__)


def token_problem(token: str) -> str | None:
    """What is wrong with BOT_TOKEN at a glance (before anything slow starts), or None."""
    if not token:
        return "BOT_TOKEN is not set: get a token from @BotFather and export BOT_TOKEN"
    try:
        validate_token(token)
    except TokenValidationError:
        return "BOT_TOKEN is malformed: expected '<digits>:<secret>' as issued by @BotFather"
    return None


def build_bot(settings: Settings, token: str) -> Bot:
    session = KeepingSession(api=TelegramAPIServer.from_base(settings.telegram_api_url.rstrip("/")))
    session.middleware(RetryRequestMiddleware())
    return Bot(token=token, session=session)


def build_dispatcher(
    settings: Settings, store: ContextStore, model: ModelClient, recognizer: Recognizer | None
) -> Dispatcher:
    defaults = ChatSettings(settings.group_reply_mode, settings.bot_language, settings.learning_default)
    chat_settings_store = ChatSettingsStore(store.transactional_engine, defaults)
    corpus = Corpus(store.transactional_engine)
    # aiogram's dependency injection: handlers name these as parameters.
    dp = Dispatcher(
        settings=settings,
        store=store,
        model=model,
        recognizer=recognizer,
        chat_settings_store=chat_settings_store,
        learning=Learning(corpus, settings.corpus_secret_value),
        admins=Admins(),
    )
    # The chat's settings first: its language, reply mode and learning apply to all that follows.
    dp.update.outer_middleware(ChatSettingsMiddleware(chat_settings_store))
    # Then the language, so that everything after it (handlers, their middlewares, errors) speaks it.
    i18n = build_i18n()
    i18n_middleware(i18n, settings.bot_language).setup(dp)
    # Every message of a learning group, before the filters that decide whether the bot answers it.
    dp.message.outer_middleware(CollectMiddleware(settings.allowed_chat_ids))
    dp.include_router(build_router(settings, store, i18n, corpus))
    dp.errors.register(_on_error)
    return dp


async def _on_error(event: ErrorEvent) -> bool:
    """Last resort for a bug or an unforeseen failure: log it, and tell the user rather than go silent."""
    message = event.update.message or event.update.edited_message
    if isinstance(event.exception, TelegramForbiddenError):
        # Blocked by the user or removed from the chat: nothing to retry, nobody to tell.
        chat = message.chat.id if message is not None else 0
        log.info("update %d: chat %d does not accept messages (403)", event.update.update_id, chat)
        return True
    log.error(
        "update %d failed: %s",
        event.update.update_id,
        type(event.exception).__name__,
        exc_info=event.exception,
    )
    if message is not None:
        # Sending may be what failed in the first place.
        with suppress(TelegramAPIError, ClientError, TimeoutError):
            await message.answer(_(texts.INTERNAL_ERROR))
    return True
