"""Commands: the shared table of bot/core/commands.py; an unknown command gets the help hint."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.core import texts
from bot.core.commands import COMMANDS, CommandCall
from bot.core.i18n import gettext as _
from bot.core.learning import Learning
from bot.settings import Settings
from bot.storage.context_store import ContextStore
from bot.storage.scope import scope_of
from bot.telegram import addressing
from bot.telegram.sending import reply


async def known_command(
    message: Message, command: CommandObject, store: ContextStore, settings: Settings, learning: Learning
) -> None:
    call = CommandCall(
        scope_of(message),
        store,
        settings.context_retention_days,
        in_group=addressing.in_group(message),
        learning=learning,
    )
    await reply(message, await COMMANDS[command.command].run(call))


async def unknown_command(message: Message) -> None:
    """Neither sent to the model nor stored."""
    await reply(message, _(texts.UNKNOWN_COMMAND))


def build_router() -> Router:
    router = Router(name="commands")
    router.message.register(known_command, Command(*COMMANDS))
    router.message.register(unknown_command, F.func(lambda m: addressing.command_target(m) is not None))
    return router
