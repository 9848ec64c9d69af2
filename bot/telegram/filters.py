"""Router filters: where the bot speaks (GROUP_REPLY_MODE) and who may use it.

In a private chat the bot answers everything. In a group, in every mode, it
ignores service messages, commands for other bots and people's replies to
each other; then:

- ``mention``: a mention of the bot, a reply to its message, a command for it;
- ``all``: every text or voice message, and whatever is addressed to it;
- ``off``: commands for it only.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from aiogram import Bot
from aiogram.enums import ContentType
from aiogram.filters import Filter
from aiogram.types import Message

from bot.storage.scope import sender_id
from bot.telegram import addressing


class ServiceMessage(Filter):
    async def __call__(self, message: Message) -> bool:
        return addressing.is_service(message)


class CommandForAnotherBot(Filter):
    async def __call__(self, message: Message, bot: Bot) -> bool:
        return addressing.is_command_for_another_bot(message, await bot.me())


class ReplyBetweenOthers(Filter):
    async def __call__(self, message: Message, bot: Bot) -> bool:
        return addressing.is_reply_between_others(message, await bot.me())


class SpeaksHere(Filter):
    """The GROUP_REPLY_MODE rule for messages that got past the filters above.

    Hands the bot's own user to the handlers as ``me``.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def __call__(self, message: Message, bot: Bot) -> bool | dict[str, Any]:
        me = await bot.me()
        if not addressing.in_group(message):
            speaks = True
        elif self.mode == "off":
            speaks = addressing.is_command_for(message, me)
        elif self.mode == "all" and message.content_type in (ContentType.TEXT, ContentType.VOICE):
            speaks = True
        else:
            speaks = addressing.is_addressed(message, me)
        return {"me": me} if speaks else False


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
