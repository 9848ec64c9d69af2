"""Per-update resources of a chat: its settings (/settings) and, where learning is on, the corpus.

:class:`ChatSettingsMiddleware` is an outer middleware of the updates, before
the i18n middleware: it hands the chat's settings on as ``chat_settings``,
which the language, the ``SpeaksHere`` filter and learning read. The inbox
reads them with the update (bot/intake/serve.py passes them in); an update fed
without them (tests, the terminal chat) has its chat's row read here.

:class:`CollectMiddleware` is an outer middleware of the messages: it runs for
every message of the chat, before the filters that decide whether the bot
answers, stores the message when the chat learns (:func:`collect_message`), and
then lets the update go on its way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiogram import BaseMiddleware
from aiogram.enums import MessageEntityType
from aiogram.types import Chat, Message, TelegramObject

from bot.core.learning import Learning
from bot.storage.chat_settings import ChatSettings, ChatSettingsStore
from bot.storage.context_store import ContextStoreUnavailable
from bot.storage.scope import sender_id
from bot.telegram import addressing

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class ChatSettingsMiddleware(BaseMiddleware):
    def __init__(self, store: ChatSettingsStore) -> None:
        self.store = store
        # While the database is away: the environment's defaults, and nothing collected.
        self.fallback = ChatSettings(store.defaults.reply_mode, store.defaults.language, learning=False)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat: Chat | None = data.get("event_chat")
        if chat is None:
            data.pop("chat_settings", None)  # no chat, no chat's settings
        elif "chat_settings" not in data:
            try:
                data["chat_settings"] = await self.store.get(chat.id)
            except ContextStoreUnavailable:
                data["chat_settings"] = self.fallback
        return await handler(event, data)


class CollectMiddleware(BaseMiddleware):
    """``allowed_chat_ids`` (ALLOWED_CHAT_IDS; empty: all): a chat the bot may not serve is not kept."""

    def __init__(self, allowed_chat_ids: Collection[int] = ()) -> None:
        self.allowed_chat_ids = frozenset(allowed_chat_ids)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        settings: ChatSettings | None = data.get("chat_settings")
        learning: Learning | None = data.get("learning")
        if (
            isinstance(event, Message)
            and event.text
            and settings is not None
            and learning is not None
            and (not self.allowed_chat_ids or event.chat.id in self.allowed_chat_ids)
        ):
            if addressing.command_target(event) is None:  # commands are talk to a bot, not chat
                await collect_message(event, event.text, learning, settings)
        return await handler(event, data)


async def collect_message(message: Message, text: str, learning: Learning, settings: ChatSettings) -> bool:
    """Store ``text`` (the message's, or a voice message's transcript) where the chat learns."""
    sender = sender_id(message)
    if not settings.learning or not learning.enabled or not addressing.in_group(message) or sender is None:
        return False
    if message.bot is not None and message.from_user is not None and message.from_user.id == message.bot.id:
        return False  # the bot's own words are not the group's
    reply_to = message.reply_to_message.message_id if message.reply_to_message else None
    try:
        return await learning.collect(
            chat_id=message.chat.id,
            message_id=message.message_id,
            reply_to_message_id=reply_to,
            sent_at=message.date,
            sender_id=sender,
            text=text,
            names=participant_names(message),
        )
    except ContextStoreUnavailable:
        log.warning("corpus: message %d of chat %d not stored", message.message_id, message.chat.id)
        return False


def participant_names(message: Message) -> list[str]:
    """The names of the people in this message: its sender, the one it replies to, those it mentions."""
    users = [message.from_user if message.sender_chat is None else None]
    if message.reply_to_message is not None and message.reply_to_message.sender_chat is None:
        users.append(message.reply_to_message.from_user)
    users += [e.user for e in message.entities or () if e.type == MessageEntityType.TEXT_MENTION]
    names: list[str] = []
    for user in users:
        if user is not None and not user.is_bot:
            names += [n for n in (user.first_name, user.last_name, user.username) if n]
    return names
