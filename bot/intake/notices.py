"""Telling a sender that the database is away while their message cannot even be stored."""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiohttp import ClientError

from bot.core import texts

log = logging.getLogger(__name__)

REMEMBERED = 10_000


class Apologies:
    """One apology per update, however often storing it is retried."""

    def __init__(self, bot: Bot, translate: Callable[[str, str | None], str]) -> None:
        self.bot = bot
        self.translate = translate
        self._sent: OrderedDict[int, None] = OrderedDict()

    async def database_unavailable(self, updates: list[dict[str, Any]]) -> None:
        for update in updates:
            update_id, message = int(update["update_id"]), update.get("message")
            if message is None or update_id in self._sent:
                continue
            self._sent[update_id] = None
            if len(self._sent) > REMEMBERED:
                self._sent.popitem(last=False)
            with contextlib.suppress(TelegramAPIError, ClientError, TimeoutError):
                language = (message.get("from") or {}).get("language_code")
                text = self.translate(texts.DATABASE_UNAVAILABLE, language)
                await self.bot.send_message(message["chat"]["id"], text)
