"""Commands: the shared table of bot/commands.py; an unknown command gets the help hint."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot import addressing, texts
from bot.commands import COMMANDS, CommandCall
from bot.context_store import ContextStore
from bot.conversation import reply
from bot.i18n import gettext as _
from bot.scope import scope_of
from bot.settings import Settings


async def known_command(
    message: Message, command: CommandObject, store: ContextStore, settings: Settings
) -> None:
    call = CommandCall(
        scope_of(message), store, settings.context_retention_days, in_group=addressing.in_group(message)
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
