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
from typing import get_args

from aiogram.utils.i18n import ConstI18nMiddleware, I18n, I18nMiddleware, SimpleI18nMiddleware
from aiogram.utils.i18n import gettext as gettext

from bot.settings import Language

LOCALES = Path(__file__).parents[1] / "locales"
DEFAULT_LOCALE = "ru"
LANGUAGES: tuple[str, ...] = get_args(Language)


def build_i18n() -> I18n:
    return I18n(path=LOCALES, default_locale=DEFAULT_LOCALE, domain="messages")


def i18n_middleware(i18n: I18n, forced_language: str | None) -> I18nMiddleware:
    """BOT_LANGUAGE forces one language; else each user's Telegram ``language_code`` picks it."""
    if forced_language:
        return ConstI18nMiddleware(forced_language, i18n)
    return SimpleI18nMiddleware(i18n)


def translator(i18n: I18n, forced_language: str | None) -> Callable[[str, str | None], str]:
    """``translate(text, language_code)`` outside a handler, by the middleware's rule."""

    def translate(text: str, language_code: str | None) -> str:
        language = forced_language or (language_code or "").split("-")[0]
        return i18n.gettext(text, locale=language if language in i18n.available_locales else DEFAULT_LOCALE)

    return translate
