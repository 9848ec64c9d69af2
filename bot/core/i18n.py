"""The bot's languages: aiogram's i18n (gettext catalogues under ``bot/locales``).

Russian is the default and the language of the message ids (:mod:`bot.core.texts`);
``locales/en`` translates them. The compiled ``.mo`` files are committed next
to their ``.po`` sources, so an installed package or an image works without a
build step; ``tests/bot/test_i18n.py`` fails when a ``.mo`` is stale or a text
is untranslated.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n, I18nMiddleware, SimpleI18nMiddleware
from aiogram.utils.i18n import gettext as gettext

from bot.settings import Language
from bot.storage.chat_settings import ChatSettings

LOCALES = Path(__file__).parents[1] / "locales"
DEFAULT_LOCALE = "ru"
LANGUAGES: tuple[str, ...] = get_args(Language)


def build_i18n() -> I18n:
    return I18n(path=LOCALES, default_locale=DEFAULT_LOCALE, domain="messages")


class ChatI18nMiddleware(SimpleI18nMiddleware):
    """The chat's language (/settings) first; else BOT_LANGUAGE; else the user's ``language_code``.

    ``chat_settings`` is the update's :class:`ChatSettings`, put in by an outer
    middleware that runs before this one (bot/telegram/chat_settings.py).
    """

    def __init__(self, i18n: I18n, forced_language: str | None) -> None:
        super().__init__(i18n)
        self.forced_language = forced_language

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        chat: ChatSettings | None = data.get("chat_settings")
        language = chat.language if chat is not None else self.forced_language
        if language:
            return language
        return await super().get_locale(event, data)


def i18n_middleware(i18n: I18n, forced_language: str | None) -> I18nMiddleware:
    return ChatI18nMiddleware(i18n, forced_language)


def translator(i18n: I18n, forced_language: str | None) -> Callable[[str, str | None], str]:
    """``translate(text, language_code)`` outside a handler, by the middleware's rule."""

    def translate(text: str, language_code: str | None) -> str:
        language = forced_language or (language_code or "").split("-")[0]
        return i18n.gettext(text, locale=language if language in i18n.available_locales else DEFAULT_LOCALE)

    return translate
