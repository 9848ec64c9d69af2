"""Telling a sender that the database is away while their message cannot even be stored."""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Message, ReplyParameters
from aiohttp import ClientError

from bot.core import texts

log = logging.getLogger(__name__)

REMEMBERED = 10_000
# The update's message when the bot would have answered it (bot.telegram.answerable.WouldAnswer).
WouldAnswer = Callable[[dict[str, Any]], Awaitable[Message | None]]


class Apologies:
    """One apology per update, however often storing it is retried; only where the bot would answer.

    Group chatter that does not call the bot, and chats or users outside
    ``ALLOWED_*``, hear nothing: ``would_answer`` applies the routers' rules.
    """

    def __init__(
        self, bot: Bot, translate: Callable[[str, str | None], str], would_answer: WouldAnswer
    ) -> None:
        self.bot = bot
        self.translate = translate
        self.would_answer = would_answer
        self._sent: OrderedDict[int, None] = OrderedDict()

    async def database_unavailable(self, updates: list[dict[str, Any]]) -> None:
        for update in updates:
            update_id = int(update["update_id"])
            if update_id in self._sent:
                continue
            self._sent[update_id] = None
            if len(self._sent) > REMEMBERED:
                self._sent.popitem(last=False)
            with contextlib.suppress(TelegramAPIError, ClientError, TimeoutError):
                # The bot's own user comes from aiogram's cache (filled at start-up) or getMe.
                message = await self.would_answer(update)
                if message is None:
                    continue
                language = message.from_user.language_code if message.from_user else None
                # A reply to that message, in its forum topic (answer() keeps the topic).
                await message.answer(
                    self.translate(texts.DATABASE_UNAVAILABLE, language),
                    reply_parameters=ReplyParameters(
                        message_id=message.message_id, allow_sending_without_reply=True
                    ),
                )
