"""Router filters: where the bot speaks (the chat's reply mode, else GROUP_REPLY_MODE) and who may use it.

In a private chat the bot answers everything. In a group, in every mode, it
ignores service messages, commands for other bots and people's replies to
each other; then:

- ``mention``: a mention of the bot, a reply to its message, a command for it;
- ``all``: every text or voice message, and whatever is addressed to it;
- ``off``: commands for it only.

:func:`speaks` is the rule itself, a pure function of the message and the
bot's own user: the routers filter with it, and the database-outage apology
(:mod:`bot.telegram.answerable`) asks it about updates that never reach them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from aiogram import Bot
from aiogram.enums import ContentType
from aiogram.filters import Filter
from aiogram.types import Message, User

from bot.storage.chat_settings import ChatSettings
from bot.storage.scope import sender_id
from bot.telegram import addressing


def speaks(message: Message, me: User, mode: str) -> bool:
    """Does the bot answer ``message`` under GROUP_REPLY_MODE ``mode`` (the module's rules)?"""
    if addressing.is_service(message) or addressing.is_command_for_another_bot(message, me):
        return False
    if addressing.is_reply_between_others(message, me):
        return False
    if not addressing.in_group(message):
        return True
    if mode == "off":
        return addressing.is_command_for(message, me)
    if mode == "all" and message.content_type in (ContentType.TEXT, ContentType.VOICE):
        return True
    return addressing.is_addressed(message, me)


class SpeaksHere(Filter):
    """:func:`speaks` as the routers' filter; hands the bot's own user to the handlers as ``me``.

    The mode is the chat's own (``chat_settings``, /settings) where the update
    has one, else ``default_mode`` (GROUP_REPLY_MODE).
    """

    def __init__(self, default_mode: str) -> None:
        self.mode = default_mode

    async def __call__(
        self, message: Message, bot: Bot, chat_settings: ChatSettings | None = None
    ) -> bool | dict[str, Any]:
        me = await bot.me()
        mode = chat_settings.reply_mode if chat_settings is not None else self.mode
        return {"me": me} if speaks(message, me, mode) else False


class Addressed(Filter):
    """Private chat, or a group message that calls the bot (mention, reply, command)."""

    async def __call__(self, message: Message, bot: Bot) -> bool:
        return addressing.is_addressed(message, await bot.me())


class Allowed(Filter):
    """ALLOWED_USER_IDS and ALLOWED_CHAT_IDS; an empty list lets everyone through."""

    def __init__(self, user_ids: Collection[int], chat_ids: Collection[int]) -> None:
        self.user_ids = frozenset(user_ids)
        self.chat_ids = frozenset(chat_ids)

    async def __call__(self, message: Message) -> bool:
        if self.chat_ids and message.chat.id not in self.chat_ids:
            return False
        if not self.user_ids:
            return True
        # An anonymous admin is let in by the group's id (its sender_chat) or by the shared user.
        senders = {sender_id(message), message.from_user.id if message.from_user else None}
        return bool(self.user_ids & senders)
