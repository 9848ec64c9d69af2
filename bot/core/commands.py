"""The command table, shared by the Telegram handlers and the terminal chat.

Each command turns a :class:`CommandCall` into the one text the bot replies;
the front ends only find the command and deliver the text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.core import texts
from bot.core.i18n import gettext as _
from bot.core.learning import Learning
from bot.storage.context_store import ContextStore, ContextStoreUnavailable
from bot.storage.scope import Scope


@dataclass(frozen=True, slots=True)
class CommandCall:
    scope: Scope
    store: ContextStore
    retention_days: int
    front_end: str = "telegram"  # "telegram" | "terminal"
    in_group: bool = False
    learning: Learning | None = None  # the Telegram front end's corpus (/optout, /optin, /forget)


@dataclass(frozen=True, slots=True)
class Command:
    description: str  # a message id of bot.core.texts
    run: Callable[[CommandCall], Awaitable[str]]
    telegram_only: bool = False  # left out of the terminal chat's /help


async def start(call: CommandCall) -> str:
    if call.front_end == "terminal":
        return _(texts.START_TERMINAL)
    return _(texts.START_GROUP) if call.in_group else _(texts.START)


async def help_(call: CommandCall) -> str:
    lines = [
        f"/{name} — {_(command.description)}"
        for name, command in COMMANDS.items()
        if call.front_end == "telegram" or not command.telegram_only
    ]
    if call.front_end == "terminal":
        lines.append(_(texts.HELP_TERMINAL_EXIT))
    return _(texts.HELP).format(commands="\n".join(lines), retention=retention_text(call.retention_days))


def retention_text(days: int) -> str:
    return _(texts.RETENTION_FOREVER) if days == 0 else _(texts.RETENTION_DAYS).format(days=days)


async def clear_context(call: CommandCall) -> str:
    try:
        await call.store.clear(call.scope)
    except ContextStoreUnavailable:
        return _(texts.DATABASE_UNAVAILABLE)
    return _(texts.CONTEXT_CLEARED)


async def forget(call: CommandCall) -> str:
    learning = call.learning
    key = learning.key(call.scope.user_id) if learning is not None and learning.enabled else None
    try:
        forgotten = await call.store.forget_sender(call.scope.user_id, author_key=key)
    except ContextStoreUnavailable:
        return _(texts.DATABASE_UNAVAILABLE)
    return _(texts.FORGOTTEN).format(conversations=forgotten.conversations, messages=forgotten.messages)


async def settings_elsewhere(call: CommandCall) -> str:
    """The Telegram front end answers /settings with its keyboard before this table is asked."""
    return _(texts.SETTINGS_TELEGRAM_ONLY)


async def opt_out(call: CommandCall) -> str:
    if call.learning is None or not call.learning.enabled:
        return _(texts.LEARNING_NOT_CONFIGURED)
    try:
        deleted = await call.learning.corpus.opt_out(call.learning.key(call.scope.user_id))
    except ContextStoreUnavailable:
        return _(texts.DATABASE_UNAVAILABLE)
    return _(texts.OPTED_OUT).format(messages=deleted)


async def opt_in(call: CommandCall) -> str:
    if call.learning is None or not call.learning.enabled:
        return _(texts.LEARNING_NOT_CONFIGURED)
    try:
        await call.learning.corpus.opt_in(call.learning.key(call.scope.user_id))
    except ContextStoreUnavailable:
        return _(texts.DATABASE_UNAVAILABLE)
    return _(texts.OPTED_IN)


COMMANDS: dict[str, Command] = {
    "start": Command(texts.CMD_START, start),
    "help": Command(texts.CMD_HELP, help_),
    "clear_context": Command(texts.CMD_CLEAR_CONTEXT, clear_context),
    "forget": Command(texts.CMD_FORGET, forget),
    "settings": Command(texts.CMD_SETTINGS, settings_elsewhere, telegram_only=True),
    "optout": Command(texts.CMD_OPTOUT, opt_out, telegram_only=True),
    "optin": Command(texts.CMD_OPTIN, opt_in, telegram_only=True),
}
