"""The command menu Telegram shows, in each language, from the shared command table."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BotCommand
from aiogram.utils.i18n import I18n

from bot.core.commands import COMMANDS
from bot.core.i18n import gettext as _


def bot_commands() -> list[BotCommand]:
    """The menu Telegram shows, in the current language."""
    return [BotCommand(command=name, description=_(c.description)) for name, c in COMMANDS.items()]


async def register_commands(bot: Bot, i18n: I18n, forced_language: str | None) -> None:
    """The menu in the default language, and per language_code for the others."""
    with i18n.context():
        with i18n.use_locale(forced_language or i18n.default_locale):
            await bot.set_my_commands(bot_commands())
        if forced_language:
            return
        for locale in i18n.available_locales:
            if locale != i18n.default_locale:
                with i18n.use_locale(locale):
                    await bot.set_my_commands(bot_commands(), language_code=locale)
