"""/start, /help, /clear_context."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import BotCommand, Message

from bot import texts
from bot.context_store import ContextStore, ContextStoreUnavailable

BOT_COMMANDS = [BotCommand(command=name, description=text) for name, text in texts.COMMANDS.items()]


async def start(message: Message) -> None:
    await message.answer(texts.START)


async def help_(message: Message) -> None:
    await message.answer(texts.HELP)


async def clear_context(message: Message, store: ContextStore) -> None:
    assert message.from_user is not None
    try:
        await store.clear(message.from_user.id)
    except ContextStoreUnavailable:
        await message.answer(texts.DATABASE_UNAVAILABLE)
        return
    await message.answer(texts.CONTEXT_CLEARED)


def build_router() -> Router:
    router = Router(name="commands")
    router.message.filter(F.from_user)
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    router.message.register(clear_context, Command("clear_context"))
    return router
